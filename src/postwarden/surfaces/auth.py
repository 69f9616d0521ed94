"""Token authentication for the Postmark and team APIs, lean enough for the hot path: one
header read, one keyed digest, one dictionary lookup when the token is cached.

Account-level endpoints take the account token, or a person's credential as a bearer
token: a personal token (``pw_...``) or a session (``pws_...``), which act with that
person's role and server access. Server endpoints take only the server token.
"""

from __future__ import annotations

import time
from dataclasses import replace

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from postwarden.cache import Principal, SingleFlight
from postwarden.errors import InvalidRequest, NotAuthenticated, NotFound, PermissionDenied, Reason
from postwarden.identity import Actor, Credential, RequestContext, Via
from postwarden.policy import ACCOUNT_TOKEN_OPTIONAL_GRANTS, ACCOUNT_TOKEN_ROLE, SCIM_TOKEN_GRANTS
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerService
from postwarden.surfaces.routing import entity_id, run_in_session
from postwarden.tokens.personal import LAST_USED_RESOLUTION_SECONDS, touch
from postwarden.tokens.scim import touch as touch_scim_token
from postwarden.tokens.service import TokenService
from postwarden.tokens.sightings import note_use

SERVER_HEADER = "X-Postmark-Server-Token"
ACCOUNT_HEADER = "X-Postmark-Account-Token"
PERSON_CREDENTIALS = frozenset({Credential.PERSONAL_TOKEN.value, Credential.SESSION.value})
#: How many (credential, address) pairs a process remembers as recorded.
MAX_KNOWN_ADDRESSES = 100_000
#: How often showing one server's tokens to one credential is recorded again.
TOKEN_VIEW_RESOLUTION_SECONDS = 3600


