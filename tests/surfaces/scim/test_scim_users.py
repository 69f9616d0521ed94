"""Users through SCIM as an identity team checks them: provisioned, read, replaced,
patched all-or-nothing, deprovisioned; versions guard concurrent changes; the Owner is
never touched; and every change is in the audit log under the token's name."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.runtime import Runtime
from tests.conftest import LiveServer
from tests.surfaces.scim.helpers import (
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    GROUPS,
    USER_SCHEMA,
    USERS,
    Answer,
    assert_scim_error,
    create_user,
    find_users,
    is_scim,
    listed,
    owner_id,
    patch_body,
    user_body,
    user_names,
)
from tests.surfaces.team.helpers import owner_headers

ALICE: dict[str, Any] = {
    "name": {"givenName": "Alice", "familyName": "Archer"},
    "displayName": "Alice Archer",
    "externalId": "00u1abcd",
    "emails": [{"value": "alice@example.com", "type": "work", "primary": True}],
    "active": True,
    ENTERPRISE_SCHEMA: {"department": "Sales", "employeeNumber": "42"},
}


def test_create_answers_201_with_the_user_its_location_and_version(client: TestClient, scim: dict[str, str]) -> None:
    answer = client.post(USERS, json=user_body("alice@example.com", **ALICE), headers=scim)

    assert answer.status_code == 201, answer.text
    assert is_scim(answer)
    user = answer.json()
    assert user["id"] and user["schemas"][0] == USER_SCHEMA
    assert answer.headers["Location"] == user["meta"]["location"]
    assert answer.headers["ETag"] == user["meta"]["version"]
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["location"].endswith(f"/Users/{user['id']}")
    assert user["userName"] == "alice@example.com"
    assert user["active"] is True
    assert user["name"] == {"givenName": "Alice", "familyName": "Archer"}
    assert user["displayName"] == "Alice Archer"
    assert user["externalId"] == "00u1abcd"
    assert user["emails"] == [{"value": "alice@example.com", "type": "work", "primary": True}]
    assert user[ENTERPRISE_SCHEMA] == {"department": "Sales", "employeeNumber": "42"}
    assert "password" not in user


def test_a_created_user_can_be_read_back_at_its_location(client: TestClient, scim: dict[str, str]) -> None:
    """``Location`` and ``meta.location`` are where the identity provider reads the user
    back (RFC 7644 §3.1): under ``/scim/v2``."""
    answer = client.post(USERS, json=user_body("alice@example.com"), headers=scim)
    user = answer.json()
    assert user["meta"]["location"] == f"http://testserver{USERS}/{user['id']}"
    fetched = client.get(answer.headers["Location"], headers=scim)
    assert fetched.status_code == 200 and fetched.json()["id"] == user["id"]


def test_a_user_created_inactive_is_suspended_from_the_start(client: TestClient, scim: dict[str, str]) -> None:
    user = create_user(client, scim, "alice@example.com", active=False)
    assert user["active"] is False
    assert client.get(f"{USERS}/{user['id']}", headers=scim).json()["active"] is False


@pytest.mark.parametrize("again", ["alice@example.com", "ALICE@Example.COM", "  alice@example.com "])
def test_user_name_is_unique_without_regard_to_case(client: TestClient, scim: dict[str, str], again: str) -> None:
    create_user(client, scim, "alice@example.com")
    assert_scim_error(client.post(USERS, json=user_body(again), headers=scim), 409, "uniqueness")
    assert find_users(client, scim, 'userName eq "alice@example.com"') == {"alice@example.com"}


def test_user_name_is_required(client: TestClient, scim: dict[str, str]) -> None:
    answer = client.post(USERS, json={"schemas": [USER_SCHEMA], "displayName": "Nobody"}, headers=scim)
    assert_scim_error(answer, 400)


def test_replacing_to_a_taken_user_name_is_a_conflict(client: TestClient, scim: dict[str, str]) -> None:
    create_user(client, scim, "alice@example.com")
    bob = create_user(client, scim, "bob@example.com")
    answer = client.put(f"{USERS}/{bob['id']}", json=user_body("Alice@Example.com"), headers=scim)
    assert_scim_error(answer, 409, "uniqueness")
    assert client.get(f"{USERS}/{bob['id']}", headers=scim).json()["userName"] == "bob@example.com"
    # Changing only the case of one's own userName is no conflict.
    renamed = client.put(f"{USERS}/{bob['id']}", json=user_body("Bob@Example.com"), headers=scim)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["userName"] == "Bob@Example.com"


def test_get_returns_the_user_as_provisioned(client: TestClient, scim: dict[str, str]) -> None:
    created = create_user(client, scim, "alice@example.com", **ALICE)
    answer = client.get(f"{USERS}/{created['id']}", headers=scim)
    assert answer.status_code == 200 and is_scim(answer)
    assert answer.json() == created
    assert answer.headers["ETag"] == created["meta"]["version"]


def test_put_replaces_the_whole_user(client: TestClient, scim: dict[str, str]) -> None:
    created = create_user(client, scim, "alice@example.com", **ALICE)
    replacement = user_body(
        "alice.archer@example.com",
        displayName="Alice A.",
        emails=[{"value": "alice.archer@example.com", "type": "work", "primary": True}],
    )
    answer = client.put(f"{USERS}/{created['id']}", json=replacement, headers=scim)

    assert answer.status_code == 200, answer.text
    user = client.get(f"{USERS}/{created['id']}", headers=scim).json()
    assert user["userName"] == "alice.archer@example.com"
    assert user["displayName"] == "Alice A."
    assert user["emails"] == [{"value": "alice.archer@example.com", "type": "work", "primary": True}]
    # What the replacement leaves out is gone.
    assert "name" not in user and "externalId" not in user and ENTERPRISE_SCHEMA not in user
    assert user["active"] is True
    assert user["meta"]["version"] != created["meta"]["version"]
    assert answer.headers["ETag"] == user["meta"]["version"]


def test_patch_changes_only_what_it_names(client: TestClient, scim: dict[str, str]) -> None:
    created = create_user(client, scim, "alice@example.com", **ALICE)
    change = patch_body(
        {"op": "replace", "path": "name.familyName", "value": "Archer-Smith"},
        {"op": "add", "path": "displayName", "value": "Alice Archer-Smith"},
    )
    answer = client.patch(f"{USERS}/{created['id']}", json=change, headers=scim)

    assert answer.status_code == 200, answer.text
    user = client.get(f"{USERS}/{created['id']}", headers=scim).json()
    assert user["name"] == {"givenName": "Alice", "familyName": "Archer-Smith"}
    assert user["displayName"] == "Alice Archer-Smith"
    assert user["emails"] == created["emails"] and user[ENTERPRISE_SCHEMA] == created[ENTERPRISE_SCHEMA]
    assert answer.headers["ETag"] == user["meta"]["version"] != created["meta"]["version"]


def test_delete_removes_the_member_everywhere(
    client: TestClient, scim: dict[str, str], account_headers: dict[str, str]
) -> None:
    alice = create_user(client, scim, "alice@example.com")
    bob = create_user(client, scim, "bob@example.com")

    answer = client.delete(f"{USERS}/{alice['id']}", headers=scim)

    assert answer.status_code == 204 and answer.content == b""
    assert_scim_error(client.get(f"{USERS}/{alice['id']}", headers=scim), 404)
    assert "alice@example.com" not in user_names(client.get(USERS, headers=scim))
    assert find_users(client, scim, 'userName eq "alice@example.com"') == set()
    assert find_users(client, scim, 'userName ew "@example.com"') == {"bob@example.com"}
    assert client.get(f"/users/{alice['id']}", headers=account_headers).status_code == 404
    assert client.get(f"/users/{bob['id']}", headers=account_headers).status_code == 200
    # Deleting again finds nobody.
    assert_scim_error(client.delete(f"{USERS}/{alice['id']}", headers=scim), 404)
    # The userName is free again.
    create_user(client, scim, "alice@example.com")


def test_concurrent_creations_of_one_user_name_make_one_member(live_server: LiveServer, scim: dict[str, str]) -> None:
    """Identity providers provision in parallel: the same userName sent at once is created once."""
    start = threading.Barrier(10)

    def provision(i: int) -> int:
        user_name = "same@example.com" if i % 2 else f"user{i}@example.com"
        with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
            start.wait()
            return http.post(USERS, json=user_body(user_name), headers=scim).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(provision, range(10)))

    assert [codes[i] for i in range(0, 10, 2)] == [201] * 5
    assert sorted(codes[i] for i in range(1, 10, 2)) == [201, 409, 409, 409, 409]
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http:
        assert find_users(http, scim, 'userName eq "same@example.com"') == {"same@example.com"}
        assert http.get(USERS, params={"count": "0"}, headers=scim).json()["totalResults"] == 7


# attributes and excludedAttributes (RFC 7644 §3.9)


def test_attributes_narrow_a_user_to_its_id_and_those_named(client: TestClient, scim: dict[str, str]) -> None:
    alice = create_user(client, scim, "alice@example.com", **ALICE)
    user = client.get(f"{USERS}/{alice['id']}", params={"attributes": "userName"}, headers=scim).json()
    assert set(user) - {"schemas"} == {"id", "userName"}
    assert user["id"] == alice["id"] and user["userName"] == "alice@example.com"

    several = client.get(f"{USERS}/{alice['id']}", params={"attributes": "userName,name.givenName"}, headers=scim)
    assert set(several.json()) - {"schemas"} == {"id", "userName", "name"}
    assert several.json()["name"] == {"givenName": "Alice"}


def test_attributes_narrow_every_listed_user(client: TestClient, scim: dict[str, str]) -> None:
    create_user(client, scim, "alice@example.com", **ALICE)
    resources = listed(client.get(USERS, params={"attributes": "userName"}, headers=scim))
    assert len(resources) == 2  # the Owner and Alice
    assert all(set(resource) - {"schemas"} == {"id", "userName"} for resource in resources)


def test_excluded_attributes_drop_those_named(client: TestClient, scim: dict[str, str]) -> None:
    alice = create_user(client, scim, "alice@example.com", **ALICE)
    user = client.get(f"{USERS}/{alice['id']}", params={"excludedAttributes": "emails"}, headers=scim).json()
    assert "emails" not in user
    assert user["userName"] == "alice@example.com" and user["name"]["givenName"] == "Alice"

    resources = listed(client.get(USERS, params={"excludedAttributes": "emails,name"}, headers=scim))
    mine = next(resource for resource in resources if resource["id"] == alice["id"])
    assert "emails" not in mine and "name" not in mine
    assert mine["userName"] == "alice@example.com" and mine["displayName"] == "Alice Archer"


# ETag, If-Match and If-None-Match (RFC 7644 §3.14)


def _change(method: str, client: TestClient, user_id: str, headers: dict[str, str]) -> Answer:
    if method == "PUT":
        return client.put(f"{USERS}/{user_id}", json=user_body("alice@example.com", displayName="Put"), headers=headers)
    if method == "PATCH":
        change = patch_body({"op": "replace", "path": "displayName", "value": "Patched"})
        return client.patch(f"{USERS}/{user_id}", json=change, headers=headers)
    return client.delete(f"{USERS}/{user_id}", headers=headers)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_stale_if_match_is_refused_and_changes_nothing(client: TestClient, scim: dict[str, str], method: str) -> None:
    alice = create_user(client, scim, "alice@example.com", displayName="First")
    stale = alice["meta"]["version"]
    moved = client.patch(
        f"{USERS}/{alice['id']}",
        json=patch_body({"op": "replace", "path": "displayName", "value": "Second"}),
        headers=scim,
    )
    assert moved.headers["ETag"] != stale

    answer = _change(method, client, alice["id"], {**scim, "If-Match": stale})

    assert_scim_error(answer, 412)
    user = client.get(f"{USERS}/{alice['id']}", headers=scim).json()
    assert user["displayName"] == "Second"
    assert user["meta"]["version"] == moved.headers["ETag"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_the_current_etag_lets_a_change_through(client: TestClient, scim: dict[str, str], method: str) -> None:
    alice = create_user(client, scim, "alice@example.com", displayName="First")
    current = client.get(f"{USERS}/{alice['id']}", headers=scim).headers["ETag"]

    answer = _change(method, client, alice["id"], {**scim, "If-Match": current})

    if method == "DELETE":
        assert answer.status_code == 204, answer.text
        assert_scim_error(client.get(f"{USERS}/{alice['id']}", headers=scim), 404)
        return
    assert answer.status_code == 200, answer.text
    assert answer.headers["ETag"] != current
    assert answer.headers["ETag"] == answer.json()["meta"]["version"]
    assert client.get(f"{USERS}/{alice['id']}", headers=scim).json()["displayName"] in ("Put", "Patched")


def test_a_user_version_changes_when_their_groups_change(client: TestClient, scim: dict[str, str]) -> None:
    """``groups`` is part of the user as served: after joining a group, the version read
    before no longer validates a cached copy."""
    alice = create_user(client, scim, "alice@example.com")
    before = alice["meta"]["version"]
    support = client.post(
        GROUPS,
        json={"schemas": [GROUP_SCHEMA], "displayName": "Support", "members": [{"value": alice["id"]}]},
        headers=scim,
    )
    assert support.status_code == 201, support.text

    answer = client.get(f"{USERS}/{alice['id']}", headers={**scim, "If-None-Match": before})

    assert answer.status_code == 200, "a cached copy without the group would be declared current"
    assert [group["display"] for group in answer.json()["groups"]] == ["Support"]
    assert answer.headers["ETag"] != before


def test_if_none_match_with_the_current_etag_is_not_modified(client: TestClient, scim: dict[str, str]) -> None:
    alice = create_user(client, scim, "alice@example.com")
    current = alice["meta"]["version"]

    unchanged = client.get(f"{USERS}/{alice['id']}", headers={**scim, "If-None-Match": current})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["ETag"] == current

    client.patch(
        f"{USERS}/{alice['id']}", json=patch_body({"op": "replace", "path": "displayName", "value": "A"}), headers=scim
    )
    changed = client.get(f"{USERS}/{alice['id']}", headers={**scim, "If-None-Match": current})
    assert changed.status_code == 200 and changed.json()["displayName"] == "A"


# PATCH is all or nothing


@pytest.mark.parametrize(
    ("invalid", "scim_type"),
    [
        ({"op": "remove"}, "noTarget"),  # RFC 7644 §3.5.2.2: a remove without a path
        ({"op": "replace", "path": "id", "value": "77"}, "mutability"),
        ({"op": "replace", "path": "userName", "value": ""}, "invalidValue"),
    ],
    ids=["remove without path", "replace id", "empty userName"],
)
def test_a_patch_with_an_invalid_operation_applies_none_of_its_operations(
    client: TestClient, scim: dict[str, str], invalid: dict[str, Any], scim_type: str
) -> None:
    alice = create_user(client, scim, "alice@example.com", **ALICE)
    change = patch_body({"op": "replace", "path": "displayName", "value": "Changed"}, invalid)

    answer = client.patch(f"{USERS}/{alice['id']}", json=change, headers=scim)

    assert answer.status_code == 400, answer.text
    user = client.get(f"{USERS}/{alice['id']}", headers=scim).json()
    assert user["displayName"] == "Alice Archer"
    assert user["meta"]["version"] == alice["meta"]["version"]
    assert user["id"] == alice["id"]
    assert_scim_error(answer, 400, scim_type)


# the Owner


def test_the_owner_is_listed(client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]) -> None:
    owner = owner_id(runtime, account)
    assert find_users(client, scim, f'userName eq "{account.owner_email}"') == {account.owner_email}
    user = client.get(f"{USERS}/{owner}", headers=scim).json()
    assert user["userName"] == account.owner_email and user["active"] is True


@pytest.mark.parametrize(
    "change",
    [
        "PUT displayName",
        "PUT userName",
        "PATCH displayName",
        "PATCH active false",
        "PATCH Entra active False",
        "DELETE",
    ],
)
def test_scim_never_changes_or_removes_the_owner(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str], change: str
) -> None:
    owner = owner_id(runtime, account)
    before = client.get(f"{USERS}/{owner}", headers=scim).json()
    url = f"{USERS}/{owner}"
    requests: dict[str, Any] = {
        "PUT displayName": lambda: client.put(
            url, json=user_body(account.owner_email, displayName="Boss"), headers=scim
        ),
        "PUT userName": lambda: client.put(url, json=user_body("someone.else@example.com"), headers=scim),
        "PATCH displayName": lambda: client.patch(
            url, json=patch_body({"op": "replace", "path": "displayName", "value": "Boss"}), headers=scim
        ),
        "PATCH active false": lambda: client.patch(
            url, json=patch_body({"op": "replace", "value": {"active": False}}), headers=scim
        ),
        "PATCH Entra active False": lambda: client.patch(
            url, json=patch_body({"op": "Replace", "path": "active", "value": "False"}), headers=scim
        ),
        "DELETE": lambda: client.delete(url, headers=scim),
    }

    assert_scim_error(requests[change](), 403)

    assert client.get(url, headers=scim).json() == before
    # The Owner still signs in and works.
    session = owner_headers(client, account)
    assert client.get("/me", headers=session).json()["Role"] == "Owner"
    assert client.get("/users?count=10&offset=0", headers=session).status_code == 200


def test_scim_makes_members_never_owners(
    client: TestClient, scim: dict[str, str], account_headers: dict[str, str]
) -> None:
    """There is no role attribute: whatever an identity provider sends, a new member is a Member."""
    body = user_body("alice@example.com", roles=[{"value": "Owner", "primary": True}], title="Owner", userType="Owner")
    answer = client.post(USERS, json=body, headers=scim)
    assert answer.status_code == 201, answer.text
    user = answer.json()
    assert "roles" not in user

    member = client.get(f"/users/{user['id']}", headers=account_headers)
    assert member.status_code == 200, member.text
    assert member.json()["Role"] == "Member"
    assert member.json()["Email"] == "alice@example.com"


# the audit log


def test_scim_changes_are_audited_as_the_scim_token(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    alice = create_user(client, scim, "alice@example.com")
    client.patch(
        f"{USERS}/{alice['id']}", json=patch_body({"op": "replace", "path": "displayName", "value": "A"}), headers=scim
    )
    client.patch(f"{USERS}/{alice['id']}", json=patch_body({"op": "replace", "value": {"active": False}}), headers=scim)
    assert client.delete(f"{USERS}/{alice['id']}", headers=scim).status_code == 204

    with runtime.db.session_scope() as session:
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.account_id == account.account.id,
                    AuditEvent.target_type == "user",
                    AuditEvent.target_id == alice["id"],
                )
                .order_by(AuditEvent.id)
            )
        )
        seen = [(event.action, event.via, event.actor_credential) for event in events]
        labels = {event.actor_label for event in events}
        updated = next(event.changes for event in events if event.action == "membership.updated")

    actions = [action for action, _, _ in seen]
    for wanted in ("membership.created", "membership.updated", "membership.suspended", "membership.deleted"):
        assert wanted in actions, seen
    assert (
        actions.index("membership.created") < actions.index("membership.updated") < actions.index("membership.deleted")
    )
    assert all(via == "scim" and credential == "scim_token" for _, via, credential in seen), seen
    assert all("okta" in label for label in labels), labels
    assert updated["display_name"] == {"before": None, "after": "A"}
