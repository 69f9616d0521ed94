"""What every console page shares: rendering, cookies, CSRF, who is signed in.

Every form works without JavaScript and goes through the same services as the API. A
signed-in person holds a session (the ``pws_`` token of ``POST /sessions``) in an HttpOnly,
SameSite=Lax cookie, Secure when the request came over TLS. Forms carry a CSRF token that
must match a cookie of its own (double submit); SameSite keeps other sites' forms from
sending the session at all, the token covers older browsers and same-site pages.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from postwarden.errors import PostwardenError, Reason
from postwarden.identity import Actor, Via
from postwarden.policy import Permission, allows
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator, context_of
from postwarden.surfaces.errors import POSTMARK_CODES
from postwarden.surfaces.routing import run_in_session
from postwarden.tasks import TaskQueue
from postwarden.users.sign_in import SignInService, password_confirmed_lately

SESSION_COOKIE: Final = "pw_session"
CSRF_COOKIE: Final = "pw_csrf"
CSRF_FIELD: Final = "csrf_token"
#: A sign-in waiting for its second factor: the user id, signed, for this long.
PENDING_COOKIE: Final = "pw_pending"
PENDING_SECONDS: Final = 300
PAGE_SIZE: Final = 50
#: The field in which a sensitive action's form carries the password typed again.
PASSWORD_FIELD: Final = "current_password"
TEMPLATES: Final = Path(__file__).parent / "templates"

Page = Callable[[Request], Awaitable[Response]]
#: A page for signed-in people, before ``Console.signed_in`` makes it an endpoint.
SignedInPage = Callable[[Request, Actor], Awaitable[Response]]
#: The handler of a signed-in form, given its posted fields (see ``Console.with_form``).
FormHandler = Callable[[Request, Actor, dict[str, str]], Awaitable[Response]]


class Console:
    def __init__(self, runtime: Runtime, auth: Authenticator) -> None:
        self.runtime = runtime
        self.auth = auth
        self.enqueue_mail = TaskQueue(runtime).enqueue_mail
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False
        )
        self.templates.filters["shown"] = shown

    # -- rendering and cookies ------------------------------------------------------------

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        actor = values.get("actor")
        reads_audit = isinstance(actor, Actor) and allows(actor, Permission.AUDIT_READ, account_id=actor.account_id)
        body = self.templates.get_template(template).render(
            csrf_token=token,
            path=request.url.path,
            root=request.scope.get("root_path", ""),
            reads_audit=reads_audit,
            **values,
        )
        response = HTMLResponse(body, status_code=status)
        response.headers["Cache-Control"] = "no-store"
        if request.cookies.get(CSRF_COOKIE) != token:
            self.set_cookie(request, response, CSRF_COOKIE, token, max_age=None)
        return response

    def set_cookie(self, request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.cookie_path(request),
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

    def cookie_path(self, request: Request) -> str:
        return request.scope.get("root_path", "") or "/"

    def redirect(self, request: Request, to: str) -> RedirectResponse:
        return RedirectResponse(request.scope.get("root_path", "") + to, status_code=303)

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted form, or None when its CSRF token does not match the cookie's."""
        form = await request.form()
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        cookie = request.cookies.get(CSRF_COOKIE, "")
        given = fields.pop(CSRF_FIELD, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
            return None
        return fields

    def expired_form(self, request: Request) -> Response:
        return self.render(
            request,
            "message.html",
            status=403,
            title="Form expired",
            message="This form expired or came from another page. Reload the page and try again.",
        )

    def with_form(self, handler: FormHandler) -> SignedInPage:
        """A signed-in page that takes a form: ``handler(request, actor, fields)`` runs with the
        posted fields once their CSRF token matched the cookie's; else the "Form expired" page."""

        async def page(request: Request, actor: Actor) -> Response:
            fields = await self.form(request)
            if fields is None:
                return self.expired_form(request)
            return await handler(request, actor, fields)

        return page

    # -- who is signed in -----------------------------------------------------------------

    async def actor(self, request: Request) -> Actor | None:
        token = request.cookies.get(SESSION_COOKIE)
        return await self.auth.console_actor(request, token) if token else None

    def signed_in(
        self,
        page: SignedInPage,
        *,
        sensitive: str | None = None,
        always_ask: bool = False,
        without_two_factor: bool = False,
    ) -> Page:
        """A page for signed-in people.

        ``sensitive`` names what a POST does ("reveal this server's tokens"): it asks for the
        password first unless it was typed in the last 15 minutes (``always_ask``: every time).
        Where the account requires two-factor authentication, someone without it is sent to
        set it up, except on the pages marked ``without_two_factor``."""

        async def endpoint(request: Request) -> Response:
            actor = await self.actor(request)
            if actor is None:
                return self.redirect(request, "/sign-in")
            if actor.two_factor_missing and not without_two_factor:
                return self.redirect(request, "/two-factor")
            try:
                if sensitive is not None and request.method == "POST":
                    asked = await self.ask_password(request, actor, sensitive, always=always_ask)
                    if asked is not None:
                        return asked
                return await page(request, actor)
            except PostwardenError as exc:
                return self.refusal(request, exc, actor)

        return endpoint

    async def ask_password(self, request: Request, actor: Actor, purpose: str, *, always: bool) -> Response | None:
        """None when the action may go on; else the page asking for the password, which posts
        the same form again with it."""
        fields = await self.form(request)
        if fields is None:
            return self.expired_form(request)
        typed = fields.pop(PASSWORD_FIELD, None)
        error, status = None, 200
        if typed is not None:
            service_context = context_of(request)

            def confirm(session: Session) -> PostwardenError | None:
                return SignInService(session, self.runtime, service_context, via=Via.CONSOLE).confirm_password(
                    actor, typed
                )

            refusal = await run_in_session(self.runtime, confirm, write=True)
            if refusal is None:
                return None
            error, status = refusal.message, status_of(refusal)
        elif not always and await run_in_session(
            self.runtime, lambda session: password_confirmed_lately(session, actor), write=False
        ):
            return None
        return self.render(
            request,
            "confirm_password.html",
            status=status,
            title="Confirm your password",
            actor=actor,
            purpose=purpose,
            action=str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
            fields=fields,
            error=error,
        )

    def refusal(self, request: Request, error: PostwardenError, actor: Actor | None) -> Response:
        """A page saying why the service refused, with the status the API would answer."""
        return self.render(
            request, "message.html", status=status_of(error), title="Not possible", message=error.message, actor=actor
        )

    def pending(self, user_id: int) -> str:
        expires = int(time.time()) + PENDING_SECONDS
        return f"{user_id}.{expires}.{self.runtime.keyring.digest(f'console pending sign-in {user_id} {expires}')}"

    def pending_user(self, request: Request) -> int | None:
        user_id, _, rest = request.cookies.get(PENDING_COOKIE, "").partition(".")
        expires, _, mac = rest.partition(".")
        if not (user_id.isdigit() and expires.isdigit()) or int(expires) < time.time():
            return None
        expected = self.runtime.keyring.digest(f"console pending sign-in {user_id} {expires}")
        return int(user_id) if hmac.compare_digest(expected, mac) else None

    def start_session(self, request: Request, token: str) -> Response:
        response = self.redirect(request, "/servers")
        lifetime = self.runtime.settings.session_lifetime_hours * 3600
        self.set_cookie(request, response, SESSION_COOKIE, token, max_age=lifetime)
        response.delete_cookie(PENDING_COOKIE, path=self.cookie_path(request))
        return response


def shown(value: object) -> str:
    """A recorded value as the API writes it: JSON's true, false and objects; a dash for none."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def status_of(error: PostwardenError | None) -> int:
    """The HTTP status the API answers the same error with."""
    return POSTMARK_CODES[error.reason][0] if error is not None else 400


def sign_in_error(refusal: PostwardenError | None) -> str:
    if refusal is not None and refusal.reason is Reason.LOGIN_THROTTLED:
        return refusal.message
    return "Sign-in failed: wrong email, password or code."


def page_number(request: Request) -> int:
    """The ``page`` query parameter, 1 when absent or not a number."""
    try:
        return max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return 1


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))
