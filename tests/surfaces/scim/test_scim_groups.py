"""Groups through SCIM, and what they are worth: the identity provider decides who is in
a group; what the group grants (a role, access to servers) is mapped in postwarden, and
the members' access follows every change of membership at once."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.errors import InvalidRequest
from postwarden.groups.service import GroupService
from postwarden.identity import Actor
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from tests.surfaces.scim.helpers import (
    GROUP_SCHEMA,
    GROUPS,
    USERS,
    assert_scim_error,
    create_group,
    create_user,
    is_scim,
    listed,
    patch_body,
)
from tests.surfaces.team.helpers import add_member, bearer, create_server, sign_in


def member_ids(group: dict[str, Any]) -> list[str]:
    return sorted((member["value"] for member in group.get("members", [])), key=int)


def row_id(group: dict[str, Any]) -> int:
    """The group's id in postwarden: the number of its SCIM id ``g12``."""
    scim_id: str = group["id"]
    assert scim_id.startswith("g")
    return int(scim_id[1:])


def map_group(
    runtime: Runtime,
    account: NewAccount,
    group: dict[str, Any],
    *,
    role: Role | None = None,
    servers: dict[int, ServerAccess] | None = None,
) -> None:
    with runtime.db.session_scope() as session:
        GroupService(session, Actor.system("tests"), runtime).set_access(
            account.account.id, row_id(group), role=role, servers=servers or {}
        )


@pytest.fixture
def two_users(client: TestClient, scim: dict[str, str]) -> tuple[str, str]:
    alice = create_user(client, scim, "alice@example.com")
    bob = create_user(client, scim, "bob@example.com")
    return alice["id"], bob["id"]


def test_create_a_group_with_members(client: TestClient, scim: dict[str, str], two_users: tuple[str, str]) -> None:
    alice, bob = two_users
    answer = client.post(
        GROUPS,
        json={"schemas": [GROUP_SCHEMA], "displayName": "Support", "members": [{"value": alice}, {"value": bob}]},
        headers=scim,
    )

    assert answer.status_code == 201, answer.text
    assert is_scim(answer)
    group = answer.json()
    assert group["id"].startswith("g") and group["displayName"] == "Support"
    assert member_ids(group) == [alice, bob]
    assert answer.headers["Location"] == group["meta"]["location"]
    assert answer.headers["ETag"] == group["meta"]["version"]
    assert client.get(f"{GROUPS}/{group['id']}", headers=scim).json() == group
    # The members see their group.
    user = client.get(f"{USERS}/{alice}", headers=scim).json()
    assert [(g["value"], g["display"]) for g in user["groups"]] == [(group["id"], "Support")]


