"""Webhooks: one server's, with its server token or an account-level credential and ``server_id``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.postmark.schemas import ActionResponse
from postwarden.surfaces.postmark.webhook_schemas import (
    STREAM_ID_SCHEMA,
    CreateWebhookRequest,
    EditWebhookRequest,
    WebhookListResponse,
    WebhookResponse,
    render_webhook,
)
from postwarden.surfaces.routing import (
    entity_id,
    guarded_by,
    id_parameter,
    json_body,
    parse_text,
    read_body,
    run_in_session,
)
from postwarden.surfaces.wire import on_server
from postwarden.webhooks.service import WebhookService

Result = TypeVar("Result")
# Parsed by parse_webhook_id (any other text is ErrorCode 1352); WEBHOOK_ID documents it.
WebhookId = Annotated[str, Path(include_in_schema=False)]
WEBHOOK_ID = id_parameter("webhook_id", "The webhook's ID (ErrorCode 1352 when it names no webhook of this server)")
STREAM_FILTER: dict[str, object] = {
    "name": "MessageStream",
    "in": "query",
    "required": False,
    "description": "Only this stream's webhooks (ErrorCode 1226 when the server has no such stream); "
    "all streams' when omitted",
    "schema": STREAM_ID_SCHEMA,
}


def webhooks_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Webhooks"])

    async def in_transaction(actor: Actor, work: Callable[[WebhookService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(WebhookService(session, actor, runtime)), write=write)

    @router.get(
        "/webhooks",
        response_model=WebhookListResponse,
        summary="List the server's webhooks",
        openapi_extra={**on_server(STREAM_FILTER), **guarded_by(Permission.WEBHOOKS_READ)},
    )
    async def list_webhooks(
        request: Request, messagestream: Annotated[str | None, Query(include_in_schema=False)] = None
    ) -> Response:
        actor, server_id = await auth.server_scope(request)
        stream = parse_text(messagestream, "MessageStream", Reason.STREAM_NOT_FOUND)
        views = await in_transaction(actor, lambda s: s.list_webhooks(server_id, stream), write=False)
        return JSONBytesResponse({"Webhooks": [render_webhook(view) for view in views]})

    @router.post(
        "/webhooks",
        response_model=WebhookResponse,
        summary="Create a webhook on one of the server's streams",
        description="`ID` must not be given (ErrorCode 1356). At most 10 webhooks per stream (1359).",
        openapi_extra={
            **json_body(CreateWebhookRequest, required=True),
            **on_server(),
            **guarded_by(Permission.WEBHOOKS_MANAGE),
        },
    )
    async def create_webhook(request: Request) -> Response:
        actor, server_id = await auth.server_scope(request)
        body = await read_body(request, CreateWebhookRequest)
        view = await in_transaction(actor, lambda s: s.create_webhook(server_id, body.to_fields()), write=True)
        return JSONBytesResponse(render_webhook(view))

    @router.get(
        "/webhooks/{webhook_id}",
        response_model=WebhookResponse,
        summary="Get a webhook",
        openapi_extra={**on_server(WEBHOOK_ID), **guarded_by(Permission.WEBHOOKS_READ)},
    )
    async def get_webhook(request: Request, webhook_id: WebhookId) -> Response:
        actor, server_id = await auth.server_scope(request)
        target = parse_webhook_id(webhook_id)
        view = await in_transaction(actor, lambda s: s.get_webhook(server_id, target), write=False)
        return JSONBytesResponse(render_webhook(view))

    @router.put(
        "/webhooks/{webhook_id}",
        response_model=WebhookResponse,
        summary="Edit a webhook (partial)",
        openapi_extra={
            **json_body(EditWebhookRequest, required=True),
            **on_server(WEBHOOK_ID),
            **guarded_by(Permission.WEBHOOKS_MANAGE),
        },
    )
    async def edit_webhook(request: Request, webhook_id: WebhookId) -> Response:
        actor, server_id = await auth.server_scope(request)
        target = parse_webhook_id(webhook_id)
        body = await read_body(request, EditWebhookRequest)
        view = await in_transaction(actor, lambda s: s.update_webhook(server_id, target, body.to_fields()), write=True)
        return JSONBytesResponse(render_webhook(view))

    @router.delete(
        "/webhooks/{webhook_id}",
        response_model=ActionResponse,
        summary="Delete a webhook",
        openapi_extra={**on_server(WEBHOOK_ID), **guarded_by(Permission.WEBHOOKS_MANAGE)},
    )
    async def delete_webhook(request: Request, webhook_id: WebhookId) -> Response:
        actor, server_id = await auth.server_scope(request)
        target = parse_webhook_id(webhook_id)
        deleted = await in_transaction(actor, lambda s: s.delete_webhook(server_id, target), write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"Webhook {deleted} removed."})

    @router.post(
        "/webhooks/{webhook_id}/rotate-secret",
        response_model=WebhookResponse,
        summary="Replace the secret that signs the webhook's deliveries (beyond Postmark)",
        description="Returns the webhook with its new `SigningSecret`; the old one is kept nowhere.",
        openapi_extra={**on_server(WEBHOOK_ID), **guarded_by(Permission.WEBHOOKS_MANAGE)},
    )
    async def rotate_secret(request: Request, webhook_id: WebhookId) -> Response:
        actor, server_id = await auth.server_scope(request)
        target = parse_webhook_id(webhook_id)
        view = await in_transaction(actor, lambda s: s.rotate_secret(server_id, target), write=True)
        return JSONBytesResponse(render_webhook(view))

    return router


def parse_webhook_id(raw: str) -> int:
    """A webhook id in the path; any other text names no webhook (1352)."""
    return entity_id(raw, NotFound(Reason.WEBHOOK_NOT_FOUND, "The webhook for the provided 'ID' was not found."))
