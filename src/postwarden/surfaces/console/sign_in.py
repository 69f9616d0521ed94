"""Signing in (password, then a second factor when the user has one) and out."""

from __future__ import annotations

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.errors import PostwardenError
from postwarden.identity import Via
from postwarden.surfaces.auth import context_of
from postwarden.surfaces.console.base import (
    PENDING_COOKIE,
    PENDING_SECONDS,
    SESSION_COOKIE,
    Console,
    sign_in_error,
    status_of,
)
from postwarden.surfaces.routing import run_in_session
from postwarden.users.sign_in import SignInService, sign_out


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    async def home(request: Request) -> Response:
        return console.redirect(request, "/servers" if await console.actor(request) else "/sign-in")

    async def sign_in(request: Request) -> Response:
        if request.method == "GET":
            return console.render(
                request, "sign_in.html", title="Sign in", reset=request.query_params.get("reset") == "1"
            )
        fields = await console.form(request)
        if fields is None:
            return console.expired_form(request)
        email, password = fields.get("email", ""), fields.get("password", "")
        service_context = context_of(request)

        def work(session: Session) -> tuple[str | None, int | None, PostwardenError | None]:
            outcome = SignInService(session, runtime, service_context, via=Via.CONSOLE).sign_in(email, password)
            if outcome.awaiting_second_factor is not None:
                return None, outcome.awaiting_second_factor, None
            return outcome.session_token, None, outcome.refusal

        token, waiting_user, refusal = await run_in_session(runtime, work, write=True)
        if waiting_user is not None:
            response = console.redirect(request, "/sign-in/two-factor")
            pending = console.pending(waiting_user)
            console.set_cookie(request, response, PENDING_COOKIE, pending, max_age=PENDING_SECONDS)
            return response
        if token is None:
            return console.render(
                request,
                "sign_in.html",
                status=status_of(refusal),
                title="Sign in",
                email=email,
                error=sign_in_error(refusal),
            )
        return console.start_session(request, token)

    async def two_factor(request: Request) -> Response:
        user_id = console.pending_user(request)
        if user_id is None:
            return console.redirect(request, "/sign-in")
        if request.method == "GET":
            return console.render(request, "two_factor.html", title="Two-factor code")
        fields = await console.form(request)
        if fields is None:
            return console.expired_form(request)
        code = fields.get("code", "").strip() or None
        recovery = fields.get("recovery_code", "").strip() or None
        service_context = context_of(request)

        def work(session: Session) -> tuple[str | None, PostwardenError | None]:
            outcome = SignInService(session, runtime, service_context, via=Via.CONSOLE).finish_two_factor(
                user_id, code=code, recovery_code=recovery
            )
            return outcome.session_token, outcome.refusal

        token, refusal = await run_in_session(runtime, work, write=True)
        if token is None:
            return console.render(
                request,
                "two_factor.html",
                status=status_of(refusal),
                title="Two-factor code",
                error=sign_in_error(refusal),
            )
        return console.start_session(request, token)

    async def end_session(request: Request) -> Response:
        actor = await console.actor(request)
        fields = await console.form(request)
        if fields is None:
            return console.expired_form(request)
        if actor is not None:
            await run_in_session(runtime, lambda session: sign_out(session, runtime, actor), write=True)
        response = console.redirect(request, "/sign-in")
        response.delete_cookie(SESSION_COOKIE, path=console.cookie_path(request))
        return response

    return [
        Route("/", home),
        Route("/sign-in", sign_in, methods=["GET", "POST"]),
        Route("/sign-in/two-factor", two_factor, methods=["GET", "POST"]),
        Route("/sign-out", end_session, methods=["POST"]),
    ]
