"""Wire shapes of webhook deliveries (beyond Postmark): a test event, and the delivery log."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, StrictStr

from postwarden.surfaces.wire import PostmarkModel, any_case, iso
from postwarden.webhook_deliveries.models import WebhookDeliveryAttempt
from postwarden.webhook_deliveries.payloads import RECORD_TYPES
from postwarden.webhook_deliveries.service import DeliveryRecord


class WebhookTestRequest(PostmarkModel):
    RecordType: StrictStr | None = Field(
        default=None,
        json_schema_extra={
            **any_case(*RECORD_TYPES),
            "description": "The sample event to post; Delivery when omitted (ErrorCode 1361 for another value)",
        },
    )


class AttemptResponse(PostmarkModel):
    Number: int
    AttemptedAt: str
    #: None when no answer came (refused, timed out, unreachable).
    HttpStatus: int | None
    Error: str
    DurationMilliseconds: int
    RetriesRemaining: int


class DeliveryResponse(PostmarkModel):
    ID: int
    WebhookID: int
    RecordType: str
    Status: str = Field(description="Pending, Delivered, Failed (gave up or refused) or Dropped (4xx, not retried)")
    CreatedAt: str
    NextAttemptAt: str | None
    CompletedAt: str | None
    Payload: dict[str, Any]
    Attempts: list[AttemptResponse]


class DeliveryListResponse(PostmarkModel):
    TotalCount: int
    Deliveries: list[DeliveryResponse]


def _render_attempt(attempt: WebhookDeliveryAttempt) -> dict[str, Any]:
    return {
        "Number": attempt.number,
        "AttemptedAt": attempt.attempted_at.isoformat(),
        "HttpStatus": attempt.http_status,
        "Error": attempt.error,
        "DurationMilliseconds": attempt.duration_ms,
        "RetriesRemaining": attempt.retries_remaining,
    }


def render_delivery(record: DeliveryRecord) -> dict[str, Any]:
    delivery = record.delivery
    return {
        "ID": delivery.id,
        "WebhookID": delivery.webhook_id,
        "RecordType": delivery.record_type,
        "Status": delivery.status,
        "CreatedAt": delivery.created_at.isoformat(),
        "NextAttemptAt": iso(delivery.next_attempt_at),
        "CompletedAt": iso(delivery.completed_at),
        "Payload": json.loads(delivery.payload),
        "Attempts": [_render_attempt(attempt) for attempt in record.attempts],
    }
