"""The web console: server-rendered pages under ``/console`` for people.

Every form works without JavaScript and goes through the same services as the API. A
signed-in person holds a session (the ``pws_`` token of ``POST /sessions``) in an HttpOnly,
SameSite=Lax cookie, Secure when the request came over TLS. Forms carry a CSRF token that
must match a cookie of its own (double submit); SameSite keeps other sites' forms from
sending the session at all, the token covers older browsers and same-site pages.
"""

from __future__ import annotations

from starlette.applications import Starlette

from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.console import account, audit, invitation, me, password, people, servers, sign_in
from postwarden.surfaces.console.base import Console


def console_app(runtime: Runtime, auth: Authenticator) -> Starlette:
    console = Console(runtime, auth)
    return Starlette(
        routes=[
            *sign_in.routes(console),
            *password.routes(console),
            *servers.routes(console),
            *people.routes(console),
            *invitation.routes(console),
            *me.routes(console),
            *audit.routes(console),
            *account.routes(console),
        ]
    )
