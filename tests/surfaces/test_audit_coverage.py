"""Every change through every surface leaves exactly one audit event saying what changed and
who changed it.

Each mutating operation of the Postmark and team APIs, of SCIM and of the command line is
driven once, for real, and the events written during the call are read back: exactly one
must have the action the tables below expect, on the expected target and account, by the
calling credential through that surface. Other actions may come along (a server's creator
granted access to it, a new sender's confirmation mail, security events), never a second
event of the expected action. The tables are checked against the surfaces themselves, so a
new mutating route or command fails here until it says which event it writes, or why it
changes nothing. The console's forms have a test of their own, next to the console's tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, urlsplit

import click
import httpx
from click.testing import CliRunner
from fastapi.routing import APIRoute
from sqlalchemy import Select, func, select, update
from starlette.applications import Starlette
from starlette.routing import Route

from postwarden.accounts.service import NewAccount
from postwarden.app import create_app
from postwarden.audit import AuditAction, AuditEvent
from postwarden.config import Settings
from postwarden.db import utcnow
from postwarden.domains.models import Domain
from postwarden.groups.models import Group
from postwarden.identity import Actor, Credential, RequestContext, Via
from postwarden.invitations.models import Invitation
from postwarden.mail.models import OutboxMessage
from postwarden.policy import Role
from postwarden.runtime import Runtime
from postwarden.scim.schemas import GROUP_ID_PREFIX
from postwarden.senders.models import ConfirmationToken, SenderSignature
from postwarden.servers.models import MessageStream
from postwarden.servers.service import ServerFields, ServerService
from postwarden.suppressions.models import Suppression
from postwarden.surfaces.auth import actor_for
from postwarden.surfaces.cli.main import cli
from postwarden.surfaces.http import Mounted
from postwarden.tokens.service import TokenService
from tests.conftest import SECRET, run_live_server
from tests.dns_server import DnsTestServer, dns_server
from tests.surfaces.scim.helpers import (
    GROUP_SCHEMA,
    GROUPS,
    USERS,
    create_group,
    create_user,
    issue_token,
    patch_body,
    search_body,
    user_body,
)
from tests.surfaces.team.helpers import LINK, PASSWORD, add_member, bearer, create_server, sign_in
from tests.surfaces.team.matrix import Builder, Request, World, counter
from tests.surfaces.team.test_authorization_matrix import REQUESTS, method_of, routes

__all__ = ["dns_server"]  # the fixture is found by pytest through this import

T = TypeVar("T")
Json = dict[str, Any]
Key = tuple[str, str]  # (method, path template)

#: Actions recording what a call revealed or what its credential showed, not a change it
#: made (a token seen from a new address, a secret shown, a failed sign-in): any request may
#: add one, and a change may come with one.
SECURITY_ACTIONS: Final = frozenset(
    {
        AuditAction.ACCOUNT_TOKEN_VIEWED.value,
        AuditAction.CREDENTIAL_USED_FROM_NEW_IP.value,
        AuditAction.SERVER_TOKEN_VIEWED.value,
        AuditAction.USER_LOGIN_FAILED.value,
        AuditAction.USER_RECOVERY_CODE_USED.value,
    }
)
#: Answer and body fields that carry secrets, which no event's ``changes`` may repeat.
SECRET_WORDS: Final = ("token", "secret", "password", "recoverycode")


# --- reading the log ---------------------------------------------------------------------


def last_event_id(runtime: Runtime) -> int:
    with runtime.db.session_scope(write=False) as session:
        return session.scalar(select(func.max(AuditEvent.id))) or 0


def events_after(runtime: Runtime, event_id: int) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        found = list(session.scalars(select(AuditEvent).where(AuditEvent.id > event_id).order_by(AuditEvent.id)))
        session.expunge_all()
        return found


def scalar(runtime: Runtime, query: Select[tuple[T]]) -> T:
    with runtime.db.session_scope(write=False) as session:
        found = session.scalar(query)
    assert found is not None, str(query)
    return found


def secrets_in(*values: Any) -> set[str]:
    """The strings under secret-sounding names anywhere in these JSON values."""
    found: set[str] = set()

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, secret or any(word in name.lower() for word in SECRET_WORDS))
        elif isinstance(value, list):
            for item in value:
                walk(item, secret)
        elif secret and isinstance(value, str) and len(value) >= 8:
            found.add(value)

    for value in values:
        walk(value, False)
    return found


def credentials_in(headers: dict[str, str]) -> set[str]:
    return {value.removeprefix("Bearer ") for value in headers.values()}


def event_problems(
    label: str,
    events: list[AuditEvent],
    action: AuditAction,
    *,
    target_type: str,
    target_id: object,
    account_id: int | None,
    actor: Actor,
    secrets: Iterable[str] = (),
) -> list[str]:
    """Why the events of one call are not exactly one ``action`` on that target by that actor."""
    shown = [event.action for event in events]
    leaked = [
        f"{label}: {event.action} stores a secret in its changes"
        for event in events
        for secret in secrets
        if secret in json.dumps(event.changes)
    ]
    matching = [event for event in events if event.action == action.value]
    if len(matching) != 1:
        return [*leaked, f"{label}: {len(matching)} events {action.value}, expected exactly one (recorded {shown})"]
    event = matching[0]
    expected: dict[str, object] = {
        "target_type": target_type,
        "target_id": str(target_id),
        "account_id": account_id,
        "actor_credential": actor.credential.value,
        "actor_label": actor.label,
        "actor_user_id": actor.user_id,
        "actor_token_id": actor.token_id,
        "via": actor.via.value,
    }
    return leaked + [
        f"{label}: {action.value} has {name}={getattr(event, name)!r}, expected {wanted!r}"
        for name, wanted in expected.items()
        if getattr(event, name) != wanted
    ]


def unexpected_changes(label: str, events: list[AuditEvent], why: str) -> list[str]:
    changes = [event.action for event in events if event.action not in SECURITY_ACTIONS]
    if not changes:
        return []
    return [
        f"{label} changes nothing ({why}), yet recorded {changes}; "
        "if these are security events, name them in SECURITY_ACTIONS"
    ]


def actor_of(runtime: Runtime, headers: dict[str, str]) -> Actor:
    """What the surfaces make of these credential headers, as the audit log should name it."""
    token = (
        headers.get("X-Postmark-Account-Token")
        or headers.get("X-Postmark-Server-Token")
        or headers["Authorization"].removeprefix("Bearer ")
    )
    with runtime.db.session_scope(write=False) as session:
        principal = TokenService(session, runtime).find_principal(token)
    assert principal is not None, "the caller's credential is not valid"
    return actor_for(principal, RequestContext())


# --- the Postmark and team APIs ------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request as made and answered: what an expected target or actor is read from."""

    world: World
    path: str
    body: Json | None
    #: Path parameters, by the names of the route's template.
    params: dict[str, str]
    query: dict[str, str]
    answer: Any
    #: The calling credential, resolved before the call (None: no credential).
    caller: Actor | None


