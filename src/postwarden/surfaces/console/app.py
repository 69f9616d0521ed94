"""The web console: server-rendered pages under ``/console`` for people.

Every form works without JavaScript and goes through the same services as the API. A
signed-in person holds a session (the ``pws_`` token of ``POST /sessions``) in an HttpOnly,
SameSite=Lax cookie, Secure when the request came over TLS. Forms carry a CSRF token that
must match a cookie of its own (double submit); SameSite keeps other sites' forms from
sending the session at all, the token covers older browsers and same-site pages.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from postwarden.audit_log.export import csv_lines, event_document, jsonl_lines
from postwarden.audit_log.service import AuditLogService, EventFilters, check_action, known_actions
from postwarden.db import utcnow
from postwarden.errors import PostwardenError, Reason
from postwarden.identity import Actor, Via
from postwarden.invitations.service import InvitationService, NewInvitations
from postwarden.policy import Permission, Role, allows
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerService
from postwarden.surfaces.auth import Authenticator, context_of
from postwarden.surfaces.errors import POSTMARK_CODES
from postwarden.surfaces.routing import run_in_session
from postwarden.tasks import TaskQueue
from postwarden.users.review import AccessReviewService, ReviewCriteria
from postwarden.users.service import UserService, parse_role
from postwarden.users.sign_in import SignInService, sign_out

SESSION_COOKIE: Final = "pw_session"
CSRF_COOKIE: Final = "pw_csrf"
CSRF_FIELD: Final = "csrf_token"
#: A sign-in waiting for its second factor: the user id, signed, for this long.
PENDING_COOKIE: Final = "pw_pending"
PENDING_SECONDS: Final = 300
PAGE_SIZE: Final = 50
TEMPLATES: Final = Path(__file__).parent / "templates"

Page = Callable[[Request], Awaitable[Response]]


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
            self._cookie(request, response, CSRF_COOKIE, token, max_age=None)
        return response

    def _cookie(self, request: Request, response: Response, name: str, value: str, *, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=request.scope.get("root_path", "") or "/",
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )

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

    # -- who is signed in -----------------------------------------------------------------

    async def actor(self, request: Request) -> Actor | None:
        token = request.cookies.get(SESSION_COOKIE)
        return await self.auth.console_actor(request, token) if token else None

    def signed_in(self, page: Callable[[Request, Actor], Awaitable[Response]]) -> Page:
        async def endpoint(request: Request) -> Response:
            actor = await self.actor(request)
            if actor is None:
                return self.redirect(request, "/sign-in")
            try:
                return await page(request, actor)
            except PostwardenError as exc:
                return self.render(
                    request, "message.html", status=_status(exc), title="Not possible", message=exc.message, actor=actor
                )

        return endpoint

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
        self._cookie(request, response, SESSION_COOKIE, token, max_age=lifetime)
        response.delete_cookie(PENDING_COOKIE, path=request.scope.get("root_path", "") or "/")
        return response

    # -- pages ----------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return self.redirect(request, "/servers" if await self.actor(request) else "/sign-in")

    async def sign_in(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "sign_in.html", title="Sign in")
        fields = await self.form(request)
        if fields is None:
            return self.expired_form(request)
        email, password = fields.get("email", ""), fields.get("password", "")
        service_context = context_of(request)

        def work(session: Session) -> tuple[str | None, int | None, PostwardenError | None]:
            outcome = SignInService(session, self.runtime, service_context, via=Via.CONSOLE).sign_in(email, password)
            if outcome.awaiting_second_factor is not None:
                return None, outcome.awaiting_second_factor, None
            return outcome.session_token, None, outcome.refusal

        token, waiting_user, refusal = await run_in_session(self.runtime, work, write=True)
        if waiting_user is not None:
            response = self.redirect(request, "/sign-in/two-factor")
            self._cookie(request, response, PENDING_COOKIE, self.pending(waiting_user), max_age=PENDING_SECONDS)
            return response
        if token is None:
            return self.render(
                request,
                "sign_in.html",
                status=_status(refusal),
                title="Sign in",
                email=email,
                error=_sign_in_error(refusal),
            )
        return self.start_session(request, token)

    async def two_factor(self, request: Request) -> Response:
        user_id = self.pending_user(request)
        if user_id is None:
            return self.redirect(request, "/sign-in")
        if request.method == "GET":
            return self.render(request, "two_factor.html", title="Two-factor code")
        fields = await self.form(request)
        if fields is None:
            return self.expired_form(request)
        code = fields.get("code", "").strip() or None
        recovery = fields.get("recovery_code", "").strip() or None
        service_context = context_of(request)

        def work(session: Session) -> tuple[str | None, PostwardenError | None]:
            outcome = SignInService(session, self.runtime, service_context, via=Via.CONSOLE).finish_two_factor(
                user_id, code=code, recovery_code=recovery
            )
            return outcome.session_token, outcome.refusal

        token, refusal = await run_in_session(self.runtime, work, write=True)
        if token is None:
            return self.render(
                request,
                "two_factor.html",
                status=_status(refusal),
                title="Two-factor code",
                error=_sign_in_error(refusal),
            )
        return self.start_session(request, token)

    async def sign_out(self, request: Request) -> Response:
        actor = await self.actor(request)
        fields = await self.form(request)
        if fields is None:
            return self.expired_form(request)
        if actor is not None:
            await run_in_session(self.runtime, lambda session: sign_out(session, self.runtime, actor), write=True)
        response = self.redirect(request, "/sign-in")
        response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path", "") or "/")
        return response

    async def servers(self, request: Request, actor: Actor) -> Response:
        query = request.query_params.get("q", "").strip()
        account_id = actor.account_id or 0

        def work(session: Session) -> list[dict[str, Any]]:
            service = ServerService(session, actor, self.runtime)
            page = service.list_servers(account_id, count=500, offset=0, name=query or None)
            loaded = service.load_servers(account_id, page.server_ids)
            return sorted(
                ({"id": entry.server.id, "name": entry.server.name, "color": entry.server.color} for entry in loaded),
                key=lambda server: (server["name"].casefold(), server["id"]),
            )

        found = await run_in_session(self.runtime, work, write=False)
        return self.render(request, "servers.html", title="Servers", actor=actor, servers=found, query=query)

    async def users(self, request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        try:
            page_number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page_number = 1

        def work(session: Session) -> dict[str, Any]:
            service = UserService(session, actor, self.runtime)
            listed = service.list_members(account_id, count=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE)
            servers = service.servers_seen_by_caller(account_id)
            return {
                "total": listed.total,
                "servers": servers,
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

        listing = await run_in_session(self.runtime, work, write=False)
        may_manage = allows(actor, Permission.USERS_MANAGE, account_id=account_id)
        invitations: list[dict[str, Any]] = []
        if may_manage:

            def pending(session: Session) -> list[dict[str, Any]]:
                found = InvitationService(session, actor, self.runtime, self.enqueue_mail).list_invitations(
                    account_id, count=500, offset=0
                )
                now = utcnow()
                return [
                    {"id": i.id, "email": i.email, "role": i.role, "expired": i.expires_at <= now}
                    for i in found.invitations
                ]

            invitations = await run_in_session(self.runtime, pending, write=False)
        pages = max(1, -(-listing["total"] // PAGE_SIZE))
        return self.render(
            request,
            "users.html",
            title="Users",
            actor=actor,
            page=page_number,
            pages=pages,
            **listing,
            may_manage=may_manage,
            invitations=invitations,
            owner_role=Role.OWNER.value,
            admin_role=Role.ADMIN.value,
            default_role=Role.MEMBER.value,
            invitable_roles=[role.value for role in Role if role is not Role.OWNER],
            invited=request.query_params.get("invited"),
            resent=request.query_params.get("resent"),
            revoked=request.query_params.get("revoked"),
        )

    async def audit_log(self, request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        query = request.query_params
        filters = EventFilters(
            action=query.get("action") or None,
            actor=query.get("actor", "").strip() or None,
            via=query.get("via") or None,
        )
        try:
            page_number = max(1, int(query.get("page", "1")))
        except ValueError:
            page_number = 1

        def work(session: Session) -> tuple[int, list[dict[str, Any]]]:
            if filters.action is not None:
                check_action(filters.action)
            total, rows = AuditLogService(session, actor).list_events(
                account_id, filters, count=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE
            )
            return total, [event_document(row) for row in rows]

        total, events = await run_in_session(self.runtime, work, write=False)
        kept = urlencode({key: value for key, value in query.items() if key != "page" and value})
        return self.render(
            request,
            "audit_log.html",
            title="Audit log",
            actor=actor,
            events=events,
            total=total,
            page=page_number,
            pages=max(1, -(-total // PAGE_SIZE)),
            filters=filters,
            kept=kept,
            actions=known_actions(),
            vias=[member.value for member in Via],
        )

    async def audit_export(self, request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        chosen = request.query_params.get("format", "csv")
        render_lines = csv_lines if chosen == "csv" else jsonl_lines
        action = request.query_params.get("action") or None
        filters = EventFilters(
            action=check_action(action) if action else None,
            actor=request.query_params.get("actor", "").strip() or None,
            via=request.query_params.get("via") or None,
        )
        await run_in_session(
            self.runtime, lambda session: AuditLogService(session, actor).authorize_export(account_id), write=False
        )

        def body() -> Iterator[bytes]:
            with self.runtime.db.session_scope(write=False) as session:
                for line in render_lines(AuditLogService(session, actor).stream_events(account_id, filters)):
                    yield line.encode()

        extension, media_type = ("csv", "text/csv") if chosen == "csv" else ("jsonl", "application/x-ndjson")
        return StreamingResponse(
            body(),
            media_type=f"{media_type}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-events-{account_id}.{extension}"'},
        )

    async def access_review(self, request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        try:
            page_number = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            page_number = 1

        def work(session: Session) -> tuple[int, list[dict[str, Any]]]:
            reviewed = AccessReviewService(session, actor).review(
                account_id, ReviewCriteria(), count=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE
            )
            return reviewed.total, [
                {
                    "email": entry.member.user.email,
                    "role": entry.member.role.value,
                    "suspended": entry.member.membership.suspended_at is not None,
                    "servers": [(name, level.value) for _, name, level in entry.servers],
                    "last_login": entry.member.user.last_login_at,
                    "last_token_use": entry.last_token_use_at,
                    "flags": [flag.value for flag in entry.flags],
                }
                for entry in reviewed.members
            ]

        total, members = await run_in_session(self.runtime, work, write=False)
        return self.render(
            request,
            "access_review.html",
            title="Access review",
            actor=actor,
            members=members,
            total=total,
            page=page_number,
            pages=max(1, -(-total // PAGE_SIZE)),
        )

    async def invite(self, request: Request, actor: Actor) -> Response:
        fields = await self.form(request)
        if fields is None:
            return self.expired_form(request)
        emails = [email for email in re.split(r"[\s,;]+", fields.get("emails", "")) if email]
        given = NewInvitations(emails=emails, role=parse_role(fields.get("role", "")))
        account_id = actor.account_id or 0

        def work(session: Session) -> int:
            return len(InvitationService(session, actor, self.runtime, self.enqueue_mail).invite(account_id, given))

        invited = await run_in_session(self.runtime, work, write=True)
        return self.redirect(request, f"/users?invited={invited}")

    async def resend_invitation(self, request: Request, actor: Actor) -> Response:
        return await self._invitation_action(request, actor, "resend")

    async def revoke_invitation(self, request: Request, actor: Actor) -> Response:
        return await self._invitation_action(request, actor, "revoke")

    async def _invitation_action(self, request: Request, actor: Actor, verb: str) -> Response:
        fields = await self.form(request)
        if fields is None:
            return self.expired_form(request)
        invitation_id: int = request.path_params["invitation_id"]
        account_id = actor.account_id or 0

        def work(session: Session) -> str:
            service = InvitationService(session, actor, self.runtime, self.enqueue_mail)
            invitation = (service.resend if verb == "resend" else service.revoke)(account_id, invitation_id)
            return invitation.email

        email = await run_in_session(self.runtime, work, write=True)
        done = "resent" if verb == "resend" else "revoked"
        return self.redirect(request, f"/users?{urlencode({done: email})}")


def shown(value: object) -> str:
    """A recorded value as the API writes it: JSON's true, false and objects; a dash for none."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _status(error: PostwardenError | None) -> int:
    """The HTTP status the API answers the same error with."""
    return POSTMARK_CODES[error.reason][0] if error is not None else 400


