"""Webhook deliveries as their owners see them: sending a test event, reading the log.

A test event is written in the caller's transaction and handed to the background queue
after commit, so a rolled-back request posts nothing; the queue's worker does the posting
(``dispatcher.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.paging import check_page
from postwarden.policy import Permission
from postwarden.servers.models import Server
from postwarden.servers.service import reach_server
from postwarden.webhook_deliveries.models import WebhookDelivery, WebhookDeliveryAttempt
from postwarden.webhook_deliveries.payloads import RECORD_TYPES, EventSource, sample_event
from postwarden.webhooks.models import Webhook
from postwarden.webhooks.service import masked_url

DEFAULT_RECORD_TYPE: Final = "Delivery"
_RECORD_TYPES_ANY_CASE: Final = {kind.lower(): kind for kind in RECORD_TYPES}
_WAKE_REGISTERED: Final = "webhook_deliveries.wake_registered"


@dataclass(frozen=True)
class DeliveryRecord:
    delivery: WebhookDelivery
    #: In the order they were made.
    attempts: list[WebhookDeliveryAttempt]


@dataclass(frozen=True)
class DeliveryPage:
    total: int
    #: Newest first.
    deliveries: list[DeliveryRecord]


class WebhookDeliveryService:
    def __init__(self, session: Session, actor: Actor, wake_worker: Callable[[], None]) -> None:
        self.session = session
        self.actor = actor
        #: Tells the background queue that a delivery is due (called after commit).
        self.wake_worker = wake_worker

    def send_test(self, server_id: int, webhook_id: int, record_type: str | None = None) -> DeliveryRecord:
        """Queue a sample ``record_type`` event (Delivery by default) for the webhook's URL,
        whatever its triggers say: its owner asks for this one event to check the receiver."""
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_MANAGE)
        webhook = self._find(server, webhook_id)
        kind = _RECORD_TYPES_ANY_CASE.get((record_type or DEFAULT_RECORD_TYPE).lower())
        if kind is None:
            raise InvalidRequest(
                Reason.WEBHOOK_FIELD_INVALID,
                f"Invalid value provided for 'RecordType': {record_type!r}. Use one of {', '.join(RECORD_TYPES)}.",
            )
        source = EventSource(server_id=server.id, message_stream=webhook.message_stream, triggers=webhook.triggers)
        now = utcnow()
        delivery = WebhookDelivery(
            webhook_id=webhook.id,
            record_type=kind,
            payload=sample_event(kind, source, now),
            next_attempt_at=now,
            created_at=now,
        )
        self.session.add(delivery)
        self.session.flush()  # assigns delivery.id for the audit event
        audit.record(
            self.session,
            self.actor,
            AuditAction.WEBHOOK_TESTED,
            account_id=server.account_id,
            target_type="webhook",
            target_id=webhook.id,
            target_label=f"{webhook.message_stream} {masked_url(webhook.url)}"[:320],
            changes={"delivery": {"before": None, "after": {"id": delivery.id, "record_type": kind}}},
        )
        self._wake_after_commit()
        return DeliveryRecord(delivery, [])

    def list_deliveries(self, server_id: int, webhook_id: int, *, count: int, offset: int) -> DeliveryPage:
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_READ)
        check_page(count, offset, Reason.WEBHOOK_DELIVERY_QUERY_INVALID)
        webhook = self._find(server, webhook_id)
        total = self.session.scalar(select(func.count()).where(WebhookDelivery.webhook_id == webhook.id)) or 0
        deliveries = list(
            self.session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == webhook.id)
                .order_by(WebhookDelivery.id.desc())
                .limit(count)
                .offset(offset)
            )
        )
        attempts = self.session.scalars(
            select(WebhookDeliveryAttempt)
            .where(WebhookDeliveryAttempt.delivery_id.in_([delivery.id for delivery in deliveries]))
            .order_by(WebhookDeliveryAttempt.delivery_id, WebhookDeliveryAttempt.number, WebhookDeliveryAttempt.id)
        )
        by_delivery = {key: list(group) for key, group in groupby(attempts, key=lambda a: a.delivery_id)}
        return DeliveryPage(total, [DeliveryRecord(d, by_delivery.get(d.id, [])) for d in deliveries])

    def _wake_after_commit(self) -> None:
        """Once per transaction, however many deliveries it queues."""
        if not self.session.info.get(_WAKE_REGISTERED):
            self.session.info[_WAKE_REGISTERED] = True
            on_commit(self.session, self.wake_worker)

    def _find(self, server: Server, webhook_id: int) -> Webhook:
        webhook = self.session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.server_id == server.id))
        if webhook is None:
            raise NotFound(Reason.WEBHOOK_NOT_FOUND, f"The webhook for the provided 'ID' ({webhook_id}) was not found.")
        return webhook
