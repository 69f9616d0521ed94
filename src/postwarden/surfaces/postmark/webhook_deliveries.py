"""Webhook deliveries: one server's, with its server token or an account-level credential and ``server_id``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import Reason
from postwarden.identity import Actor
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.postmark.webhook_delivery_schemas import (
    DeliveryListResponse,
    DeliveryResponse,
    WebhookTestRequest,
    render_delivery,
)
from postwarden.surfaces.postmark.webhooks import WEBHOOK_ID, WebhookId, parse_webhook_id
from postwarden.surfaces.routing import (
    guarded_by,
    json_body,
    paging_parameters,
    parse_page,
    read_body,
    run_in_session,
)
from postwarden.surfaces.wire import on_server
from postwarden.tasks import TaskQueue
from postwarden.webhook_deliveries.service import WebhookDeliveryService

Result = TypeVar("Result")


def webhook_deliveries_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Webhook deliveries"])
    wake_worker = TaskQueue(runtime).wake_webhooks

    async def in_transaction(actor: Actor, work: Callable[[WebhookDeliveryService], Result], *, write: bool) -> Result:
        return await run_in_session(
            runtime, lambda session: work(WebhookDeliveryService(session, actor, wake_worker)), write=write
        )

    @router.post(
        "/webhooks/{webhook_id}/test",
        response_model=DeliveryResponse,
        summary="Post a sample event to the webhook's URL, through the delivery queue (beyond Postmark)",
        description="Answers the queued delivery (`Status` Pending); the background worker posts it, signed, "
        "with retries, and `GET /webhooks/{webhook_id}/deliveries` shows every attempt.",
        openapi_extra={
            **json_body(WebhookTestRequest, required=False),
            **on_server(WEBHOOK_ID),
            **guarded_by(Permission.WEBHOOKS_MANAGE),
        },
    )
    async def test_webhook(request: Request, webhook_id: WebhookId) -> Response:
        actor, server_id = await auth.server_scope(request)
        target = parse_webhook_id(webhook_id)
        body = await read_body(request, WebhookTestRequest)
        record = await in_transaction(actor, lambda s: s.send_test(server_id, target, body.RecordType), write=True)
        return JSONBytesResponse(render_delivery(record))

    @router.get(
        "/webhooks/{webhook_id}/deliveries",
        response_model=DeliveryListResponse,
        summary="The webhook's delivery log, newest first, with every attempt (beyond Postmark)",
        openapi_extra={
            **on_server(WEBHOOK_ID, *paging_parameters()),
            **guarded_by(Permission.WEBHOOKS_READ),
        },
    )
    async def list_deliveries(
        request: Request,
        webhook_id: WebhookId,
        count: Annotated[str | None, Query(include_in_schema=False)] = None,
        offset: Annotated[str | None, Query(include_in_schema=False)] = None,
    ) -> Response:
        actor, server_id = await auth.server_scope(request)
        target = parse_webhook_id(webhook_id)
        page_size, start = parse_page(count, offset, Reason.WEBHOOK_DELIVERY_QUERY_INVALID)
        page = await in_transaction(
            actor, lambda s: s.list_deliveries(server_id, target, count=page_size, offset=start), write=False
        )
        return JSONBytesResponse(
            {"TotalCount": page.total, "Deliveries": [render_delivery(record) for record in page.deliveries]}
        )

    return router
