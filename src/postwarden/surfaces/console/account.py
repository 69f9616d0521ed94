"""The account page (name, Require 2FA, sending status, account and SCIM tokens, what SCIM
groups grant) and everyone's own personal tokens.

A secret is shown only in the answer to the POST that made or revealed it, never in a URL,
and never again after that page (account tokens excepted: they can be revealed again, each
time an audit event)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.accounts.service import AccountService, AccountSettings
from postwarden.db import utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.groups.service import GroupService
from postwarden.identity import Actor
from postwarden.policy import GROUP_ROLES, Permission, Role, ServerAccess, allows
from postwarden.surfaces.console.base import Console, SignedInPage
from postwarden.surfaces.console.people import ACCESS_LABELS
from postwarden.surfaces.routing import run_in_session
from postwarden.tokens.personal import NewPersonalToken, PersonalTokenService
from postwarden.tokens.scim import ScimTokenService
from postwarden.tokens.service import TokenService
from postwarden.users.service import UserService, parse_access, parse_role

#: The longest expiry the form offers for a personal token: ten years.
MAX_EXPIRY_DAYS: Final = 3650
#: Groups listed on the account page; the team API pages through more.
GROUPS_SHOWN: Final = 500
#: Form fields naming the permissions and servers a new personal token is narrowed to.
SCOPE_FIELD: Final = "scope:"
SERVER_FIELD: Final = "server-"
#: The form's choice for a group that grants no account role.
NO_ROLE: Final = "none"


@dataclass(frozen=True)
class TokenKind:
    """SCIM tokens and personal tokens alike: shown once, when created; revoked after a page
    that asks, back on the page that lists them."""

    #: How a sentence names one in its middle: "personal token" (``title`` starts one with it).
    noun: str
    service: type[ScimTokenService | PersonalTokenService]
    not_found: Reason
    #: Where they are created, and under it each one's revocation: ``<path>/<id>/revoke``.
    path: str
    #: The page that lists them, with what its link is called.
    listed_on: str
    back_label: str
    #: The revocation page's question: "Revoke <whose> <noun> “name”?".
    whose: str
    consequence: str

    @property
    def title(self) -> str:
        return self.noun[:1].upper() + self.noun[1:]


SCIM_TOKENS: Final = TokenKind(
    noun="SCIM token",
    service=ScimTokenService,
    not_found=Reason.SCIM_TOKEN_NOT_FOUND,
    path="/account/scim-tokens",
    listed_on="/account",
    back_label="Back to the account",
    whose="the",
    consequence="Your identity provider stops provisioning at once: every request with this token is refused.",
)
PERSONAL_TOKENS: Final = TokenKind(
    noun="personal token",
    service=PersonalTokenService,
    not_found=Reason.PERSONAL_TOKEN_NOT_FOUND,
    path="/tokens",
    listed_on="/tokens",
    back_label="Back to your tokens",
    whose="your",
    consequence="Scripts and tools using it are refused from now on.",
)


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    # -- the account page --------------------------------------------------------------------

    async def account_page(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        may_update = allows(actor, Permission.ACCOUNT_UPDATE, account_id=account_id)
        may_manage_tokens = allows(actor, Permission.ACCOUNT_TOKENS_MANAGE, account_id=account_id)
        may_manage_scim = allows(actor, Permission.SCIM_MANAGE, account_id=account_id)

        def work(session: Session) -> dict[str, Any]:
            account = AccountService(session, actor, runtime).get_settings(account_id)
            shown: dict[str, Any] = {
                "name": account.name,
                "require_two_factor": account.require_two_factor,
                "sending_paused": account.sending_paused,
                "account_tokens": [],
                "scim_tokens": [],
                "groups": [],
                "group_total": 0,
                "servers": [],
                "has_two_factor": True,
            }
            if may_update:
                profile = UserService(session, actor, runtime).profile(account_id)
                shown["has_two_factor"] = profile.user.totp_enabled_at is not None
            if may_manage_tokens:
                shown["account_tokens"] = [
                    {
                        "id": token.id,
                        "name": token.name,
                        "created": token.created_at,
                        "can_delete_servers": token.can_delete_servers,
                    }
                    for token in TokenService(session, runtime).account_tokens(actor, account_id)
                ]
            if may_manage_scim:
                shown["scim_tokens"] = [
                    {"id": token.id, "name": token.name, "created": token.created_at, "last_used": token.last_used_at}
                    for token in ScimTokenService(session, actor, runtime).list_tokens(account_id)
                ]
                page = GroupService(session, actor, runtime).list_groups(account_id, count=GROUPS_SHOWN, offset=0)
                shown["group_total"] = page.total
                shown["groups"] = [
                    {
                        "id": grant.group.id,
                        "name": grant.group.display_name,
                        "members": grant.member_count,
                        "role": grant.group.role,
                        "servers": grant.servers,
                    }
                    for grant in page.groups
                ]
                shown["servers"] = UserService(session, actor, runtime).servers_seen_by_caller(account_id)
            return shown

        shown = await run_in_session(runtime, work, write=False)
        query = request.query_params
        return console.render(
            request,
            "account.html",
            title="Account",
            actor=actor,
            may_update=may_update,
            may_manage_tokens=may_manage_tokens,
            may_manage_scim=may_manage_scim,
            **shown,
            group_roles=[role.value for role in Role if role in GROUP_ROLES],
            no_role=NO_ROLE,
            access_labels=ACCESS_LABELS,
            no_access=ServerAccess.NONE.value,
            done={key: query[key] for key in ("renamed", "two_factor", "revoked", "group") if key in query},
        )

    @console.with_form
    async def rename(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        given = AccountSettings(name=fields.get("name", ""))
        account_id = actor.account_id or 0

        def work(session: Session) -> str:
            return AccountService(session, actor, runtime).update_settings(account_id, given).name

        name = await run_in_session(runtime, work, write=True)
        return console.redirect(request, f"/account?{urlencode({'renamed': name})}")

    @console.with_form
    async def require_two_factor(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        given = AccountSettings(require_two_factor=fields.get("require_two_factor") == "on")
        account_id = actor.account_id or 0

        def work(session: Session) -> bool:
            return AccountService(session, actor, runtime).update_settings(account_id, given).require_two_factor

        required = await run_in_session(runtime, work, write=True)
        return console.redirect(request, f"/account?two_factor={'on' if required else 'off'}")

    @console.with_form
    async def reveal_account_token(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        token_id: int = request.path_params["token_id"]
        account_id = actor.account_id or 0

        def work(session: Session) -> tuple[str, str]:
            tokens = TokenService(session, runtime)
            token = tokens.get_account_token(token_id)
            if token.account_id != account_id:
                raise NotFound(Reason.ACCOUNT_TOKEN_NOT_FOUND, f"Account token {token_id} was not found.")
            return token.name, tokens.reveal_account_token(actor, token)

        name, secret = await run_in_session(runtime, work, write=True)
        return console.render(
            request,
            "secret.html",
            title="Account token",
            actor=actor,
            heading=f"Account token “{name}”",
            secret=secret,
            once=False,
            back="/account",
            back_label="Back to the account",
        )

    # -- SCIM and personal tokens: created, shown once, revoked after asking -----------------

    def new_token_page(request: Request, actor: Actor, kind: TokenKind, name: str, secret: str) -> Response:
        """The one page that ever shows a new token's secret."""
        return console.render(
            request,
            "secret.html",
            title=f"{kind.title} created",
            actor=actor,
            heading=f"{kind.title} “{name}” created",
            secret=secret,
            once=True,
            back=kind.listed_on,
            back_label=kind.back_label,
        )

    def confirm_revoke(kind: TokenKind) -> SignedInPage:
        """The page asking before a token of this kind is revoked; it posts to ``revoke(kind)``."""

        async def confirm(request: Request, actor: Actor) -> Response:
            token_id: int = request.path_params["token_id"]

            def work(session: Session) -> str:
                for token in kind.service(session, actor, runtime).list_tokens(actor.account_id or 0):
                    if token.id == token_id:
                        return token.name
                raise NotFound(kind.not_found, f"{kind.title} {token_id} was not found.")

            name = await run_in_session(runtime, work, write=False)
            return console.render(
                request,
                "confirm_revoke.html",
                title=f"Revoke {kind.noun}",
                actor=actor,
                what=f"{kind.whose} {kind.noun} “{name}”",
                consequence=kind.consequence,
                action=f"{kind.path}/{token_id}/revoke",
                back=kind.listed_on,
            )

        return confirm

    def revoke(kind: TokenKind) -> SignedInPage:
        """Revokes a token of this kind, then its list says which."""

        @console.with_form
        async def act(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
            token_id: int = request.path_params["token_id"]
            account_id = actor.account_id or 0

            def work(session: Session) -> str:
                return kind.service(session, actor, runtime).revoke_token(account_id, token_id).name

            name = await run_in_session(runtime, work, write=True)
            return console.redirect(request, f"{kind.listed_on}?{urlencode({'revoked': name})}")

        return act

    @console.with_form
    async def create_scim_token(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        name = fields.get("name", "")
        account_id = actor.account_id or 0

        def work(session: Session) -> tuple[str, str]:
            token, plaintext = ScimTokenService(session, actor, runtime).create_token(account_id, name)
            return token.name, plaintext

        made, secret = await run_in_session(runtime, work, write=True)
        return new_token_page(request, actor, SCIM_TOKENS, made, secret)

    # -- SCIM groups ---------------------------------------------------------------------------

    @console.with_form
    async def set_group_access(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        group_id: int = request.path_params["group_id"]
        account_id = actor.account_id or 0
        chosen = fields.get("role", NO_ROLE).strip()
        role = None if chosen.lower() in {NO_ROLE, ""} else parse_role(chosen)
        servers = {server_id: parse_access(level) for server_id, level in numbered(fields, SERVER_FIELD).items()}

        def work(session: Session) -> str:
            grant = GroupService(session, actor, runtime).set_access(account_id, group_id, role=role, servers=servers)
            return grant.group.display_name

        name = await run_in_session(runtime, work, write=True)
        return console.redirect(request, f"/account?{urlencode({'group': name})}#groups")

    # -- personal tokens ---------------------------------------------------------------------

    async def tokens_page(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0

        def work(session: Session) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
            servers = UserService(session, actor, runtime).servers_seen_by_caller(account_id)
            names = dict(servers)
            listed = [
                {
                    "id": token.id,
                    "name": token.name,
                    "scopes": token.scopes,
                    "servers": (
                        [names.get(server_id, f"#{server_id}") for server_id in token.server_ids]
                        if token.server_ids is not None
                        else None
                    ),
                    "created": token.created_at,
                    "last_used": token.last_used_at,
                    "expires": token.expires_at,
                }
                for token in PersonalTokenService(session, actor, runtime).list_tokens(account_id)
            ]
            return listed, servers

        listed, servers = await run_in_session(runtime, work, write=False)
        held = [permission.value for permission in Permission if allows(actor, permission, account_id=account_id)]
        return console.render(
            request,
            "tokens.html",
            title="Your tokens",
            actor=actor,
            tokens=listed,
            servers=servers,
            permissions=held,
            max_days=MAX_EXPIRY_DAYS,
            now=utcnow(),
            scope_field=SCOPE_FIELD,
            server_field=SERVER_FIELD,
            revoked=request.query_params.get("revoked"),
        )

    @console.with_form
    async def create_personal_token(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        scopes = sorted(key.removeprefix(SCOPE_FIELD) for key in fields if key.startswith(SCOPE_FIELD))
        server_ids = sorted(numbered(fields, SERVER_FIELD))
        given = NewPersonalToken(
            name=fields.get("name", ""),
            expires_at=expiry(fields.get("expires_days", "")),
            scopes=scopes or None,
            server_ids=server_ids or None,
        )
        account_id = actor.account_id or 0

        def work(session: Session) -> tuple[str, str]:
            token, plaintext = PersonalTokenService(session, actor, runtime).create_token(account_id, given)
            return token.name, plaintext

        made, secret = await run_in_session(runtime, work, write=True)
        return new_token_page(request, actor, PERSONAL_TOKENS, made, secret)

    return [
        Route("/account", console.signed_in(account_page)),
        Route("/account/name", console.signed_in(rename), methods=["POST"]),
        Route(
            "/account/two-factor",
            console.signed_in(require_two_factor, sensitive="change who must use two-factor authentication"),
            methods=["POST"],
        ),
        Route(
            "/account/tokens/{token_id:int}/reveal",
            console.signed_in(reveal_account_token, sensitive="reveal an account token"),
            methods=["POST"],
        ),
        Route(
            "/account/scim-tokens",
            console.signed_in(create_scim_token, sensitive="create a SCIM token"),
            methods=["POST"],
        ),
        Route("/account/scim-tokens/{token_id:int}/revoke", console.signed_in(confirm_revoke(SCIM_TOKENS))),
        Route("/account/scim-tokens/{token_id:int}/revoke", console.signed_in(revoke(SCIM_TOKENS)), methods=["POST"]),
        Route("/account/groups/{group_id:int}", console.signed_in(set_group_access), methods=["POST"]),
        Route("/tokens", console.signed_in(tokens_page)),
        Route(
            "/tokens",
            console.signed_in(create_personal_token, sensitive="create a personal token"),
            methods=["POST"],
        ),
        Route("/tokens/{token_id:int}/revoke", console.signed_in(confirm_revoke(PERSONAL_TOKENS))),
        Route("/tokens/{token_id:int}/revoke", console.signed_in(revoke(PERSONAL_TOKENS)), methods=["POST"]),
    ]


def numbered(fields: dict[str, str], prefix: str) -> dict[int, str]:
    """Fields named ``<prefix><id>`` (a select or checkbox per server), by id."""
    found: dict[int, str] = {}
    for key, value in fields.items():
        if key.startswith(prefix):
            number = key.removeprefix(prefix)
            if not (number.isascii() and number.isdigit()):
                raise InvalidRequest(Reason.INVALID_FIELD, f"'{key}' names no server.")
            found[int(number)] = value
    return found


def expiry(days: str) -> datetime | None:
    """``expires_days`` as a moment, None when left empty."""
    days = days.strip()
    if not days:
        return None
    if not (days.isascii() and days.isdigit()) or not 1 <= int(days) <= MAX_EXPIRY_DAYS:
        raise InvalidRequest(
            Reason.PERSONAL_TOKEN_FIELD_INVALID,
            f"'Expires in' must be a whole number of days from 1 to {MAX_EXPIRY_DAYS}, or empty for no expiry.",
        )
    return utcnow() + timedelta(days=int(days))