def test_group_locations_and_member_references_resolve(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    """``meta.location``, ``members[].$ref`` and a user's ``groups[].$ref`` are URLs under
    ``/scim/v2`` that answer with the resource (RFC 7643 §4.2, §4.1.2)."""
    alice, _ = two_users
    group = create_group(client, scim, "Support", [alice])
    assert group["meta"]["location"] == f"http://testserver{GROUPS}/{group['id']}"
    assert client.get(group["meta"]["location"], headers=scim).json()["id"] == group["id"]
    (member,) = group["members"]
    assert client.get(member["$ref"], headers=scim).json()["id"] == alice
    (membership,) = client.get(f"{USERS}/{alice}", headers=scim).json()["groups"]
    assert client.get(membership["$ref"], headers=scim).json()["id"] == group["id"]


def test_a_group_holds_only_users_of_the_account(client: TestClient, scim: dict[str, str]) -> None:
    for members in ([{"value": "99999"}], [{"value": "not-a-user"}], [{"value": "1", "type": "Group"}]):
        answer = client.post(
            GROUPS, json={"schemas": [GROUP_SCHEMA], "displayName": "X", "members": members}, headers=scim
        )
        assert_scim_error(answer, 400, "invalidValue")
    assert listed(client.get(GROUPS, headers=scim)) == []
    assert_scim_error(client.post(GROUPS, json={"schemas": [GROUP_SCHEMA], "displayName": ""}, headers=scim), 400)


def test_filter_groups_by_display_name(client: TestClient, scim: dict[str, str]) -> None:
    support = create_group(client, scim, "Support")
    create_group(client, scim, "Sales")
    for scim_filter in ('displayName eq "Support"', 'displayName eq "SUPPORT"', 'DISPLAYNAME sw "sup"'):
        answer = client.get(GROUPS, params={"filter": scim_filter}, headers=scim)
        assert [group["id"] for group in listed(answer)] == [support["id"]], scim_filter
        assert answer.json()["totalResults"] == 1
    assert listed(client.get(GROUPS, params={"filter": 'displayName eq "Nobody"'}, headers=scim)) == []
    assert_scim_error(client.get(GROUPS, params={"filter": 'userName eq "x"'}, headers=scim), 400, "invalidFilter")


def test_filter_groups_by_member(client: TestClient, scim: dict[str, str], two_users: tuple[str, str]) -> None:
    alice, bob = two_users
    support = create_group(client, scim, "Support", [alice])
    create_group(client, scim, "Sales", [bob])
    answer = client.get(GROUPS, params={"filter": f'members.value eq "{alice}"'}, headers=scim)
    assert [group["id"] for group in listed(answer)] == [support["id"]]


def test_entra_reads_groups_without_their_members(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    group = create_group(client, scim, "Support", list(two_users))

    one = client.get(f"{GROUPS}/{group['id']}", params={"excludedAttributes": "members"}, headers=scim)
    assert one.status_code == 200, one.text
    assert "members" not in one.json() and one.json()["displayName"] == "Support"
    listing = client.get(
        GROUPS, params={"filter": 'displayName eq "Support"', "excludedAttributes": "members"}, headers=scim
    )
    (found,) = listed(listing)
    assert "members" not in found and found["id"] == group["id"]
    narrowed = client.get(f"{GROUPS}/{group['id']}", params={"attributes": "displayName"}, headers=scim).json()
    assert set(narrowed) - {"schemas"} == {"id", "displayName"}
    # Asked for, the members are there.
    assert member_ids(client.get(f"{GROUPS}/{group['id']}", headers=scim).json()) == sorted(two_users, key=int)


def test_entra_adds_members_by_value_list(client: TestClient, scim: dict[str, str], two_users: tuple[str, str]) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support")
    change = patch_body({"op": "Add", "path": "members", "value": [{"value": alice}, {"value": bob}]})

    answer = client.patch(f"{GROUPS}/{group['id']}", json=change, headers=scim)

    assert answer.status_code == 200, answer.text
    assert member_ids(client.get(f"{GROUPS}/{group['id']}", headers=scim).json()) == [alice, bob]
    # Adding someone already there changes nothing.
    again = client.patch(f"{GROUPS}/{group['id']}", json=patch_body(change["Operations"][0]), headers=scim)
    assert again.status_code == 200 and member_ids(again.json()) == [alice, bob]


def test_entra_removes_only_the_member_named_by_value(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice, bob])
    change = patch_body({"op": "Remove", "path": "members", "value": [{"value": alice}]})

    answer = client.patch(f"{GROUPS}/{group['id']}", json=change, headers=scim)

    assert answer.status_code == 200, answer.text
    assert member_ids(client.get(f"{GROUPS}/{group['id']}", headers=scim).json()) == [bob]
    assert "groups" not in client.get(f"{USERS}/{alice}", headers=scim).json()


def test_remove_a_member_by_value_filter(client: TestClient, scim: dict[str, str], two_users: tuple[str, str]) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice, bob])
    change = patch_body({"op": "remove", "path": f'members[value eq "{bob}"]'})
    answer = client.patch(f"{GROUPS}/{group['id']}", json=change, headers=scim)
    assert answer.status_code == 200, answer.text
    assert member_ids(client.get(f"{GROUPS}/{group['id']}", headers=scim).json()) == [alice]


def test_okta_renames_a_group_and_replaces_its_members(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice])
    change = patch_body(
        {"op": "replace", "value": {"id": group["id"], "displayName": "Customer Support"}},
        {"op": "replace", "path": "members", "value": [{"value": bob}]},
    )
    answer = client.patch(f"{GROUPS}/{group['id']}", json=change, headers=scim)
    assert answer.status_code == 200, answer.text
    now = client.get(f"{GROUPS}/{group['id']}", headers=scim).json()
    assert now["displayName"] == "Customer Support" and member_ids(now) == [bob]


