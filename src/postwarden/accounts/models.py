from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    #: The cap on servers; the plan sets it, the operator may override it. None means unlimited.
    server_limit: Mapped[int | None] = mapped_column(default=None)
    #: Members without two-factor authentication can do nothing but set it up.
    require_two_factor: Mapped[bool] = mapped_column(default=False)
    #: Set by the operator (abuse, unpaid bills): no mail leaves for this account, invitations included.
    sending_paused: Mapped[bool] = mapped_column(default=False)
    #: One of ``accounts.service.PLANS``.
    plan: Mapped[str] = mapped_column(String(40), default="Platform")
    receipt_recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    billing_error_recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Printed on receipts: company name, address, VAT number...
    bill_to: Mapped[str] = mapped_column(Text, default="")
    #: Kept by the users service on every join and removal, so that listing the members of a
    #: large account need not count them.
    member_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
