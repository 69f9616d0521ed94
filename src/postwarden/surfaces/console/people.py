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
from postwarden.policy import Permission, Role, allows
from postwarden.surfaces.console.base import PAGE_SIZE, Console, page_count, page_number
from postwarden.surfaces.routing import run_in_session
from postwarden.users.service import UserService, parse_role


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
                        "access": {server_id: member.access_on(server_id).value for server_id, _ in servers},
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
            invited=request.query_params.get("invited"),
            resent=request.query_params.get("resent"),
            revoked=request.query_params.get("revoked"),
        )

    async def invite(request: Request, actor: Actor) -> Response:
        fields = await console.form(request)
        if fields is None:
            return console.expired_form(request)
        emails = [email for email in re.split(r"[\s,;]+", fields.get("emails", "")) if email]
        given = NewInvitations(emails=emails, role=parse_role(fields.get("role", "")))
        account_id = actor.account_id or 0

        def work(session: Session) -> int:
            return len(invitations_of(session, actor).invite(account_id, given))

        invited = await run_in_session(runtime, work, write=True)
        return console.redirect(request, f"/users?invited={invited}")

    def invitation_action(verb: str) -> Any:
        async def act(request: Request, actor: Actor) -> Response:
            fields = await console.form(request)
            if fields is None:
                return console.expired_form(request)
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

    return [
        Route("/users", console.signed_in(users)),
        Route("/users/invite", console.signed_in(invite), methods=["POST"]),
        Route("/invitations/{invitation_id:int}/resend", invitation_action("resend"), methods=["POST"]),
        Route("/invitations/{invitation_id:int}/revoke", invitation_action("revoke"), methods=["POST"]),
    ]
