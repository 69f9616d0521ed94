"""The signed-in person's own pages: two-factor authentication (where an account that requires
it sends those without) and moving between their accounts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.identity import Actor, Via
from postwarden.surfaces.auth import context_of
from postwarden.surfaces.console.base import Console
from postwarden.surfaces.routing import run_in_session
from postwarden.users.models import User
from postwarden.users.service import UserService
from postwarden.users.sign_in import SignInService
from postwarden.users.two_factor import TwoFactorService


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    async def two_factor(request: Request, actor: Actor) -> Response:
        """Shows whether it is on; when off, a new secret to scan and a code to confirm it."""
        account_id = actor.account_id or 0

        def work(session: Session) -> dict[str, Any]:
            user = session.get(User, actor.user_id or 0)
            if user is not None and user.totp_enabled_at is not None:
                return {"enabled": True}
            enrolment = TwoFactorService(session, actor, runtime).start_enrolment(account_id, reuse_pending=True)
            return {"enabled": False, "secret": enrolment.secret, "qr": enrolment.qr_data_uri}

        values = await run_in_session(runtime, work, write=True)
        return console.render(
            request,
            "two_factor_setup.html",
            title="Two-factor authentication",
            actor=actor,
            required=actor.two_factor_missing,
            disabled=request.query_params.get("disabled") == "1",
            **values,
        )

    @console.with_form
    async def confirm(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        account_id = actor.account_id or 0
        code = fields.get("code", "")

        def work(session: Session) -> list[str]:
            return TwoFactorService(session, actor, runtime).confirm_enrolment(account_id, code)

        codes = await run_in_session(runtime, work, write=True)
        return console.render(
            request, "recovery_codes.html", title="Recovery codes", actor=actor, codes=codes, fresh_two_factor=True
        )

    @console.with_form
    async def turn_off(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        account_id = actor.account_id or 0
        password = fields.get("password", "")
        await run_in_session(
            runtime, lambda session: TwoFactorService(session, actor, runtime).disable(account_id, password), write=True
        )
        return console.redirect(request, "/two-factor?disabled=1")

    async def accounts(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        profile = await run_in_session(
            runtime, lambda session: UserService(session, actor, runtime).profile(account_id), write=False
        )
        return console.render(
            request,
            "accounts.html",
            title="Your accounts",
            actor=actor,
            accounts=profile.accounts,
            current=account_id,
        )

    @console.with_form
    async def switch(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        target: int = request.path_params["account_id"]
        service_context = context_of(request)

        def work(session: Session) -> str:
            return SignInService(session, runtime, service_context, via=Via.CONSOLE).switch_account(actor, target)

        token = await run_in_session(runtime, work, write=True)
        return console.start_session(request, token)

    return [
        Route("/two-factor", console.signed_in(two_factor, without_two_factor=True)),
        Route("/two-factor", console.signed_in(confirm, without_two_factor=True), methods=["POST"]),
        Route("/two-factor/disable", console.signed_in(turn_off, without_two_factor=True), methods=["POST"]),
        Route("/accounts", console.signed_in(accounts, without_two_factor=True)),
        Route(
            "/accounts/{account_id:int}/switch",
            console.signed_in(switch, without_two_factor=True),
            methods=["POST"],
        ),
    ]
