"""The worker's side of webhook deliveries: drain the due rows, post them, log each attempt.

One run claims due deliveries in batches (a lease that other workers respect, taken with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and under SQLite's write lock), posts them
concurrently over one keep-alive connection pool, and records the attempts of many
deliveries in one transaction while the next ones are being posted. A worker that dies
mid-run leaves its claimed rows leased until the lease expires; every other row it touched
is either untouched or fully recorded, so another worker picks up exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update

from postwarden.db import UTCDateTime, utcnow
from postwarden.runtime import Runtime
from postwarden.webhook_deliveries.models import DeliveryStatus, WebhookDelivery, WebhookDeliveryAttempt
from postwarden.webhook_deliveries.sender import AttemptResult, Outcome, Outgoing, Sender
from postwarden.webhooks.models import Webhook

logger = logging.getLogger("postwarden.webhooks")

#: Deliveries claimed at once, per connection: enough to keep every connection busy while
#: the previous batch is recorded, few enough that a claim is short-lived.
CLAIMED_PER_CONNECTION: Final = 16
#: Margin of a lease beyond the longest time its rows may wait and be posted.
LEASE_MARGIN_SECONDS: Final = 60

_D: Final = cast(Table, WebhookDelivery.__table__)
_TAKE_LEASE: Final = (
    update(_D)
    .where(_D.c.id.in_(bindparam("ids", expanding=True)))
    .values(lease_token=bindparam("token"), lease_expires_at=bindparam("until"))
)
_RECORD_OUTCOME: Final = (
    update(_D)
    .where(_D.c.id == bindparam("delivery"), _D.c.lease_token == bindparam("lease"))
    .values(
        status=bindparam("new_status"),
        attempts_made=bindparam("number"),
        next_attempt_at=bindparam("next_at"),
        completed_at=bindparam("done_at"),
        lease_token=None,
        lease_expires_at=None,
    )
)


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds the lease of, and the attempt it is about to make."""

    outgoing: Outgoing
    lease_token: str
    number: int


@dataclass(frozen=True)
class Drained:
    attempts: int
    #: The run stopped at its time limit: more deliveries may be due.
    more_due: bool
    #: When the earliest pending delivery falls due; None when nothing is pending.
    next_due_at: datetime | None


