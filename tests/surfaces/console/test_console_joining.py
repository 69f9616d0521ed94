"""Joining through the mailed link's console page, setting up two-factor authentication (and
being sent there when the account requires it), and moving between one's accounts."""

from __future__ import annotations

import html
import re

import pyotp
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.policy import Role
from postwarden.runtime import Runtime
from tests.conftest import create_account
from tests.surfaces.console.test_console import console_sign_in, csrf
from tests.surfaces.team.helpers import PASSWORD, add_member
from tests.surfaces.team.test_invitations_and_account import invite, links_for

NEW_PASSWORD = "a long new password"


def console_link(runtime: Runtime, account: NewAccount, email: str) -> str:
    (link,) = links_for(runtime, account.account.id, email)
    return f"/console{link}"


def actions_via_console(runtime: Runtime) -> list[str]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.via == "console")))


def test_the_mailed_link_opens_a_form_and_the_new_member_arrives_signed_in(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    invite(client, account, ["dana@example.com"], role=Role.TECHNICAL.value)
    link = console_link(runtime, account, "dana@example.com")
    page = client.get(link)
    assert page.status_code == 200
    assert "dana@example.com" in page.text and "Acme" in page.text and "Technical" in page.text
    assert 'for="name"' in page.text and 'for="password"' in page.text
    token = csrf(client, link)
    short = client.post(link, data={"csrf_token": token, "name": "Dana", "password": "short"})
    assert short.status_code == 422 and 'role="alert"' in short.text and 'value="Dana"' in short.text
    joined = client.post(link, data={"csrf_token": token, "name": "Dana", "password": NEW_PASSWORD})
    assert joined.status_code == 200 and str(joined.url).endswith("/console/servers")
    assert "dana@example.com" in joined.text and "Sign out" in joined.text
    assert {"invitation.accepted", "session.created"} <= set(actions_via_console(runtime))
    again = client.get(link)
    assert again.status_code == 404 and "not valid" in again.text and "<form" not in again.text


def test_an_existing_login_joins_with_its_own_password(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    other = create_account(runtime, "Other")
    add_member(runtime, other, "dana@example.com", Role.ADMIN)
    invite(client, account, ["dana@example.com"])
    link = console_link(runtime, account, "dana@example.com")
    page = client.get(link).text
    assert "already has a login" in page and 'id="name"' not in page
    token = csrf(client, link)
    wrong = client.post(link, data={"csrf_token": token, "password": "not her password"})
    assert wrong.status_code == 401 and 'role="alert"' in wrong.text
    assert "enter its password to join this account" in html.unescape(wrong.text)  # the service's refusal
    joined = client.post(link, data={"csrf_token": token, "password": PASSWORD})
    assert str(joined.url).endswith("/console/servers")


def test_a_required_second_factor_sends_members_to_set_it_up_first(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    with runtime.db.session_scope() as session:
        from postwarden.accounts.models import Account

        session.get_one(Account, account.account.id).require_two_factor = True
    add_member(runtime, account, "member@example.org", Role.MEMBER)
    console_sign_in(client, "member@example.org")
    sent = client.get("/console/users", follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, "/console/two-factor")
    page = client.get("/console/two-factor").text
    assert "This account requires two-factor authentication." in page
    assert 'src="data:image/svg+xml' in page
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page)
    assert secret is not None
    token = csrf(client, "/console/two-factor")
    wrong = client.post("/console/two-factor", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 422 and "not valid" in wrong.text
    done = client.post("/console/two-factor", data={"csrf_token": token, "code": pyotp.TOTP(secret.group(1)).now()})
    assert "Keep these recovery codes" in done.text
    assert len(re.findall(r"<li><code>[0-9a-f]{5}-[0-9a-f]{5}</code></li>", done.text)) == 10
    assert client.get("/console/users", follow_redirects=False).status_code == 200
    assert "user.two_factor_enabled" in actions_via_console(runtime)


def test_two_factor_can_be_turned_off_with_the_password(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/two-factor").text
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page)
    assert secret is not None
    token = csrf(client, "/console/two-factor")
    code = pyotp.TOTP(secret.group(1)).now()
    client.post("/console/two-factor", data={"csrf_token": token, "code": code})
    assert "is <strong>on</strong>" in client.get("/console/two-factor").text
    wrong = client.post("/console/two-factor/disable", data={"csrf_token": token, "password": "nope"})
    assert wrong.status_code == 422 and "stays on" in wrong.text
    off = client.post("/console/two-factor/disable", data={"csrf_token": token, "password": account.owner_password})
    assert "Two-factor authentication is off." in off.text
    assert actions_via_console(runtime).count("user.two_factor_disabled") == 1
    client.post("/console/sign-out", data={"csrf_token": token})
    console_sign_in(client, account.owner_email, account.owner_password)  # no code asked any more


def test_people_in_several_accounts_switch_between_them(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    other = create_account(runtime, "Other")
    add_member(runtime, other, "both@example.org", Role.ADMIN)
    add_member(runtime, account, "both@example.org", Role.MEMBER)
    console_sign_in(client, "both@example.org")
    page = client.get("/console/accounts").text
    assert "Acme" in page and "Other" in page and "Current" in page
    token = csrf(client, "/console/accounts")
    moved = client.post(f"/console/accounts/{other.account.id}/switch", data={"csrf_token": token})
    assert str(moved.url).endswith("/console/servers")
    assert "Audit log" in moved.text  # an Admin there
    stranger = create_account(runtime, "Stranger")
    refused = client.post(f"/console/accounts/{stranger.account.id}/switch", data={"csrf_token": token})
    assert refused.status_code == 403
    with runtime.db.session_scope(write=False) as session:
        events = session.execute(
            select(AuditEvent.action, AuditEvent.account_id).where(
                AuditEvent.via == "console", AuditEvent.action.in_(["session.created", "session.revoked"])
            )
        ).all()
    assert sorted(events) == sorted(
        [
            ("session.created", account.account.id),
            ("session.revoked", account.account.id),
            ("session.created", other.account.id),
        ]
    )
