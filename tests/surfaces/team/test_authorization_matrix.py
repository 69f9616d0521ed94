"""Every endpoint, driven over real HTTP (a live server on loopback) by an actor of every
role and server access; the expected answer comes from policy.py, never from a list kept
by hand.

Each operation declares the permissions it asks policy for (``x-permission`` in the OpenAPI
document, from ``guarded_by``). The expectation for an actor is ``policy.allows`` of each
permission, on the server the path names. Allowed answers 200; refused answers 403 with
ErrorCode 9001 (or 9012 for a token that is no person, or 422/604 for server deletion on an
account token). An operation without the declaration fails the first test.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import func, select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.app import create_app
from postwarden.audit import AuditEvent
from postwarden.identity import Actor, RequestContext
from postwarden.policy import (
    SERVER_SCOPED,
    Permission,
    Role,
    ServerAccess,
    allows,
    sees_every_member,
    visible_servers,
)
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import actor_for
from postwarden.surfaces.routing import PERMISSION_KEY
from postwarden.tokens.service import TokenService
from tests.conftest import run_live_server
from tests.surfaces.team.helpers import PASSWORD, add_member, bearer, create_server, sign_in
from tests.surfaces.team.matrix import Builder, Request, World, counter
from tests.surfaces.team.matrix_message_streams import MESSAGE_STREAM_REQUESTS
from tests.surfaces.team.matrix_scim import SCIM_REQUESTS
from tests.surfaces.team.matrix_suppressions import SUPPRESSION_REQUESTS
from tests.surfaces.team.matrix_templates import TEMPLATE_REQUESTS
from tests.surfaces.team.matrix_webhook_deliveries import WEBHOOK_DELIVERY_REQUESTS
from tests.surfaces.team.matrix_webhooks import WEBHOOK_REQUESTS

#: Operations reached only with a server token; their matrix is the server token's own
#: (tests/surfaces/postmark/test_servers.py), as no person or account token reaches them.
SERVER_TOKEN_ONLY = {("GET", "/server"), ("PUT", "/server")}


def routes(asgi: Any) -> list[APIRoute]:
    app = asgi
    while not isinstance(app, FastAPI):  # unwrap the ASGI layers around the application
        app = app.app
    found: list[APIRoute] = []
    pending = list(app.routes)
    while pending:
        route = pending.pop(0)
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # an included router: its own routes
            pending.extend(route.original_router.routes)
    assert len(found) > 40
    return found


def method_of(route: APIRoute) -> str:
    return next(iter(route.methods or {"GET"}))


def permissions_of(route: APIRoute) -> list[str]:
    return list((route.openapi_extra or {}).get(PERMISSION_KEY, []))


def test_every_operation_declares_its_permissions(client: TestClient) -> None:
    for route in routes(client.app):
        extra = route.openapi_extra or {}
        assert PERMISSION_KEY in extra, f"{route.methods} {route.path} declares no permission (guarded_by)"
        for name in extra[PERMISSION_KEY]:
            Permission(name)  # a real permission of policy.py
        if not extra[PERMISSION_KEY]:
            assert extra.get("x-open-because"), f"{route.path} is open to anyone without saying why"


def _token_of(world: World, headers: dict[str, str]) -> int:
    answer = world.client.post("/me/tokens", json={"Name": f"t{next(counter)}"}, headers=headers)
    return int(answer.json()["ID"]) if answer.status_code == 200 else 1


def _confirmation(world: World, headers: dict[str, str]) -> Request:
    started = world.client.post("/me/two-factor", headers=headers)
    code = pyotp.TOTP(started.json()["Secret"]).now() if started.status_code == 200 else "000000"
    return "/me/two-factor/confirm", {"Code": code}, None


def _disabling(world: World, headers: dict[str, str]) -> Request:
    """Turning two-factor off: first on (unless it is), then off with the caller's password."""
    me = world.client.get("/me", headers=headers)
    owner = me.status_code == 200 and me.json()["Email"] == world.account.owner_email
    started = world.client.post("/me/two-factor", headers=headers)
    if started.status_code == 200:
        code = pyotp.TOTP(started.json()["Secret"]).now()
        world.client.post("/me/two-factor/confirm", json={"Code": code}, headers=headers)
    return "/me/two-factor", {"Password": world.account.owner_password if owner else PASSWORD}, None


