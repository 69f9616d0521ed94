"""Forgotten passwords in the console: the link goes through the real queue to a real SMTP
server (aiosmtpd) and back; it works once, for an hour, ends every session and opens none;
asking tells nobody whether an address has a login."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.mail.models import OutboxMessage
from postwarden.policy import Role
from postwarden.runtime import Runtime
from postwarden.users.models import PasswordReset, UserSession
from postwarden.users.password_reset import MAX_REQUESTS_PER_ADDRESS, MAX_REQUESTS_PER_IP
from tests.services.test_mail import Inbox, smtp
from tests.surfaces.console.test_console import console_sign_in, csrf
from tests.surfaces.postmark.test_senders import deliver_all, text_of
from tests.surfaces.team.helpers import PASSWORD, add_member, sign_in

__all__ = ["smtp"]  # the fixture, found by pytest through this import

LINK = re.compile(r"http://postwarden\.test(/console/reset-password/([0-9a-f]{64}))")
NEW_PASSWORD = "a brand new passphrase"
SENT = "If an account uses that address, we sent a link valid for 1 hour."


@pytest.fixture
def inbox(runtime: Runtime, smtp: tuple[Inbox, int]) -> Inbox:
    received, port = smtp
    runtime.settings.smtp_host, runtime.settings.smtp_port = "127.0.0.1", port
    return received


def ask(client: TestClient, email: str) -> str:
    """Asks for a link as a signed-out person would; returns the page the answer leads to."""
    answer = client.post(
        "/console/forgot-password",
        data={"csrf_token": csrf(client, "/console/forgot-password"), "email": email},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/forgot-password?sent=1")
    page = client.get(answer.headers["location"])
    assert page.status_code == 200 and SENT in page.text
    return page.text


def mailed_link(runtime: Runtime, inbox: Inbox) -> tuple[str, str]:
    """Delivers what the queue holds; the path and token of the last link received."""
    deliver_all(runtime)
    assert inbox.messages, "no mail arrived"
    found = LINK.search(text_of(inbox.messages[-1]))
    assert found is not None, text_of(inbox.messages[-1])
    return found.group(1), found.group(2)


def set_password(client: TestClient, path: str, password: str, repeat: str | None = None) -> tuple[int, str, str]:
    answer = client.post(
        path,
        data={
            "csrf_token": csrf(client, "/console/sign-in"),
            "new_password": password,
            "repeat_password": password if repeat is None else repeat,
        },
        follow_redirects=False,
    )
    return answer.status_code, answer.headers.get("location", ""), answer.text


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def count(runtime: Runtime, table: type[OutboxMessage] | type[PasswordReset]) -> int:
    with runtime.db.session_scope(write=False) as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_a_mailed_link_sets_a_new_password_once_and_the_old_one_stops_working(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    """The whole journey: sign-in page, request, mail, form, new password, sign-in."""
    assert "/console/forgot-password" in client.get("/console/sign-in").text
    assert "we sent a link" not in client.get("/console/forgot-password").text
    asked_at = utcnow()
    ask(client, account.owner_email.upper())  # addresses match in any case
    path, token = mailed_link(runtime, inbox)
    (mail,) = inbox.messages
    assert mail["To"] == account.owner_email and "password" in mail["Subject"].lower()
    with runtime.db.session_scope(write=False) as session:
        stored = session.scalars(select(PasswordReset)).one()
        assert token != stored.token_digest and stored.used_at is None  # only the keyed digest is kept
        assert asked_at + timedelta(hours=1) <= stored.expires_at <= utcnow() + timedelta(hours=1)

    form = client.get(path)
    assert form.status_code == 200 and account.owner_email in form.text
    assert form.headers["referrer-policy"] == "no-referrer"  # the token stays off other sites' logs
    status, location, _ = set_password(client, path, NEW_PASSWORD)
    assert (status, location) == (303, "/console/sign-in?reset=1")
    assert "Your password was changed" in client.get(location).text

    old = client.post(
        "/console/sign-in",
        data={"csrf_token": csrf(client), "email": account.owner_email, "password": account.owner_password},
    )
    assert old.status_code == 401
    console_sign_in(client, account.owner_email, NEW_PASSWORD)

    again = client.get(path)
    assert again.status_code == 404 and "already used" in again.text and "/console/forgot-password" in again.text
    status, _, text = set_password(client, path, "yet another passphrase")
    assert status == 404 and "already used" in text
    console_sign_in(client, account.owner_email, NEW_PASSWORD)  # the second try changed nothing

    (requested,) = events(runtime, "user.password_reset_requested")
    (reset,) = events(runtime, "user.password_reset")
    for event in (requested, reset):
        assert (event.account_id, event.via, event.target_type) == (None, "console", "user")
        assert (event.target_label, event.actor_label) == (account.owner_email, account.owner_email)
        recorded = json.dumps([event.changes, event.target_label, event.target_id, event.actor_label])
        for secret in (token, NEW_PASSWORD, account.owner_password):
            assert secret not in recorded
    assert reset.changes == {"sessions_ended": 0}  # nobody was signed in before


def test_an_expired_link_is_refused_and_changes_nothing(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    ask(client, account.owner_email)
    path, _ = mailed_link(runtime, inbox)
    with runtime.db.session_scope() as session:
        session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    page = client.get(path)
    assert page.status_code == 410 and "expired" in page.text and 'role="alert"' in page.text
    assert 'name="new_password"' not in page.text  # no form to fill in vain
    status, _, text = set_password(client, path, NEW_PASSWORD)
    assert status == 410 and "expired" in text
    console_sign_in(client, account.owner_email, account.owner_password)
    assert events(runtime, "user.password_reset") == []


def test_a_new_link_replaces_the_earlier_one(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    ask(client, account.owner_email)
    first, _ = mailed_link(runtime, inbox)
    ask(client, account.owner_email)
    second, _ = mailed_link(runtime, inbox)
    assert first != second and len(inbox.messages) == 2
    assert client.get(first).status_code == 404
    assert set_password(client, second, NEW_PASSWORD)[0] == 303


def test_setting_a_new_password_ends_every_session_and_opens_none(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    """Whoever knew the old password is out: console cookies and API sessions alike, even
    where the session was cached a moment before."""
    api = sign_in(client, account.owner_email, account.owner_password)
    assert client.get("/me", headers=api).status_code == 200
    console_sign_in(client, account.owner_email, account.owner_password)
    assert client.get("/console/servers").status_code == 200

    ask(client, account.owner_email)
    path, _ = mailed_link(runtime, inbox)
    assert set_password(client, path, NEW_PASSWORD)[0] == 303

    assert client.get("/me", headers=api).status_code == 401
    assert client.get("/console/servers", follow_redirects=False).headers["location"] == "/console/sign-in"
    (reset,) = events(runtime, "user.password_reset")
    assert reset.changes == {"sessions_ended": 2}
    with runtime.db.session_scope(write=False) as session:
        live = session.scalar(select(func.count()).select_from(UserSession).where(UserSession.revoked_at.is_(None)))
    assert live == 0  # the reset ended both sessions and opened none


def test_two_factor_is_still_asked_after_a_reset(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    """The link proves the mailbox, not the second factor: it must not stand in for it."""
    add_member(runtime, account, "totp@example.org", Role.ADMIN)
    api = sign_in(client, "totp@example.org")
    secret = client.post("/me/two-factor", headers=api).json()["Secret"]
    assert (
        client.post("/me/two-factor/confirm", json={"Code": pyotp.TOTP(secret).now()}, headers=api).status_code == 200
    )

    ask(client, "totp@example.org")
    path, _ = mailed_link(runtime, inbox)
    assert set_password(client, path, NEW_PASSWORD)[0] == 303
    answer = client.post(
        "/console/sign-in",
        data={"csrf_token": csrf(client), "email": "totp@example.org", "password": NEW_PASSWORD},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console/sign-in/two-factor"
    assert client.get("/console/servers", follow_redirects=False).status_code == 303  # not signed in


def test_an_unknown_address_gets_the_same_answer_and_no_mail(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    known = ask(client, account.owner_email)
    for address in ("nobody@example.org", "not an address"):
        assert ask(client, address) == known
    deliver_all(runtime)
    assert [mail["To"] for mail in inbox.messages] == [account.owner_email]
    assert count(runtime, PasswordReset) == 1 and count(runtime, OutboxMessage) == 1
    # An unknown address is recorded as a request for nobody (the same write as for a login,
    # and what the throttle counts); text that is no address at all is not.
    recorded = [(e.target_label, e.target_id) for e in events(runtime, "user.password_reset_requested")]
    assert recorded[1:] == [("nobody@example.org", "")]


def test_requests_are_throttled_per_address_and_per_ip_without_saying_so(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """Nobody can flood a mailbox or walk through addresses: past the limits the answer is
    the same, and nothing is mailed."""
    first = ask(client, account.owner_email)
    for _ in range(MAX_REQUESTS_PER_ADDRESS):
        assert ask(client, account.owner_email) == first
    assert count(runtime, OutboxMessage) == MAX_REQUESTS_PER_ADDRESS

    add_member(runtime, account, "member@example.org", Role.MEMBER)
    for number in range(MAX_REQUESTS_PER_IP - MAX_REQUESTS_PER_ADDRESS):
        ask(client, f"probe{number}@example.org")
    assert ask(client, "member@example.org") == first
    assert count(runtime, OutboxMessage) == MAX_REQUESTS_PER_ADDRESS  # this IP reached its limit
    assert len(events(runtime, "user.password_reset_requested")) == MAX_REQUESTS_PER_IP


def test_the_new_password_is_checked_on_the_form(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    ask(client, account.owner_email)
    path, _ = mailed_link(runtime, inbox)
    status, _, text = set_password(client, path, "short")
    assert status == 422 and 'role="alert"' in text and "at least 10 characters" in text
    status, _, text = set_password(client, path, NEW_PASSWORD, repeat=NEW_PASSWORD + "!")
    assert status == 422 and 'role="alert"' in text and "differ" in text
    assert events(runtime, "user.password_reset") == []
    assert set_password(client, path, NEW_PASSWORD)[0] == 303  # the link survived both mistakes


def test_both_forms_refuse_a_post_without_its_csrf_token(
    client: TestClient, runtime: Runtime, account: NewAccount, inbox: Inbox
) -> None:
    csrf(client, "/console/forgot-password")  # the cookie is set, but a forged form cannot read it
    forged = client.post("/console/forgot-password", data={"email": account.owner_email})
    assert forged.status_code == 403 and "Form expired" in forged.text
    assert count(runtime, OutboxMessage) == 0 and events(runtime, "user.password_reset_requested") == []

    ask(client, account.owner_email)
    path, _ = mailed_link(runtime, inbox)
    forged = client.post(path, data={"csrf_token": "guess", "new_password": PASSWORD, "repeat_password": PASSWORD})
    assert forged.status_code == 403 and "Form expired" in forged.text
    assert events(runtime, "user.password_reset") == []
    assert client.get(path).status_code == 200  # the link still works
