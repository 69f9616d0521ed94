"""The page a mailed invitation link opens: join with a new login, or with the password of the
login the address already has, and arrive signed in."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.errors import PostwardenError
from postwarden.identity import Actor, Via
from postwarden.invitations.service import InvitationPreview, InvitationService
from postwarden.surfaces.auth import context_of
from postwarden.surfaces.console.base import Console, status_of
from postwarden.surfaces.routing import run_in_session


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    async def accept(request: Request) -> Response:
        token: str = request.path_params["token"]
        service_context = context_of(request)

        def service(session: Session) -> InvitationService:
            invitee = Actor.invitee("invitee", service_context, via=Via.CONSOLE)
            return InvitationService(session, invitee, runtime, console.enqueue_mail)

        try:
            preview: InvitationPreview = await run_in_session(
                runtime, lambda session: service(session).preview(token), write=False
            )
        except PostwardenError as error:
            return console.render(
                request, "message.html", status=status_of(error), title="Invitation", message=error.message
            )
        shown: dict[str, Any] = {
            "title": "Invitation",
            "email": preview.invitation.email,
            "account_name": preview.account_name,
            "role": preview.invitation.role,
            "has_login": preview.has_login,
        }
        if request.method == "GET":
            return console.render(request, "invitation.html", **shown)
        fields = await console.form(request)
        if fields is None:
            return console.expired_form(request)
        password, name = fields.get("password", ""), fields.get("name", "").strip() or None

        def work(session: Session) -> str:
            return (
                service(session)
                .accept(token, password=password, name=name, context=service_context, via=Via.CONSOLE)
                .session_token
            )

        try:
            session_token = await run_in_session(runtime, work, write=True)
        except PostwardenError as error:
            return console.render(
                request, "invitation.html", status=status_of(error), error=error.message, name=name or "", **shown
            )
        return console.start_session(request, session_token)

    return [Route("/invitations/accept/{token}", accept, methods=["GET", "POST"])]