def _an_event(world: World) -> int:
    with world.runtime.db.session_scope(write=False) as session:
        found = session.scalar(select(func.min(AuditEvent.id)).where(AuditEvent.account_id == world.account.account.id))
    assert found is not None
    return found


#: A valid request for each operation; targets that the call changes for good are made fresh.
REQUESTS: dict[tuple[str, str], Builder] = {
    ("GET", "/servers"): lambda w, h: ("/servers?count=50&offset=0", None, None),
    ("POST", "/servers"): lambda w, h: ("/servers", {"Name": f"New {next(counter)}"}, None),
    ("GET", "/servers/{server_id}"): lambda w, h: (f"/servers/{w.server_a}", None, w.server_a),
    ("PUT", "/servers/{server_id}"): lambda w, h: (f"/servers/{w.server_a}", {"Color": "Red"}, w.server_a),
    ("DELETE", "/servers/{server_id}"): lambda w, h: (f"/servers/{(s := w.fresh('server'))}", None, s),
    ("GET", "/domains"): lambda w, h: ("/domains?count=50&offset=0", None, None),
    ("POST", "/domains"): lambda w, h: ("/domains", {"Name": f"n{next(counter)}.example.org"}, None),
    ("GET", "/domains/{domain_id}"): lambda w, h: (f"/domains/{w.fresh('domain')}", None, None),
    ("PUT", "/domains/{domain_id}"): lambda w, h: (f"/domains/{w.fresh('domain')}", {"ReturnPathDomain": ""}, None),
    ("DELETE", "/domains/{domain_id}"): lambda w, h: (f"/domains/{w.fresh('domain')}", None, None),
    ("PUT", "/domains/{domain_id}/verifyDkim"): lambda w, h: (f"/domains/{w.fresh('domain')}/verifyDkim", None, None),
    ("PUT", "/domains/{domain_id}/verifyReturnPath"): lambda w, h: (
        f"/domains/{w.fresh('domain')}/verifyReturnPath",
        None,
        None,
    ),
    ("POST", "/domains/{domain_id}/verifyspf"): lambda w, h: (f"/domains/{w.fresh('domain')}/verifyspf", None, None),
    ("POST", "/domains/{domain_id}/rotatedkim"): lambda w, h: (f"/domains/{w.fresh('domain')}/rotatedkim", None, None),
    ("GET", "/senders"): lambda w, h: ("/senders?count=50&offset=0", None, None),
    ("POST", "/senders"): lambda w, h: (
        "/senders",
        {"FromEmail": f"n{next(counter)}@acme-mail.example.org", "Name": "N"},
        None,
    ),
    ("GET", "/senders/{sender_id}"): lambda w, h: (f"/senders/{w.fresh('sender')}", None, None),
    ("PUT", "/senders/{sender_id}"): lambda w, h: (f"/senders/{w.fresh('sender')}", {"Name": "Renamed"}, None),
    ("DELETE", "/senders/{sender_id}"): lambda w, h: (f"/senders/{w.fresh('sender')}", None, None),
    ("POST", "/senders/{sender_id}/resend"): lambda w, h: (f"/senders/{w.fresh('sender')}/resend", None, None),
    ("POST", "/senders/{sender_id}/verifyspf"): lambda w, h: (f"/senders/{w.fresh('sender')}/verifyspf", None, None),
    ("POST", "/senders/{sender_id}/requestnewdkim"): lambda w, h: (
        f"/senders/{w.fresh('sender')}/requestnewdkim",
        None,
        None,
    ),
    ("GET", "/users"): lambda w, h: ("/users?count=50&offset=0", None, None),
    ("GET", "/users/{user_id}"): lambda w, h: (f"/users/{w.fresh('member')}", None, None),
    ("PUT", "/users/{user_id}"): lambda w, h: (f"/users/{w.fresh('member')}", {"Role": "Technical"}, None),
    ("PUT", "/users/{user_id}/servers"): lambda w, h: (
        f"/users/{w.fresh('member')}/servers",
        {"ApplyToAllServers": "ViewOnly"},
        None,
    ),
    ("DELETE", "/users/{user_id}"): lambda w, h: (f"/users/{w.fresh('member')}", None, None),
    ("POST", "/invitations"): lambda w, h: (
        "/invitations",
        {"Emails": [f"x{next(counter)}@e.org"], "Role": "Member"},
        None,
    ),
    ("GET", "/invitations"): lambda w, h: ("/invitations?count=50&offset=0", None, None),
    ("POST", "/invitations/{invitation_id}/resend"): lambda w, h: (
        f"/invitations/{w.fresh('invitation')}/resend",
        None,
        None,
    ),
    ("DELETE", "/invitations/{invitation_id}"): lambda w, h: (f"/invitations/{w.fresh('invitation')}", None, None),
    ("GET", "/account"): lambda w, h: ("/account", None, None),
    ("PUT", "/account"): lambda w, h: ("/account", {"Name": "Acme"}, None),
    ("GET", "/account/billing"): lambda w, h: ("/account/billing", None, None),
    ("PUT", "/account/billing"): lambda w, h: ("/account/billing", {"BillTo": "Acme Ltd"}, None),
    ("POST", "/account/transfer-ownership"): lambda w, h: (
        "/account/transfer-ownership",
        {"UserID": w.fresh("admin")},
        None,
    ),
    ("GET", "/me"): lambda w, h: ("/me", None, None),
    ("DELETE", "/sessions"): lambda w, h: ("/sessions", None, None),
    ("POST", "/me/tokens"): lambda w, h: ("/me/tokens", {"Name": "matrix"}, None),
    ("GET", "/me/tokens"): lambda w, h: ("/me/tokens", None, None),
    ("DELETE", "/me/tokens/{token_id}"): lambda w, h: (f"/me/tokens/{_token_of(w, h)}", None, None),
    ("POST", "/me/two-factor"): lambda w, h: ("/me/two-factor", None, None),
    ("POST", "/me/two-factor/confirm"): _confirmation,
    ("DELETE", "/me/two-factor"): _disabling,
    ("GET", "/audit-events"): lambda w, h: ("/audit-events?count=5&offset=0&action=server.*", None, None),
    ("GET", "/audit-events/{event_id}"): lambda w, h: (f"/audit-events/{_an_event(w)}", None, None),
    ("GET", "/audit-events/export"): lambda w, h: ("/audit-events/export?format=csv&action=server.created", None, None),
    ("GET", "/audit-events/verify"): lambda w, h: ("/audit-events/verify", None, None),
    ("GET", "/access-review"): lambda w, h: ("/access-review?count=50&offset=0", None, None),
    ("GET", "/access-review/export"): lambda w, h: ("/access-review/export", None, None),
    **MESSAGE_STREAM_REQUESTS,
    **SCIM_REQUESTS,
    **SUPPRESSION_REQUESTS,
    **TEMPLATE_REQUESTS,
    **WEBHOOK_REQUESTS,
    **WEBHOOK_DELIVERY_REQUESTS,
}
#: Allowed operations that a rule of their own refuses on a fresh target (not policy):
#: a new domain's first DKIM key is still pending, so a rotation waits for it (505).
REFUSED_BY_A_RULE = {
    ("POST", "/domains/{domain_id}/rotatedkim"): 505,
    ("POST", "/senders/{sender_id}/requestnewdkim"): 505,
}
#: Operations whose success changes the caller itself; each gets its own fresh caller.
CHANGES_THE_CALLER = {
    ("DELETE", "/sessions"),
    ("POST", "/account/transfer-ownership"),
    ("POST", "/me/two-factor/confirm"),
    ("DELETE", "/me/two-factor"),
}


