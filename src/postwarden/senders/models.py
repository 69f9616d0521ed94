from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class SenderSignature(Base):
    """One From address the account may send as, once its owner confirmed it by mail."""

    __tablename__ = "sender_signatures"
    __table_args__ = (UniqueConstraint("account_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: Lower-cased.
    email: Mapped[str] = mapped_column(String(320))
    #: The domain part of ``email``; its DKIM key is the account's Domain of the same name.
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    reply_to_email: Mapped[str] = mapped_column(String(320), default="")
    return_path_domain: Mapped[str] = mapped_column(String(255), default="")
    confirmation_personal_note: Mapped[str] = mapped_column(String(400), default="")
    confirmed: Mapped[bool] = mapped_column(default=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConfirmationToken(Base):
    """A single-use confirmation link; only its keyed digest is stored."""

    __tablename__ = "sender_confirmation_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    signature_id: Mapped[int] = mapped_column(ForeignKey("sender_signatures.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(128), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
