"""Every console form that changes something writes exactly one audit event of the expected
action, through the console, by the signed-in person (or the link's holder), about the
expected target, with no secret of the form in its changes.

The routes are read from the console itself: a new form without a case here fails the test.
Each case is driven as a browser would (real HTTP, cookies, the CSRF token of the page that
shows the form).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import pyotp
from sqlalchemy import select

from postwarden.accounts.models import Account
from postwarden.accounts.service import NewAccount
from postwarden.app import create_app
from postwarden.audit import AuditAction
from postwarden.config import Settings
from postwarden.db import utcnow
from postwarden.groups.models import Group
from postwarden.invitations.models import Invitation
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.tokens.models import AccountToken, PersonalToken
from postwarden.users.models import PasswordReset, User
from tests.conftest import LiveServer, create_account, run_live_server
from tests.surfaces.scim.helpers import issue_token
from tests.surfaces.team.helpers import LINK, PASSWORD, add_member, create_server, next_code, sign_in
from tests.surfaces.test_audit_coverage import events_after, last_event_id, mounted_routes, scalar

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: A secret a page shows (a token just created or revealed).
SHOWN_SECRET = re.compile(r'<textarea id="secret"[^>]*>([^<]+)</textarea>')
#: ``Step.account_id`` of events that concern a login, not one account (a forgotten password).
NO_ACCOUNT = 0
#: Stands in a case's fields for the Owner's password, made when the account is.
OWNER_PASSWORD = "<the owner's password>"


@dataclass(frozen=True)
class Step:
    """One form to post: where, with what, and the event it must write."""

    url: str
    fields: dict[str, str]
    target: str
    actor: str
    #: The page that shows the form (its CSRF token); the form's own URL when it has a page.
    shown_on: str
    #: The event's account when not the test's own; ``NO_ACCOUNT`` for a login's own events.
    account_id: int | None = None
    #: Values that must not appear in any event's changes (besides the form's secret fields).
    secrets: set[str] = field(default_factory=set)


@dataclass
class World:
    runtime: Runtime
    account: NewAccount
    live: LiveServer

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.live.base_url, timeout=30, follow_redirects=True)

    def signed_in(self, email: str, password: str = PASSWORD) -> httpx.Client:
        browser = self.browser()
        page = browser.get("/console/sign-in")
        answer = browser.post(
            "/console/sign-in", data={"csrf_token": csrf_of(page), "email": email, "password": password}
        )
        assert urlsplit(str(answer.url)).path == "/console/servers", answer.text
        return browser

    def owner(self) -> httpx.Client:
        return self.signed_in(self.account.owner_email, self.account.owner_password)

    def member(self, email: str, role: Role = Role.MEMBER) -> int:
        add_member(self.runtime, self.account, email, role)
        return scalar(self.runtime, select(User.id).where(User.email == email))

    def server(self, name: str) -> int:
        with httpx.Client(base_url=self.live.base_url, timeout=30) as api:
            return create_server(api, self.account, name)

    def signed_in_with_code(self, email: str, secret: str, used: str) -> httpx.Client:
        browser = self.browser()
        page = browser.get("/console/sign-in")
        browser.post("/console/sign-in", data={"csrf_token": csrf_of(page), "email": email, "password": PASSWORD})
        page = browser.get("/console/sign-in/two-factor")
        answer = browser.post(
            "/console/sign-in/two-factor", data={"csrf_token": csrf_of(page), "code": next_code(secret, after=used)}
        )
        assert urlsplit(str(answer.url)).path == "/console/servers", answer.text
        return browser

    def with_two_factor(self, email: str, role: Role = Role.ADMIN) -> tuple[str, str]:
        """A member with a second factor; the secret and the code spent on it."""
        self.member(email, role)
        with httpx.Client(base_url=self.live.base_url, timeout=30) as client:
            headers = sign_in(client, email)
            secret = client.post("/me/two-factor", headers=headers).json()["Secret"]
            used = pyotp.TOTP(secret).now()
            assert client.post("/me/two-factor/confirm", json={"Code": used}, headers=headers).status_code == 200
        return secret, used

    def invite(self, browser: httpx.Client, email: str) -> int:
        page = browser.get("/console/users")
        browser.post(
            "/console/users/invite",
            data={"csrf_token": csrf_of(page), "emails": email, "role": Role.MEMBER.value},
        )
        return scalar(
            self.runtime,
            select(Invitation.id).where(Invitation.email == email, Invitation.accepted_at.is_(None)),
        )


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found is not None, page.text
    return found.group(1)


Case = Callable[[World], tuple[httpx.Client, Step]]


# --- signing in and out, joining, one's own second factor and accounts --------------------


def sign_in_form(world: World) -> tuple[httpx.Client, Step]:
    owner = world.account.owner_email
    return world.browser(), Step(
        "/sign-in", {"email": owner, "password": world.account.owner_password}, owner, owner, "/sign-in"
    )


def second_factor_form(world: World) -> tuple[httpx.Client, Step]:
    secret, used = world.with_two_factor("second-factor@example.org")
    browser = world.browser()
    page = browser.get("/console/sign-in")
    browser.post(
        "/console/sign-in",
        data={"csrf_token": csrf_of(page), "email": "second-factor@example.org", "password": PASSWORD},
    )
    who = "second-factor@example.org"
    return browser, Step(
        "/sign-in/two-factor", {"code": next_code(secret, after=used)}, who, who, "/sign-in/two-factor"
    )


def sign_out_form(world: World) -> tuple[httpx.Client, Step]:
    owner = world.account.owner_email
    return world.owner(), Step("/sign-out", {}, owner, owner, "/servers")


def accept_form(world: World) -> tuple[httpx.Client, Step]:
    world.invite(world.owner(), "joiner@example.org")
    with world.runtime.db.session_scope(write=False) as session:
        from postwarden.mail.models import OutboxMessage

        body = session.scalars(
            select(OutboxMessage.text_body).where(OutboxMessage.to_address == "joiner@example.org")
        ).all()[-1]
    found = LINK.search(body)
    assert found is not None, body
    url = found.group(1)
    who = "joiner@example.org"
    return world.browser(), Step(url, {"name": "Joiner", "password": "a long password"}, who, who, url)


def enrol_form(world: World) -> tuple[httpx.Client, Step]:
    world.member("enrolling@example.org")
    browser = world.signed_in("enrolling@example.org")
    page = browser.get("/console/two-factor")
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page.text)
    assert secret is not None, page.text
    who = "enrolling@example.org"
    return browser, Step("/two-factor", {"code": pyotp.TOTP(secret.group(1)).now()}, who, who, "/two-factor")


def disable_form(world: World) -> tuple[httpx.Client, Step]:
    secret, used = world.with_two_factor("disabling@example.org", Role.MEMBER)
    who = "disabling@example.org"
    browser = world.signed_in_with_code(who, secret, used)
    return browser, Step("/two-factor/disable", {"password": PASSWORD}, who, who, "/two-factor")


def switch_form(world: World) -> tuple[httpx.Client, Step]:
    other = create_account(world.runtime, "Elsewhere")
    add_member(world.runtime, other, "traveller@example.org", Role.ADMIN)
    world.member("traveller@example.org")
    who = "traveller@example.org"
    return world.signed_in(who), Step(
        f"/accounts/{other.account.id}/switch", {}, who, who, "/accounts", account_id=other.account.id
    )


def forgot_form(world: World) -> tuple[httpx.Client, Step]:
    who = "forgetful@example.org"
    world.member(who)
    return world.browser(), Step("/forgot-password", {"email": who}, who, who, "/forgot-password", NO_ACCOUNT)


def reset_form(world: World) -> tuple[httpx.Client, Step]:
    """A member of their own (a reset ends every session of the login)."""
    who = "resetting@example.org"
    user = world.member(who)
    token = secrets.token_hex(32)
    with world.runtime.db.session_scope() as session:
        session.add(
            PasswordReset(
                user_id=user,
                token_digest=world.runtime.keyring.digest(token),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    fields = {"new_password": "a new long password", "repeat_password": "a new long password"}
    url = f"/reset-password/{token}"
    return world.browser(), Step(url, fields, who, who, url, NO_ACCOUNT, secrets={token})


# --- people --------------------------------------------------------------------------------


def invite_form(world: World) -> tuple[httpx.Client, Step]:
    owner = world.account.owner_email
    fields = {"emails": "console-invitee@example.org", "role": Role.MEMBER.value}
    return world.owner(), Step("/users/invite", fields, "console-invitee@example.org", owner, "/users")


def invitation_form(verb: str) -> Case:
    def case(world: World) -> tuple[httpx.Client, Step]:
        browser, email = world.owner(), f"pending-{verb}@example.org"
        invitation = world.invite(browser, email)
        owner = world.account.owner_email
        return browser, Step(f"/invitations/{invitation}/{verb}", {}, email, owner, "/users")

    return case


def member_form(suffix: str, fields: dict[str, str], role: Role = Role.MEMBER) -> Case:
    def case(world: World) -> tuple[httpx.Client, Step]:
        world.server(f"For {suffix}")
        email = f"edited-{suffix.replace('-', '')}@example.org"
        member = world.member(email, role)
        owner = world.account.owner_email
        return world.owner(), Step(f"/users/{member}/{suffix}", fields, email, owner, f"/users/{member}")

    return case


# --- servers --------------------------------------------------------------------------------


def server_form(suffix: str, fields: dict[str, str], target: str | None = None, *, pinned: bool = False) -> Case:
    def case(world: World) -> tuple[httpx.Client, Step]:
        name = f"Server {suffix.replace('-', ' ')}"
        server = world.server(name)
        browser, owner = world.owner(), world.account.owner_email
        if pinned:
            page = browser.get("/console/servers")
            browser.post(f"/console/servers/{server}/pin", data={"csrf_token": csrf_of(page)})
        return browser, Step(f"/servers/{server}/{suffix}", fields, target or name, owner, f"/servers/{server}")

    return case


# --- the account and tokens -------------------------------------------------------------------


def rename_form(world: World) -> tuple[httpx.Client, Step]:
    owner = world.account.owner_email
    return world.owner(), Step("/account/name", {"name": "Acme Renamed"}, "Acme Renamed", owner, "/account")


def require_two_factor_form(world: World) -> tuple[httpx.Client, Step]:
    """Turning the requirement off (on, it would send every later case's people to set it up)."""
    secret, used = world.with_two_factor("requirer@example.org")
    browser = world.signed_in_with_code("requirer@example.org", secret, used)
    with world.runtime.db.session_scope() as session:
        session.get_one(Account, world.account.account.id).require_two_factor = True
    name = scalar(world.runtime, select(Account.name).where(Account.id == world.account.account.id))
    return browser, Step("/account/two-factor", {}, name, "requirer@example.org", "/account")


def reveal_account_token_form(world: World) -> tuple[httpx.Client, Step]:
    token = scalar(world.runtime, select(AccountToken.id).where(AccountToken.account_id == world.account.account.id))
    owner = world.account.owner_email
    step = Step(
        f"/account/tokens/{token}/reveal", {}, "Default", owner, "/account", secrets={world.account.account_token}
    )
    return world.owner(), step


def create_scim_token_form(world: World) -> tuple[httpx.Client, Step]:
    owner = world.account.owner_email
    return world.owner(), Step("/account/scim-tokens", {"name": "Okta console"}, "Okta console", owner, "/account")


def revoke_scim_token_form(world: World) -> tuple[httpx.Client, Step]:
    token = issue_token(world.runtime, world.account, "Entra console")
    url, owner = f"/account/scim-tokens/{token.id}/revoke", world.account.owner_email
    return world.owner(), Step(url, {}, "Entra console", owner, url, secrets={token.plaintext})


def group_form(world: World) -> tuple[httpx.Client, Step]:
    with world.runtime.db.session_scope() as session:
        group = Group(account_id=world.account.account.id, display_name="Engineers", display_name_key="engineers")
        session.add(group)
        session.flush()
        group_id = group.id
    owner = world.account.owner_email
    fields = {"role": Role.TECHNICAL.value}
    return world.owner(), Step(f"/account/groups/{group_id}", fields, "Engineers", owner, "/account")


def create_personal_token_form(world: World) -> tuple[httpx.Client, Step]:
    owner = world.account.owner_email
    return world.owner(), Step("/tokens", {"name": "laptop", "expires_days": "30"}, "laptop", owner, "/tokens")


def revoke_personal_token_form(world: World) -> tuple[httpx.Client, Step]:
    browser = world.owner()
    page = browser.get("/console/tokens")
    browser.post("/console/tokens", data={"csrf_token": csrf_of(page), "name": "old laptop"})
    token = scalar(world.runtime, select(PersonalToken.id).where(PersonalToken.name == "old laptop"))
    url, owner = f"/tokens/{token}/revoke", world.account.owner_email
    return browser, Step(url, {}, "old laptop", owner, url)


CASES: dict[tuple[str, str], tuple[AuditAction, Case]] = {
    ("POST", "/sign-in"): (AuditAction.SESSION_CREATED, sign_in_form),
    ("POST", "/sign-in/two-factor"): (AuditAction.SESSION_CREATED, second_factor_form),
    ("POST", "/sign-out"): (AuditAction.SESSION_REVOKED, sign_out_form),
    ("POST", "/invitations/accept/{token}"): (AuditAction.INVITATION_ACCEPTED, accept_form),
    ("POST", "/two-factor"): (AuditAction.USER_TWO_FACTOR_ENABLED, enrol_form),
    ("POST", "/two-factor/disable"): (AuditAction.USER_TWO_FACTOR_DISABLED, disable_form),
    ("POST", "/accounts/{account_id:int}/switch"): (AuditAction.SESSION_CREATED, switch_form),
    ("POST", "/forgot-password"): (AuditAction.USER_PASSWORD_RESET_REQUESTED, forgot_form),
    ("POST", "/reset-password/{token}"): (AuditAction.USER_PASSWORD_RESET, reset_form),
    ("POST", "/users/invite"): (AuditAction.INVITATION_CREATED, invite_form),
    ("POST", "/invitations/{invitation_id:int}/resend"): (AuditAction.INVITATION_RESENT, invitation_form("resend")),
    ("POST", "/invitations/{invitation_id:int}/revoke"): (AuditAction.INVITATION_REVOKED, invitation_form("revoke")),
    ("POST", "/users/{user_id:int}/role"): (
        AuditAction.MEMBERSHIP_UPDATED,
        member_form("role", {"role": Role.TECHNICAL.value}),
    ),
    ("POST", "/users/{user_id:int}/servers"): (
        AuditAction.SERVER_ACCESS_UPDATED,
        member_form("servers", {"all_servers": ServerAccess.VIEW.value}),
    ),
    ("POST", "/users/{user_id:int}/delete"): (
        AuditAction.MEMBERSHIP_DELETED,
        member_form("delete", {"current_password": OWNER_PASSWORD}),
    ),
    ("POST", "/servers/{server_id:int}/pin"): (AuditAction.SERVER_PINNED, server_form("pin", {})),
    ("POST", "/servers/{server_id:int}/unpin"): (AuditAction.SERVER_UNPINNED, server_form("unpin", {}, pinned=True)),
    ("POST", "/servers/{server_id:int}/settings"): (
        AuditAction.SERVER_UPDATED,
        server_form("settings", {"name": "Renamed server", "smtp_api_activated": "on"}, "Renamed server"),
    ),
    ("POST", "/servers/{server_id:int}/reveal-tokens"): (
        AuditAction.SERVER_TOKEN_VIEWED,
        server_form("reveal-tokens", {}),
    ),
    ("POST", "/servers/{server_id:int}/delete"): (
        AuditAction.SERVER_DELETED,
        server_form("delete", {"current_password": OWNER_PASSWORD}),
    ),
    ("POST", "/account/name"): (AuditAction.ACCOUNT_UPDATED, rename_form),
    ("POST", "/account/two-factor"): (AuditAction.ACCOUNT_UPDATED, require_two_factor_form),
    ("POST", "/account/tokens/{token_id:int}/reveal"): (AuditAction.ACCOUNT_TOKEN_VIEWED, reveal_account_token_form),
    ("POST", "/account/scim-tokens"): (AuditAction.SCIM_TOKEN_CREATED, create_scim_token_form),
    ("POST", "/account/scim-tokens/{token_id:int}/revoke"): (AuditAction.SCIM_TOKEN_REVOKED, revoke_scim_token_form),
    ("POST", "/account/groups/{group_id:int}"): (AuditAction.GROUP_ACCESS_UPDATED, group_form),
    ("POST", "/tokens"): (AuditAction.PERSONAL_TOKEN_CREATED, create_personal_token_form),
    ("POST", "/tokens/{token_id:int}/revoke"): (AuditAction.PERSONAL_TOKEN_REVOKED, revoke_personal_token_form),
    # Last: the Owner is an Admin afterwards.
    ("POST", "/users/{user_id:int}/make-owner"): (
        AuditAction.ACCOUNT_OWNERSHIP_TRANSFERRED,
        member_form("make-owner", {}, Role.ADMIN),
    ),
}
#: Form fields whose values are secrets: never in an event's changes.
SECRET_FIELDS = ("password", "current_password", "code", "new_password", "repeat_password")


def test_every_console_change_writes_one_matching_event(
    settings: Settings, runtime: Runtime, account: NewAccount
) -> None:
    app = create_app(settings, runtime=runtime)
    mutating = sorted(
        (method, route.path)
        for route in mounted_routes(app, "/console")
        for method in (route.methods or set()) - {"GET", "HEAD"}
    )
    assert sorted(CASES) == mutating, (
        f"console forms without a case: {set(mutating) - set(CASES)}; stale cases: {set(CASES) - set(mutating)}"
    )
    problems: list[str] = []
    for live in run_live_server(app, runtime):
        world = World(runtime, account, live)
        for (method, path), (action, case) in CASES.items():
            label = f"{method} {path}"
            browser, step = case(world)
            typed = {k: account.owner_password if v == OWNER_PASSWORD else v for k, v in step.fields.items()}
            step = replace(step, fields=typed)
            try:
                page = browser.get(f"/console{step.shown_on}")
                fields = {"csrf_token": csrf_of(page), **step.fields}
                before = last_event_id(runtime)
                answer = browser.post(f"/console{step.url}", data=fields)
            finally:
                browser.close()
            if answer.status_code != 200 or "Confirm your password" in answer.text:
                problems.append(f"{label}: answered {answer.status_code} at {answer.url}")
                continue
            events = events_after(runtime, before)
            found = [event for event in events if event.action == action.value]
            if len(found) != 1:
                problems.append(f"{label}: {len(found)} events {action.value} ({[e.action for e in events]})")
                continue
            event = found[0]
            seen = (event.via, event.actor_label, event.target_label, event.account_id)
            expected_account = None if step.account_id == NO_ACCOUNT else step.account_id or account.account.id
            wanted = ("console", step.actor, step.target, expected_account)
            if seen != wanted:
                problems.append(f"{label}: recorded {seen}, expected {wanted}")
            hidden = {value for name, value in step.fields.items() if name in SECRET_FIELDS} | step.secrets
            hidden |= set(SHOWN_SECRET.findall(answer.text))  # a token the answer shows once
            for leaked in (s for s in hidden for e in events if s and s in json.dumps(e.changes)):
                problems.append(f"{label}: a secret of the form is in the recorded changes: {leaked[:4]}…")
    assert not problems, "\n".join(problems)