@dataclass(frozen=True)
class Who:
    name: str
    role: Role | None  # None: the account token
    access: dict[str, ServerAccess]  # "a" and "b": the two servers
    limited: bool = False


WHO = [
    Who("account token", None, {}),
    Who("owner", Role.OWNER, {}),
    Who("admin", Role.ADMIN, {}),
    Who("technical", Role.TECHNICAL, {}),
    Who("technical limited to A", Role.TECHNICAL, {"a": ServerAccess.FULL}, limited=True),
    Who("billing", Role.BILLING, {}),
    Who("member, full access on A", Role.MEMBER, {"a": ServerAccess.FULL}),
    Who("member, view only on A", Role.MEMBER, {"a": ServerAccess.VIEW}),
    Who("member, view only on B", Role.MEMBER, {"b": ServerAccess.VIEW}),
    Who("member without servers", Role.MEMBER, {}),
]


def credential(world: World, who: Who) -> dict[str, str]:
    """Headers of a fresh credential of ``who``: the account token, or a session of a new user."""
    if who.role is None:
        return world.admin_headers
    if who.role is Role.OWNER:
        return world.owner_sessions.pop()
    servers = {"a": world.server_a, "b": world.server_b}
    email = f"{who.name.replace(' ', '-').replace(',', '')}-{next(counter)}@example.org"
    access = {servers[key]: level for key, level in who.access.items()}
    add_member(world.runtime, world.account, email, who.role, access=access, limited=who.limited)
    return sign_in(world.client, email)