def test_put_replaces_and_delete_removes_a_group(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice])
    replaced = client.put(
        f"{GROUPS}/{group['id']}",
        json={"schemas": [GROUP_SCHEMA], "displayName": "Helpdesk", "members": [{"value": bob}]},
        headers=scim,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["displayName"] == "Helpdesk" and member_ids(replaced.json()) == [bob]
    assert replaced.headers["ETag"] != group["meta"]["version"]

    assert client.delete(f"{GROUPS}/{group['id']}", headers=scim).status_code == 204
    assert_scim_error(client.get(f"{GROUPS}/{group['id']}", headers=scim), 404)
    assert listed(client.get(GROUPS, headers=scim)) == []
    # Its members stay members of the account.
    assert client.get(f"{USERS}/{bob}", headers=scim).status_code == 200


def test_a_deprovisioned_user_leaves_their_groups(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice, bob])
    before = group["meta"]["version"]

    assert client.delete(f"{USERS}/{alice}", headers=scim).status_code == 204

    assert member_ids(client.get(f"{GROUPS}/{group['id']}", headers=scim).json()) == [bob]
    assert listed(client.get(GROUPS, params={"filter": f'members.value eq "{alice}"'}, headers=scim)) == []
    # A copy cached with the old version, Alice still in it, is no longer current.
    cached = client.get(f"{GROUPS}/{group['id']}", headers={**scim, "If-None-Match": before})
    assert cached.status_code == 200, "the group's members changed but its version did not"
    assert cached.headers["ETag"] != before


def test_a_stale_if_match_on_a_group_is_refused(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice])
    stale = group["meta"]["version"]
    add_bob = patch_body({"op": "add", "path": "members", "value": [{"value": bob}]})
    assert client.patch(f"{GROUPS}/{group['id']}", json=add_bob, headers=scim).status_code == 200

    remove_alice = patch_body({"op": "remove", "path": f'members[value eq "{alice}"]'})
    answer = client.patch(f"{GROUPS}/{group['id']}", json=remove_alice, headers={**scim, "If-Match": stale})
    assert_scim_error(answer, 412)
    assert_scim_error(client.delete(f"{GROUPS}/{group['id']}", headers={**scim, "If-Match": stale}), 412)
    assert member_ids(client.get(f"{GROUPS}/{group['id']}", headers=scim).json()) == [alice, bob]


def test_a_failed_group_patch_changes_nothing(
    client: TestClient, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice])
    change = patch_body(
        {"op": "add", "path": "members", "value": [{"value": bob}]},
        {"op": "add", "path": "members", "value": [{"value": "99999"}]},
    )
    assert_scim_error(client.patch(f"{GROUPS}/{group['id']}", json=change, headers=scim), 400)
    assert member_ids(client.get(f"{GROUPS}/{group['id']}", headers=scim).json()) == [alice]


def test_group_changes_are_audited_as_the_scim_token(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str], two_users: tuple[str, str]
) -> None:
    alice, bob = two_users
    group = create_group(client, scim, "Support", [alice])
    client.patch(
        f"{GROUPS}/{group['id']}",
        json=patch_body({"op": "add", "path": "members", "value": [{"value": bob}]}),
        headers=scim,
    )
    client.delete(f"{GROUPS}/{group['id']}", headers=scim)
    with runtime.db.session_scope() as session:
        events = [
            (event.action, event.via, event.actor_label)
            for event in session.scalars(
                select(AuditEvent)
                .where(AuditEvent.target_type == "group", AuditEvent.account_id == account.account.id)
                .order_by(AuditEvent.id)
            )
        ]
    assert [action for action, _, _ in events] == ["group.created", "group.updated", "group.deleted"]
    assert all(via == "scim" and "okta" in label for _, via, label in events), events


# what groups grant


