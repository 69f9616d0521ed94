"""Finding users as identity providers do (RFC 7644 §3.4.2): every filter operator, logic
and grouping, value paths, case rules, the enterprise extension; attributes that are not
stored are refused, never ignored; then paging, sorting and searches by POST."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from tests.surfaces.scim.helpers import (
    BASE,
    ENTERPRISE_SCHEMA,
    USERS,
    assert_scim_error,
    create_group,
    create_user,
    find_users,
    listed,
    patch_body,
    search_body,
    user_names,
)

#: Short name -> userName; "owner" is the account's Owner, who has neither name nor emails.
NAMES = {
    "alice": "alice@example.com",
    "bob": "bob@example.com",
    "carol": "carol@example.org",
    "dave": "dave",
    "owner": "owner@acme.example",
}

People = dict[str, dict[str, Any]]


@pytest.fixture
def people(client: TestClient, scim: dict[str, str], account: NewAccount) -> People:
    """Four members, provisioned in this order after the Owner."""
    assert account.owner_email == NAMES["owner"]
    return {
        "alice": create_user(
            client,
            scim,
            NAMES["alice"],
            name={"givenName": "Alice", "familyName": "Archer"},
            emails=[
                {"value": "alice@example.com", "type": "work", "primary": True},
                {"value": "alice@home.example", "type": "home"},
            ],
            **{ENTERPRISE_SCHEMA: {"department": "Sales"}},
        ),
        "bob": create_user(
            client,
            scim,
            NAMES["bob"],
            name={"givenName": "Bob", "familyName": "bell"},
            emails=[{"value": "bob@example.com", "type": "work", "primary": True}],
            **{ENTERPRISE_SCHEMA: {"department": "Engineering"}},
        ),
        "carol": create_user(
            client,
            scim,
            NAMES["carol"],
            name={"givenName": "Carol", "familyName": "Clark"},
            emails=[{"value": "carol@example.org", "type": "work", "primary": True}],
            active=False,
        ),
        "dave": create_user(
            client, scim, NAMES["dave"], emails=[{"value": "dave@example.net", "type": "work", "primary": True}]
        ),
    }


def names(*short: str) -> set[str]:
    return {NAMES[s] for s in short}


EVERYONE = ("alice", "bob", "carol", "dave", "owner")


@pytest.mark.parametrize(
    ("scim_filter", "expected"),
    [
        # each operator
        ('userName eq "bob@example.com"', ("bob",)),
        ('userName ne "bob@example.com"', ("alice", "carol", "dave", "owner")),
        ('userName co "example.org"', ("carol",)),
        ('userName sw "al"', ("alice",)),
        ('userName ew ".com"', ("alice", "bob")),
        ("name.givenName pr", ("alice", "bob", "carol")),
        ('userName gt "carol@example.org"', ("dave", "owner")),
        ('userName ge "carol@example.org"', ("carol", "dave", "owner")),
        ('userName lt "bob@example.com"', ("alice",)),
        ('userName le "bob@example.com"', ("alice", "bob")),
        ('name.givenName eq "Alice"', ("alice",)),
        ('name.familyName ew "rk"', ("carol",)),
        # case: attribute names and values of case-insensitive attributes
        ('userName eq "BOB@EXAMPLE.COM"', ("bob",)),
        ('USERNAME eq "bob@example.com"', ("bob",)),
        ('UserName Eq "bob@example.com"', ("bob",)),
        ('name.GIVENNAME eq "ALICE"', ("alice",)),
        ('name.familyName sw "B"', ("bob",)),
        # logic and grouping
        ('userName ew ".com" and name.givenName eq "bob"', ("bob",)),
        ('userName eq "alice@example.com" or userName eq "dave"', ("alice", "dave")),
        ('not (userName ew ".com")', ("carol", "dave", "owner")),
        ('not (name.givenName eq "Alice")', ("bob", "carol", "dave", "owner")),
        ('userName sw "a" or userName sw "b" and name.familyName eq "Archer"', ("alice",)),
        ('(userName sw "a" or userName sw "b") and name.familyName eq "bell"', ("bob",)),
        ('not (userName sw "a" or userName sw "b") and active eq true', ("dave", "owner")),
        # multi-valued attributes and value paths
        ('emails[type eq "work" and value co "alice"]', ("alice",)),
        ('emails[type eq "home"]', ("alice",)),
        ('emails[type eq "home" and value co "bob"]', ()),
        ('emails[type eq "work"].value eq "dave@example.net"', ("dave",)),
        ('emails.value eq "BOB@example.com"', ("bob",)),
        ('emails co "example.net"', ("dave",)),
        ("emails pr", ("alice", "bob", "carol", "dave")),
        # schema-qualified names
        (f'{ENTERPRISE_SCHEMA}:department eq "Sales"', ("alice",)),
        (f'{ENTERPRISE_SCHEMA}:department eq "sales"', ("alice",)),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bob@example.com"', ("bob",)),
        # active
        ("active eq false", ("carol",)),
        ("active eq true", ("alice", "bob", "dave", "owner")),
        ("active pr", EVERYONE),
        # nothing matches; LIKE's wildcards are plain characters
        ('userName eq "nobody@example.com"', ()),
        ('userName co "%"', ()),
        ('userName sw "_"', ()),
        ('userName ew "%.com"', ()),
    ],
)
def test_filter(
    client: TestClient, scim: dict[str, str], people: People, scim_filter: str, expected: tuple[str, ...]
) -> None:
    answer = client.get(USERS, params={"filter": scim_filter}, headers=scim)
    found = set(user_names(answer))
    assert found == names(*expected)
    assert answer.json()["totalResults"] == len(expected)


def test_filter_on_names_beyond_ascii_ignores_case(client: TestClient, scim: dict[str, str]) -> None:
    create_user(
        client,
        scim,
        "emile@example.com",
        name={"givenName": "Émile", "familyName": "Ørsted"},
        displayName="Émile Ørsted",
    )
    for scim_filter in (
        'name.givenName eq "Émile"',
        'name.givenName eq "émile"',
        'name.familyName sw "ør"',
        'displayName co "ÉMILE"',
    ):
        assert find_users(client, scim, scim_filter) == {"emile@example.com"}, scim_filter


def test_filter_on_creation_and_modification_times(client: TestClient, scim: dict[str, str], people: People) -> None:
    bob_created = people["bob"]["meta"]["created"]
    assert find_users(client, scim, f'meta.created gt "{bob_created}"') == names("carol", "dave")
    assert find_users(client, scim, f'meta.created ge "{bob_created}"') == names("bob", "carol", "dave")
    assert find_users(client, scim, f'meta.created lt "{bob_created}"') == names("owner", "alice")
    assert find_users(client, scim, f'meta.created le "{bob_created}"') == names("owner", "alice", "bob")
    assert find_users(client, scim, f'meta.created eq "{bob_created}"') == names("bob")

    latest = max(person["meta"]["lastModified"] for person in people.values())
    assert find_users(client, scim, f'meta.lastModified gt "{latest}"') == set()
    patched = client.patch(
        f"{USERS}/{people['alice']['id']}",
        json=patch_body({"op": "replace", "path": "displayName", "value": "Alice A."}),
        headers=scim,
    )
    assert patched.status_code == 200, patched.text
    assert find_users(client, scim, f'meta.lastModified gt "{latest}"') == names("alice")
    modified = patched.json()["meta"]["lastModified"]
    assert find_users(client, scim, f'meta.lastModified ge "{modified}"') == names("alice")
    assert find_users(client, scim, f'meta.lastModified lt "{modified}"') == names("owner", "bob", "carol", "dave")
    assert find_users(client, scim, 'meta.created gt "2000-01-01T00:00:00+00:00"') == names(*EVERYONE)


def test_filter_on_group_membership(client: TestClient, scim: dict[str, str], people: People) -> None:
    support = create_group(client, scim, "Support", [people["bob"]["id"], people["carol"]["id"]])
    create_group(client, scim, "Sales", [people["alice"]["id"]])
    assert find_users(client, scim, f'groups.value eq "{support["id"]}"') == names("bob", "carol")
    assert find_users(client, scim, 'groups.display eq "support"') == names("bob", "carol")
    assert find_users(client, scim, "groups pr") == names("alice", "bob", "carol")
    assert find_users(client, scim, 'groups.value eq "g99999"') == set()


@pytest.mark.parametrize(
    "scim_filter",
    [
        'nickName eq "x"',
        'userName eq "a" and nickName eq "b"',
        'userName eq "a" or nickName eq "b"',
        'not (nickName eq "x")',
        "title pr",
        'emails[display eq "x"]',
        'addresses[type eq "work"]',
        f'{ENTERPRISE_SCHEMA}:manager eq "x"',
        'urn:example:custom:User:userName eq "x"',
        'meta.created gt "yesterday"',
        'meta.created gt "2026-01-31T12:00:00"',  # no UTC offset
        "userName eq 12",
        'active gt "x"',
    ],
)
def test_a_filter_on_what_is_not_stored_or_of_the_wrong_type_is_refused(
    client: TestClient, scim: dict[str, str], people: People, scim_filter: str
) -> None:
    answer = client.get(USERS, params={"filter": scim_filter}, headers=scim)
    assert_scim_error(answer, 400, "invalidFilter")


@pytest.mark.parametrize(
    "scim_filter",
    ["userName eq", 'userName eq "x" and (', 'userName xx "a"', '(userName eq "a"', 'userName eq "unterminated', "and"],
)
def test_a_filter_that_does_not_parse_is_refused(client: TestClient, scim: dict[str, str], scim_filter: str) -> None:
    assert_scim_error(client.get(USERS, params={"filter": scim_filter}, headers=scim), 400, "invalidFilter")


# paging (RFC 7644 §3.4.2.4)


def test_paging_by_start_index_and_count(client: TestClient, scim: dict[str, str], people: People) -> None:
    answer = client.get(USERS, params={"startIndex": "2", "count": "2"}, headers=scim)
    body = answer.json()
    assert user_names(answer) == [NAMES["alice"], NAMES["bob"]]  # the Owner, then in creation order
    assert (body["totalResults"], body["itemsPerPage"], body["startIndex"]) == (5, 2, 2)

    last = client.get(USERS, params={"startIndex": "5", "count": "2"}, headers=scim)
    assert user_names(last) == [NAMES["dave"]]
    assert (last.json()["totalResults"], last.json()["itemsPerPage"], last.json()["startIndex"]) == (5, 1, 5)

    beyond = client.get(USERS, params={"startIndex": "9"}, headers=scim)
    assert listed(beyond) == [] and beyond.json()["totalResults"] == 5


def test_pages_cover_everyone_once(client: TestClient, scim: dict[str, str], people: People) -> None:
    seen: list[str] = []
    for start in (1, 3, 5):
        seen += user_names(client.get(USERS, params={"startIndex": str(start), "count": "2"}, headers=scim))
    assert sorted(seen) == sorted(NAMES.values())


def test_count_zero_answers_only_the_total(client: TestClient, scim: dict[str, str], people: People) -> None:
    answer = client.get(USERS, params={"count": "0"}, headers=scim)
    assert listed(answer) == []
    assert answer.json()["totalResults"] == 5
    filtered = client.get(USERS, params={"count": "0", "filter": 'userName ew ".com"'}, headers=scim)
    assert listed(filtered) == [] and filtered.json()["totalResults"] == 2


def test_start_index_below_one_is_one(client: TestClient, scim: dict[str, str], people: People) -> None:
    answer = client.get(USERS, params={"startIndex": "0", "count": "1"}, headers=scim)
    assert answer.json()["startIndex"] == 1
    assert user_names(answer) == [NAMES["owner"]]


def test_paging_parameters_must_be_numbers(client: TestClient, scim: dict[str, str]) -> None:
    assert_scim_error(client.get(USERS, params={"count": "ten"}, headers=scim), 400)
    assert_scim_error(client.get(USERS, params={"startIndex": "first"}, headers=scim), 400)


# sorting (RFC 7644 §3.4.2.3)


def test_sort_by_user_name(client: TestClient, scim: dict[str, str], people: People) -> None:
    ascending = user_names(client.get(USERS, params={"sortBy": "userName"}, headers=scim))
    assert ascending == sorted(NAMES.values())
    explicit = client.get(USERS, params={"sortBy": "userName", "sortOrder": "ascending"}, headers=scim)
    assert user_names(explicit) == ascending
    descending = client.get(USERS, params={"sortBy": "userName", "sortOrder": "descending"}, headers=scim)
    assert user_names(descending) == list(reversed(ascending))
    paged = client.get(USERS, params={"sortBy": "userName", "startIndex": "2", "count": "2"}, headers=scim)
    assert user_names(paged) == ascending[1:3]


def test_sort_by_family_name_ignores_case(client: TestClient, scim: dict[str, str], people: People) -> None:
    """familyName is not caseExact: "bell" sorts between "Archer" and "Clark"."""
    params = {"sortBy": "name.familyName", "filter": "name.familyName pr"}
    ascending = client.get(USERS, params=params, headers=scim)
    assert user_names(ascending) == [NAMES["alice"], NAMES["bob"], NAMES["carol"]]
    descending = client.get(USERS, params={**params, "sortOrder": "descending"}, headers=scim)
    assert user_names(descending) == [NAMES["carol"], NAMES["bob"], NAMES["alice"]]


def test_sort_puts_members_without_the_value_last_ascending_and_first_descending(
    client: TestClient, scim: dict[str, str], people: People
) -> None:
    """RFC 7644 §3.4.2.3: resources without the sortBy value are ordered last when
    ascending and first when descending."""
    ascending = user_names(client.get(USERS, params={"sortBy": "name.familyName"}, headers=scim))
    assert set(ascending[-2:]) == names("dave", "owner"), ascending
    descending = user_names(
        client.get(USERS, params={"sortBy": "name.familyName", "sortOrder": "descending"}, headers=scim)
    )
    assert set(descending[:2]) == names("dave", "owner"), descending


def test_sort_by_what_is_not_stored_is_refused(client: TestClient, scim: dict[str, str]) -> None:
    assert_scim_error(client.get(USERS, params={"sortBy": "nickName"}, headers=scim), 400)
    assert_scim_error(client.get(USERS, params={"sortBy": "userName", "sortOrder": "sideways"}, headers=scim), 400)


# searching by POST (RFC 7644 §3.4.3)


def test_search_users_by_post(client: TestClient, scim: dict[str, str], people: People) -> None:
    body = search_body(filter='userName ew ".com"', sortBy="userName", sortOrder="descending", startIndex=2, count=1)
    answer = client.post(f"{USERS}/.search", json=body, headers=scim)
    assert user_names(answer) == [NAMES["alice"]]
    assert (answer.json()["totalResults"], answer.json()["startIndex"], answer.json()["itemsPerPage"]) == (2, 2, 1)

    narrowed = client.post(
        f"{USERS}/.search",
        json=search_body(filter='userName eq "bob@example.com"', attributes=["userName"]),
        headers=scim,
    )
    (bob,) = listed(narrowed)
    assert set(bob) - {"schemas"} == {"id", "userName"}

    refused = client.post(f"{USERS}/.search", json=search_body(filter='nickName eq "x"'), headers=scim)
    assert_scim_error(refused, 400, "invalidFilter")


def test_search_across_users_and_groups(client: TestClient, scim: dict[str, str], people: People) -> None:
    support = create_group(client, scim, "Support", [people["bob"]["id"]])

    everything = client.post(f"{BASE}/.search", json=search_body(), headers=scim)
    resources = listed(everything)
    assert everything.json()["totalResults"] == 6
    assert [r["meta"]["resourceType"] for r in resources] == ["User"] * 5 + ["Group"]
    assert resources[-1]["id"] == support["id"]

    across = client.post(f"{BASE}/.search", json=search_body(startIndex=5, count=2), headers=scim)
    assert [r["id"] for r in listed(across)] == [people["dave"]["id"], support["id"]]
    assert (across.json()["totalResults"], across.json()["startIndex"]) == (6, 5)

    groups_only = client.post(f"{BASE}/.search", json=search_body(filter='displayName eq "support"'), headers=scim)
    assert [r["id"] for r in listed(groups_only)] == [support["id"]]
    users_only = client.post(f"{BASE}/.search", json=search_body(filter='userName sw "b"'), headers=scim)
    assert [r["id"] for r in listed(users_only)] == [people["bob"]["id"]]

    refused = client.post(f"{BASE}/.search", json=search_body(filter='nickName eq "x"'), headers=scim)
    assert_scim_error(refused, 400, "invalidFilter")
