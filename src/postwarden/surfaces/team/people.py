"""Members and invitations: ``/users`` and ``/invitations``, with the account token or a
person's bearer credential; the invitation link itself needs neither."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from postwarden.db import utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor, RequestContext
from postwarden.invitations.service import InvitationService, NewInvitations
from postwarden.policy import Permission, Role
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator, context_of
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.routing import (
    MAX_ID,
    entity_id,
    guarded_by,
    id_parameter,
    json_body,
    open_to_anyone,
    paging_parameters,
    parse_int,
    parse_page,
    parse_text,
    read_body,
    require_change,
    run_in_session,
)
from postwarden.surfaces.team.schemas import (
    AcceptInvitationRequest,
    EditServerAccessRequest,
    EditUserRequest,
    InviteRequest,
    render_invitation,
    render_member,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON
from postwarden.tasks import TaskQueue
from postwarden.users.service import ServerAccessChange, UserService, parse_access, parse_role

Result = TypeVar("Result")
RawId = Annotated[str, Path(include_in_schema=False)]
Raw = Annotated[str | None, Query(include_in_schema=False)]
USER_ID: dict[str, object] = {"parameters": [id_parameter("user_id", "The user's ID (ErrorCode 9014 if no member)")]}
INVITATION_ID: dict[str, object] = {
    "parameters": [id_parameter("invitation_id", "The invitation's ID (ErrorCode 9021 if none pending)")]
}
USER_FILTERS: list[dict[str, object]] = [
    *paging_parameters(),
    {"name": "role", "in": "query", "required": False, "schema": {"type": "string", "enum": [r.value for r in Role]}},
    {
        "name": "serverid",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    },
    {"name": "hastwofactor", "in": "query", "required": False, "schema": {"type": "boolean"}},
    {"name": "email", "in": "query", "required": False, "schema": {"type": "string"}},
]


def _user_id(raw: str) -> int:
    return entity_id(raw, NotFound(Reason.USER_NOT_FOUND, f"User {raw} is not a member of this account."))


def _invitation_id(raw: str) -> int:
    return entity_id(raw, NotFound(Reason.INVITATION_NOT_FOUND, f"Invitation {raw} was not found."))


def _flag(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidRequest(Reason.TEAM_QUERY_INVALID, f"The '{name}' query parameter must be true or false.")


def access_change(body: EditServerAccessRequest) -> ServerAccessChange:
    return ServerAccessChange(
        all_servers=parse_access(body.ApplyToAllServers) if body.ApplyToAllServers is not None else None,
        servers={server_id: parse_access(level) for server_id, level in body.levels().items()},
    )


def people_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Team: users and invitations"])
    enqueue = TaskQueue(runtime).enqueue_mail

    async def with_users(actor: Actor, work: Callable[[UserService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(UserService(session, actor, runtime)), write=write)

    async def with_invitations(actor: Actor, work: Callable[[InvitationService], Result], *, write: bool) -> Result:
        return await run_in_session(
            runtime, lambda session: work(InvitationService(session, actor, runtime, enqueue)), write=write
        )

    @router.get(
        "/users",
        summary="List the members you can see",
        openapi_extra={"parameters": USER_FILTERS, **ACCOUNT_OR_PERSON, **guarded_by(Permission.USERS_READ)},
    )
    async def list_users(request: Request) -> Response:
        actor = await auth.account_actor(request)
        query = request.query_params  # names already lower-cased, underscores dropped
        page_size, start = parse_page(query.get("count"), query.get("offset"), Reason.TEAM_QUERY_INVALID)
        role = query.get("role")
        wanted_role = parse_role(role) if role is not None else None
        raw_server = query.get("serverid")
        server_id = parse_int(raw_server, "serverid", Reason.TEAM_QUERY_INVALID, required=raw_server is not None)
        if server_id is not None and not 0 < server_id <= MAX_ID:
            raise InvalidRequest(Reason.TEAM_QUERY_INVALID, "The 'serverid' query parameter is not a server id.")
        two_factor = _flag(query.get("hastwofactor"), "hastwofactor")
        email = parse_text(query.get("email"), "email", Reason.TEAM_QUERY_INVALID)

        def work(users: UserService) -> dict[str, object]:
            page = users.list_members(
                actor.account_id or 0,
                count=page_size,
                offset=start,
                role=wanted_role,
                server_id=server_id,
                has_two_factor=two_factor,
                email=email,
            )
            return {"TotalCount": page.total, "Users": [render_member(member) for member in page.members]}

        return JSONBytesResponse(await with_users(actor, work, write=False))

    @router.get(
        "/users/{user_id}",
        summary="Get a member with their access on each server",
        openapi_extra={**USER_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.USERS_READ)},
    )
    async def get_user(request: Request, user_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _user_id(user_id)

        def work(users: UserService) -> dict[str, object]:
            account_id = actor.account_id or 0
            return render_member(users.get_member(account_id, target), users.servers_seen_by_caller(account_id))

        return JSONBytesResponse(await with_users(actor, work, write=False))

    @router.put(
        "/users/{user_id}",
        summary="Change a member's role",
        openapi_extra={
            **USER_ID,
            **json_body(EditUserRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.USERS_MANAGE),
        },
    )
    async def edit_user(request: Request, user_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _user_id(user_id)
        body = await read_body(request, EditUserRequest)
        require_change(body)

        def work(users: UserService) -> dict[str, object]:
            account_id = actor.account_id or 0
            role = parse_role(body.Role) if body.Role is not None else None
            member = users.set_role(account_id, target, role, servers_limited=body.ServersLimited)
            return render_member(member, users.servers_seen_by_caller(account_id))

        return JSONBytesResponse(await with_users(actor, work, write=True))

    @router.put(
        "/users/{user_id}/servers",
        summary="Set a member's access per server, or on all servers at once",
        openapi_extra={
            **USER_ID,
            **json_body(EditServerAccessRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.USERS_MANAGE),
        },
    )
    async def edit_user_servers(request: Request, user_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _user_id(user_id)
        change = access_change(require_change(await read_body(request, EditServerAccessRequest)))

        def work(users: UserService) -> dict[str, object]:
            account_id = actor.account_id or 0
            member = users.set_server_access(account_id, target, change)
            return render_member(member, users.servers_seen_by_caller(account_id))

        return JSONBytesResponse(await with_users(actor, work, write=True))

    @router.delete(
        "/users/{user_id}",
        summary="Remove a member (revokes their sessions and personal tokens in this account)",
        openapi_extra={**USER_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.USERS_MANAGE)},
    )
    async def remove_user(request: Request, user_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _user_id(user_id)
        member = await with_users(actor, lambda users: users.remove_member(actor.account_id or 0, target), write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"{member.user.email} was removed from the account."})

    @router.post(
        "/invitations",
        summary="Invite people by email, with one role and one server access set for all",
        openapi_extra={
            **json_body(InviteRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.USERS_MANAGE),
        },
    )
    async def invite(request: Request) -> Response:
        actor = await auth.account_actor(request)
        body = await read_body(request, InviteRequest)
        given = NewInvitations(
            emails=body.Emails,
            role=parse_role(body.Role),
            server_access={entry.ServerID: parse_access(entry.Access) for entry in body.Servers or []},
            servers_limited=bool(body.ServersLimited),
        )

        def work(invitations: InvitationService) -> dict[str, object]:
            now = utcnow()
            created = invitations.invite(actor.account_id or 0, given)
            return {"Invitations": [render_invitation(invitation, now) for invitation in created]}

        return JSONBytesResponse(await with_invitations(actor, work, write=True))

    @router.get(
        "/invitations",
        summary="List pending invitations",
        openapi_extra={"parameters": paging_parameters(), **ACCOUNT_OR_PERSON, **guarded_by(Permission.USERS_MANAGE)},
    )
    async def list_invitations(request: Request, count: Raw = None, offset: Raw = None) -> Response:
        actor = await auth.account_actor(request)
        page_size, start = parse_page(count, offset, Reason.TEAM_QUERY_INVALID)

        def work(invitations: InvitationService) -> dict[str, object]:
            now = utcnow()
            page = invitations.list_invitations(actor.account_id or 0, count=page_size, offset=start)
            return {"TotalCount": page.total, "Invitations": [render_invitation(i, now) for i in page.invitations]}

        return JSONBytesResponse(await with_invitations(actor, work, write=False))

    @router.post(
        "/invitations/{invitation_id}/resend",
        summary="Mail a new link (the previous one stops working)",
        openapi_extra={**INVITATION_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.USERS_MANAGE)},
    )
    async def resend_invitation(request: Request, invitation_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _invitation_id(invitation_id)

        def work(invitations: InvitationService) -> dict[str, object]:
            return render_invitation(invitations.resend(actor.account_id or 0, target), utcnow())

        return JSONBytesResponse(await with_invitations(actor, work, write=True))

    @router.delete(
        "/invitations/{invitation_id}",
        summary="Revoke a pending invitation",
        openapi_extra={**INVITATION_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.USERS_MANAGE)},
    )
    async def revoke_invitation(request: Request, invitation_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        target = _invitation_id(invitation_id)
        revoked = await with_invitations(
            actor, lambda invitations: invitations.revoke(actor.account_id or 0, target), write=True
        )
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"The invitation of {revoked.email} was revoked."})

    # The mailed link opens the console's page (links mailed before it existed come here and
    # are sent on); API clients POST the token here and get a signed-in session.

    def invitee_service(session: Session, context: RequestContext) -> InvitationService:
        return InvitationService(session, Actor.invitee("invitee", context), runtime, enqueue)

    @router.get("/invitations/accept/{token}", include_in_schema=False, openapi_extra=open_to_anyone("mailed link"))
    async def invitation_page(token: str) -> Response:
        return RedirectResponse(f"/console/invitations/accept/{quote(token, safe='')}", status_code=303)

    @router.post(
        "/invitations/accept/{token}",
        summary="Accept an invitation with the token of its mailed link",
        openapi_extra={
            "parameters": [{"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}],
            **json_body(AcceptInvitationRequest, required=True),
            **open_to_anyone("the mailed link is the credential"),
        },
    )
    async def accept_invitation(request: Request, token: Annotated[str, Path(include_in_schema=False)]) -> Response:
        context = context_of(request)
        body = await read_body(request, AcceptInvitationRequest)

        def work(session: Session) -> dict[str, object]:
            accepted = invitee_service(session, context).accept(
                token, password=body.Password, name=body.Name, context=context
            )
            return {
                "UserID": accepted.user.id,
                "AccountID": accepted.account_id,
                "SessionToken": accepted.session_token,
                "ExpiresAt": accepted.session.expires_at.isoformat(),
            }

        return JSONBytesResponse(await run_in_session(runtime, work, write=True))

    return router
