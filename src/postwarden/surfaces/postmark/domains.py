"""Domains: ``/domains`` with the account token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from postwarden.domains.service import DomainService
from postwarden.errors import NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.postmark.domain_schemas import (
    CreateDomainRequest,
    DkimRotationResponse,
    DomainListResponse,
    DomainResponse,
    EditDomainRequest,
    SpfResponse,
    render_domain,
    render_domain_item,
    render_rotation,
    render_spf,
)
from postwarden.surfaces.postmark.schemas import ActionResponse
from postwarden.surfaces.routing import (
    entity_id,
    guarded_by,
    id_parameter,
    json_body,
    paging_parameters,
    parse_page,
    read_body,
    run_in_session,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON

Result = TypeVar("Result")
DomainId = Annotated[str, Path(include_in_schema=False)]
DOMAIN_ID: dict[str, object] = {
    "parameters": [
        id_parameter("domain_id", "The domain's ID (ErrorCode 510 when it names no domain of this account)")
    ],
    **ACCOUNT_OR_PERSON,
}
PAGING: dict[str, object] = {"parameters": paging_parameters(), **ACCOUNT_OR_PERSON}


def domains_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Domains"])
    settings = runtime.settings

    async def in_transaction(actor: Actor, work: Callable[[DomainService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(DomainService(session, actor, runtime)), write=write)

    @router.get(
        "/domains",
        response_model=DomainListResponse,
        summary="List domains",
        openapi_extra={**PAGING, **guarded_by(Permission.DOMAINS_READ)},
    )
    async def list_domains(
        request: Request,
        count: Annotated[str | None, Query(include_in_schema=False)] = None,
        offset: Annotated[str | None, Query(include_in_schema=False)] = None,
    ) -> Response:
        actor = await auth.account_actor(request)
        page_size, start = parse_page(count, offset, Reason.DOMAIN_QUERY_INVALID)
        page = await in_transaction(
            actor, lambda s: s.list_domains(actor.account_id or 0, count=page_size, offset=start), write=False
        )
        return JSONBytesResponse({"TotalCount": page.total, "Domains": [render_domain_item(d) for d in page.domains]})

    @router.post(
        "/domains",
        response_model=DomainResponse,
        summary="Create a domain",
        openapi_extra={
            **json_body(CreateDomainRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.DOMAINS_MANAGE),
        },
    )
    async def create_domain(request: Request) -> Response:
        actor = await auth.account_actor(request)
        body = await read_body(request, CreateDomainRequest)
        state = await in_transaction(
            actor, lambda s: s.create_domain(actor.account_id or 0, body.Name, body.ReturnPathDomain), write=True
        )
        return JSONBytesResponse(render_domain(state, settings))

    @router.get(
        "/domains/{domain_id}",
        response_model=DomainResponse,
        summary="Get a domain",
        openapi_extra={**DOMAIN_ID, **guarded_by(Permission.DOMAINS_READ)},
    )
    async def get_domain(request: Request, domain_id: DomainId) -> Response:
        actor = await auth.account_actor(request)
        target = _domain_id(domain_id)
        state = await in_transaction(actor, lambda s: s.get_domain(actor.account_id or 0, target), write=False)
        return JSONBytesResponse(render_domain(state, settings))

    @router.put(
        "/domains/{domain_id}",
        response_model=DomainResponse,
        summary="Edit a domain's Return-Path",
        openapi_extra={
            **json_body(EditDomainRequest, required=False),
            **DOMAIN_ID,
            **guarded_by(Permission.DOMAINS_MANAGE),
        },
    )
    async def edit_domain(request: Request, domain_id: DomainId) -> Response:
        actor = await auth.account_actor(request)
        target = _domain_id(domain_id)
        body = await read_body(request, EditDomainRequest)
        state = await in_transaction(
            actor, lambda s: s.update_domain(actor.account_id or 0, target, body.ReturnPathDomain), write=True
        )
        return JSONBytesResponse(render_domain(state, settings))

    @router.delete(
        "/domains/{domain_id}",
        response_model=ActionResponse,
        summary="Delete a domain",
        openapi_extra={**DOMAIN_ID, **guarded_by(Permission.DOMAINS_MANAGE)},
    )
    async def delete_domain(request: Request, domain_id: DomainId) -> Response:
        actor = await auth.account_actor(request)
        target = _domain_id(domain_id)
        name = await in_transaction(actor, lambda s: s.delete_domain(actor.account_id or 0, target), write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"Domain {name} removed."})

    @router.put(
        "/domains/{domain_id}/verifyDkim",
        response_model=DomainResponse,
        summary="Check the DKIM record in DNS",
        openapi_extra={**DOMAIN_ID, **guarded_by(Permission.DOMAINS_MANAGE)},
    )
    async def verify_dkim(request: Request, domain_id: DomainId) -> Response:
        actor = await auth.account_actor(request)
        target = _domain_id(domain_id)
        state, check = await in_transaction(actor, lambda s: s.verify_dkim(actor.account_id or 0, target), write=True)
        return JSONBytesResponse(render_domain(state, settings, check))

    @router.put(
        "/domains/{domain_id}/verifyReturnPath",
        response_model=DomainResponse,
        summary="Check the Return-Path CNAME in DNS",
        openapi_extra={**DOMAIN_ID, **guarded_by(Permission.DOMAINS_MANAGE)},
    )
    async def verify_return_path(request: Request, domain_id: DomainId) -> Response:
        actor = await auth.account_actor(request)
        target = _domain_id(domain_id)
        state, check = await in_transaction(
            actor, lambda s: s.verify_return_path(actor.account_id or 0, target), write=True
        )
        return JSONBytesResponse(render_domain(state, settings, check))

    @router.post(
        "/domains/{domain_id}/verifyspf",
        response_model=SpfResponse,
        summary="Check the SPF record in DNS (deprecated by Postmark)",
        openapi_extra={**DOMAIN_ID, **guarded_by(Permission.DOMAINS_MANAGE)},
    )
    async def verify_spf(request: Request, domain_id: DomainId) -> Response:
        actor = await auth.account_actor(request)
        target = _domain_id(domain_id)
        state, check = await in_transaction(actor, lambda s: s.verify_spf(actor.account_id or 0, target), write=True)
        return JSONBytesResponse(render_spf(state, settings, check))

    @router.post(
        "/domains/{domain_id}/rotatedkim",
        response_model=DkimRotationResponse,
        summary="Start a DKIM key rotation",
        openapi_extra={**DOMAIN_ID, **guarded_by(Permission.DOMAINS_MANAGE)},
    )
    async def rotate_dkim(request: Request, domain_id: DomainId) -> Response:
        actor = await auth.account_actor(request)
        target = _domain_id(domain_id)
        state = await in_transaction(actor, lambda s: s.rotate_dkim(actor.account_id or 0, target), write=True)
        return JSONBytesResponse(render_rotation(state))

    return router


def _domain_id(raw: str) -> int:
    return entity_id(raw, NotFound(Reason.DOMAIN_NOT_FOUND, "This domain was not found."))