def actor_of(world: World, headers: dict[str, str]) -> Actor:
    token = headers.get("X-Postmark-Account-Token") or headers["Authorization"].removeprefix("Bearer ")
    with world.runtime.db.session_scope(write=False) as session:
        principal = TokenService(session, world.runtime).find_principal(token)
    assert principal is not None
    return actor_for(principal, RequestContext())


def sees_member_on(actor: Actor, server_id: int) -> bool:
    """Who sees whom: everyone, or the members sharing a server with the actor."""
    reachable = visible_servers(actor)
    return sees_every_member(actor) or reachable is None or server_id in reachable


def expected_allowed(actor: Actor, permissions: list[str], account_id: int, server_id: int | None) -> bool:
    return all(
        allows(
            actor,
            Permission(name),
            account_id=account_id,
            server_id=server_id if Permission(name) in SERVER_SCOPED else None,
        )
        for name in permissions
    )


def test_every_operation_answers_each_role_as_policy_says(settings: Any, runtime: Runtime, account: NewAccount) -> None:
    app = create_app(settings, runtime=runtime)
    for live in run_live_server(app, runtime):
        drive_the_matrix(app, httpx.Client(base_url=live.base_url, timeout=30), runtime, account)


def drive_the_matrix(app: Any, client: httpx.Client, runtime: Runtime, account: NewAccount) -> None:
    with client:
        admin = {"X-Postmark-Account-Token": account.account_token}
        owner_sessions = [
            sign_in(client, account.owner_email, account.owner_password) for _ in range(len(CHANGES_THE_CALLER) + 1)
        ]
        servers = create_server(client, account, "A"), create_server(client, account, "B")
        world = World(client, runtime, account, admin, *servers, owner_sessions)
        guarded = [
            route
            for route in routes(app)
            if (route.openapi_extra or {}).get(PERMISSION_KEY)
            and (method_of(route), route.path) not in SERVER_TOKEN_ONLY
        ]
        missing = {(method_of(r), r.path) for r in guarded} - set(REQUESTS)
        assert not missing, f"no request in the matrix for {missing}"
        shared = {who.name: credential(world, who) for who in WHO}
        # Ownership goes last: it changes who the Owner is.
        guarded.sort(key=lambda route: route.path == "/account/transfer-ownership")
        outcomes = {True: 0, False: 0}
        for route, who in itertools.product(guarded, WHO):
            method = method_of(route)
            key = (method, route.path)
            headers = credential(world, who) if key in CHANGES_THE_CALLER else shared[who.name]
            path, body, server_id = REQUESTS[key](world, headers)
            actor = actor_of(world, headers)
            allowed = expected_allowed(actor, permissions_of(route), account.account.id, server_id)
            answer = client.request(method, path, json=body, headers=headers)
            label = f"{method} {path} as {who.name}"
            outcomes[allowed] += 1
            if allowed and key == ("GET", "/users/{user_id}") and not sees_member_on(actor, world.server_a):
                assert answer.json()["ErrorCode"] == 9014, f"{label}: hidden members are not found"
            elif allowed and key in REFUSED_BY_A_RULE and answer.status_code == 422:
                assert answer.json()["ErrorCode"] == REFUSED_BY_A_RULE[key], label
            elif allowed:
                assert answer.status_code == 200, f"{label}: policy allows, got {answer.status_code} {answer.text}"
            else:
                assert (answer.status_code, answer.json()["ErrorCode"]) in {(403, 9001), (403, 9012), (422, 604)}, (
                    f"{label}: policy refuses, got {answer.status_code} {answer.text}"
                )
        assert outcomes[True] > 100 and outcomes[False] > 100, outcomes