Resolve = Callable[[Call], object]


@dataclass(frozen=True)
class Expected:
    action: AuditAction
    target_type: str
    #: How the target's id is known: from the path, the answer, or the database.
    target: Resolve
    #: Who acts, when it is not the calling credential (signing in, an invitation link).
    actor: Callable[[Call], Actor] | None = None


def in_path(name: str) -> Resolve:
    return lambda call: call.params[name]


def in_answer(*keys: str | int) -> Resolve:
    def read(call: Call) -> object:
        value = call.answer
        for key in keys:
            value = value[key]
        return value

    return read


def in_body(name: str) -> Resolve:
    return lambda call: (call.body or {})[name]


def the_account(call: Call) -> int:
    return call.world.account.account.id


def stream_row(call: Call) -> int:
    """Streams are named by their string ID on a server; events name their row."""
    stream_id = call.params.get("stream_id") or call.answer["ID"]
    server_id = int(call.query["server_id"])
    query = select(MessageStream.id).where(MessageStream.server_id == server_id, MessageStream.stream_id == stream_id)
    return scalar(call.world.runtime, query)


def suppressed_row(call: Call) -> int:
    address = (call.body or {})["Suppressions"][0]["EmailAddress"].lower()
    return scalar(call.world.runtime, select(Suppression.id).where(Suppression.address_key == address))


def lifted_row(call: Call) -> str:
    """The row is gone once lifted: its id is the one its creation was recorded with."""
    address = (call.body or {})["Suppressions"][0]["EmailAddress"]
    created = select(AuditEvent.target_id).where(
        AuditEvent.action == AuditAction.SUPPRESSION_CREATED.value, AuditEvent.target_label == address
    )
    return scalar(call.world.runtime, created)


def senders_domain(call: Call) -> int:
    """Checks and key rotations of a sender act on its domain."""
    runtime = call.world.runtime
    name = scalar(runtime, select(SenderSignature.domain).where(SenderSignature.id == int(call.params["sender_id"])))
    return scalar(runtime, select(Domain.id).where(Domain.account_id == the_account(call), Domain.name == name))


def invitation_of_link(call: Call) -> Invitation:
    digest = call.world.runtime.keyring.digest(call.params["token"])
    with call.world.runtime.db.session_scope(write=False) as session:
        invitation = session.scalar(select(Invitation).where(Invitation.token_digest == digest))
        assert invitation is not None
        session.expunge(invitation)
        return invitation


def confirmed_sender(call: Call) -> int:
    digest = call.world.runtime.keyring.digest(call.params["token"])
    return scalar(
        call.world.runtime, select(ConfirmationToken.signature_id).where(ConfirmationToken.token_digest == digest)
    )


def signed_in(call: Call) -> Actor:
    """The session the answer hands out is who signed in."""
    return actor_of(call.world.runtime, bearer(call.answer["SessionToken"]))


def call_user(call: Call) -> int:
    assert call.caller is not None and call.caller.user_id is not None
    return call.caller.user_id


