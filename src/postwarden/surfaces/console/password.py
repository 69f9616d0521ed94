"""Forgotten passwords, for people who are signed out: ask for a link by mail, then choose a
new password on the page it opens, then sign in (with the second factor, if any)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.errors import PostwardenError, Reason
from postwarden.identity import Via
from postwarden.surfaces.auth import context_of
from postwarden.surfaces.console.base import Console, status_of
from postwarden.surfaces.routing import run_in_session
from postwarden.users.password_reset import PasswordResetService
from postwarden.users.passwords import MIN_PASSWORD_LENGTH

#: Refusals that concern the link itself: the form gives way to a way of asking for a new one.
LINK_REFUSALS = {Reason.PASSWORD_RESET_LINK_INVALID, Reason.PASSWORD_RESET_LINK_EXPIRED}


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    def service(session: Session, request: Request) -> PasswordResetService:
        return PasswordResetService(session, runtime, context_of(request), console.enqueue_mail, via=Via.CONSOLE)

    def private(response: Response) -> Response:
        """The address holds the link's secret: no other site learns it as a referrer."""
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def forgot(request: Request) -> Response:
        if request.method == "GET":
            return console.render(
                request, "forgot_password.html", title="Forgot your password?", sent=request.query_params.get("sent")
            )
        fields = await console.form(request)
        if fields is None:
            return console.expired_form(request)
        email = fields.get("email", "")
        await run_in_session(runtime, lambda session: service(session, request).request(email), write=True)
        return console.redirect(request, "/forgot-password?sent=1")

    async def reset(request: Request) -> Response:
        token: str = request.path_params["token"]

        def form(status: int = 200, **values: Any) -> Response:
            return private(
                console.render(
                    request,
                    "reset_password.html",
                    status=status,
                    title="Choose a new password",
                    token=token,
                    min_length=MIN_PASSWORD_LENGTH,
                    **values,
                )
            )

        try:
            email = await run_in_session(runtime, lambda session: service(session, request).check(token), write=False)
        except PostwardenError as exc:
            return form(status_of(exc), refused=exc.message)
        if request.method == "GET":
            return form(email=email)
        fields = await console.form(request)
        if fields is None:
            return private(console.expired_form(request))
        password, repeated = fields.get("new_password", ""), fields.get("repeat_password", "")
        if password != repeated:
            return form(422, email=email, error="The two passwords differ. Type the same new password twice.")
        try:
            await run_in_session(runtime, lambda session: service(session, request).reset(token, password), write=True)
        except PostwardenError as exc:
            if exc.reason in LINK_REFUSALS:
                return form(status_of(exc), refused=exc.message)
            return form(status_of(exc), email=email, error=exc.message)
        return console.redirect(request, "/sign-in?reset=1")

    return [
        Route("/forgot-password", forgot, methods=["GET", "POST"]),
        Route("/reset-password/{token}", reset, methods=["GET", "POST"]),
    ]
