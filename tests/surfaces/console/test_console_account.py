"""The account page and the personal tokens page without a browser: every form as the Owner,
what a Member sees and is refused, the password asked again after 15 minutes, and that no
secret reaches a URL or the audit log."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import pyotp
from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.accounts.models import Account
from postwarden.accounts.service import AccountService, NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.groups.models import Group
from postwarden.identity import Actor
from postwarden.policy import Role
from postwarden.runtime import Runtime
from postwarden.tokens.models import AccountToken, PersonalToken, ScimToken
from postwarden.users.models import User, UserSession
from tests.conftest import create_account
from tests.surfaces.console.test_console import console_sign_in, csrf
from tests.surfaces.scim.helpers import USERS, create_group, issue_token
from tests.surfaces.team.helpers import add_member, create_server, sign_in


def post(client: TestClient, path: str, **fields: str) -> Any:
    """A console form as the browser posts it, with the CSRF token of the page's cookie."""
    return client.post(f"/console{path}", data={"csrf_token": csrf(client, "/console/account"), **fields})


def said(answer: Any) -> str:
    """The page's text as the reader sees it (quotes unescaped)."""
    return html.unescape(answer.text)


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def event_count(runtime: Runtime) -> int:
    with runtime.db.session_scope(write=False) as session:
        return len(session.scalars(select(AuditEvent.id)).all())


def assert_no_secret_in_audit(runtime: Runtime, secret: str) -> None:
    with runtime.db.session_scope(write=False) as session:
        for changes, label in session.execute(select(AuditEvent.changes, AuditEvent.target_label)):
            assert secret not in json.dumps(changes) and secret not in label


def account_row(runtime: Runtime, account: NewAccount) -> Account:
    with runtime.db.session_scope(write=False) as session:
        found = session.get(Account, account.account.id)
        assert found is not None
        session.expunge(found)
        return found


def age_password_confirmation(runtime: Runtime, email: str, minutes: int = 16) -> None:
    """As if the password was last typed ``minutes`` ago in every session of this user."""
    with runtime.db.session_scope() as session:
        user_id = session.scalar(select(User.id).where(User.email == email))
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == user_id)
            .values(password_confirmed_at=utcnow() - timedelta(minutes=minutes))
        )


def enrol_two_factor(client: TestClient, email: str, password: str) -> None:
    api = sign_in(client, email, password)
    secret = client.post("/me/two-factor", headers=api).json()["Secret"]
    confirmed = client.post("/me/two-factor/confirm", json={"Code": pyotp.TOTP(secret).now()}, headers=api)
    assert confirmed.status_code == 200, confirmed.text


def shown_secret(page: str) -> str:
    found = re.search(r'<textarea id="secret"[^>]*>([^<]+)</textarea>', page)
    assert found is not None, page
    return found.group(1)


