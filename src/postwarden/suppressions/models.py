"""Suppressions: the addresses a message stream no longer sends to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class Suppression(Base):
    """One address suppressed on one stream, and why.

    The unique index on (stream, address key) serves the per-address lookups of sending and
    of the API; the (stream, created_at) index serves the dump and its date filters.
    """

    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("message_stream_id", "address_key"),
        Index("ix_suppressions_message_stream_id_created_at", "message_stream_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_stream_id: Mapped[int] = mapped_column(ForeignKey("message_streams.id", ondelete="CASCADE"))
    #: As first given, for display.
    email_address: Mapped[str] = mapped_column(String(320))
    #: Lower-cased: an address is suppressed whatever its spelling.
    address_key: Mapped[str] = mapped_column(String(320))
    #: ``HardBounce``, ``SpamComplaint`` or ``ManualSuppression``.
    reason: Mapped[str] = mapped_column(String(20))
    #: ``Recipient``, ``Customer`` or ``Admin``: who caused it.
    origin: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
