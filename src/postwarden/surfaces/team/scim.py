"""What the Owner and Admins set up for SCIM provisioning: ``/scim-tokens`` for their
identity provider, and ``/scim-groups``: what each group the provider keeps grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import NotFound, Reason
from postwarden.groups.service import GroupService
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.scim.schemas import GROUP_ID_PREFIX
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
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
from postwarden.surfaces.team.schemas import (
    GroupAccessRequest,
    NewScimTokenRequest,
    render_group,
    render_scim_token,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON
from postwarden.tokens.scim import ScimTokenService
from postwarden.users.service import parse_access, parse_role

RawId = Annotated[str, Path(include_in_schema=False)]
TOKEN_ID: dict[str, object] = {"parameters": [id_parameter("token_id", "The SCIM token's ID (ErrorCode 9041 if none)")]}
GROUP_ID: dict[str, object] = {"parameters": [id_parameter("group_id", "The group's ID (ErrorCode 9043 if none)")]}


def scim_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Team: SCIM provisioning"])

    @router.post(
        "/scim-tokens",
        summary="Create a SCIM token for your identity provider (shown only now)",
        openapi_extra={
            **json_body(NewScimTokenRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.SCIM_MANAGE),
        },
    )
    async def create_token(request: Request) -> Response:
        actor = await auth.account_actor(request)
        body = await read_body(request, NewScimTokenRequest)

        def work(session: Session) -> dict[str, object]:
            token, plaintext = ScimTokenService(session, actor, runtime).create_token(actor.account_id or 0, body.Name)
            return render_scim_token(token, plaintext)

        return JSONBytesResponse(await run_in_session(runtime, work, write=True))

    @router.get(
        "/scim-tokens",
        summary="List the account's SCIM tokens (never their secrets)",
        openapi_extra={**ACCOUNT_OR_PERSON, **guarded_by(Permission.SCIM_MANAGE)},
    )
    async def list_tokens(request: Request) -> Response:
        actor = await auth.account_actor(request)

        def work(session: Session) -> dict[str, object]:
            tokens = ScimTokenService(session, actor, runtime).list_tokens(actor.account_id or 0)
            return {"TotalCount": len(tokens), "ScimTokens": [render_scim_token(token) for token in tokens]}

        return JSONBytesResponse(await run_in_session(runtime, work, write=False))

    @router.delete(
        "/scim-tokens/{token_id}",
        summary="Revoke a SCIM token: the identity provider holding it is refused at once",
        openapi_extra={**TOKEN_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.SCIM_MANAGE)},
    )
    async def revoke_token(request: Request, token_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = entity_id(token_id, NotFound(Reason.SCIM_TOKEN_NOT_FOUND, f"SCIM token {token_id} was not found."))

        def work(session: Session) -> str:
            return ScimTokenService(session, actor, runtime).revoke_token(actor.account_id or 0, target).name

        name = await run_in_session(runtime, work, write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"SCIM token '{name}' was revoked."})

    @router.get(
        "/scim-groups",
        summary="List the groups your identity provider keeps, with what each grants",
        openapi_extra={"parameters": paging_parameters(), **ACCOUNT_OR_PERSON, **guarded_by(Permission.SCIM_MANAGE)},
    )
    async def list_groups(request: Request) -> Response:
        actor = await auth.account_actor(request)
        count, offset = parse_page(
            request.query_params.get("count"), request.query_params.get("offset"), Reason.TEAM_QUERY_INVALID
        )

        def work(session: Session) -> dict[str, object]:
            page = GroupService(session, actor, runtime).list_groups(actor.account_id or 0, count=count, offset=offset)
            return {"TotalCount": page.total, "Groups": [render_group(grant) for grant in page.groups]}

        return JSONBytesResponse(await run_in_session(runtime, work, write=False))

    @router.get(
        "/scim-groups/{group_id}",
        summary="One group and what it grants",
        openapi_extra={**GROUP_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.SCIM_MANAGE)},
    )
    async def get_group(request: Request, group_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _group_id(group_id)

        def work(session: Session) -> dict[str, object]:
            return render_group(GroupService(session, actor, runtime).get_group(actor.account_id or 0, target))

        return JSONBytesResponse(await run_in_session(runtime, work, write=False))

    @router.put(
        "/scim-groups/{group_id}",
        summary="Set what a group grants its members: an account role and access per server",
        openapi_extra={
            **GROUP_ID,
            **json_body(GroupAccessRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.SCIM_MANAGE),
        },
    )
    async def set_group_access(request: Request, group_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _group_id(group_id)
        body = await read_body(request, GroupAccessRequest)
        role = parse_role(body.Role) if body.Role is not None else None
        servers = {server_id: parse_access(level) for server_id, level in body.levels().items()}

        def work(session: Session) -> dict[str, object]:
            grant = GroupService(session, actor, runtime).set_access(
                actor.account_id or 0, target, role=role, servers=servers
            )
            return render_group(grant)

        return JSONBytesResponse(await run_in_session(runtime, work, write=True))

    return router


def _group_id(raw: str) -> int:
    return entity_id(raw.removeprefix(GROUP_ID_PREFIX), NotFound(Reason.GROUP_NOT_FOUND, f"Group {raw} was not found."))