EXPECTED: dict[Key, Expected] = {
    ("POST", "/servers"): Expected(AuditAction.SERVER_CREATED, "server", in_answer("ID")),
    ("PUT", "/servers/{server_id}"): Expected(AuditAction.SERVER_UPDATED, "server", in_path("server_id")),
    ("DELETE", "/servers/{server_id}"): Expected(AuditAction.SERVER_DELETED, "server", in_path("server_id")),
    ("PUT", "/server"): Expected(AuditAction.SERVER_UPDATED, "server", in_answer("ID")),
    ("POST", "/domains"): Expected(AuditAction.DOMAIN_CREATED, "domain", in_answer("ID")),
    ("PUT", "/domains/{domain_id}"): Expected(AuditAction.DOMAIN_UPDATED, "domain", in_path("domain_id")),
    ("DELETE", "/domains/{domain_id}"): Expected(AuditAction.DOMAIN_DELETED, "domain", in_path("domain_id")),
    ("PUT", "/domains/{domain_id}/verifyDkim"): Expected(AuditAction.DOMAIN_VERIFIED, "domain", in_path("domain_id")),
    ("PUT", "/domains/{domain_id}/verifyReturnPath"): Expected(
        AuditAction.DOMAIN_VERIFIED, "domain", in_path("domain_id")
    ),
    ("POST", "/domains/{domain_id}/verifyspf"): Expected(AuditAction.DOMAIN_VERIFIED, "domain", in_path("domain_id")),
    ("POST", "/domains/{domain_id}/rotatedkim"): Expected(
        AuditAction.DOMAIN_DKIM_ROTATED, "domain", in_path("domain_id")
    ),
    ("POST", "/senders"): Expected(AuditAction.SENDER_CREATED, "sender", in_answer("ID")),
    ("PUT", "/senders/{sender_id}"): Expected(AuditAction.SENDER_UPDATED, "sender", in_path("sender_id")),
    ("DELETE", "/senders/{sender_id}"): Expected(AuditAction.SENDER_DELETED, "sender", in_path("sender_id")),
    # A GET that changes something: the mailed link, followed from a mail client.
    ("GET", "/senders/confirm/{token}"): Expected(
        AuditAction.SENDER_CONFIRMED,
        "sender",
        confirmed_sender,
        actor=lambda call: Actor(credential=Credential.SYSTEM, label="confirmation link", via=Via.API),
    ),
    ("POST", "/senders/{sender_id}/resend"): Expected(
        AuditAction.SENDER_CONFIRMATION_SENT, "sender", in_path("sender_id")
    ),
    ("POST", "/senders/{sender_id}/verifyspf"): Expected(AuditAction.DOMAIN_VERIFIED, "domain", senders_domain),
    ("POST", "/senders/{sender_id}/requestnewdkim"): Expected(
        AuditAction.DOMAIN_DKIM_ROTATED, "domain", senders_domain
    ),
    ("POST", "/message-streams"): Expected(AuditAction.MESSAGE_STREAM_CREATED, "message_stream", stream_row),
    ("PATCH", "/message-streams/{stream_id}"): Expected(
        AuditAction.MESSAGE_STREAM_UPDATED, "message_stream", stream_row
    ),
    ("POST", "/message-streams/{stream_id}/archive"): Expected(
        AuditAction.MESSAGE_STREAM_ARCHIVED, "message_stream", stream_row
    ),
    ("POST", "/message-streams/{stream_id}/unarchive"): Expected(
        AuditAction.MESSAGE_STREAM_UNARCHIVED, "message_stream", stream_row
    ),
    ("POST", "/message-streams/{stream_id}/suppressions"): Expected(
        AuditAction.SUPPRESSION_CREATED, "suppression", suppressed_row
    ),
    ("POST", "/message-streams/{stream_id}/suppressions/delete"): Expected(
        AuditAction.SUPPRESSION_DELETED, "suppression", lifted_row
    ),
    ("POST", "/templates"): Expected(AuditAction.TEMPLATE_CREATED, "template", in_answer("TemplateId")),
    ("PUT", "/templates/push"): Expected(
        AuditAction.TEMPLATE_PUSHED, "template", in_answer("Templates", 0, "TemplateId")
    ),
    ("PUT", "/templates/{id_or_alias}"): Expected(AuditAction.TEMPLATE_UPDATED, "template", in_path("id_or_alias")),
    ("DELETE", "/templates/{id_or_alias}"): Expected(AuditAction.TEMPLATE_DELETED, "template", in_path("id_or_alias")),
    ("POST", "/webhooks"): Expected(AuditAction.WEBHOOK_CREATED, "webhook", in_answer("ID")),
    ("PUT", "/webhooks/{webhook_id}"): Expected(AuditAction.WEBHOOK_UPDATED, "webhook", in_path("webhook_id")),
    ("DELETE", "/webhooks/{webhook_id}"): Expected(AuditAction.WEBHOOK_DELETED, "webhook", in_path("webhook_id")),
    ("POST", "/webhooks/{webhook_id}/rotate-secret"): Expected(
        AuditAction.WEBHOOK_SECRET_ROTATED, "webhook", in_path("webhook_id")
    ),
    ("POST", "/webhooks/{webhook_id}/test"): Expected(AuditAction.WEBHOOK_TESTED, "webhook", in_path("webhook_id")),
    ("PUT", "/users/{user_id}"): Expected(AuditAction.MEMBERSHIP_UPDATED, "user", in_path("user_id")),
    ("PUT", "/users/{user_id}/servers"): Expected(AuditAction.SERVER_ACCESS_UPDATED, "user", in_path("user_id")),
    ("DELETE", "/users/{user_id}"): Expected(AuditAction.MEMBERSHIP_DELETED, "user", in_path("user_id")),
    ("POST", "/invitations"): Expected(AuditAction.INVITATION_CREATED, "invitation", in_answer("Invitations", 0, "ID")),
    ("POST", "/invitations/{invitation_id}/resend"): Expected(
        AuditAction.INVITATION_RESENT, "invitation", in_path("invitation_id")
    ),
    ("DELETE", "/invitations/{invitation_id}"): Expected(
        AuditAction.INVITATION_REVOKED, "invitation", in_path("invitation_id")
    ),
    # The link is the invitee's only credential: they act under their address, as no user yet.
    ("POST", "/invitations/accept/{token}"): Expected(
        AuditAction.INVITATION_ACCEPTED,
        "invitation",
        lambda call: invitation_of_link(call).id,
        actor=lambda call: Actor.invitee(invitation_of_link(call).email, RequestContext()),
    ),
    ("PUT", "/account"): Expected(AuditAction.ACCOUNT_UPDATED, "account", the_account),
    ("PUT", "/account/billing"): Expected(AuditAction.BILLING_UPDATED, "account", the_account),
    ("POST", "/account/transfer-ownership"): Expected(
        AuditAction.ACCOUNT_OWNERSHIP_TRANSFERRED, "user", in_body("UserID")
    ),
    ("POST", "/sessions"): Expected(AuditAction.SESSION_CREATED, "user", in_answer("UserID"), actor=signed_in),
    ("DELETE", "/sessions"): Expected(AuditAction.SESSION_REVOKED, "user", call_user),
    ("POST", "/me/tokens"): Expected(AuditAction.PERSONAL_TOKEN_CREATED, "personal_token", in_answer("ID")),
    ("DELETE", "/me/tokens/{token_id}"): Expected(
        AuditAction.PERSONAL_TOKEN_REVOKED, "personal_token", in_path("token_id")
    ),
    ("POST", "/me/two-factor/confirm"): Expected(AuditAction.USER_TWO_FACTOR_ENABLED, "user", call_user),
    ("DELETE", "/me/two-factor"): Expected(AuditAction.USER_TWO_FACTOR_DISABLED, "user", call_user),
    ("POST", "/scim-tokens"): Expected(AuditAction.SCIM_TOKEN_CREATED, "scim_token", in_answer("ID")),
    ("DELETE", "/scim-tokens/{token_id}"): Expected(AuditAction.SCIM_TOKEN_REVOKED, "scim_token", in_path("token_id")),
    ("PUT", "/scim-groups/{group_id}"): Expected(AuditAction.GROUP_ACCESS_UPDATED, "group", in_path("group_id")),
}