def test_a_personal_token_is_narrowed_to_its_scopes_and_servers(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_a, server_b = create_server(client, account, "A"), create_server(client, account, "B")
    owner = sign_in(client, account.owner_email, account.owner_password)
    narrow = client.post(
        "/me/tokens", json={"Name": "read A", "Scopes": ["servers:read"], "ServerIDs": [server_a]}, headers=owner
    )
    assert narrow.status_code == 200, narrow.text
    token = bearer(narrow.json()["Token"])
    assert client.get(f"/servers/{server_a}", headers=token).status_code == 200
    assert client.get(f"/servers/{server_b}", headers=token).json()["ErrorCode"] == 9001
    assert client.put(f"/servers/{server_a}", json={"Color": "Red"}, headers=token).json()["ErrorCode"] == 9001
    assert client.get("/users?count=5&offset=0", headers=token).json()["ErrorCode"] == 9001
    listed = client.get("/servers?count=10&offset=0", headers=token).json()
    assert [s["ID"] for s in listed["Servers"]] == [server_a]
    # A narrow token cannot mint a wider one.
    wider = client.post("/me/tokens", json={"Name": "wider", "Scopes": ["users:manage"]}, headers=token)
    assert wider.json()["ErrorCode"] == 9001  # it lacks profile:manage altogether


def test_a_limited_technical_member_reaches_the_server_they_create_and_the_grant_is_audited(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    existing = create_server(client, account, "Existing")
    add_member(runtime, account, "tech@example.org", Role.TECHNICAL, limited=True)
    tech = sign_in(client, "tech@example.org")
    created = client.post("/servers", json={"Name": "Mine"}, headers=tech)
    assert created.status_code == 200, created.text
    assert created.json()["ApiTokens"]  # Full access on what they created
    listed = client.get("/servers?count=10&offset=0", headers=tech).json()
    assert [server["Name"] for server in listed["Servers"]] == ["Mine"]
    assert client.get(f"/servers/{existing}", headers=tech).json()["ErrorCode"] == 9001
    with runtime.db.session_scope(write=False) as session:
        grants = session.scalars(select(AuditEvent).where(AuditEvent.action == "server_access.updated")).all()
    assert [(event.target_label, event.changes["server_access"]["after"]) for event in grants] == [
        ("tech@example.org", {str(created.json()["ID"]): "FullAccess"})
    ]
