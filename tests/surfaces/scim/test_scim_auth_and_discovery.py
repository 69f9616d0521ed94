"""Who may speak SCIM (only a live SCIM token of the account) and what ``/scim/v2``
publishes about itself, as an identity provider probes it before provisioning."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.runtime import Runtime
from tests.conftest import create_account
from tests.surfaces.scim.helpers import (
    BASE,
    ENTERPRISE_SCHEMA,
    GROUP_SCHEMA,
    GROUPS,
    USER_SCHEMA,
    USERS,
    IssuedToken,
    assert_scim_error,
    create_group,
    create_user,
    is_scim,
    issue_token,
    listed,
    patch_body,
    revoke_token,
    user_names,
)


def credentials(kind: str, account: NewAccount) -> dict[str, str]:
    return {
        "none": {},
        "not a bearer": {"Authorization": "non-token"},
        "empty bearer": {"Authorization": "Bearer "},
        "unknown SCIM token": {"Authorization": "Bearer pwscim_" + "0" * 64},
        "account token header": {"X-Postmark-Account-Token": account.account_token},
        "account token as bearer": {"Authorization": f"Bearer {account.account_token}"},
    }[kind]


@pytest.mark.parametrize(
    "kind",
    [
        "none",
        "not a bearer",
        "empty bearer",
        "unknown SCIM token",
        "account token header",
        "account token as bearer",
    ],
)
@pytest.mark.parametrize("path", ["/Users", "/Groups", "/ServiceProviderConfig", "/Schemas", "/ResourceTypes"])
def test_without_a_scim_token_every_endpoint_answers_a_scim_401(
    client: TestClient, account: NewAccount, kind: str, path: str
) -> None:
    answer = client.get(BASE + path, headers=credentials(kind, account))
    assert_scim_error(answer, 401)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_without_a_scim_token_nothing_is_written(client: TestClient, account: NewAccount, scim: dict[str, str]) -> None:
    account_token = credentials("account token header", account)
    assert_scim_error(client.post(USERS, json={"schemas": [USER_SCHEMA], "userName": "x@example.com"}), 401)
    answer = client.post(USERS, json={"schemas": [USER_SCHEMA], "userName": "y@example.com"}, headers=account_token)
    assert_scim_error(answer, 401)
    assert user_names(client.get(USERS, params={"filter": 'userName ew "@example.com"'}, headers=scim)) == []


def test_a_revoked_scim_token_stops_working_at_once(
    client: TestClient, runtime: Runtime, account: NewAccount, scim_token: IssuedToken
) -> None:
    assert client.get(USERS, headers=scim_token.headers).status_code == 200  # known and cached
    revoke_token(runtime, account, scim_token)
    assert_scim_error(client.get(USERS, headers=scim_token.headers), 401)
    assert_scim_error(client.get(f"{BASE}/ServiceProviderConfig", headers=scim_token.headers), 401)
    answer = client.post(
        USERS, json={"schemas": [USER_SCHEMA], "userName": "late@example.com"}, headers=scim_token.headers
    )
    assert_scim_error(answer, 401)


def test_revoking_one_scim_token_leaves_the_others_working(
    client: TestClient, runtime: Runtime, account: NewAccount, scim_token: IssuedToken
) -> None:
    entra = issue_token(runtime, account, "entra")
    revoke_token(runtime, account, scim_token)
    assert client.get(USERS, headers=entra.headers).status_code == 200


@pytest.mark.parametrize("path", ["/users?count=10&offset=0", "/servers?count=10&offset=0", "/account", "/me"])
def test_a_scim_token_does_not_open_the_team_api(client: TestClient, scim: dict[str, str], path: str) -> None:
    answer = client.get(path, headers=scim)
    assert answer.status_code == 401, answer.text


def test_a_scim_token_reaches_only_its_own_account(
    client: TestClient, runtime: Runtime, account: NewAccount, scim: dict[str, str]
) -> None:
    alice = create_user(client, scim, "alice@example.com")
    support = create_group(client, scim, "Support", [alice["id"]])
    other = issue_token(runtime, create_account(runtime, "Globex"), "okta").headers

    assert user_names(client.get(USERS, headers=other)) == ["owner@globex.example"]
    assert listed(client.get(GROUPS, headers=other)) == []
    assert_scim_error(client.get(f"{USERS}/{alice['id']}", headers=other), 404)
    assert_scim_error(client.get(f"{GROUPS}/{support['id']}", headers=other), 404)
    change = patch_body({"op": "replace", "value": {"active": False}})
    assert_scim_error(client.patch(f"{USERS}/{alice['id']}", json=change, headers=other), 404)
    assert_scim_error(client.delete(f"{USERS}/{alice['id']}", headers=other), 404)
    assert_scim_error(client.delete(f"{GROUPS}/{support['id']}", headers=other), 404)
    assert client.get(f"{USERS}/{alice['id']}", headers=scim).json()["active"] is True
    assert client.get(f"{GROUPS}/{support['id']}", headers=scim).status_code == 200
    # A group of the other account cannot take this account's member either.
    answer = client.post(
        GROUPS,
        json={"schemas": [GROUP_SCHEMA], "displayName": "Raid", "members": [{"value": alice["id"]}]},
        headers=other,
    )
    assert_scim_error(answer, 400, "invalidValue")


def test_service_provider_config_tells_what_is_supported(client: TestClient, scim: dict[str, str]) -> None:
    answer = client.get(f"{BASE}/ServiceProviderConfig", headers=scim)
    assert answer.status_code == 200 and is_scim(answer)
    config = answer.json()
    assert config["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True and config["filter"]["maxResults"] == 500
    assert config["sort"]["supported"] is True
    assert config["etag"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["changePassword"]["supported"] is False
    assert [scheme["type"] for scheme in config["authenticationSchemes"]] == ["oauthbearertoken"]


def test_resource_types_are_users_with_the_enterprise_extension_and_groups(
    client: TestClient, scim: dict[str, str]
) -> None:
    answer = client.get(f"{BASE}/ResourceTypes", headers=scim)
    types = {resource["id"]: resource for resource in listed(answer)}
    assert answer.json()["totalResults"] == 2
    assert set(types) == {"User", "Group"}
    assert types["User"]["endpoint"] == "/Users" and types["User"]["schema"] == USER_SCHEMA
    assert types["User"]["schemaExtensions"] == [{"schema": ENTERPRISE_SCHEMA, "required": False}]
    assert types["Group"]["endpoint"] == "/Groups" and types["Group"]["schema"] == GROUP_SCHEMA

    one = client.get(f"{BASE}/ResourceTypes/Group", headers=scim)
    assert one.status_code == 200 and is_scim(one)
    assert one.json()["id"] == "Group" and one.json()["endpoint"] == "/Groups"
    assert_scim_error(client.get(f"{BASE}/ResourceTypes/Printer", headers=scim), 404)


def test_schemas_publish_only_what_is_stored(client: TestClient, scim: dict[str, str]) -> None:
    answer = client.get(f"{BASE}/Schemas", headers=scim)
    schemas = {resource["id"]: resource for resource in listed(answer)}
    assert set(schemas) == {USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA}

    for urn in (USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA):
        one = client.get(f"{BASE}/Schemas/{urn}", headers=scim)
        assert one.status_code == 200 and is_scim(one), one.text
        assert one.json()["id"] == urn
    user = {attribute["name"]: attribute for attribute in schemas[USER_SCHEMA]["attributes"]}
    assert {"userName", "name", "displayName", "active", "emails", "groups"} <= set(user)
    # No way to make anyone an Owner, or anything else, through a role attribute.
    assert not {"roles", "entitlements", "password", "x509Certificates"} & set(user)
    assert user["userName"]["uniqueness"] == "server" and user["userName"]["caseExact"] is False
    enterprise = {attribute["name"] for attribute in schemas[ENTERPRISE_SCHEMA]["attributes"]}
    assert "department" in enterprise
    assert_scim_error(client.get(f"{BASE}/Schemas/urn:example:nothing", headers=scim), 404)


def test_discovery_locations_are_under_the_scim_endpoint(client: TestClient, scim: dict[str, str]) -> None:
    config = client.get(f"{BASE}/ServiceProviderConfig", headers=scim).json()
    assert config["meta"]["location"] == f"http://testserver{BASE}/ServiceProviderConfig"
    user_type = client.get(f"{BASE}/ResourceTypes/User", headers=scim).json()
    assert user_type["meta"]["location"] == f"http://testserver{BASE}/ResourceTypes/User"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path",
    ["/ServiceProviderConfig", "/ResourceTypes", "/ResourceTypes/User", "/Schemas", f"/Schemas/{USER_SCHEMA}"],
)
def test_discovery_endpoints_take_only_get(client: TestClient, scim: dict[str, str], method: str, path: str) -> None:
    answer = client.request(method, BASE + path, json={"schemas": [USER_SCHEMA]}, headers=scim)
    assert_scim_error(answer, 405)
    assert answer.headers["Allow"] == "GET, HEAD"


def test_a_method_a_resource_path_does_not_take_names_those_it_does(client: TestClient, scim: dict[str, str]) -> None:
    answer = client.post(f"{BASE}/Users/1", json={"schemas": [USER_SCHEMA]}, headers=scim)
    assert_scim_error(answer, 405)
    assert answer.headers["Allow"] == "DELETE, GET, HEAD, PATCH, PUT"


@pytest.mark.parametrize(
    "path",
    [
        "/Nothing",
        "/users",  # paths are case-sensitive
        "/Users/00919288221112222",
        "/Users/99999",
        "/Users/not-a-number",
        "/Users/0",
        "/Groups/g99999",
        "/Groups/1",
    ],
)
def test_unknown_paths_and_ids_answer_a_scim_404(client: TestClient, scim: dict[str, str], path: str) -> None:
    assert_scim_error(client.get(BASE + path, headers=scim), 404)


def test_unknown_ids_answer_404_to_every_method(client: TestClient, scim: dict[str, str]) -> None:
    body = {"schemas": [USER_SCHEMA], "userName": "ghost@example.com"}
    assert_scim_error(client.put(f"{USERS}/00919288221112222", json=body, headers=scim), 404)
    change = patch_body({"op": "replace", "path": "displayName", "value": "Ghost"})
    assert_scim_error(client.patch(f"{USERS}/00919288221112222", json=change, headers=scim), 404)
    assert_scim_error(client.delete(f"{USERS}/00919288221112222", headers=scim), 404)
    assert_scim_error(client.delete(f"{GROUPS}/g00919288221112222", headers=scim), 404)


def test_every_answer_is_scim_json(client: TestClient, scim: dict[str, str]) -> None:
    alice = create_user(client, scim, "alice@example.com")
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas", "/Users", f"/Users/{alice['id']}", "/Groups"):
        answer = client.get(BASE + path, headers=scim)
        assert answer.status_code == 200 and is_scim(answer), (path, answer.headers.get("content-type"))
    created = client.post(USERS, json={"schemas": [USER_SCHEMA], "userName": "bob@example.com"}, headers=scim)
    assert created.status_code == 201 and is_scim(created)
    assert_scim_error(client.get(f"{BASE}/Nothing", headers=scim), 404)
