from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class Invitation(Base):
    """An invitation to join an account with a role and server access, accepted once by link.

    Only the link token's keyed digest is kept; resending issues a new link.
    """

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    #: ``{"<server id>": "<policy.ServerAccess>"}`` granted on acceptance.
    server_access: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    servers_limited: Mapped[bool] = mapped_column(default=False)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    accepted_user_id: Mapped[int | None] = mapped_column(default=None)
