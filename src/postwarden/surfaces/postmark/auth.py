"""Token authentication for the Postmark API, lean enough for the hot path: one header
read, one keyed digest, one dictionary lookup when the token is cached."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from postwarden.cache import Principal, SingleFlight
from postwarden.errors import NotAuthenticated, Reason
from postwarden.identity import Actor, Credential, RequestContext, Via
from postwarden.policy import ACCOUNT_TOKEN_OPTIONAL_GRANTS, ACCOUNT_TOKEN_ROLE
from postwarden.runtime import Runtime
from postwarden.tokens.service import TokenService

SERVER_HEADER = "X-Postmark-Server-Token"
ACCOUNT_HEADER = "X-Postmark-Account-Token"


class Authenticator:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._loads: SingleFlight[Principal | None] = SingleFlight()

    async def server_actor(self, request: Request) -> Actor:
        return await self._actor(request, Credential.SERVER_TOKEN)

    async def account_actor(self, request: Request) -> Actor:
        return await self._actor(request, Credential.ACCOUNT_TOKEN)

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
            given = "an account" if principal.kind == Credential.ACCOUNT_TOKEN.value else "a server"
            raise NotAuthenticated(
                Reason.WRONG_CREDENTIAL_KIND,
                f"This endpoint needs a {kind} token in the {header} header; {given} token was given.",
            )
        return actor_for(principal, context_of(request))

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