class TokenViewLog:
    """Records who was shown which server's tokens (``server_token.viewed``).

    At most one event per credential and server each ``TOKEN_VIEW_RESOLUTION_SECONDS`` per
    process: integrations poll ``GET /servers/{id}``, and an event per poll would drown the
    log (and the hot read) without saying more.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._recorded: dict[tuple[str, int | None, int], float] = {}

    def recorded_lately(self, actor: Actor, server_id: int) -> bool:
        when = self._recorded.get((actor.credential.value, actor.token_id, server_id))
        return when is not None and time.monotonic() - when < TOKEN_VIEW_RESOLUTION_SECONDS

    async def shown(self, actor: Actor, account_id: int, server_ids: list[int]) -> None:
        due = [server_id for server_id in server_ids if not self.recorded_lately(actor, server_id)]
        if not due:
            return
        if len(self._recorded) >= MAX_KNOWN_ADDRESSES:
            self._recorded.clear()

        def work(session: Session) -> None:
            ServerService(session, actor, self.runtime).record_token_views(account_id, due)

        await run_in_session(self.runtime, work, write=True)
        now = time.monotonic()
        for server_id in due:
            self._recorded[(actor.credential.value, actor.token_id, server_id)] = now


class Authenticator:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.token_views = TokenViewLog(runtime)
        self._loads: SingleFlight[Principal | None] = SingleFlight()
        #: (credential kind, token id) -> when this process last wrote its ``last_used_at``
        self._last_touched: dict[tuple[str, int], float] = {}
        #: (credential kind, token id, address) this process knows to be recorded already
        self._known_addresses: set[tuple[str, int, str]] = set()

    async def server_actor(self, request: Request) -> Actor:
        return await self._actor(request, Credential.SERVER_TOKEN)

    async def server_scope(self, request: Request) -> tuple[Actor, int]:
        """The caller of one server's endpoint, and that server's id.

        The server token names its own server. An account-level credential (the account
        token, a personal token or a session) names it with the ``server_id`` query
        parameter, so that one credential walks every server it may reach; policy then
        decides with that credential's access on that server.
        """
        account_level = request.headers.get(ACCOUNT_HEADER, "").strip() or _bearer(request)
        if request.headers.get(SERVER_HEADER, "").strip() or not account_level:
            if not account_level and not request.headers.get(SERVER_HEADER, "").strip():
                raise NotAuthenticated(
                    Reason.MISSING_CREDENTIAL,
                    f"No API token was supplied in the HTTP headers. Send the server's token in the "
                    f"{SERVER_HEADER} header, or an account token ({ACCOUNT_HEADER}) or personal token "
                    "(Authorization: Bearer) with the server_id query parameter.",
                )
            actor = await self.server_actor(request)
            named = request.query_params.get("serverid")  # query names arrive normalized
            if named is not None and _server_id(named) != actor.server_id:
                raise NotFound(
                    Reason.SERVER_NOT_FOUND,
                    f"Server {named} is not the server of this server token; leave server_id out or name its own.",
                )
            return actor, actor.server_id or 0
        actor = await self.account_actor(request)
        raw = request.query_params.get("serverid", "").strip()
        if not raw:
            raise InvalidRequest(
                Reason.SERVER_ID_REQUIRED,
                "Name the server with the server_id query parameter (for example ?server_id=12) when "
                f"calling a server endpoint with an account-level credential, or send {SERVER_HEADER}.",
            )
        return actor, _server_id(raw)

    async def account_actor(self, request: Request) -> Actor:
        """The account token, or else a person's bearer credential."""
        bearer = _bearer(request)
        if bearer is None or request.headers.get(ACCOUNT_HEADER, "").strip():
            return await self._actor(request, Credential.ACCOUNT_TOKEN)
        return await self._person(request, bearer)

    async def person_actor(self, request: Request) -> Actor:
        """Endpoints about the caller themselves (``/me``): only a person's credential."""
        bearer = _bearer(request)
        if bearer is None and request.headers.get(ACCOUNT_HEADER, "").strip():
            await self._actor(request, Credential.ACCOUNT_TOKEN)  # a bad token is still a 401
            raise PermissionDenied(
                Reason.PERSONAL_CREDENTIAL_NEEDED,
                "This endpoint acts for a person: use a personal token (Authorization: Bearer pw_...) "
                "or a session, not an account token.",
            )
        if bearer is None:
            raise NotAuthenticated(
                Reason.MISSING_CREDENTIAL,
                "This endpoint needs a personal token or session: send 'Authorization: Bearer pw_...' "
                "(POST /sessions signs in and returns a session token).",
            )
        return await self._person(request, bearer)

    async def scim_actor(self, request: Request) -> Actor:
        """``/scim/v2``: only a SCIM token of the account, as ``Authorization: Bearer``."""
        bearer = _bearer(request)
        if bearer is None:
            raise NotAuthenticated(
                Reason.MISSING_CREDENTIAL,
                "SCIM needs a SCIM token: send 'Authorization: Bearer pwscim_...' "
                "(the Owner or an Admin creates one with POST /scim-tokens).",
            )
        principal = await self._principal(bearer)
        if principal is None or principal.kind != Credential.SCIM_TOKEN.value:
            raise NotAuthenticated(
                Reason.BAD_CREDENTIAL, "The Authorization bearer token is not a valid SCIM token (unknown or revoked)."
            )
        await self._touch(principal, "")
        return await self._noted(actor_for(principal, context_of(request)))

    async def _person(self, request: Request, bearer: str) -> Actor:
        principal = await self._principal(bearer)
        if principal is None or principal.kind not in PERSON_CREDENTIALS or _expired(principal):
            raise NotAuthenticated(
                Reason.BAD_CREDENTIAL,
                "The Authorization bearer token is not a valid personal token or session "
                "(unknown, revoked, expired, or its user is no longer a member).",
            )
        context = context_of(request)
        if principal.kind == Credential.PERSONAL_TOKEN.value:
            await self._touch(principal, context.ip)
        return await self._noted(actor_for(principal, context))

    async def console_actor(self, request: Request, token: str) -> Actor | None:
        """The person signed in to the console with the session ``token`` of its cookie;
        None when it is no live session."""
        principal = await self._principal(token)
        if principal is None or principal.kind != Credential.SESSION.value or _expired(principal):
            return None
        return await self._noted(replace(actor_for(principal, context_of(request)), via=Via.CONSOLE))

    def knows_address(self, principal: Principal, ip: str) -> bool:
        """Whether this process has recorded the credential's use from ``ip`` (the hot read
        answers only then, and leaves a first use to the route)."""
        return not ip or (principal.kind, principal.token_id, ip) in self._known_addresses

    async def _noted(self, actor: Actor) -> Actor:
        """The actor, once its use from this address is recorded (a database write only the
        first time this process sees the pair)."""
        if actor.token_id is None or not actor.context.ip:
            return actor
        key = (actor.credential.value, actor.token_id, actor.context.ip)
        if key in self._known_addresses:
            return actor
        if len(self._known_addresses) >= MAX_KNOWN_ADDRESSES:
            self._known_addresses.clear()  # forgetting costs one idempotent write per pair

        def write() -> None:
            with self.runtime.db.session_scope() as session:
                note_use(session, actor)

        await run_in_threadpool(write)
        self._known_addresses.add(key)
        return actor

    async def _touch(self, principal: Principal, ip: str) -> None:
        """Writes when a personal or SCIM token was last used, at most once a minute each."""
        key = (principal.kind, principal.token_id)
        now = time.monotonic()
        if now - self._last_touched.get(key, -LAST_USED_RESOLUTION_SECONDS) < LAST_USED_RESOLUTION_SECONDS:
            return
        self._last_touched[key] = now

        def write() -> None:
            with self.runtime.db.session_scope() as session:
                if principal.kind == Credential.SCIM_TOKEN.value:
                    touch_scim_token(session, principal.token_id)
                else:
                    touch(session, principal.token_id, ip)

        await run_in_threadpool(write)

    async def _actor(self, request: Request, needed: Credential) -> Actor:
        header, other_header, kind = (
            (SERVER_HEADER, ACCOUNT_HEADER, "Server")
            if needed is Credential.SERVER_TOKEN
            else (ACCOUNT_HEADER, SERVER_HEADER, "Account")
        )
        presented = request.headers.get(header, "").strip()
        if not presented:
            if request.headers.get(other_header, "").strip():
                raise NotAuthenticated(
                    Reason.WRONG_CREDENTIAL_KIND,
                    f"This endpoint needs a {kind} token in the {header} header; "
                    f"a token was sent in {other_header} instead.",
                )
            raise NotAuthenticated(
                Reason.MISSING_CREDENTIAL,
                f"No {kind} API token was supplied in the HTTP headers. Please add the {header} header.",
            )
        principal = await self._principal(presented)
        if principal is None:
            raise NotAuthenticated(
                Reason.BAD_CREDENTIAL, f"Request does not contain a valid {kind} token in the {header} header."
            )
        if principal.kind != needed.value:
            given = {
                Credential.ACCOUNT_TOKEN.value: "an account token",
                Credential.SERVER_TOKEN.value: "a server token",
            }.get(principal.kind, "a personal token or session (send it as 'Authorization: Bearer')")
            raise NotAuthenticated(
                Reason.WRONG_CREDENTIAL_KIND,
                f"This endpoint needs a {kind} token in the {header} header; {given} was given.",
            )
        return await self._noted(actor_for(principal, context_of(request)))

    async def _principal(self, presented: str) -> Principal | None:
        cache = self.runtime.cache
        digest = self.runtime.keyring.digest(presented)
        principal = cache.get_principal(digest)
        if principal is None:
            principal = await self._loads.run(digest, lambda: run_in_threadpool(self._load_principal, presented))
            if principal is not None:
                cache.put_principal(digest, principal)
        return principal

    def _load_principal(self, presented: str) -> Principal | None:
        with self.runtime.db.session_scope(write=False) as session:
            return TokenService(session, self.runtime).find_principal(presented)


