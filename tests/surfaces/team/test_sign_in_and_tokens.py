"""Signing in and out, the second factor, an account that requires it, and personal tokens,
checked over HTTP as the person using them would check them.

The token cache here keeps entries for minutes, so every refusal after a change shows that
the change itself dropped what was cached, not that an entry merely ran out.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import AccountService, AccountSettings, NewAccount
from postwarden.audit import AuditEvent
from postwarden.config import Settings
from postwarden.identity import Actor
from postwarden.policy import Role
from postwarden.runtime import Runtime
from postwarden.users.models import RecoveryCode
from tests.conftest import create_account, make_settings
from tests.surfaces.team.helpers import PASSWORD, add_member, bearer, create_server, next_code, sign_in

DANA = "dana@example.com"
ERIN = "erin@example.com"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path, cache_ttl_seconds=300.0)


def error_of(answer: Any) -> tuple[int, int]:
    return answer.status_code, int(answer.json()["ErrorCode"])


def attempt(client: TestClient, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    return client.post("/sessions", json={"Email": email, "Password": password, **extra})


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        found = list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))
        session.expunge_all()
        return found


def wrong_code(secret: str) -> str:
    """Six digits that no step of the drift window accepts."""
    totp = pyotp.TOTP(secret)
    step = int(time.time() // totp.interval)
    taken = {totp.generate_otp(s) for s in range(step - 2, step + 3)}
    return next(c for c in (f"{d}" * 6 for d in range(10)) if c not in taken)


def enrol(client: TestClient, headers: dict[str, str]) -> tuple[str, str, list[str]]:
    """Sets up TOTP for the signed-in user: (secret, the code confirmed, recovery codes)."""
    started = client.post("/me/two-factor", headers=headers)
    assert started.status_code == 200, started.text
    secret = started.json()["Secret"]
    code = pyotp.TOTP(secret).now()
    confirmed = client.post("/me/two-factor/confirm", json={"Code": code}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    return secret, code, confirmed.json()["RecoveryCodes"]


def require_two_factor(runtime: Runtime, account: NewAccount) -> None:
    with runtime.db.session_scope() as session:
        AccountService(session, Actor.system("tests"), runtime).update_settings(
            account.account.id, AccountSettings(require_two_factor=True)
        )


# signing in


def test_right_password_gives_a_session_that_works_on_me(client: TestClient, account: NewAccount) -> None:
    answer = attempt(client, account.owner_email, account.owner_password)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["SessionToken"].startswith("pws_")
    assert body["AccountID"] == account.account.id
    assert datetime.fromisoformat(body["ExpiresAt"]) > datetime.now(UTC)

    me = client.get("/me", headers=bearer(body["SessionToken"]))
    assert me.status_code == 200, me.text
    assert me.json()["ID"] == body["UserID"]
    assert me.json()["Email"] == account.owner_email
    assert me.json()["Credential"] == "session"
    assert me.json()["AccountID"] == account.account.id
    assert me.json()["Role"] == "Owner"
    assert me.json()["TwoFactorEnabled"] is False

    # The address is matched as typed by people: any case, stray spaces.
    shouted = attempt(client, f"  {account.owner_email.upper()} ", account.owner_password)
    assert shouted.status_code == 200, shouted.text


def test_a_wrong_password_and_an_unknown_address_fail_alike_and_are_audited(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    wrong = attempt(client, account.owner_email, "not the password at all")
    assert error_of(wrong) == (401, 9027)
    assert "SessionToken" not in wrong.json()

    unknown = attempt(client, "nobody@nowhere.example", "not the password at all")
    assert error_of(unknown) == (401, 9027)
    assert unknown.json()["Message"] == wrong.json()["Message"]  # nothing tells which addresses exist

    failed = events(runtime, "user.login_failed")
    assert [event.target_label for event in failed] == [account.owner_email, "nobody@nowhere.example"]
    assert failed[0].account_id is None
    assert failed[0].ip == "testclient"


def test_five_failures_lock_one_address_for_a_while(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    for typed in (DANA, DANA.upper(), DANA, f" {DANA}", DANA.title()):  # one address, however typed
        assert error_of(attempt(client, typed, "guessing again and again")) == (401, 9027)

    locked = attempt(client, DANA, PASSWORD)
    assert error_of(locked) == (429, 9028)
    assert int(locked.headers["Retry-After"]) > 0
    assert error_of(attempt(client, DANA.upper(), PASSWORD)) == (429, 9028)
    assert len(events(runtime, "user.login_failed")) == 5  # refusing a locked address is no new failure

    # Other addresses sign in as before, from the same client.
    sign_in(client, account.owner_email, account.owner_password)

    # Once the failures are older than the window, the right password works again.
    with runtime.db.session_scope() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.action == "user.login_failed")
            .values(occurred_at=datetime.now(UTC) - timedelta(minutes=16))
        )
    sign_in(client, DANA)


def test_twenty_failures_from_one_address_of_the_network_lock_it_for_everyone(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    # A spray: one guess at each of many addresses, never five at one, all from one IP.
    for n in range(20):
        assert error_of(attempt(client, f"user{n}@spray.example", "guess")) == (401, 9027)
    assert {event.ip for event in events(runtime, "user.login_failed")} == {"testclient"}
    locked = attempt(client, account.owner_email, account.owner_password)
    assert error_of(locked) == (429, 9028)
    assert int(locked.headers["Retry-After"]) > 0


def test_the_account_to_sign_in_to_must_be_one_of_the_users(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    other = create_account(runtime, "Globex")
    refused = attempt(client, account.owner_email, account.owner_password, AccountID=other.account.id)
    assert error_of(refused) == (401, 9027)
    assert error_of(attempt(client, account.owner_email, account.owner_password, AccountID=987654)) == (401, 9027)

    # A member of two accounts picks one, and the session acts there.
    add_member(runtime, account, DANA, Role.MEMBER)
    add_member(runtime, other, DANA, Role.ADMIN)
    chosen = attempt(client, DANA, PASSWORD, AccountID=other.account.id)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["AccountID"] == other.account.id
    me = client.get("/me", headers=bearer(chosen.json()["SessionToken"])).json()
    assert (me["AccountID"], me["Role"]) == (other.account.id, "Admin")


def test_signing_out_ends_that_session_only(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    first, second = sign_in(client, DANA), sign_in(client, DANA)
    assert client.get("/me", headers=first).status_code == 200  # now cached

    out = client.delete("/sessions", headers=first)
    assert out.status_code == 200, out.text
    assert out.json()["ErrorCode"] == 0

    assert error_of(client.get("/me", headers=first)) == (401, 10)
    assert error_of(client.get("/servers?count=10&offset=0", headers=first)) == (401, 10)
    assert error_of(client.delete("/sessions", headers=first)) == (401, 10)
    assert client.get("/me", headers=second).status_code == 200
    assert events(runtime, "session.revoked")


# the second factor


def test_two_factor_enrolment_and_signing_in_with_it(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    headers = sign_in(client, DANA)

    early = client.post("/me/two-factor/confirm", json={"Code": "123456"}, headers=headers)
    assert error_of(early) == (422, 9032)

    started = client.post("/me/two-factor", headers=headers)
    assert started.status_code == 200, started.text
    secret = started.json()["Secret"]
    uri = started.json()["OtpauthUri"]
    assert uri.startswith("otpauth://totp/")
    assert "issuer=postwarden" in uri
    assert f"secret={secret}" in uri
    assert started.json()["QrCode"].startswith("data:image/svg+xml")
    assert client.get("/me", headers=headers).json()["TwoFactorEnabled"] is False  # not before confirming

    wrong = client.post("/me/two-factor/confirm", json={"Code": wrong_code(secret)}, headers=headers)
    assert error_of(wrong) == (422, 9030)
    sign_in(client, DANA)  # still no code needed

    code = pyotp.TOTP(secret).now()
    confirmed = client.post("/me/two-factor/confirm", json={"Code": code}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["TwoFactorEnabled"] is True
    recovery = confirmed.json()["RecoveryCodes"]
    assert len(recovery) == 10
    assert len(set(recovery)) == 10
    assert client.get("/me", headers=headers).json()["TwoFactorEnabled"] is True

    assert error_of(client.post("/me/two-factor", headers=headers)) == (422, 9031)
    assert error_of(client.post("/me/two-factor/confirm", json={"Code": code}, headers=headers)) == (422, 9031)

    assert error_of(attempt(client, DANA)) == (401, 9029)
    # The password is checked before the second factor is asked for.
    assert error_of(attempt(client, DANA, "not the password at all")) == (401, 9027)
    assert error_of(attempt(client, DANA, "not the password at all", Code=next_code(secret, code))) == (401, 9027)
    assert error_of(attempt(client, DANA, Code=code)) == (401, 9027)  # the code confirmed is spent
    assert error_of(attempt(client, DANA, Code=wrong_code(secret))) == (401, 9027)

    fresh = attempt(client, DANA, Code=next_code(secret, code))
    assert fresh.status_code == 200, fresh.text
    assert client.get("/me", headers=bearer(fresh.json()["SessionToken"])).status_code == 200


def test_a_recovery_code_signs_in_once_and_is_audited(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    _, _, recovery = enrol(client, sign_in(client, DANA))

    used = attempt(client, DANA, RecoveryCode=recovery[3])
    assert used.status_code == 200, used.text
    assert client.get("/me", headers=bearer(used.json()["SessionToken"])).status_code == 200
    assert error_of(attempt(client, DANA, RecoveryCode=recovery[3])) == (401, 9027)
    assert error_of(attempt(client, DANA, RecoveryCode="00000-00000")) == (401, 9027)
    assert attempt(client, DANA, RecoveryCode=recovery[4]).status_code == 200  # the others still work once

    audited = events(runtime, "user.recovery_code_used")
    assert [event.target_label for event in audited] == [DANA, DANA]
    assert all(recovery[3] not in str(event.changes) for event in audited)


def test_an_account_requiring_two_factor_lets_a_member_without_it_only_enrol(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    create_server(client, account, "Production")
    add_member(runtime, account, DANA, Role.TECHNICAL)
    headers = sign_in(client, DANA)
    assert client.get("/servers?count=10&offset=0", headers=headers).status_code == 200  # now cached

    require_two_factor(runtime, account)

    for method, path, body in (
        ("GET", "/servers?count=10&offset=0", None),
        ("GET", "/users?count=10&offset=0", None),
        ("GET", "/me", None),
        ("GET", "/me/tokens", None),
        ("POST", "/me/tokens", {"Name": "laptop"}),
    ):
        refused = client.request(method, path, json=body, headers=headers)
        assert error_of(refused) == (403, 9011), (method, path, refused.text)
    # A new sign-in is no way around it.
    assert error_of(client.get("/me", headers=sign_in(client, DANA))) == (403, 9011)
    # The account token is no person and is not held to it.
    listed = client.get("/servers?count=10&offset=0", headers={"X-Postmark-Account-Token": account.account_token})
    assert listed.status_code == 200

    enrol(client, headers)

    answer = client.get("/servers?count=10&offset=0", headers=headers)
    assert answer.status_code == 200, answer.text
    assert [server["Name"] for server in answer.json()["Servers"]] == ["Production"]
    assert client.get("/me", headers=headers).json()["TwoFactorEnabled"] is True


def test_a_member_held_to_two_factor_can_still_sign_out(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    headers = sign_in(client, DANA)
    require_two_factor(runtime, account)
    assert error_of(client.get("/me", headers=headers)) == (403, 9011)
    assert client.delete("/sessions", headers=headers).status_code == 200
    assert error_of(client.post("/me/two-factor", headers=headers)) == (401, 10)


def test_a_lost_phone_recovery_code_then_two_factor_off_and_on_again(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    _secret, _code, recovery = enrol(client, sign_in(client, DANA))
    # The phone is gone: a recovery code signs in, then two-factor is turned off with the password.
    headers = sign_in(client, DANA, RecoveryCode=recovery[0])
    wrong = client.request("DELETE", "/me/two-factor", json={"Password": "not the password"}, headers=headers)
    assert error_of(wrong) == (422, 9037)
    assert client.get("/me", headers=headers).json()["TwoFactorEnabled"] is True
    off = client.request("DELETE", "/me/two-factor", json={"Password": PASSWORD}, headers=headers)
    assert off.status_code == 200, off.text
    assert client.get("/me", headers=headers).json()["TwoFactorEnabled"] is False
    assert [e.target_label for e in events(runtime, "user.two_factor_disabled")] == [DANA]
    # Off means off: a password alone signs in, the old recovery codes are gone...
    assert attempt(client, DANA).status_code == 200
    with runtime.db.session_scope(write=False) as session:
        assert session.scalars(select(RecoveryCode)).all() == []
    again = client.request("DELETE", "/me/two-factor", json={"Password": PASSWORD}, headers=headers)
    assert error_of(again) == (422, 9032)
    # ...and the new phone enrols as the first one did.
    new_secret, new_code, _ = enrol(client, headers)
    assert error_of(attempt(client, DANA)) == (401, 9029)
    assert attempt(client, DANA, Code=next_code(new_secret, new_code)).status_code == 200


# personal tokens


def test_a_personal_token_is_shown_once_and_acts_as_its_user(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    headers = sign_in(client, DANA)

    created = client.post("/me/tokens", json={"Name": "laptop"}, headers=headers)
    assert created.status_code == 200, created.text
    token = created.json()["Token"]
    token_id = created.json()["ID"]
    assert token.startswith("pw_")
    assert created.json()["Name"] == "laptop"
    assert created.json()["LastUsedAt"] is None

    listed = client.get("/me/tokens", headers=headers).json()
    assert listed["TotalCount"] == 1
    assert listed["Tokens"][0]["ID"] == token_id
    assert "Token" not in listed["Tokens"][0]
    assert token not in str(listed)
    assert listed["Tokens"][0]["LastUsedAt"] is None

    me = client.get("/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert (me.json()["Email"], me.json()["Credential"], me.json()["Role"]) == (DANA, "personal_token", "Member")
    assert client.get("/me/tokens", headers=headers).json()["Tokens"][0]["LastUsedAt"] is not None

    revoked = client.delete(f"/me/tokens/{token_id}", headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert error_of(client.get("/me", headers=bearer(token))) == (401, 10)
    assert error_of(client.get("/servers?count=10&offset=0", headers=bearer(token))) == (401, 10)
    assert client.get("/me/tokens", headers=headers).json()["TotalCount"] == 0
    assert error_of(client.delete(f"/me/tokens/{token_id}", headers=headers)) == (404, 9033)


def test_a_scoped_personal_token_does_no_more_than_its_scopes(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    headers = sign_in(client, DANA)
    created = client.post("/me/tokens", json={"Name": "read me", "Scopes": ["Profile:Read"]}, headers=headers)
    assert created.status_code == 200, created.text
    assert created.json()["Scopes"] == ["profile:read"]
    narrow = bearer(created.json()["Token"])
    assert client.get("/me", headers=narrow).status_code == 200
    assert error_of(client.get("/servers?count=10&offset=0", headers=narrow)) == (403, 9001)
    # Nor can it mint a wider token.
    assert error_of(client.post("/me/tokens", json={"Name": "wider"}, headers=narrow))[0] == 403


def test_personal_token_fields_are_checked(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    headers = sign_in(client, DANA)
    own = create_server(client, account, "Production")
    foreign = create_server(client, create_account(runtime, "Globex"), "Theirs")
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()

    for body in (
        {"Name": "old", "ExpiresAt": past},
        {"Name": "odd", "Scopes": ["servers:fly"]},
        {"Name": "theirs", "ServerIDs": [foreign]},
        {"Name": "mixed", "ServerIDs": [own, foreign]},
        {"Name": "   "},
        {"Name": "x" * 101},
    ):
        answer = client.post("/me/tokens", json=body, headers=headers)
        assert error_of(answer) == (422, 9034), (body, answer.text)
    assert client.get("/me/tokens", headers=headers).json()["TotalCount"] == 0

    fine = client.post("/me/tokens", json={"Name": "ours", "ServerIDs": [own]}, headers=headers)
    assert fine.status_code == 200, fine.text
    assert fine.json()["ServerIDs"] == [own]


def test_an_expiry_without_a_utc_offset_is_refused_as_ambiguous(client: TestClient, account: NewAccount) -> None:
    headers = sign_in(client, account.owner_email, account.owner_password)
    naive = (datetime.now(UTC) + timedelta(days=30)).replace(tzinfo=None).isoformat()
    answer = client.post("/me/tokens", json={"Name": "naive", "ExpiresAt": naive}, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["ErrorCode"] == 402 and "ExpiresAt" in answer.json()["Message"]


def test_a_personal_token_stops_working_when_it_expires(client: TestClient, account: NewAccount) -> None:
    headers = sign_in(client, account.owner_email, account.owner_password)
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    created = client.post("/me/tokens", json={"Name": "brief", "ExpiresAt": expires.isoformat()}, headers=headers)
    assert created.status_code == 200, created.text
    assert datetime.fromisoformat(created.json()["ExpiresAt"]) == expires
    token = bearer(created.json()["Token"])
    assert client.get("/me", headers=token).status_code == 200  # now cached

    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.3)
    assert error_of(client.get("/me", headers=token)) == (401, 10)
    assert error_of(client.get("/servers?count=10&offset=0", headers=token)) == (401, 10)


def test_nobody_revokes_another_users_token(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, DANA, Role.MEMBER)
    add_member(runtime, account, ERIN, Role.ADMIN)
    dana, erin = sign_in(client, DANA), sign_in(client, ERIN)
    theirs = client.post("/me/tokens", json={"Name": "dana's"}, headers=dana).json()

    assert error_of(client.delete(f"/me/tokens/{theirs['ID']}", headers=erin)) == (404, 9033)
    assert client.get("/me/tokens", headers=erin).json()["TotalCount"] == 0  # nor sees it
    assert client.get("/me", headers=bearer(theirs["Token"])).status_code == 200


def test_me_is_for_people_only(client: TestClient, account: NewAccount) -> None:
    as_account = {"X-Postmark-Account-Token": account.account_token}
    assert error_of(client.get("/me", headers=as_account)) == (403, 9012)
    assert error_of(client.post("/me/tokens", json={"Name": "x"}, headers=as_account)) == (403, 9012)
    assert error_of(client.get("/me")) == (401, 10)
    assert error_of(client.get("/me", headers=bearer("pw_" + "0" * 64))) == (401, 10)
    assert error_of(client.get("/me", headers=bearer("pws_" + "0" * 64))) == (401, 10)
    assert error_of(client.get("/me", headers={"X-Postmark-Account-Token": "not-a-token"})) == (401, 10)


def test_a_removed_members_token_and_session_stop_working(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    dana_id = add_member(runtime, account, DANA, Role.ADMIN)
    session = sign_in(client, DANA)
    token = bearer(client.post("/me/tokens", json={"Name": "laptop"}, headers=session).json()["Token"])
    assert client.get("/me", headers=token).status_code == 200  # now cached

    removed = client.delete(f"/users/{dana_id}", headers={"X-Postmark-Account-Token": account.account_token})
    assert removed.status_code == 200, removed.text

    for credential in (token, session):
        assert error_of(client.get("/me", headers=credential)) == (401, 10)
        assert error_of(client.get("/servers?count=10&offset=0", headers=credential)) == (401, 10)
    assert error_of(attempt(client, DANA)) == (401, 9027)  # no account left to sign in to