#: Operations that change nothing anyone relies on, and why; they must record no change.
NOT_MUTATIONS: dict[Key, str] = {
    ("POST", "/templates/validate"): "test-renders a draft: POST only to carry the draft",
    # Enrolment writes a candidate secret that no sign-in honours until a code from it is
    # confirmed; the confirmation is the change (user.two_factor_enabled). An abandoned
    # start grants, removes and reveals nothing, so it is left out of the log.
    ("POST", "/me/two-factor"): "starts two-factor enrolment; nothing is in force until it is confirmed",
}


def api_builders(dns: DnsTestServer) -> dict[Key, Builder]:
    """Requests in place of the matrix's where its request would change nothing (a value
    already set, a DNS record nobody published) or the route is open to anyone."""

    def domain(world: World, *, return_path: bool = False) -> Json:
        name = f"audit{next(counter)}.example.org"
        body = {"Name": name, "ReturnPathDomain": f"pm-bounces.{name}" if return_path else None}
        answer = world.client.post("/domains", json=body, headers=world.admin_headers)
        assert answer.status_code == 200, answer.text
        created: Json = answer.json()
        return created

    def publish_spf(world: World, name: str) -> None:
        dns.add_txt(name, f"v=spf1 include:{world.runtime.settings.spf_include} ~all")

    def verified_dkim(world: World, domain_id: int, pending: Json) -> None:
        """The domain's first key published and verified: a rotation may start."""
        dns.add_txt(pending["DKIMPendingHost"], pending["DKIMPendingTextValue"])
        answer = world.client.put(f"/domains/{domain_id}/verifyDkim", headers=world.admin_headers)
        assert answer.status_code == 200 and answer.json()["DKIMVerified"], answer.text

    def sender(world: World) -> Json:
        """A sender at a domain of its own, so that checks on one sender change only its domain."""
        n = next(counter)
        body = {"FromEmail": f"s{n}@mail{n}.example.org", "Name": "S"}
        answer = world.client.post("/senders", json=body, headers=world.admin_headers)
        assert answer.status_code == 200, answer.text
        created: Json = answer.json()
        return created

    def dkim_published(world: World, _headers: dict[str, str]) -> Request:
        found = domain(world)
        dns.add_txt(found["DKIMPendingHost"], found["DKIMPendingTextValue"])
        return f"/domains/{found['ID']}/verifyDkim", None, None

    def return_path_pointed(world: World, _headers: dict[str, str]) -> Request:
        found = domain(world, return_path=True)
        dns.add_cname(found["ReturnPathDomain"], world.runtime.settings.return_path_target)
        return f"/domains/{found['ID']}/verifyReturnPath", None, None

    def spf_published(world: World, _headers: dict[str, str]) -> Request:
        found = domain(world)
        publish_spf(world, found["Name"])
        return f"/domains/{found['ID']}/verifyspf", None, None

    def domain_rotation(world: World, _headers: dict[str, str]) -> Request:
        found = domain(world)
        verified_dkim(world, found["ID"], found)
        return f"/domains/{found['ID']}/rotatedkim", None, None

    def return_path_set(world: World, _headers: dict[str, str]) -> Request:
        found = domain(world)
        return f"/domains/{found['ID']}", {"ReturnPathDomain": f"pm-bounces.{found['Name']}"}, None

    def sender_spf(world: World, _headers: dict[str, str]) -> Request:
        found = sender(world)
        publish_spf(world, found["Domain"])
        return f"/senders/{found['ID']}/verifyspf", None, None

    def sender_rotation(world: World, _headers: dict[str, str]) -> Request:
        found = sender(world)
        domain_id = scalar(world.runtime, select(Domain.id).where(Domain.name == found["Domain"]))
        verified_dkim(world, domain_id, found)
        return f"/senders/{found['ID']}/requestnewdkim", None, None

    def server_token_edit(world: World, _headers: dict[str, str]) -> Request:
        return "/server", {"Color": "Green"}, world.server_a

    def confirming(world: World, _headers: dict[str, str]) -> Request:
        email = sender(world)["EmailAddress"]
        return mailed_link(world.runtime, email, CONFIRMATION_LINK), None, None

    def signing_in(world: World, _headers: dict[str, str]) -> Request:
        email = f"signer{next(counter)}@example.org"
        add_member(world.runtime, world.account, email, Role.MEMBER)
        return "/sessions", {"Email": email, "Password": PASSWORD}, None

    def accepting(world: World, _headers: dict[str, str]) -> Request:
        email = f"joiner{next(counter)}@example.org"
        answer = world.client.post(
            "/invitations", json={"Emails": [email], "Role": "Member"}, headers=world.admin_headers
        )
        assert answer.status_code == 200, answer.text
        return mailed_link(world.runtime, email, LINK), {"Password": PASSWORD, "Name": "Joiner"}, None

    return {
        ("PUT", "/server"): server_token_edit,
        ("PUT", "/domains/{domain_id}"): return_path_set,
        ("PUT", "/domains/{domain_id}/verifyDkim"): dkim_published,
        ("PUT", "/domains/{domain_id}/verifyReturnPath"): return_path_pointed,
        ("POST", "/domains/{domain_id}/verifyspf"): spf_published,
        ("POST", "/domains/{domain_id}/rotatedkim"): domain_rotation,
        ("POST", "/senders/{sender_id}/verifyspf"): sender_spf,
        ("POST", "/senders/{sender_id}/requestnewdkim"): sender_rotation,
        ("PUT", "/account"): lambda w, h: ("/account", {"Name": f"Acme {next(counter)}"}, None),
        ("GET", "/senders/confirm/{token}"): confirming,
        ("POST", "/sessions"): signing_in,
        ("POST", "/invitations/accept/{token}"): accepting,
    }