def _server_id(raw: str) -> int:
    return entity_id(raw.strip(), NotFound(Reason.SERVER_NOT_FOUND, f"Server {raw} was not found."))


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _expired(principal: Principal) -> bool:
    return principal.expires_at is not None and principal.expires_at <= time.time()


def context_of(request: Request) -> RequestContext:
    client = request.client
    return RequestContext(
        request_id=request.scope.get("state", {}).get("request_id", ""),
        ip=client.host if client else "",
        user_agent=request.headers.get("user-agent", ""),
    )


def actor_for(principal: Principal, context: RequestContext) -> Actor:
    if principal.kind == Credential.SERVER_TOKEN.value:
        return Actor(
            credential=Credential.SERVER_TOKEN,
            label=principal.label,
            via=Via.API,
            account_id=principal.account_id,
            server_id=principal.server_id,
            token_id=principal.token_id,
            context=context,
        )
    if principal.kind in PERSON_CREDENTIALS:
        return Actor(
            credential=Credential(principal.kind),
            label=principal.label,
            via=Via.API,
            account_id=principal.account_id,
            user_id=principal.user_id,
            token_id=principal.token_id,
            role=principal.role,
            server_access=dict(principal.server_access),
            servers_limited=principal.servers_limited,
            group_roles=principal.group_roles,
            group_server_access=dict(principal.group_server_access),
            scopes=principal.scopes,
            token_servers=principal.token_servers,
            two_factor_missing=principal.two_factor_missing,
            context=context,
        )
    if principal.kind == Credential.SCIM_TOKEN.value:
        return Actor(
            credential=Credential.SCIM_TOKEN,
            label=principal.label,
            via=Via.SCIM,
            account_id=principal.account_id,
            token_id=principal.token_id,
            token_grants=SCIM_TOKEN_GRANTS,
            context=context,
        )
    return Actor(
        credential=Credential.ACCOUNT_TOKEN,
        label=principal.label,
        via=Via.API,
        account_id=principal.account_id,
        token_id=principal.token_id,
        role=ACCOUNT_TOKEN_ROLE.value,
        token_grants=frozenset(g.value for g in ACCOUNT_TOKEN_OPTIONAL_GRANTS)
        if principal.can_delete_servers
        else frozenset(),
        context=context,
    )
