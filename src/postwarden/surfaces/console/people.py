"""The users page: members with their access per server, invitations."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.db import utcnow
from postwarden.identity import Actor
from postwarden.invitations.service import InvitationService, NewInvitations
from postwarden.policy import (
    ROLES_WITH_SERVER_LIMIT,
    ROLES_WITH_SERVER_LIST,
    Permission,
    Role,
    ServerAccess,
    allows,
)
from postwarden.surfaces.console.base import PAGE_SIZE, Console, page_count, page_number
from postwarden.surfaces.routing import run_in_session
from postwarden.users.service import Member, ServerAccessChange, UserService, parse_access, parse_role

#: How the console names each access level, as Postmark's Users page does.
ACCESS_LABELS = {
    ServerAccess.FULL.value: "Full access",
    ServerAccess.VIEW.value: "View only",
    ServerAccess.NONE.value: "No access",
}


#: One cell of the Users table's access columns per level, written as it is (``|safe``):
#: a page of 50 members and 100 servers has 5,000 of them.
ACCESS_CELLS = {value: f"<td>{label}</td>" for value, label in ACCESS_LABELS.items()}


def access_cells(member: Member, servers: list[tuple[int, str]]) -> str:
    """The member's access cells, one per server in the order of the columns: HTML made of
    ``ACCESS_CELLS`` only, no text of anyone's.

    On every server granted nothing one by one or through a group, a member's access is the
    same (what the role reaches), so only those few servers are worked out one by one; and
    the cells are joined here rather than looped over in the template. So the page stays
    about as fast at 1,000 members as at 10 (``bench/console.py``)."""
    default = ACCESS_CELLS[member.default_access.value]
    granted = member.listed_access.keys() | member.group_access.keys()
    return "".join(
        ACCESS_CELLS[member.access_on(server_id).value] if server_id in granted else default for server_id, _ in servers
    )


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    def invitations_of(session: Session, actor: Actor) -> InvitationService:
        return InvitationService(session, actor, runtime, console.enqueue_mail)

    async def users(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        page = page_number(request)
        may_manage = allows(actor, Permission.USERS_MANAGE, account_id=account_id)

        def work(session: Session) -> dict[str, Any]:
            service = UserService(session, actor, runtime)
            listed = service.list_members(account_id, count=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
            servers = service.servers_seen_by_caller(account_id)
            invitations = []
            if may_manage:
                now = utcnow()
                pending = invitations_of(session, actor).list_invitations(account_id, count=500, offset=0)
                invitations = [
                    {"id": i.id, "email": i.email, "role": i.role, "expired": i.expires_at <= now}
                    for i in pending.invitations
                ]
            return {
                "total": listed.total,
                "servers": servers,
                "invitations": invitations,
                "members": [
                    {
                        "id": member.user.id,
                        "email": member.user.email,
                        "name": member.user.name,
                        "role": member.role.value,
                        "suspended": member.membership.suspended_at is not None,
                        "two_factor": member.user.totp_enabled_at is not None,
                        "access_cells": access_cells(member, servers),
                    }
                    for member in listed.members
                ],
            }

        listing = await run_in_session(runtime, work, write=False)
        return console.render(
            request,
            "users.html",
            title="Users",
            actor=actor,
            page=page,
            pages=page_count(listing["total"]),
            **listing,
            may_manage=may_manage,
            owner_role=Role.OWNER.value,
            admin_role=Role.ADMIN.value,
            default_role=Role.MEMBER.value,
            invitable_roles=[role.value for role in Role if role is not Role.OWNER],
            access_labels=ACCESS_LABELS,
            no_access=ServerAccess.NONE.value,
            invited=request.query_params.get("invited"),
            resent=request.query_params.get("resent"),
            revoked=request.query_params.get("revoked"),
            removed=request.query_params.get("removed"),
        )

    @console.with_form
    async def invite(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        emails = [email for email in re.split(r"[\s,;]+", fields.get("emails", "")) if email]
        access = {
            int(name.removeprefix("server-")): parse_access(value)
            for name, value in fields.items()
            if name.removeprefix("server-").isdigit() and name.startswith("server-")
        }
        access = {server_id: level for server_id, level in access.items() if level is not ServerAccess.NONE}
        given = NewInvitations(
            emails=emails,
            role=parse_role(fields.get("role", "")),
            server_access=access,
            servers_limited=fields.get("limited") == "on",
        )
        account_id = actor.account_id or 0

        def work(session: Session) -> int:
            return len(invitations_of(session, actor).invite(account_id, given))

        invited = await run_in_session(runtime, work, write=True)
        return console.redirect(request, f"/users?invited={invited}")

    def invitation_action(verb: str) -> Any:
        @console.with_form
        async def act(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
            invitation_id: int = request.path_params["invitation_id"]
            account_id = actor.account_id or 0

            def work(session: Session) -> str:
                service = invitations_of(session, actor)
                invitation = (service.resend if verb == "resend" else service.revoke)(account_id, invitation_id)
                return invitation.email

            email = await run_in_session(runtime, work, write=True)
            done = "resent" if verb == "resend" else "revoked"
            return console.redirect(request, f"/users?{urlencode({done: email})}")

        return console.signed_in(act)

    async def member_page(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        user_id: int = request.path_params["user_id"]

        def work(session: Session) -> tuple[Member, list[tuple[int, str]]]:
            service = UserService(session, actor, runtime)
            return service.get_member(account_id, user_id), service.servers_seen_by_caller(account_id)

        member, servers = await run_in_session(runtime, work, write=False)
        role = member.role
        return console.render(
            request,
            "member.html",
            title=member.user.email,
            actor=actor,
            member={
                "id": member.user.id,
                "email": member.user.email,
                "name": member.user.name,
                "role": role.value,
                "suspended": member.membership.suspended_at is not None,
                "two_factor": member.user.totp_enabled_at is not None,
                "limited": member.membership.servers_limited,
                "access": {server_id: member.access_on(server_id).value for server_id, _ in servers},
                "listed": role in ROLES_WITH_SERVER_LIST
                and (role not in ROLES_WITH_SERVER_LIMIT or member.membership.servers_limited),
                "may_limit": role in ROLES_WITH_SERVER_LIMIT,
                "is_owner": role is Role.OWNER,
                "is_self": member.user.id == actor.user_id,
            },
            servers=servers,
            may_manage=allows(actor, Permission.USERS_MANAGE, account_id=account_id),
            may_make_owner=allows(actor, Permission.OWNERSHIP_TRANSFER, account_id=account_id)
            and role is Role.ADMIN
            and member.user.id != actor.user_id,
            roles=[choice.value for choice in Role if choice is not Role.OWNER],
            admin_role=Role.ADMIN.value,
            access_labels=ACCESS_LABELS,
            done=request.query_params.get("done"),
        )

    def member_change(change: Any, done: str) -> Any:
        """A form about one member: ``change(service, account_id, user_id, fields)`` does it."""

        @console.with_form
        async def act(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
            account_id = actor.account_id or 0
            user_id: int = request.path_params["user_id"]

            def work(session: Session) -> None:
                change(UserService(session, actor, runtime), account_id, user_id, fields)

            await run_in_session(runtime, work, write=True)
            return console.redirect(request, done.format(user_id=user_id))

        return act

    def change_role(service: UserService, account_id: int, user_id: int, fields: dict[str, str]) -> None:
        role = parse_role(fields.get("role", ""))
        service.set_role(
            account_id,
            user_id,
            role,
            servers_limited=fields.get("limited") == "on" if role in ROLES_WITH_SERVER_LIMIT else None,
        )

    def change_access(service: UserService, account_id: int, user_id: int, fields: dict[str, str]) -> None:
        every = fields.get("all_servers")
        servers = {
            int(name.removeprefix("server-")): parse_access(value)
            for name, value in fields.items()
            if name.startswith("server-") and name.removeprefix("server-").isdigit()
        }
        service.set_server_access(
            account_id,
            user_id,
            ServerAccessChange(all_servers=parse_access(every) if every else None, servers={} if every else servers),
        )

    def make_owner(service: UserService, account_id: int, user_id: int, fields: dict[str, str]) -> None:
        service.transfer_ownership(account_id, user_id)

    def remove(service: UserService, account_id: int, user_id: int, fields: dict[str, str]) -> None:
        service.remove_member(account_id, user_id)

    async def confirm_make_owner(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        user_id: int = request.path_params["user_id"]
        member = await run_in_session(
            runtime, lambda session: UserService(session, actor, runtime).get_member(account_id, user_id), write=False
        )
        return console.render(
            request,
            "make_owner.html",
            title="Make Owner",
            actor=actor,
            member={"id": member.user.id, "email": member.user.email},
            admin_role=Role.ADMIN.value,
        )

    return [
        Route("/users", console.signed_in(users)),
        Route("/users/{user_id:int}", console.signed_in(member_page)),
        Route(
            "/users/{user_id:int}/role",
            console.signed_in(
                member_change(change_role, "/users/{user_id}?done=role"), sensitive="change this user's role"
            ),
            methods=["POST"],
        ),
        Route(
            "/users/{user_id:int}/servers",
            console.signed_in(
                member_change(change_access, "/users/{user_id}?done=servers"),
                sensitive="change this user's access to servers",
            ),
            methods=["POST"],
        ),
        Route("/users/{user_id:int}/make-owner", console.signed_in(confirm_make_owner)),
        Route(
            "/users/{user_id:int}/make-owner",
            console.signed_in(
                member_change(make_owner, "/users/{user_id}?done=owner"), sensitive="make this user the Owner"
            ),
            methods=["POST"],
        ),
        Route(
            "/users/{user_id:int}/delete",
            console.signed_in(member_change(remove, "/users?removed=1"), sensitive="delete this user", always_ask=True),
            methods=["POST"],
        ),
        Route("/users/invite", console.signed_in(invite), methods=["POST"]),
        Route("/invitations/{invitation_id:int}/resend", invitation_action("resend"), methods=["POST"]),
        Route("/invitations/{invitation_id:int}/revoke", invitation_action("revoke"), methods=["POST"]),
    ]