CONFIRMATION_LINK: Final = re.compile(r"http://postwarden\.test(/senders/confirm/[0-9a-f]+)")


def mailed_link(runtime: Runtime, email: str, link: re.Pattern[str]) -> str:
    """The path of the newest link of this kind mailed to ``email``."""
    with runtime.db.session_scope(write=False) as session:
        body = session.scalar(
            select(OutboxMessage.text_body).where(OutboxMessage.to_address == email).order_by(OutboxMessage.id.desc())
        )
    match = link.search(body or "")
    assert match is not None, body
    return match.group(1)


def caller_headers(world: World, route: APIRoute, server_token: dict[str, str]) -> dict[str, str]:
    """A credential allowed to make the call: the account token where it may, else the Owner
    (routes about the caller themselves), else the server token; none for open routes."""
    if (method_of(route), route.path) == ("DELETE", "/sessions"):
        return world.owner_sessions.pop()  # it ends the session it is made with
    schemes = {name for entry in (route.openapi_extra or {}).get("security", []) for name in entry}
    if "AccountToken" in schemes:
        return world.admin_headers
    if "PersonalToken" in schemes:
        return world.owner_sessions[0]
    if "ServerToken" in schemes:
        return server_token
    return {}


def test_every_api_mutation_writes_one_matching_event(
    settings: Settings, runtime: Runtime, account: NewAccount, dns_server: DnsTestServer
) -> None:
    runtime.settings.dns_nameservers = [dns_server.nameserver]
    runtime.settings.dns_timeout_seconds = 0.5
    with runtime.db.session_scope() as session:
        tokens = TokenService(session, runtime)
        # Server deletion enabled on the account token (as the Owner may), so one credential reaches every route.
        operator = Actor.system("tests")
        tokens.set_server_deletion(operator, tokens.account_tokens(operator, account.account.id)[0], enabled=True)
    app = create_app(settings, runtime=runtime)
    for live in run_live_server(app, runtime):
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            problems = drive_the_api(app, client, runtime, account, dns_server)
    assert not problems, "\n".join(problems)


