"""The cached fast path answers exactly what the full route answers, and never past a change."""

from __future__ import annotations

from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.tokens.service import TokenService
from tests.conftest import create_account


def test_fast_path_answers_the_same_bytes_as_the_full_route(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    server = client.post("/servers", json={"Name": "Hot"}, headers=account_headers).json()
    headers = {"X-Postmark-Server-Token": server["ApiTokens"][0]}
    first = client.get("/server", headers=headers)  # full route, fills the cache
    assert runtime.cache.get_server(server["ID"]) is not None
    second = client.get("/server", headers=headers)  # fast path
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"]
    by_id = client.get(f"/servers/{server['ID']}", headers=account_headers)
    assert by_id.content == first.content


def test_fast_path_refuses_other_accounts_and_wrong_token_kinds(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    server = client.post("/servers", json={"Name": "Hot"}, headers=account_headers).json()
    client.get(f"/servers/{server['ID']}", headers=account_headers)  # cached now
    other = create_account(runtime, "Other")
    response = client.get(f"/servers/{server['ID']}", headers={"X-Postmark-Account-Token": other.account_token})
    assert response.status_code == 404 and response.json()["ErrorCode"] == 601
    wrong_kind = client.get(f"/servers/{server['ID']}", headers={"X-Postmark-Account-Token": server["ApiTokens"][0]})
    assert wrong_kind.status_code == 401
    assert client.get("/server", headers=account_headers).status_code == 401


def test_rotated_token_stops_working_on_the_fast_path(
    client: TestClient, account: NewAccount, account_headers: dict[str, str], runtime: Runtime
) -> None:
    server = client.post("/servers", json={"Name": "Hot"}, headers=account_headers).json()
    old = {"X-Postmark-Server-Token": server["ApiTokens"][0]}
    assert client.get("/server", headers=old).status_code == 200
    assert client.get("/server", headers=old).status_code == 200
    with runtime.db.session_scope() as session:
        new_token = TokenService(session, runtime).rotate_server_tokens(
            Actor.system("tests"), server["ID"], account.account.id, "Hot"
        )
    assert client.get("/server", headers=old).status_code == 401
    fresh = client.get("/server", headers={"X-Postmark-Server-Token": new_token}).json()
    assert fresh["ApiTokens"] == [new_token]


def test_listing_reuses_and_respects_the_cache(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    for name in ("A", "B", "C"):
        client.post("/servers", json={"Name": name}, headers=account_headers)
    cold = client.get("/servers?count=500&offset=0", headers=account_headers)
    assert all(runtime.cache.get_server(s["ID"]) is not None for s in cold.json()["Servers"])
    warm = client.get("/servers?count=500&offset=0", headers=account_headers)
    assert warm.content == cold.content
    b_id = cold.json()["Servers"][1]["ID"]
    client.put(f"/servers/{b_id}", json={"Color": "red"}, headers=account_headers)
    after = client.get("/servers?count=500&offset=0", headers=account_headers).json()
    assert [s["Color"] for s in after["Servers"]] == ["purple", "red", "purple"]
    assert after["TotalCount"] == 3
