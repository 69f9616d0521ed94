from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class Domain(Base):
    """A sending domain the account proves it owns through DNS (DKIM, SPF, Return-Path)."""

    __tablename__ = "domains"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    #: Lower-cased, without a trailing dot.
    name: Mapped[str] = mapped_column(String(255))
    return_path_domain: Mapped[str] = mapped_column(String(255), default="")
    return_path_verified: Mapped[bool] = mapped_column(default=False)
    spf_verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DkimKey(Base):
    """One DKIM key of a domain: pending until DNS shows it, then active, then revoked by a rotation."""

    __tablename__ = "dkim_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domains.id", ondelete="CASCADE"), index=True)
    selector: Mapped[str] = mapped_column(String(63))
    bits: Mapped[int]
    #: PKCS#8 PEM, encrypted with the installation's key.
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    public_txt: Mapped[str] = mapped_column(Text)
    #: pending, active or revoked
    state: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