def drive_the_api(
    app: Any, client: httpx.Client, runtime: Runtime, account: NewAccount, dns: DnsTestServer
) -> list[str]:
    every = routes(app)
    mutating = [route for route in every if method_of(route) != "GET" or (method_of(route), route.path) in EXPECTED]
    known = {(method_of(route), route.path) for route in every if method_of(route) != "GET"}
    missing = sorted(known - set(EXPECTED) - set(NOT_MUTATIONS))
    assert not missing, f"no expected audit event (EXPECTED) or reason (NOT_MUTATIONS) for {missing}"
    stale = sorted((set(EXPECTED) | set(NOT_MUTATIONS)) - {(method_of(route), route.path) for route in every})
    assert not stale, f"EXPECTED or NOT_MUTATIONS name routes that do not exist: {stale}"
    assert not set(EXPECTED) & set(NOT_MUTATIONS)

    admin = {"X-Postmark-Account-Token": account.account_token}
    # Signed in before any call turns the Owner's second factor on: one shared, one to sign out.
    owner_sessions = [sign_in(client, account.owner_email, account.owner_password) for _ in range(2)]
    world = World(
        client,
        runtime,
        account,
        admin,
        create_server(client, account, "A"),
        create_server(client, account, "B"),
        owner_sessions,
    )
    listed = client.get(f"/servers/{world.server_a}", headers=admin)
    server_token = {"X-Postmark-Server-Token": listed.json()["ApiTokens"][0]}
    builders = {**REQUESTS, **api_builders(dns)}
    # Ownership goes last: it changes who the Owner is.
    mutating.sort(key=lambda route: route.path == "/account/transfer-ownership")

    problems: list[str] = []
    for route in mutating:
        method = method_of(route)
        key = (method, route.path)
        headers = caller_headers(world, route, server_token)
        path, body, _server_id = builders[key](world, headers)
        caller = actor_of(runtime, headers) if headers else None
        before = last_event_id(runtime)
        answer = client.request(method, path, json=body, headers=headers)
        label = f"{method} {path}"
        if answer.status_code != 200:
            problems.append(f"{label}: answered {answer.status_code} {answer.text}")
            continue
        events = events_after(runtime, before)
        if key in NOT_MUTATIONS:
            problems += unexpected_changes(label, events, NOT_MUTATIONS[key])
            continue
        url = urlsplit(path)
        match = route.path_regex.match(url.path)
        assert match is not None, label
        answered = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
        call = Call(world, path, body, match.groupdict(), dict(parse_qsl(url.query)), answered, caller)
        expected = EXPECTED[key]
        actor = expected.actor(call) if expected.actor is not None else caller
        assert actor is not None, f"{label}: an open route names who acts"
        problems += event_problems(
            label,
            events,
            expected.action,
            target_type=expected.target_type,
            target_id=expected.target(call),
            account_id=account.account.id,
            actor=actor,
            secrets=secrets_in(answered, body) | credentials_in(headers),
        )
    return problems


# --- SCIM ------------------------------------------------------------------------------------


ScimRequest = tuple[str, Json | None, str | None]  # path, body, the target's SCIM id (None: the answer's)


@dataclass(frozen=True)
class ScimCase:
    action: AuditAction
    build: Callable[[httpx.Client, dict[str, str]], ScimRequest]


def provisioned(client: httpx.Client, headers: dict[str, str], **attributes: Any) -> str:
    """A member the identity provider made; their SCIM id."""
    return str(create_user(client, headers, f"scim{next(counter)}@example.org", **attributes)["id"])


def scim_group(client: httpx.Client, headers: dict[str, str]) -> str:
    return str(create_group(client, headers, f"Team {next(counter)}")["id"])


def _renamed_user(client: httpx.Client, headers: dict[str, str]) -> ScimRequest:
    user_id = provisioned(client, headers)
    user_name = client.get(f"{USERS}/{user_id}", headers=headers).json()["userName"]
    return f"{USERS}/{user_id}", user_body(user_name, displayName="Renamed"), user_id


def _patched_user(value: Json, **attributes: Any) -> Callable[[httpx.Client, dict[str, str]], ScimRequest]:
    def build(client: httpx.Client, headers: dict[str, str]) -> ScimRequest:
        user_id = provisioned(client, headers, **attributes)
        return f"{USERS}/{user_id}", patch_body({"op": "replace", "value": value}), user_id

    return build


def _renamed_group(client: httpx.Client, headers: dict[str, str]) -> ScimRequest:
    group_id = scim_group(client, headers)
    return f"{GROUPS}/{group_id}", {"schemas": [GROUP_SCHEMA], "displayName": f"Renamed {next(counter)}"}, group_id


def _joined_group(client: httpx.Client, headers: dict[str, str]) -> ScimRequest:
    group_id, user_id = scim_group(client, headers), provisioned(client, headers)
    body = patch_body({"op": "add", "path": "members", "value": [{"value": user_id}]})
    return f"{GROUPS}/{group_id}", body, group_id


SCIM_EXPECTED: dict[Key, list[ScimCase]] = {
    ("POST", "/Users"): [
        ScimCase(AuditAction.MEMBERSHIP_CREATED, lambda c, h: (USERS, user_body(f"new{next(counter)}@e.org"), None))
    ],
    ("PUT", "/Users/{resource_id}"): [ScimCase(AuditAction.MEMBERSHIP_UPDATED, _renamed_user)],
    ("PATCH", "/Users/{resource_id}"): [
        ScimCase(AuditAction.MEMBERSHIP_UPDATED, _patched_user({"displayName": "Patched"})),
        ScimCase(AuditAction.MEMBERSHIP_SUSPENDED, _patched_user({"active": False})),
        ScimCase(AuditAction.MEMBERSHIP_RESTORED, _patched_user({"active": True}, active=False)),
    ],
    ("DELETE", "/Users/{resource_id}"): [
        ScimCase(AuditAction.MEMBERSHIP_DELETED, lambda c, h: (f"{USERS}/{(i := provisioned(c, h))}", None, i))
    ],
    ("POST", "/Groups"): [
        ScimCase(
            AuditAction.GROUP_CREATED,
            lambda c, h: (GROUPS, {"schemas": [GROUP_SCHEMA], "displayName": f"New {next(counter)}"}, None),
        )
    ],
    ("PUT", "/Groups/{resource_id}"): [ScimCase(AuditAction.GROUP_UPDATED, _renamed_group)],
    ("PATCH", "/Groups/{resource_id}"): [ScimCase(AuditAction.GROUP_UPDATED, _joined_group)],
    ("DELETE", "/Groups/{resource_id}"): [
        ScimCase(AuditAction.GROUP_DELETED, lambda c, h: (f"{GROUPS}/{(i := scim_group(c, h))}", None, i))
    ],
}
#: POST only because a filter may be too long for a URL (RFC 7644 §3.4.3): they read.
SCIM_NOT_MUTATIONS: dict[Key, str] = {
    ("POST", "/.search"): "searches users and groups",
    ("POST", "/Users/.search"): "searches users",
    ("POST", "/Groups/.search"): "searches groups",
}
SCIM_STATUS: Final = {"POST": 201, "PUT": 200, "PATCH": 200, "DELETE": 204}