def test_the_owner_sees_every_section_and_renames_the_account(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/account")
    assert page.status_code == 200
    for heading in ("Settings", "Sending", "Account tokens", "SCIM tokens", "SCIM groups"):
        assert f">{heading}</h2>" in page.text
    assert 'value="Acme"' in page.text and "Default" in page.text
    assert account.account_token not in page.text  # listed, not shown

    renamed = post(client, "/account/name", name="  Acme Mail ")
    assert renamed.status_code == 200 and "The account is now called “Acme Mail”." in renamed.text
    assert account_row(runtime, account).name == "Acme Mail"
    [event] = events(runtime, "account.updated")
    assert (event.via, event.target_label) == ("console", "Acme Mail")
    assert event.changes == {"name": {"before": "Acme", "after": "Acme Mail"}}

    empty = post(client, "/account/name", name="   ")
    assert empty.status_code == 422 and "The account name must be 1 to 255 characters." in empty.text
    assert account_row(runtime, account).name == "Acme Mail"


def test_requiring_two_factor_needs_the_owners_own_and_asks_for_the_password(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    console_sign_in(client, account.owner_email, account.owner_password)
    assert 'href="/console/two-factor">Set it up for yourself</a>' in client.get("/console/account").text
    refused = post(client, "/account/two-factor", require_two_factor="on")
    assert refused.status_code == 422 and "Set up two-factor authentication for yourself" in refused.text
    assert account_row(runtime, account).require_two_factor is False

    enrol_two_factor(client, account.owner_email, account.owner_password)
    required = post(client, "/account/two-factor", require_two_factor="on")
    assert "Two-factor authentication is required of every member." in required.text
    assert account_row(runtime, account).require_two_factor is True
    assert re.search(r'id="require-two-factor"[^>]* checked', required.text)

    age_password_confirmation(runtime, account.owner_email)
    asked = post(client, "/account/two-factor")  # the box unticked
    assert "Confirm your password" in asked.text and "change who must use two-factor authentication" in asked.text
    assert account_row(runtime, account).require_two_factor is True
    released = post(client, "/account/two-factor", current_password=account.owner_password)
    assert "Two-factor authentication is not required." in released.text
    assert account_row(runtime, account).require_two_factor is False
    assert [event.changes for event in events(runtime, "account.updated")] == [
        {"require_two_factor": {"before": False, "after": True}},
        {"require_two_factor": {"before": True, "after": False}},
    ]


def test_the_sending_status_is_shown_with_the_operators_command(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    console_sign_in(client, account.owner_email, account.owner_password)
    assert "Mail for this account is sent." in client.get("/console/account").text
    with runtime.db.session_scope() as session:
        AccountService(session, Actor.system("tests"), runtime).set_sending_paused(account.account.id, paused=True)
    page = client.get("/console/account").text
    assert "No mail leaves for this account" in page
    assert f"postwarden accounts pause-sending {account.account.id}" in page and "--resume" in page
    sending = page[page.index('aria-labelledby="sending-heading"') :].split("</section>")[0]
    assert "<form" not in sending  # nothing here changes it


def test_revealing_an_account_token_shows_it_and_records_one_event_per_click(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    with runtime.db.session_scope(write=False) as session:
        token_id = session.scalars(select(AccountToken.id).where(AccountToken.account_id == account.account.id)).one()
    console_sign_in(client, account.owner_email, account.owner_password)
    assert f'action="/console/account/tokens/{token_id}/reveal"' in client.get("/console/account").text
    for clicks in (1, 2):
        revealed = post(client, f"/account/tokens/{token_id}/reveal")
        assert revealed.status_code == 200 and shown_secret(revealed.text) == account.account_token
        assert account.account_token not in str(revealed.url)
        viewed = events(runtime, "account_token.viewed")
        assert len(viewed) == clicks
        assert (viewed[-1].via, viewed[-1].target_label, viewed[-1].changes) == ("console", "Default", {})
    assert_no_secret_in_audit(runtime, account.account_token)

    other = create_account(runtime, "Other")
    with runtime.db.session_scope(write=False) as session:
        foreign = session.scalars(select(AccountToken.id).where(AccountToken.account_id == other.account.id)).one()
    elsewhere = post(client, f"/account/tokens/{foreign}/reveal")
    assert elsewhere.status_code == 404 and other.account_token not in elsewhere.text
    assert len(events(runtime, "account_token.viewed")) == 2


def test_a_scim_token_is_shown_once_works_and_is_revoked_after_confirming(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    console_sign_in(client, account.owner_email, account.owner_password)
    created = post(client, "/account/scim-tokens", name="Okta")
    assert created.status_code == 200 and "Copy it now." in created.text
    secret = shown_secret(created.text)
    assert secret.startswith("pwscim_") and str(created.url).endswith("/console/account/scim-tokens")
    headers = {"Authorization": f"Bearer {secret}"}
    assert client.get(USERS, headers=headers).status_code == 200
    listing = client.get("/console/account").text
    assert "Okta" in listing and secret not in listing
    assert [e.target_label for e in events(runtime, "scim_token.created")] == ["Okta"]
    assert_no_secret_in_audit(runtime, secret)

    nameless = post(client, "/account/scim-tokens", name=" ")
    assert nameless.status_code == 422 and "'Name' must be 1 to 100 characters." in said(nameless)

    with runtime.db.session_scope(write=False) as session:
        token_id = session.scalars(select(ScimToken.id).where(ScimToken.name == "Okta")).one()
    confirm = client.get(f"/console/account/scim-tokens/{token_id}/revoke")
    assert "Revoke the SCIM token “Okta”?" in confirm.text
    assert client.get(USERS, headers=headers).status_code == 200  # asking changed nothing
    revoked = post(client, f"/account/scim-tokens/{token_id}/revoke")
    assert "SCIM token “Okta” revoked." in revoked.text and "Okta</td>" not in revoked.text
    assert client.get(USERS, headers=headers).status_code == 401
    assert [e.target_label for e in events(runtime, "scim_token.revoked")] == ["Okta"]
    again = post(client, f"/account/scim-tokens/{token_id}/revoke")
    assert again.status_code == 404 and "was not found" in again.text


def test_a_groups_role_and_server_access_are_set_from_its_form(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    production = create_server(client, account, "Production")
    staging = create_server(client, account, "Staging")
    group_id = int(create_group(client, issue_token(runtime, account).headers, "Support")["id"].removeprefix("g"))
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/account").text
    assert "Support" in page and f'name="server-{staging}"' in page and '<option value="none" selected>' in page

    saved = post(client, f"/account/groups/{group_id}", role="Technical", **{f"server-{production}": "ViewOnly"})
    assert saved.status_code == 200 and "Saved what the group “Support” grants." in saved.text
    assert "Role: Technical." in saved.text and "Production (View only)" in saved.text
    api = client.get(f"/scim-groups/{group_id}", headers={"X-Postmark-Account-Token": account.account_token}).json()
    assert api["Role"] == "Technical" and api["Servers"] == [{"ServerID": production, "Access": "ViewOnly"}]
    [event] = events(runtime, "group.access_updated")
    assert (event.via, event.target_label) == ("console", "Support")

    owner = post(client, f"/account/groups/{group_id}", role="Owner")
    assert owner.status_code == 422 and "ownership passes only by transfer" in owner.text
    cleared = post(client, f"/account/groups/{group_id}", role="none", **{f"server-{staging}": "NoAccess"})
    assert "Role: none." in cleared.text
    with runtime.db.session_scope(write=False) as session:
        assert session.scalar(select(Group.role).where(Group.id == group_id)) is None
    unknown = post(client, f"/account/groups/{group_id}", role="none", **{f"server-{production}": "Everything"})
    assert unknown.status_code == 422 and "Unknown server access 'Everything'" in said(unknown)


def test_personal_tokens_are_created_narrowed_listed_and_revoked(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Production")
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/tokens").text
    assert "You have no personal token in this account." in page and 'name="scope:servers:read"' in page

    created = client.post(
        "/console/tokens",
        data={
            "csrf_token": csrf(client, "/console/tokens"),
            "name": "deploy",
            "expires_days": "30",
            "scope:servers:read": "on",
            f"server-{server_id}": "on",
        },
    )
    assert created.status_code == 200 and "Copy it now." in created.text
    secret = shown_secret(created.text)
    assert secret.startswith("pw_") and str(created.url).endswith("/console/tokens")
    with runtime.db.session_scope(write=False) as session:
        token = session.scalars(select(PersonalToken).where(PersonalToken.name == "deploy")).one()
        assert token.scopes == ["servers:read"] and token.server_ids == [server_id]
        assert token.expires_at is not None
        assert timedelta(days=29) < token.expires_at - utcnow() <= timedelta(days=30)
        token_id = token.id
    listing = client.get("/console/tokens").text
    row = listing[listing.index("<td>deploy</td>") :].split("</tr>")[0]
    assert "servers:read" in row and "Production" in row and "never" in row  # not used yet
    assert secret not in listing
    assert_no_secret_in_audit(runtime, secret)

    for fields, message in (
        ({"name": "  "}, "'Name' must be 1 to 100 characters."),
        ({"name": "x", "expires_days": "0"}, "'Expires in' must be a whole number of days"),
        ({"name": "x", "scope:servers:explode": "on"}, "Unknown scope 'servers:explode'"),
    ):
        refused = client.post("/console/tokens", data={"csrf_token": csrf(client, "/console/tokens"), **fields})
        assert refused.status_code == 422 and message in said(refused)
    with runtime.db.session_scope(write=False) as session:
        assert len(session.scalars(select(PersonalToken.id)).all()) == 1

    assert "Revoke your personal token “deploy”?" in client.get(f"/console/tokens/{token_id}/revoke").text
    revoked = client.post(f"/console/tokens/{token_id}/revoke", data={"csrf_token": csrf(client, "/console/tokens")})
    assert "Personal token “deploy” revoked." in revoked.text and "<td>deploy</td>" not in revoked.text
    assert [e.target_label for e in events(runtime, "personal_token.revoked")] == ["deploy"]


def test_a_member_sees_no_admin_sections_and_crafted_posts_are_refused(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Production")
    scim = issue_token(runtime, account)
    group_id = int(create_group(client, scim.headers, "Support")["id"].removeprefix("g"))
    with runtime.db.session_scope(write=False) as session:
        token_id = session.scalars(select(AccountToken.id).where(AccountToken.account_id == account.account.id)).one()
    add_member(runtime, account, "member@example.org", Role.MEMBER)
    console_sign_in(client, "member@example.org")
    page = client.get("/console/account")
    assert page.status_code == 200 and "<strong>Account name:</strong> Acme" in page.text
    for hidden in ("Account tokens", "SCIM tokens", "SCIM groups", "/account/name", "/account/two-factor", "Reveal"):
        assert hidden not in page.text

    before = event_count(runtime)
    for path, fields in (
        ("/account/name", {"name": "Taken over"}),
        ("/account/two-factor", {"require_two_factor": "on"}),
        (f"/account/tokens/{token_id}/reveal", {}),
        ("/account/scim-tokens", {"name": "mine"}),
        (f"/account/scim-tokens/{scim.id}/revoke", {}),
        (f"/account/groups/{group_id}", {"role": "Admin", f"server-{server_id}": "FullAccess"}),
    ):
        refused = post(client, path, **fields)
        assert refused.status_code == 403, path
        assert account.account_token not in refused.text and "pwscim_" not in refused.text
    assert client.get(f"/console/account/scim-tokens/{scim.id}/revoke").status_code == 403
    assert event_count(runtime) == before
    assert account_row(runtime, account).name == "Acme"
    with runtime.db.session_scope(write=False) as session:
        assert session.scalar(select(Group.role).where(Group.id == group_id)) is None
        assert session.scalars(select(ScimToken.revoked_at)).all() == [None]
    assert client.get(USERS, headers=scim.headers).status_code == 200

    mine = client.post("/console/tokens", data={"csrf_token": csrf(client, "/console/tokens"), "name": "laptop"})
    assert mine.status_code == 200 and shown_secret(mine.text).startswith("pw_")  # every member has their own


def test_after_fifteen_minutes_a_wrong_password_is_refused_and_the_right_one_goes_on(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    console_sign_in(client, account.owner_email, account.owner_password)
    age_password_confirmation(runtime, account.owner_email)
    for path in ("/console/account/scim-tokens", "/console/tokens"):
        asked = client.post(path, data={"csrf_token": csrf(client, "/console/account"), "name": "later"})
        assert asked.status_code == 200 and "Confirm your password" in asked.text
        assert f'action="{path}"' in asked.text and 'name="name" value="later"' in asked.text
    with runtime.db.session_scope(write=False) as session:
        token_id = session.scalars(select(AccountToken.id)).one()
    asked = post(client, f"/account/tokens/{token_id}/reveal")
    assert "reveal an account token" in asked.text and account.account_token not in asked.text
    assert events(runtime, "account_token.viewed") == []

    wrong = post(client, "/account/scim-tokens", name="later", current_password="not it at all")
    assert wrong.status_code == 401 and "That is not your password." in wrong.text and "pwscim_" not in wrong.text
    with runtime.db.session_scope(write=False) as session:
        assert session.scalars(select(ScimToken.id)).all() == []
    right = post(client, "/account/scim-tokens", name="later", current_password=account.owner_password)
    assert right.status_code == 200 and shown_secret(right.text).startswith("pwscim_")
    revealed = post(client, f"/account/tokens/{token_id}/reveal")  # confirmed just now: not asked again
    assert shown_secret(revealed.text) == account.account_token
    assert len(events(runtime, "account_token.viewed")) == 1