def test_a_group_grants_its_members_the_access_mapped_to_it(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    production = create_server(client, account, "Production")
    staging = create_server(client, account, "Staging")
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    session = sign_in(client, "mia@example.com")
    token = client.post("/me/tokens", json={"Name": "laptop"}, headers=session)
    assert token.status_code == 200, token.text
    held = [session, bearer(token.json()["Token"])]
    for credential in held:
        assert client.get(f"/servers/{production}", headers=credential).status_code == 403

    support = create_group(client, scim, "Support", [mia])
    map_group(runtime, account, support, servers={production: ServerAccess.VIEW})

    for credential in held:
        assert client.get(f"/servers/{production}", headers=credential).status_code == 200
        edit = client.put(f"/servers/{production}", json={"Color": "Red"}, headers=credential)
        assert edit.status_code == 403, edit.text
        assert client.get(f"/servers/{staging}", headers=credential).status_code == 403
        listing = client.get("/servers?count=10&offset=0", headers=credential).json()
        assert [server["ID"] for server in listing["Servers"]] == [production]

    removal = patch_body({"op": "Remove", "path": "members", "value": [{"value": mia}]})
    assert client.patch(f"{GROUPS}/{support['id']}", json=removal, headers=scim).status_code == 200

    for credential in held:
        assert client.get(f"/servers/{production}", headers=credential).status_code == 403


def test_full_access_through_a_group_lets_members_edit(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    production = create_server(client, account, "Production")
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    session = sign_in(client, "mia@example.com")
    support = create_group(client, scim, "Support", [mia])
    map_group(runtime, account, support, servers={production: ServerAccess.FULL})
    assert client.put(f"/servers/{production}", json={"Color": "Red"}, headers=session).status_code == 200
    # Mapped down to view only, the next request can no longer edit.
    map_group(runtime, account, support, servers={production: ServerAccess.VIEW})
    assert client.put(f"/servers/{production}", json={"Color": "Blue"}, headers=session).status_code == 403


def test_joining_a_mapped_group_grants_at_once(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    production = create_server(client, account, "Production")
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    session = sign_in(client, "mia@example.com")
    support = create_group(client, scim, "Support")
    map_group(runtime, account, support, servers={production: ServerAccess.VIEW})
    assert client.get(f"/servers/{production}", headers=session).status_code == 403  # cached as no access

    add = patch_body({"op": "add", "path": "members", "value": [{"value": mia}]})
    assert client.patch(f"{GROUPS}/{support['id']}", json=add, headers=scim).status_code == 200

    assert client.get(f"/servers/{production}", headers=session).status_code == 200


def test_a_group_mapped_to_technical_reaches_every_server(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    servers = [create_server(client, account, name) for name in ("Production", "Staging")]
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    session = sign_in(client, "mia@example.com")
    engineers = create_group(client, scim, "Engineers", [mia])

    map_group(runtime, account, engineers, role=Role.TECHNICAL)

    for server in servers:
        assert client.get(f"/servers/{server}", headers=session).status_code == 200
    later = create_server(client, account, "Later")
    assert client.get(f"/servers/{later}", headers=session).status_code == 200
    listing = client.get("/servers?count=10&offset=0", headers=session).json()
    assert sorted(server["ID"] for server in listing["Servers"]) == sorted([*servers, later])

    # Deleting the group takes it all away.
    assert client.delete(f"{GROUPS}/{engineers['id']}", headers=scim).status_code == 204
    for server in [*servers, later]:
        assert client.get(f"/servers/{server}", headers=session).status_code == 403


def test_a_group_cannot_make_its_members_owners(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    mia = str(add_member(runtime, account, "mia@example.com", Role.MEMBER))
    group = create_group(client, scim, "Owners", [mia])
    with pytest.raises(InvalidRequest), runtime.db.session_scope() as session:
        GroupService(session, Actor.system("tests"), runtime).set_access(
            account.account.id, row_id(group), role=Role.OWNER, servers={}
        )
    session_headers = sign_in(client, "mia@example.com")
    assert client.get("/me", headers=session_headers).json()["Role"] == "Member"
    assert (
        client.post("/account/transfer-ownership", json={"UserID": int(mia)}, headers=session_headers).status_code
        == 403
    )
