"""Sender signatures: ``/senders`` with the account token, and the confirmation page
the mailed link opens (no token: the link itself is the proof)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from postwarden.errors import NotFound, PostwardenError, Reason
from postwarden.identity import Actor, Credential, Via
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.senders.service import SenderService
from postwarden.surfaces.auth import Authenticator, context_of
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.postmark.schemas import ActionResponse
from postwarden.surfaces.postmark.sender_schemas import (
    CreateSenderRequest,
    EditSenderRequest,
    SenderListResponse,
    SenderResponse,
    render_sender,
    render_sender_item,
)
from postwarden.surfaces.routing import (
    entity_id,
    guarded_by,
    id_parameter,
    json_body,
    open_to_anyone,
    paging_parameters,
    parse_page,
    read_body,
    run_in_session,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON
from postwarden.tasks import TaskQueue

Result = TypeVar("Result")
SenderId = Annotated[str, Path(include_in_schema=False)]
SENDER_ID: dict[str, object] = {
    "parameters": [
        id_parameter("sender_id", "The signature's ID (ErrorCode 501 when it names no signature of this account)")
    ],
    **ACCOUNT_OR_PERSON,
}
PAGING: dict[str, object] = {"parameters": paging_parameters(), **ACCOUNT_OR_PERSON}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""


def senders_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Sender signatures"])
    settings = runtime.settings
    enqueue = TaskQueue(runtime).enqueue_mail

    async def in_transaction(actor: Actor, work: Callable[[SenderService], Result], *, write: bool) -> Result:
        return await run_in_session(
            runtime, lambda session: work(SenderService(session, actor, runtime, enqueue)), write=write
        )

    @router.get(
        "/senders",
        response_model=SenderListResponse,
        summary="List sender signatures",
        openapi_extra={**PAGING, **guarded_by(Permission.SENDERS_READ)},
    )
    async def list_senders(
        request: Request,
        count: Annotated[str | None, Query(include_in_schema=False)] = None,
        offset: Annotated[str | None, Query(include_in_schema=False)] = None,
    ) -> Response:
        actor = await auth.account_actor(request)
        page_size, start = parse_page(count, offset, Reason.SENDER_QUERY_INVALID)
        page = await in_transaction(
            actor, lambda s: s.list_senders(actor.account_id or 0, count=page_size, offset=start), write=False
        )
        return JSONBytesResponse(
            {"TotalCount": page.total, "SenderSignatures": [render_sender_item(s) for s in page.signatures]}
        )

    @router.post(
        "/senders",
        response_model=SenderResponse,
        summary="Create a sender signature and mail its confirmation link",
        openapi_extra={
            **json_body(CreateSenderRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.SENDERS_MANAGE),
        },
    )
    async def create_sender(request: Request) -> Response:
        actor = await auth.account_actor(request)
        body = await read_body(request, CreateSenderRequest)
        state = await in_transaction(
            actor,
            lambda s: s.create_sender(
                actor.account_id or 0,
                from_email=body.FromEmail,
                name=body.Name,
                reply_to_email=body.ReplyToEmail,
                return_path_domain=body.ReturnPathDomain,
                personal_note=body.ConfirmationPersonalNote,
            ),
            write=True,
        )
        return JSONBytesResponse(render_sender(state, settings))

    @router.get(
        "/senders/confirm/{token}",
        include_in_schema=False,
        openapi_extra=open_to_anyone("the mailed link is the credential"),
    )
    async def confirm_sender(request: Request, token: str) -> Response:
        actor = Actor(credential=Credential.SYSTEM, label="confirmation link", via=Via.API, context=context_of(request))
        try:
            email = await in_transaction(actor, lambda s: s.confirm(token).email, write=True)
        except PostwardenError as error:
            status = 410 if error.reason is Reason.SENDER_CONFIRMATION_EXPIRED else 404
            text = "This link has expired or was already used. Ask for a new confirmation email."
            return HTMLResponse(_PAGE.format(title="Link not valid", text=text), status_code=status)
        text = f"{escape(email)} is confirmed and may now be used as a sender."
        return HTMLResponse(_PAGE.format(title="Sender confirmed", text=text))

    @router.get(
        "/senders/{sender_id}",
        response_model=SenderResponse,
        summary="Get a sender signature",
        openapi_extra={**SENDER_ID, **guarded_by(Permission.SENDERS_READ)},
    )
    async def get_sender(request: Request, sender_id: SenderId) -> Response:
        actor = await auth.account_actor(request)
        target = _sender_id(sender_id)
        state = await in_transaction(actor, lambda s: s.get_sender(actor.account_id or 0, target), write=False)
        return JSONBytesResponse(render_sender(state, settings))

    @router.put(
        "/senders/{sender_id}",
        response_model=SenderResponse,
        summary="Edit a sender signature",
        openapi_extra={
            **json_body(EditSenderRequest, required=False),
            **SENDER_ID,
            **guarded_by(Permission.SENDERS_MANAGE),
        },
    )
    async def edit_sender(request: Request, sender_id: SenderId) -> Response:
        actor = await auth.account_actor(request)
        target = _sender_id(sender_id)
        body = await read_body(request, EditSenderRequest)
        state = await in_transaction(
            actor,
            lambda s: s.update_sender(
                actor.account_id or 0,
                target,
                name=body.Name,
                reply_to_email=body.ReplyToEmail,
                return_path_domain=body.ReturnPathDomain,
                personal_note=body.ConfirmationPersonalNote,
            ),
            write=True,
        )
        return JSONBytesResponse(render_sender(state, settings))

    @router.delete(
        "/senders/{sender_id}",
        response_model=ActionResponse,
        summary="Delete a sender signature",
        openapi_extra={**SENDER_ID, **guarded_by(Permission.SENDERS_MANAGE)},
    )
    async def delete_sender(request: Request, sender_id: SenderId) -> Response:
        actor = await auth.account_actor(request)
        target = _sender_id(sender_id)
        email = await in_transaction(actor, lambda s: s.delete_sender(actor.account_id or 0, target), write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"Signature {email} removed."})

    @router.post(
        "/senders/{sender_id}/resend",
        response_model=ActionResponse,
        summary="Mail the confirmation link again",
        openapi_extra={**SENDER_ID, **guarded_by(Permission.SENDERS_MANAGE)},
    )
    async def resend_confirmation(request: Request, sender_id: SenderId) -> Response:
        actor = await auth.account_actor(request)
        target = _sender_id(sender_id)
        email = await in_transaction(actor, lambda s: s.resend_confirmation(actor.account_id or 0, target), write=True)
        return JSONBytesResponse(
            {"ErrorCode": 0, "Message": f"Confirmation email for Sender Signature {email} was re-sent."}
        )

    @router.post(
        "/senders/{sender_id}/verifyspf",
        response_model=SenderResponse,
        summary="Check the SPF record in DNS (deprecated by Postmark)",
        openapi_extra={**SENDER_ID, **guarded_by(Permission.SENDERS_MANAGE)},
    )
    async def verify_spf(request: Request, sender_id: SenderId) -> Response:
        actor = await auth.account_actor(request)
        target = _sender_id(sender_id)
        state, check = await in_transaction(actor, lambda s: s.verify_spf(actor.account_id or 0, target), write=True)
        return JSONBytesResponse(render_sender(state, settings, check))

    @router.post(
        "/senders/{sender_id}/requestnewdkim",
        response_model=ActionResponse,
        summary="Start a DKIM key rotation of the signature's domain (deprecated by Postmark)",
        openapi_extra={**SENDER_ID, **guarded_by(Permission.SENDERS_MANAGE)},
    )
    async def request_new_dkim(request: Request, sender_id: SenderId) -> Response:
        actor = await auth.account_actor(request)
        target = _sender_id(sender_id)
        state = await in_transaction(actor, lambda s: s.request_new_dkim(actor.account_id or 0, target), write=True)
        return JSONBytesResponse(
            {
                "ErrorCode": 0,
                "Message": f"A new DKIM key was requested for {state.signature.domain}: "
                "publish the DKIMPendingHost record, then verify it.",
            }
        )

    return router


def _sender_id(raw: str) -> int:
    return entity_id(raw, NotFound(Reason.SENDER_NOT_FOUND, "This Sender Signature was not found."))