def mounted_routes(asgi: Any, prefix: str) -> list[Route]:
    """The routes of the application mounted at ``prefix`` (SCIM, the console: its own test)."""
    app = asgi
    while not (isinstance(app, Mounted) and app.prefix == prefix):  # unwrap the ASGI layers down to it
        app = app.app
    assert isinstance(app.mounted, Starlette)
    return [route for route in app.mounted.routes if isinstance(route, Route)]


def test_every_scim_mutation_writes_one_matching_event(
    settings: Settings, runtime: Runtime, account: NewAccount
) -> None:
    headers = issue_token(runtime, account, "okta").headers
    actor = actor_of(runtime, headers)
    app = create_app(settings, runtime=runtime)
    mutating = sorted(
        (method, route.path)
        for route in mounted_routes(app, "/scim/v2")
        for method in (route.methods or set()) - {"GET", "HEAD"}
    )
    missing = sorted(set(mutating) - set(SCIM_EXPECTED) - set(SCIM_NOT_MUTATIONS))
    assert not missing, f"no expected audit event (SCIM_EXPECTED) or reason (SCIM_NOT_MUTATIONS) for {missing}"
    stale = sorted((set(SCIM_EXPECTED) | set(SCIM_NOT_MUTATIONS)) - set(mutating))
    assert not stale, f"SCIM_EXPECTED or SCIM_NOT_MUTATIONS name routes that do not exist: {stale}"

    problems: list[str] = []
    for live in run_live_server(app, runtime):
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            for (method, path), why in SCIM_NOT_MUTATIONS.items():
                before = last_event_id(runtime)
                answer = client.post(f"/scim/v2{path}", json=search_body(count=5), headers=headers)
                assert answer.status_code == 200, answer.text
                problems += unexpected_changes(f"{method} {path}", events_after(runtime, before), why)
            for (method, template), cases in SCIM_EXPECTED.items():
                for case in cases:
                    path, body, target = case.build(client, headers)
                    before = last_event_id(runtime)
                    answer = client.request(method, path, json=body, headers=headers)
                    label = f"{method} {path} ({case.action.value})"
                    if answer.status_code != SCIM_STATUS[method]:
                        problems.append(f"{label}: answered {answer.status_code} {answer.text}")
                        continue
                    scim_id = target or str(answer.json()["id"])
                    problems += event_problems(
                        label,
                        events_after(runtime, before),
                        case.action,
                        target_type="group" if template.startswith("/Groups") else "user",
                        target_id=scim_id.removeprefix(GROUP_ID_PREFIX),
                        account_id=account.account.id,
                        actor=actor,
                        secrets=credentials_in(headers),
                    )
    assert not problems, "\n".join(problems)


# --- the command line ------------------------------------------------------------------------


@dataclass(frozen=True)
class CliCase:
    args: list[str]
    action: AuditAction
    target_type: str
    #: The target's id, known beforehand or read from what the command printed.
    target: object | Callable[[str], object]
    account_id: int | Callable[[str], int]


#: Commands that change no account, and why.
READ_ONLY_COMMANDS: dict[str, str] = {
    "migrate": "changes the schema, not what an account holds",
    "serve": "runs the HTTP surfaces (tested route by route); its first-start demo account is `init`'s service call",
    "worker": "runs queued jobs: mail and webhook deliveries that the audited changes queued",
    "outbox list": "lists mail",
    "outbox show": "shows one mail",
    "accounts list": "lists accounts",
    "tokens show": "shows tokens: security events (account_token.viewed, server_token.viewed), no change",
    "users list": "lists members",
    "scim tokens": "lists SCIM tokens",
    "audit export": "reads the audit log",
    "audit verify": "reads the audit log",
}


def command_names(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[str]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from command_names(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name))


