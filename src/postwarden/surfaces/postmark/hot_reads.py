"""The reads integrations poll most (``GET /server``, ``GET /servers/{id}``), answered
from the per-process cache without the framework's routing and dependency machinery.

Only a complete cache hit is answered here: a known token of the right kind, a cached
server of the caller's account, and policy's yes, with nothing due to be audited (the
token's use from this address, and the reveal of the server's tokens, already recorded).
Anything else (a miss, any error) falls through to the regular route, which does the same
work in full, records what is due and renders errors.
"""

from __future__ import annotations

import re
from functools import lru_cache

from starlette.types import ASGIApp, Receive, Scope, Send

from postwarden.cache import Principal
from postwarden.identity import Actor, Credential, RequestContext
from postwarden.policy import Permission, allows
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator, actor_for
from postwarden.surfaces.http import JSON_MEDIA_TYPE

_SERVER_BY_ID = re.compile(r"^/servers/([0-9]{1,10})$")
_CONTENT_TYPE = (b"content-type", JSON_MEDIA_TYPE.encode())


@lru_cache(maxsize=4096)
def _actor_of(principal: Principal) -> Actor:
    return actor_for(principal, RequestContext())  # answered only when nothing is due to be audited


class HotReads:
    def __init__(self, app: ASGIApp, runtime: Runtime, auth: Authenticator, routes: dict[str, object]) -> None:
        self.app = app
        self.runtime = runtime
        self.auth = auth
        #: route path -> route object, so metrics and logs name the route as usual
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = self._cached_answer(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [_CONTENT_TYPE, (b"content-length", str(len(body)).encode())],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _cached_answer(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        if path == "/server":
            principal = self._principal(scope, b"x-postmark-server-token", Credential.SERVER_TOKEN)
            if principal is None or principal.server_id is None:
                return None
            server_id = principal.server_id
        else:
            match = _SERVER_BY_ID.match(path)
            if match is None:
                return None
            principal = self._principal(scope, b"x-postmark-account-token", Credential.ACCOUNT_TOKEN)
            if principal is None:
                return None
            server_id = int(match.group(1))
            path = "/servers/{server_id}"
        cached = self.runtime.cache.get_server(server_id)
        if cached is None or cached[0] != principal.account_id:
            return None
        client = scope.get("client")
        # A first use from an address, and a reveal of the server's tokens not recorded
        # lately, are audit events: the route records them.
        if not self.auth.knows_address(principal, client[0] if client else ""):
            return None
        actor = _actor_of(principal)
        if principal.kind == Credential.ACCOUNT_TOKEN.value and not self.auth.token_views.recorded_lately(
            actor, server_id
        ):
            return None
        for permission in (Permission.SERVERS_READ, Permission.SERVER_TOKENS_READ):
            if not allows(actor, permission, account_id=principal.account_id, server_id=server_id):
                return None
        scope["route"] = self.routes.get(path)
        return cached[1]

    def _principal(self, scope: Scope, header: bytes, kind: Credential) -> Principal | None:
        for name, value in scope["headers"]:
            if name == header:
                principal = self.runtime.cache.get_principal(self.runtime.keyring.digest(value.decode("latin-1")))
                return principal if principal is not None and principal.kind == kind.value else None
        return None
