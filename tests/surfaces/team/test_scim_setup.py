"""Setting SCIM up through the team API: ``/scim-tokens`` for the identity provider, and
``/scim-groups``, what each group it keeps grants; ``/users`` then shows the effective access."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.tokens.models import ScimToken
from tests.surfaces.team.helpers import add_member, create_server, owner_headers, sign_in

SCIM = "/scim/v2"


def _scim_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}


def test_the_owner_creates_a_token_shown_once_kept_only_as_a_digest(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    owner = owner_headers(client, account)
    created = client.post("/scim-tokens", json={"Name": "okta"}, headers=owner)
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {"ID", "Name", "Token", "CreatedAt", "LastUsedAt"}
    assert body["Name"] == "okta" and body["Token"].startswith("pwscim_") and body["LastUsedAt"] is None
    with runtime.db.session_scope(write=False) as session:
        stored = session.get(ScimToken, body["ID"])
        assert stored is not None and body["Token"] not in stored.secret_digest

    assert client.get(f"{SCIM}/Users?count=1", headers=_scim_headers(body["Token"])).status_code == 200
    listed = client.get("/scim-tokens", headers=owner).json()
    assert listed["TotalCount"] == 1
    assert "Token" not in listed["ScimTokens"][0] and listed["ScimTokens"][0]["LastUsedAt"] is not None

    revoked = client.delete(f"/scim-tokens/{body['ID']}", headers=owner)
    assert revoked.status_code == 200 and "okta" in revoked.json()["Message"]
    refused = client.get(f"{SCIM}/Users?count=1", headers=_scim_headers(body["Token"]))
    assert refused.status_code == 401
    again = client.delete(f"/scim-tokens/{body['ID']}", headers=owner)
    assert (again.status_code, again.json()["ErrorCode"]) == (404, 9041)
    with runtime.db.session_scope(write=False) as session:
        actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "scim_token")))
    # and its first use, from the test client's address, is a security event of its own
    assert actions == {"scim_token.created", "scim_token.revoked", "credential.used_from_new_ip"}


def test_an_account_token_creates_one_but_not_technical_members_nor_an_empty_name(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    by_token = client.post(
        "/scim-tokens", json={"Name": "entra"}, headers={"X-Postmark-Account-Token": account.account_token}
    )
    assert by_token.status_code == 200, by_token.text
    add_member(runtime, account, "tech@example.org", Role.TECHNICAL)
    technical = sign_in(client, "tech@example.org")
    for call in (
        client.post("/scim-tokens", json={"Name": "x"}, headers=technical),
        client.get("/scim-tokens", headers=technical),
        client.get("/scim-groups?count=10&offset=0", headers=technical),
    ):
        assert (call.status_code, call.json()["ErrorCode"]) == (403, 9001)
    blank = client.post("/scim-tokens", json={"Name": "  "}, headers=owner_headers(client, account))
    assert (blank.status_code, blank.json()["ErrorCode"]) == (422, 9042)


def test_a_mapped_group_shows_in_the_members_effective_access(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    owner = owner_headers(client, account)
    server_id = create_server(client, account, "Production")
    token = client.post("/scim-tokens", json={"Name": "okta"}, headers=owner).json()["Token"]
    user = client.post(
        f"{SCIM}/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@example.org"},
        headers=_scim_headers(token),
    ).json()
    group = client.post(
        f"{SCIM}/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Support",
            "members": [{"value": user["id"]}],
        },
        headers=_scim_headers(token),
    ).json()
    group_id = int(group["id"].removeprefix("g"))

    before = client.get(f"/users/{user['id']}", headers=owner).json()
    assert before["Role"] == "Member" and before["DefaultAccess"] == "NoAccess" and before["Suspended"] is False

    mapped = client.put(
        f"/scim-groups/{group['id']}",
        json={"Role": None, "Servers": [{"ServerID": server_id, "Access": "ViewOnly"}]},
        headers=owner,
    )
    assert mapped.status_code == 200, mapped.text
    assert mapped.json() == {
        "ID": group_id,
        "ScimID": group["id"],
        "DisplayName": "Support",
        "ExternalID": None,
        "MemberCount": 1,
        "Role": None,
        "Servers": [{"ServerID": server_id, "Access": "ViewOnly"}],
    }
    assert client.get("/scim-groups?count=10&offset=0", headers=owner).json()["TotalCount"] == 1
    after = client.get(f"/users/{user['id']}", headers=owner).json()
    assert {"ServerID": server_id, "Name": "Production", "Access": "ViewOnly"} in after["Servers"]

    as_technical = client.put(f"/scim-groups/{group_id}", json={"Role": "technical"}, headers=owner)
    assert as_technical.json()["Role"] == "Technical" and as_technical.json()["Servers"] == []
    assert client.get(f"/users/{user['id']}", headers=owner).json()["DefaultAccess"] == "FullAccess"

    owner_role = client.put(f"/scim-groups/{group_id}", json={"Role": "Owner"}, headers=owner)
    assert (owner_role.status_code, owner_role.json()["ErrorCode"]) == (422, 9044)
    elsewhere = client.put(
        f"/scim-groups/{group_id}", json={"Servers": [{"ServerID": 99999, "Access": "FullAccess"}]}, headers=owner
    )
    assert (elsewhere.status_code, elsewhere.json()["ErrorCode"]) == (422, 9044)
    missing = client.get("/scim-groups/424242", headers=owner)
    assert (missing.status_code, missing.json()["ErrorCode"]) == (404, 9043)
    with runtime.db.session_scope(write=False) as session:
        mappings = list(session.scalars(select(AuditEvent.action).where(AuditEvent.action == "group.access_updated")))
    assert len(mappings) == 2


def test_access_through_a_group_counts_for_who_sees_whom_and_the_server_filter(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    owner = owner_headers(client, account)
    production = create_server(client, account, "Production")
    staging = create_server(client, account, "Staging")
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={production: ServerAccess.VIEW})
    add_member(runtime, account, "staging@example.org", Role.MEMBER, access={staging: ServerAccess.VIEW})
    token = client.post("/scim-tokens", json={"Name": "okta"}, headers=owner).json()["Token"]
    user = client.post(
        f"{SCIM}/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ann@example.org"},
        headers=_scim_headers(token),
    ).json()
    viewer = sign_in(client, "viewer@example.org")

    def seen_by_viewer() -> set[str]:
        answer = client.get("/users?count=100&offset=0", headers=viewer)
        assert answer.status_code == 200, answer.text
        return {member["Email"] for member in answer.json()["Users"]}

    def on_production() -> set[str]:
        answer = client.get(f"/users?count=100&offset=0&serverid={production}", headers=owner)
        return {member["Email"] for member in answer.json()["Users"]}

    assert "ann@example.org" not in seen_by_viewer() and "ann@example.org" not in on_production()
    group = client.post(
        f"{SCIM}/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Support",
            "members": [{"value": user["id"]}],
        },
        headers=_scim_headers(token),
    ).json()
    client.put(
        f"/scim-groups/{group['id']}", json={"Servers": [{"ServerID": production, "Access": "ViewOnly"}]}, headers=owner
    )
    assert "ann@example.org" in seen_by_viewer() and "ann@example.org" in on_production()
    assert "staging@example.org" not in seen_by_viewer()