def cli_cases(runtime: Runtime, account: NewAccount) -> dict[str, list[CliCase]]:
    """One case per way each command changes something, against targets made here; they run
    in this order (invitations before sending is paused, server deletion granted before the
    token is rotated)."""
    account_id = account.account.id
    heir = add_member(runtime, account, "heir@example.org", Role.ADMIN)
    mover = add_member(runtime, account, "mover@example.org", Role.MEMBER)
    leaver = add_member(runtime, account, "leaver@example.org", Role.MEMBER)
    scim_token = issue_token(runtime, account, "entra").id
    with runtime.db.session_scope() as session:
        operator = Actor.system("tests")
        server = ServerService(session, operator, runtime).create_server(account_id, ServerFields(name="Prod"))
        group = Group(account_id=account_id, display_name="Support", display_name_key="support")
        session.add(group)
        session.flush()
        server_id, group_id = server.id, group.id
        token_id = TokenService(session, runtime).account_tokens(Actor.system("tests"), account_id)[0].id
        # What was set up so far happened "a year ago", for the retention case to prune.
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.account_id == account_id)
            .values(occurred_at=utcnow() - timedelta(days=400))
            .execution_options(synchronize_session=False)
        )
    a = str(account_id)

    def printed(pattern: str) -> Callable[[str], object]:
        def read(stdout: str) -> object:
            found = re.search(pattern, stdout)
            assert found is not None, stdout
            return found.group(1)

        return read

    def created_account(stdout: str) -> int:
        return int(json.loads(stdout)["AccountID"])

    return {
        "init": [
            CliCase(
                ["init", "--account", "Globex", "--owner-email", "owner@globex.example", "--json"],
                AuditAction.ACCOUNT_CREATED,
                "account",
                created_account,
                created_account,
            )
        ],
        "accounts set-server-limit": [
            CliCase(["accounts", "set-server-limit", a, "7"], AuditAction.ACCOUNT_UPDATED, "account", a, account_id)
        ],
        "users invite": [
            CliCase(
                ["users", "invite", "--account", a, "--role", "Member", "new@example.org"],
                AuditAction.INVITATION_CREATED,
                "invitation",
                printed(r"invitation (\d+):"),
                account_id,
            )
        ],
        "accounts pause-sending": [
            CliCase(["accounts", "pause-sending", a], AuditAction.ACCOUNT_UPDATED, "account", a, account_id),
            CliCase(
                ["accounts", "pause-sending", a, "--resume"], AuditAction.ACCOUNT_UPDATED, "account", a, account_id
            ),
        ],
        "accounts transfer-ownership": [
            CliCase(
                ["accounts", "transfer-ownership", a, str(heir)],
                AuditAction.ACCOUNT_OWNERSHIP_TRANSFERRED,
                "user",
                heir,
                account_id,
            )
        ],
        "tokens allow-server-deletion": [
            CliCase(
                ["tokens", "allow-server-deletion", str(token_id)],
                AuditAction.ACCOUNT_TOKEN_UPDATED,
                "account_token",
                token_id,
                account_id,
            )
        ],
        "tokens rotate": [
            CliCase(
                ["tokens", "rotate", "--server", str(server_id)],
                AuditAction.SERVER_TOKEN_ROTATED,
                "server",
                server_id,
                account_id,
            ),
            CliCase(
                ["tokens", "rotate", "--account-token", str(token_id)],
                AuditAction.ACCOUNT_TOKEN_ROTATED,
                "account_token",
                token_id,
                account_id,
            ),
        ],
        "users set-role": [
            CliCase(
                ["users", "set-role", "--account", a, str(mover), "Technical"],
                AuditAction.MEMBERSHIP_UPDATED,
                "user",
                mover,
                account_id,
            )
        ],
        "users remove": [
            CliCase(
                ["users", "remove", "--account", a, str(leaver)],
                AuditAction.MEMBERSHIP_DELETED,
                "user",
                leaver,
                account_id,
            )
        ],
        "scim create-token": [
            CliCase(
                ["scim", "create-token", "--account", a, "okta"],
                AuditAction.SCIM_TOKEN_CREATED,
                "scim_token",
                printed(r"SCIM token (\d+) "),
                account_id,
            )
        ],
        "scim revoke-token": [
            CliCase(
                ["scim", "revoke-token", "--account", a, str(scim_token)],
                AuditAction.SCIM_TOKEN_REVOKED,
                "scim_token",
                scim_token,
                account_id,
            )
        ],
        "audit prune": [
            CliCase(
                ["audit", "prune", "--older-than-days", "365"],
                AuditAction.AUDIT_LOG_PRUNED,
                "audit_log",
                account_id,
                account_id,
            )
        ],
        "scim map-group": [
            CliCase(
                ["scim", "map-group", "--account", a, "--role", "Technical", str(group_id)],
                AuditAction.GROUP_ACCESS_UPDATED,
                "group",
                group_id,
                account_id,
            )
        ],
    }


def printed_secrets(stdout: str) -> set[str]:
    """Tokens a command printed: long words, and the secret fields of ``--json`` output."""
    found = set(re.findall(r"[\w-]{24,}", stdout))
    try:
        return found | secrets_in(json.loads(stdout))
    except ValueError:
        return found


def test_every_cli_change_writes_one_matching_event(
    database_url: str, tmp_path: Path, runtime: Runtime, account: NewAccount
) -> None:
    names = list(command_names(cli))
    cases = cli_cases(runtime, account)
    missing = sorted(set(names) - set(cases) - set(READ_ONLY_COMMANDS))
    assert not missing, f"no expected audit event (cli_cases) or reason (READ_ONLY_COMMANDS) for {missing}"
    stale = sorted((set(cases) | set(READ_ONLY_COMMANDS)) - set(names))
    assert not stale, f"cli_cases or READ_ONLY_COMMANDS name commands that do not exist: {stale}"

    env = {
        "POSTWARDEN_DATABASE_URL": database_url,
        "POSTWARDEN_DATA_DIR": str(tmp_path),
        "POSTWARDEN_SECRET_KEY": SECRET,
    }
    problems: list[str] = []
    for name, command_cases in cases.items():
        for case in command_cases:
            before = last_event_id(runtime)
            result = CliRunner().invoke(cli, case.args, env=env, catch_exceptions=False)
            label = f"postwarden {' '.join(case.args)}"
            if result.exit_code != 0:
                problems.append(f"{label}: exit {result.exit_code}: {result.output}")
                continue
            target = case.target(result.stdout) if callable(case.target) else case.target
            account_id = case.account_id(result.stdout) if callable(case.account_id) else case.account_id
            problems += event_problems(
                label,
                events_after(runtime, before),
                case.action,
                target_type=case.target_type,
                target_id=target,
                account_id=account_id,
                actor=Actor.system(f"cli: {name}"),
                secrets=printed_secrets(result.stdout),
            )
    assert not problems, "\n".join(problems)