class DeliveryQueue:
    """The delivery rows as a durable queue: claim what is due, record what happened."""

    def __init__(self, runtime: Runtime) -> None:
        self.db = runtime.db
        self.keyring = runtime.keyring
        self.retry_delays = list(runtime.settings.webhook_retry_delays_seconds)

    def claim(self, limit: int, *, lease_seconds: float) -> list[Claim]:
        now = utcnow()
        token = secrets.token_hex(16)
        query = (
            select(
                WebhookDelivery.id,
                WebhookDelivery.attempts_made,
                WebhookDelivery.payload,
                Webhook.id,
                Webhook.url,
                Webhook.http_auth_username,
                Webhook.http_auth_password_encrypted,
                Webhook.http_headers,
                Webhook.signing_secret_encrypted,
            )
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING.value,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_expires_at.is_(None), WebhookDelivery.lease_expires_at <= now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
        with self.db.session_scope() as session:
            rows = session.execute(query).all()
            if not rows:
                return []
            until = now + timedelta(seconds=lease_seconds)
            session.connection().execute(_TAKE_LEASE, {"ids": [row[0] for row in rows], "token": token, "until": until})
        secrets_of: dict[int, tuple[str, str]] = {}
        claims = []
        for delivery_id, attempts_made, payload, webhook_id, url, username, password, headers, secret in rows:
            if webhook_id not in secrets_of:
                secrets_of[webhook_id] = (
                    self.keyring.decrypt(password) if password is not None else "",
                    self.keyring.decrypt(secret),
                )
            clear_password, signing_secret = secrets_of[webhook_id]
            outgoing = Outgoing(
                delivery_id=delivery_id,
                url=url,
                body=payload.encode(),
                custom_headers=[(header["Name"], header["Value"]) for header in headers],
                username=username,
                password=clear_password,
                signing_secret=signing_secret,
                retries_remaining=max(0, len(self.retry_delays) - attempts_made),
            )
            claims.append(Claim(outgoing, token, attempts_made + 1))
        return claims

    def record(self, finished: list[tuple[Claim, AttemptResult]]) -> None:
        """Log every attempt and move each delivery on, in one transaction. A delivery whose
        lease another worker took over (this one stalled past it) keeps that worker's state."""
        now = utcnow()
        attempts = [
            {
                "delivery_id": claim.outgoing.delivery_id,
                "number": claim.number,
                "attempted_at": result.attempted_at,
                "http_status": result.http_status,
                "error": result.error,
                "duration_ms": result.duration_ms,
                "retries_remaining": claim.outgoing.retries_remaining,
            }
            for claim, result in finished
        ]
        outcomes = [self._next_state(claim, result, now) for claim, result in finished]
        with self.db.session_scope() as session:
            session.execute(insert(WebhookDeliveryAttempt), attempts)
            session.connection().execute(_RECORD_OUTCOME, outcomes)

    def _next_state(self, claim: Claim, result: AttemptResult, now: datetime) -> dict[str, Any]:
        next_at: datetime | None = None
        if result.outcome is Outcome.DELIVERED:
            status = DeliveryStatus.DELIVERED
        elif result.outcome is Outcome.RETRY and claim.outgoing.retries_remaining > 0:
            status = DeliveryStatus.PENDING
            next_at = now + timedelta(seconds=self.retry_delays[claim.number - 1])
        elif result.outcome is Outcome.DROPPED:
            status = DeliveryStatus.DROPPED
        else:  # the last retry failed, or the URL may not be called
            status = DeliveryStatus.FAILED
        return {
            "delivery": claim.outgoing.delivery_id,
            "lease": claim.lease_token,
            "new_status": status.value,
            "number": claim.number,
            "next_at": next_at,
            "done_at": None if next_at is not None else now,
        }

    def next_due_at(self) -> datetime | None:
        """When a worker should look again: the earliest retry, or the earliest lease to
        expire (a worker that died holding it)."""
        due = func.coalesce(WebhookDelivery.lease_expires_at, WebhookDelivery.next_attempt_at, type_=UTCDateTime)
        query = select(func.min(due, type_=UTCDateTime)).where(WebhookDelivery.status == DeliveryStatus.PENDING.value)
        with self.db.session_scope(write=False) as session:
            return session.scalar(query)


class Dispatcher:
    """Drains due deliveries for a while; the task queue runs it and schedules the next run."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.queue = DeliveryQueue(runtime)
        self.connections = settings.webhook_concurrency
        self.timeout_seconds = settings.webhook_timeout_seconds
        self.allow_private = settings.allow_private_urls
        self.batch_size = CLAIMED_PER_CONNECTION * self.connections
        # A claimed row waits behind at most a batch and a round of posts before its own.
        self.lease_seconds = (CLAIMED_PER_CONNECTION + 2) * self.timeout_seconds + LEASE_MARGIN_SECONDS

    def drain(self, *, max_seconds: float) -> Drained:
        """Post what is due until nothing is, or ``max_seconds`` have passed."""
        return asyncio.run(self._drain(time.monotonic() + max_seconds))

    async def _drain(self, deadline: float) -> Drained:
        waiting: asyncio.Queue[Claim] = asyncio.Queue(maxsize=self.batch_size)
        finished: list[tuple[Claim, AttemptResult]] = []
        attempts = 0
        sender = Sender(
            timeout_seconds=self.timeout_seconds, max_connections=self.connections, allow_private=self.allow_private
        )
        async with sender:
            posters = [asyncio.create_task(self._post_each(waiting, sender, finished)) for _ in range(self.connections)]
            try:
                more_due = False
                while not more_due:
                    claims = await asyncio.to_thread(
                        self.queue.claim, self.batch_size, lease_seconds=self.lease_seconds
                    )
                    if not claims:
                        break
                    for claim in claims:
                        await waiting.put(claim)
                    attempts += await self._record(finished)
                    more_due = time.monotonic() >= deadline
                await waiting.join()
            finally:
                for poster in posters:
                    poster.cancel()
                await asyncio.gather(*posters, return_exceptions=True)
            attempts += await self._record(finished)
        next_due_at = await asyncio.to_thread(self.queue.next_due_at)
        return Drained(attempts, more_due, next_due_at)

    def _claim(self) -> list[Claim]:
        return self.queue.claim(self.batch_size, lease_seconds=self.lease_seconds)

    async def _record(self, finished: list[tuple[Claim, AttemptResult]]) -> int:
        """Record what has finished so far (the posters go on adding to ``finished``)."""
        batch = finished[:]
        del finished[:]
        if batch:
            await asyncio.to_thread(self.queue.record, batch)
        return len(batch)

    @staticmethod
    async def _post_each(
        waiting: asyncio.Queue[Claim], sender: Sender, finished: list[tuple[Claim, AttemptResult]]
    ) -> None:
        while True:
            claim = await waiting.get()
            try:
                finished.append((claim, await sender.post(claim.outgoing)))
            except Exception as exc:
                # A defect of ours, not the receiver's: logged, recorded, retried like a failure.
                logger.exception("posting webhook delivery %s failed", claim.outgoing.delivery_id)
                failed = AttemptResult(
                    claim.outgoing.delivery_id, utcnow(), None, f"internal error: {exc}", 0, Outcome.RETRY
                )
                finished.append((claim, failed))
            finally:
                waiting.task_done()
