"""Webhook deliveries: each event posted to a webhook, and every attempt to post it.

The delivery rows are the durable queue: a worker claims due rows with a lease, posts
them and records the outcome, so a process that dies mid-delivery loses nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class DeliveryStatus(StrEnum):
    PENDING = "Pending"
    DELIVERED = "Delivered"
    #: Gave up: the last retry failed, or the URL may never be called (a private address).
    FAILED = "Failed"
    #: The receiver answered a status that retrying cannot change (4xx other than 408 and 429).
    DROPPED = "Dropped"


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # The workers' claim: due pending rows, oldest first.
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        # The delivery log of one webhook, newest first.
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    record_type: Mapped[str] = mapped_column(String(30))
    #: The exact JSON body posted on every attempt (and signed), kept as text.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING.value)
    attempts_made: Mapped[int] = mapped_column(default=0)
    #: When a worker may post it next; None once the delivery is final.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    #: The claim of the worker posting it now: another worker leaves the row alone until
    #: the lease expires (which only happens when that worker died mid-delivery).
    lease_token: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class WebhookDeliveryAttempt(Base):
    __tablename__ = "webhook_delivery_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    #: 1 for the first post, 2 for the first retry...
    number: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The receiver's status code; None when no answer came (refused, timed out, unreachable).
    http_status: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int]
    #: What ``X-PM-Retries-Remaining`` said on this attempt.
    retries_remaining: Mapped[int]