def _sign_in_error(refusal: PostwardenError | None) -> str:
    if refusal is not None and refusal.reason is Reason.LOGIN_THROTTLED:
        return refusal.message
    return "Sign-in failed: wrong email, password or code."


def console_app(runtime: Runtime, auth: Authenticator) -> Starlette:
    console = Console(runtime, auth)
    return Starlette(
        routes=[
            Route("/", console.home),
            Route("/sign-in", console.sign_in, methods=["GET", "POST"]),
            Route("/sign-in/two-factor", console.two_factor, methods=["GET", "POST"]),
            Route("/sign-out", console.sign_out, methods=["POST"]),
            Route("/servers", console.signed_in(console.servers)),
            Route("/users", console.signed_in(console.users)),
            Route("/users/invite", console.signed_in(console.invite), methods=["POST"]),
            Route(
                "/invitations/{invitation_id:int}/resend",
                console.signed_in(console.resend_invitation),
                methods=["POST"],
            ),
            Route(
                "/invitations/{invitation_id:int}/revoke",
                console.signed_in(console.revoke_invitation),
                methods=["POST"],
            ),
            Route("/access-review", console.signed_in(console.access_review)),
            Route("/audit-log", console.signed_in(console.audit_log)),
            Route("/audit-log/export", console.signed_in(console.audit_export)),
        ]
    )
