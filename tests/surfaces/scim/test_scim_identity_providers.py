"""What Okta and Microsoft Entra really send, and what their people then notice: a
suspended member is locked out at once and let back in on reactivation."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.policy import Role
from postwarden.runtime import Runtime
from tests.surfaces.scim.helpers import (
    USERS,
    Answer,
    HttpClient,
    create_user,
    find_users,
    is_scim,
    listed,
    patch_body,
    user_body,
)
from tests.surfaces.team.helpers import PASSWORD, add_member, bearer, sign_in

OKTA_DEACTIVATE = patch_body({"op": "replace", "value": {"active": False}})
OKTA_REACTIVATE = patch_body({"op": "replace", "value": {"active": True}})
ENTRA_DISABLE = patch_body({"op": "Replace", "path": "active", "value": "False"})
ENTRA_ENABLE = patch_body({"op": "Replace", "path": "active", "value": "True"})


def send_json(client: HttpClient, method: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
    """As Okta sends it: ``Content-Type: application/json``, not ``application/scim+json``."""
    return client.request(
        method, url, content=json.dumps(body).encode(), headers={**headers, "Content-Type": "application/json"}
    )


def credentials_of(client: TestClient, email: str) -> list[dict[str, str]]:
    """A session and a personal token of a member who signs in with a password."""
    session = sign_in(client, email)
    token = client.post("/me/tokens", json={"Name": "laptop"}, headers=session)
    assert token.status_code == 200, token.text
    return [session, bearer(token.json()["Token"])]


def works(client: TestClient, credential: dict[str, str]) -> bool:
    """Whether the credential reaches the team API (what every member may read)."""
    me = client.get("/me", headers=credential).status_code
    people = client.get("/users?count=10&offset=0", headers=credential).status_code
    assert (me == 200) == (people == 200), (me, people)
    return me == 200


def can_sign_in_and_work(client: TestClient, email: str) -> bool:
    answer = client.post("/sessions", json={"Email": email, "Password": PASSWORD})
    if answer.status_code != 200:
        return False
    return works(client, bearer(answer.json()["SessionToken"]))


def test_okta_connection_test(http: httpx.Client, scim: dict[str, str]) -> None:
    """Okta's "Test connector configuration", then its first import, over real HTTP."""
    first = http.get(USERS, params={"count": "1", "startIndex": "1"}, headers=scim)
    assert first.status_code == 200 and is_scim(first)
    assert len(listed(first)) == 1 and first.json()["itemsPerPage"] == 1 and first.json()["totalResults"] == 1

    unknown = f"{uuid.uuid4()}@example.com"
    missing = http.get(USERS, params={"filter": f'userName eq "{unknown}"'}, headers=scim)
    assert missing.status_code == 200
    assert missing.json()["totalResults"] == 0 and listed(missing) == []

    created = send_json(http, "POST", USERS, user_body(unknown, active=True), scim)
    assert created.status_code == 201, created.text
    assert find_users(http, scim, f'userName eq "{unknown}"') == {unknown}


def test_okta_accepts_application_json_bodies(client: TestClient, scim: dict[str, str]) -> None:
    created = send_json(client, "POST", USERS, user_body("alice@example.com", displayName="Alice"), scim)
    assert created.status_code == 201, created.text
    url = f"{USERS}/{created.json()['id']}"
    replaced = send_json(client, "PUT", url, user_body("alice@example.com", displayName="Alice A."), scim)
    assert replaced.status_code == 200, replaced.text
    patched = send_json(client, "PATCH", url, patch_body({"op": "replace", "value": {"displayName": "Al"}}), scim)
    assert patched.status_code == 200, patched.text
    assert client.get(url, headers=scim).json()["displayName"] == "Al"


def test_okta_deactivation_suspends_and_reactivation_restores(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str], account_headers: dict[str, str]
) -> None:
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    held = credentials_of(client, "mia@example.com")
    assert all(works(client, credential) for credential in held)

    answer = send_json(client, "PATCH", f"{USERS}/{mia}", OKTA_DEACTIVATE, scim)

    assert answer.status_code == 200, answer.text
    assert answer.json()["active"] is False
    assert client.get(f"{USERS}/{mia}", headers=scim).json()["active"] is False
    assert find_users(client, scim, "active eq false") == {"mia@example.com"}
    assert "mia@example.com" not in find_users(client, scim, "active eq true")
    assert not any(works(client, credential) for credential in held)
    refused = client.post("/sessions", json={"Email": "mia@example.com", "Password": PASSWORD})
    assert (refused.status_code, refused.json()["ErrorCode"]) == (401, 9027)
    # Kept in the account, shown as suspended.
    shown = client.get(f"/users/{mia}", headers=account_headers)
    assert shown.status_code == 200 and shown.json()["Suspended"] is True

    restored = send_json(client, "PATCH", f"{USERS}/{mia}", OKTA_REACTIVATE, scim)

    assert restored.status_code == 200, restored.text
    assert client.get(f"{USERS}/{mia}", headers=scim).json()["active"] is True
    assert find_users(client, scim, "active eq false") == set()
    assert can_sign_in_and_work(client, "mia@example.com")
    # What was ended stays ended.
    assert not any(works(client, credential) for credential in held)


def test_entra_string_booleans_suspend_and_restore(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    held = credentials_of(client, "mia@example.com")

    disabled = client.patch(f"{USERS}/{mia}", json=ENTRA_DISABLE, headers=scim)

    assert disabled.status_code == 200, disabled.text
    assert client.get(f"{USERS}/{mia}", headers=scim).json()["active"] is False
    assert not any(works(client, credential) for credential in held)
    assert not can_sign_in_and_work(client, "mia@example.com")

    enabled = client.patch(f"{USERS}/{mia}", json=ENTRA_ENABLE, headers=scim)

    assert enabled.status_code == 200, enabled.text
    assert client.get(f"{USERS}/{mia}", headers=scim).json()["active"] is True
    assert can_sign_in_and_work(client, "mia@example.com")


def test_suspending_one_member_leaves_the_others_working(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    add_member(runtime, account, "noah@example.com", Role.TECHNICAL)
    noah = credentials_of(client, "noah@example.com")

    assert client.patch(f"{USERS}/{mia}", json=ENTRA_DISABLE, headers=scim).status_code == 200

    assert all(works(client, credential) for credential in noah)


def test_entra_finds_users_by_work_email(client: TestClient, scim: dict[str, str]) -> None:
    create_user(
        client,
        scim,
        "someone@contoso.example",
        emails=[
            {"value": "someone@example.com", "type": "work", "primary": True},
            {"value": "someone@home.example", "type": "home"},
        ],
    )
    create_user(client, scim, "other@example.com", emails=[{"value": "someone@example.com", "type": "home"}])

    entra_filter = 'emails[type eq "work"].value eq "someone@example.com"'
    assert find_users(client, scim, entra_filter) == {"someone@contoso.example"}
    assert find_users(client, scim, 'emails[type eq "work"].value eq "someone@home.example"') == set()


def test_entra_sets_the_work_email_by_value_path(client: TestClient, scim: dict[str, str]) -> None:
    user = create_user(client, scim, "someone@contoso.example")
    change = patch_body({"op": "Add", "path": 'emails[type eq "work"].value', "value": "someone@example.com"})
    answer = client.patch(f"{USERS}/{user['id']}", json=change, headers=scim)
    assert answer.status_code == 200, answer.text
    assert find_users(client, scim, 'emails[type eq "work"].value eq "someone@example.com"') == {
        "someone@contoso.example"
    }
