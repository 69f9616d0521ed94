"""The Servers API over HTTP: every field, every error code, Postmark's leniency."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.servers.models import MessageStream
from postwarden.surfaces.postmark.schemas import ServerResponse
from tests.conftest import create_account

SERVER_FIELDS = list(ServerResponse.model_fields)


def create(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    response = client.post("/servers", json={"Name": "Production", **body}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def assert_error(response: Any, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"ErrorCode", "Message"}
    assert body["ErrorCode"] == code
    assert response.headers["X-PM-ApiErrorCode"] == str(code)
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert body["Message"]
    return str(body["Message"])


def test_create_returns_every_field_with_defaults(client: TestClient, account_headers: dict[str, str]) -> None:
    server = create(client, account_headers)
    assert list(server) == SERVER_FIELDS
    assert server["Name"] == "Production"
    assert server["Color"] == "purple"
    assert server["DeliveryType"] == "Live"
    assert server["TrackLinks"] == "None"
    assert server["SmtpApiActivated"] is True
    assert server["InboundHookUrl"] == "" and server["ClickHookUrl"] == ""
    assert len(server["InboundHash"]) == 32
    assert server["InboundAddress"].startswith(server["InboundHash"] + "@")
    assert len(server["ApiTokens"]) == 1 and len(server["ApiTokens"][0]) == 36
    assert server["ServerLink"] == f"http://postwarden.test/console/servers/{server['ID']}"


def test_new_server_gets_three_default_streams(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    server = create(client, account_headers)
    with runtime.db.session_scope(write=False) as session:
        streams = session.scalars(select(MessageStream).where(MessageStream.server_id == server["ID"])).all()
    assert {(s.stream_id, s.stream_type) for s in streams} == {
        ("outbound", "Transactional"),
        ("inbound", "Inbound"),
        ("broadcast", "Broadcasts"),
    }


def test_get_list_and_name_filter(client: TestClient, account_headers: dict[str, str]) -> None:
    first = create(client, account_headers, Name="MyServer Production")
    create(client, account_headers, Name="MyServer Staging")
    create(client, account_headers, Name="Other")
    assert client.get(f"/servers/{first['ID']}", headers=account_headers).json() == first

    page = client.get("/servers?count=2&offset=0", headers=account_headers).json()
    assert page["TotalCount"] == 3 and len(page["Servers"]) == 2
    rest = client.get("/servers?count=2&offset=2", headers=account_headers).json()
    assert [s["Name"] for s in rest["Servers"]] == ["Other"]

    matching = client.get("/servers?count=10&offset=0&name=myserver", headers=account_headers).json()
    assert matching["TotalCount"] == 2
    assert {s["Name"] for s in matching["Servers"]} == {"MyServer Production", "MyServer Staging"}
    assert all(list(s) == SERVER_FIELDS for s in matching["Servers"])


def test_name_filter_treats_wildcards_literally(client: TestClient, account_headers: dict[str, str]) -> None:
    create(client, account_headers, Name="100% real")
    create(client, account_headers, Name="1000 real")
    found = client.get("/servers?count=10&offset=0&name=0%25", headers=account_headers).json()
    assert [s["Name"] for s in found["Servers"]] == ["100% real"]


def test_accounts_do_not_see_each_others_servers(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    theirs = create_account(runtime, "Other Co")
    other_headers = {"X-Postmark-Account-Token": theirs.account_token}
    mine = create(client, account_headers)
    assert client.get("/servers?count=10&offset=0", headers=other_headers).json() == {"TotalCount": 0, "Servers": []}
    assert_error(client.get(f"/servers/{mine['ID']}", headers=other_headers), 404, 601)
    assert_error(client.put(f"/servers/{mine['ID']}", json={"Color": "red"}, headers=other_headers), 404, 601)
    # the same name is free in another account
    assert client.post("/servers", json={"Name": "Production"}, headers=other_headers).status_code == 200


def test_partial_update_keeps_absent_and_null_fields(client: TestClient, account_headers: dict[str, str]) -> None:
    server = create(client, account_headers, Color="green", TrackOpens=True, InboundSpamThreshold=10)
    edited = client.put(
        f"/servers/{server['ID']}", json={"Color": "Red", "Name": None, "TrackLinks": None}, headers=account_headers
    ).json()
    assert edited["Color"] == "red"
    assert edited["Name"] == "Production"
    assert edited["TrackOpens"] is True
    assert edited["InboundSpamThreshold"] == 10
    assert {k: v for k, v in edited.items() if k != "Color"} == {k: v for k, v in server.items() if k != "Color"}


def test_empty_string_clears_a_hook_url(client: TestClient, account_headers: dict[str, str]) -> None:
    server = create(client, account_headers, BounceHookUrl="https://hooks.example.com/bounce")
    assert server["BounceHookUrl"] == "https://hooks.example.com/bounce"
    edited = client.put(f"/servers/{server['ID']}", json={"BounceHookUrl": ""}, headers=account_headers).json()
    assert edited["BounceHookUrl"] == ""


def test_delivery_type_is_create_only(client: TestClient, account_headers: dict[str, str]) -> None:
    server = create(client, account_headers, DeliveryType="sandbox")
    assert server["DeliveryType"] == "Sandbox"
    edited = client.put(
        f"/servers/{server['ID']}", json={"DeliveryType": "Live", "Color": "blue"}, headers=account_headers
    ).json()
    assert edited["DeliveryType"] == "Sandbox"
    assert_error(client.post("/servers", json={"Name": "X", "DeliveryType": "Bulk"}, headers=account_headers), 422, 613)


@pytest.mark.parametrize(
    ("given", "stored"), [("Turquoise", "turquoise"), ("turqoise", "turquoise"), ("ORANGE", "orange"), ("grey", "grey")]
)
def test_colors_any_case_including_old_spelling(
    client: TestClient, account_headers: dict[str, str], given: str, stored: str
) -> None:
    assert create(client, account_headers, Color=given)["Color"] == stored


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"Name": ""}, 608),
        ({"Name": "   "}, 608),
        ({"Name": "x" * 256}, 608),
        ({"Color": "pink"}, 607),
        ({"TrackLinks": "Everything"}, 612),
        ({"DeliveryType": "Bulk"}, 613),
        ({"InboundSpamThreshold": 31}, 611),
        ({"InboundSpamThreshold": -1}, 611),
        ({"BounceHookUrl": "not a url"}, 606),
        ({"BounceHookUrl": "ftp://example.com/x"}, 606),
        ({"InboundHookUrl": "http://127.0.0.1:9000/hook"}, 606),
        ({"OpenHookUrl": "http://10.1.2.3/hook"}, 606),
        ({"ClickHookUrl": "http://169.254.169.254/latest"}, 606),
        ({"DeliveryHookUrl": "http://[::1]/hook"}, 606),
        ({"DeliveryHookUrl": "http://localhost/hook"}, 606),
        ({"InboundDomain": "not a domain"}, 608),
        ({"Name": 5}, 402),
        ({"TrackOpens": "yes"}, 402),
    ],
)
def test_create_validation_errors(
    client: TestClient, account_headers: dict[str, str], body: dict[str, Any], code: int
) -> None:
    assert_error(client.post("/servers", json={"Name": "Valid", **body}, headers=account_headers), 422, code)
    assert client.get("/servers?count=10&offset=0", headers=account_headers).json()["TotalCount"] == 0


def test_missing_name_is_608(client: TestClient, account_headers: dict[str, str]) -> None:
    assert_error(client.post("/servers", json={"Color": "red"}, headers=account_headers), 422, 608)
    assert_error(client.post("/servers", content=b"", headers=account_headers), 422, 608)


def test_duplicate_name_is_603_in_any_case(client: TestClient, account_headers: dict[str, str]) -> None:
    first = create(client, account_headers)
    second = create(client, account_headers, Name="Staging")
    assert_error(client.post("/servers", json={"Name": "PRODUCTION"}, headers=account_headers), 422, 603)
    rename = client.put(f"/servers/{second['ID']}", json={"Name": "production"}, headers=account_headers)
    assert_error(rename, 422, 603)
    # renaming a server to its own name in another case is fine
    renamed = client.put(f"/servers/{first['ID']}", json={"Name": "PRODUCTION"}, headers=account_headers)
    assert renamed.json()["Name"] == "PRODUCTION"


def test_duplicate_inbound_domain_is_602(client: TestClient, account_headers: dict[str, str]) -> None:
    create(client, account_headers, InboundDomain="inbound.example.com")
    assert_error(
        client.post("/servers", json={"Name": "Two", "InboundDomain": "Inbound.Example.com"}, headers=account_headers),
        422,
        602,
    )


def test_private_hook_urls_allowed_when_operator_says_so(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    runtime.settings.allow_private_urls = True
    server = create(client, account_headers, InboundHookUrl="http://127.0.0.1:9000/hook")
    assert server["InboundHookUrl"] == "http://127.0.0.1:9000/hook"


def test_edit_with_nothing_is_609(client: TestClient, account_headers: dict[str, str]) -> None:
    server = create(client, account_headers)
    assert_error(client.put(f"/servers/{server['ID']}", json={}, headers=account_headers), 422, 609)
    assert_error(client.put(f"/servers/{server['ID']}", json={"Name": None}, headers=account_headers), 422, 609)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?count=10",
        "?offset=0",
        "?count=0&offset=0",
        "?count=501&offset=0",
        "?count=x&offset=0",
        "?count=5&offset=-1",
    ],
)
def test_list_paging_errors_are_600(client: TestClient, account_headers: dict[str, str], query: str) -> None:
    assert_error(client.get(f"/servers{query}", headers=account_headers), 422, 600)


def test_list_accepts_count_500(client: TestClient, account_headers: dict[str, str]) -> None:
    assert client.get("/servers?count=500&offset=0", headers=account_headers).status_code == 200


def test_unknown_server_is_not_found(client: TestClient, account_headers: dict[str, str]) -> None:
    for path in ("/servers/999999", "/servers/abc", "/servers/99999999999999999999999"):
        assert_error(client.get(path, headers=account_headers), 404, 601)


def test_delete_refused_with_604_unless_enabled_on_the_token(
    client: TestClient, account: NewAccount, account_headers: dict[str, str], runtime: Runtime
) -> None:
    from postwarden.tokens.service import TokenService

    server = create(client, account_headers)
    assert_error(client.delete(f"/servers/{server['ID']}", headers=account_headers), 422, 604)
    assert client.get(f"/servers/{server['ID']}", headers=account_headers).status_code == 200

    with runtime.db.session_scope() as session:
        tokens = TokenService(session, runtime)
        token = tokens.account_tokens(Actor.system("tests"), account.account.id)[0]
        tokens.set_server_deletion(Actor.system("tests"), token, enabled=True)

    response = client.delete(f"/servers/{server['ID']}", headers=account_headers)
    assert response.json() == {"ErrorCode": 0, "Message": "Server Production removed."}
    assert_error(client.get(f"/servers/{server['ID']}", headers=account_headers), 404, 601)
    # its server token died with it
    assert_error(client.get("/server", headers={"X-Postmark-Server-Token": server["ApiTokens"][0]}), 401, 10)


def test_server_token_reads_and_edits_its_own_server(client: TestClient, account_headers: dict[str, str]) -> None:
    server = create(client, account_headers)
    headers = {"X-Postmark-Server-Token": server["ApiTokens"][0]}
    assert client.get("/server", headers=headers).json() == server
    edited = client.put("/server", json={"TrackOpens": True}, headers=headers).json()
    assert edited["TrackOpens"] is True and edited["Name"] == server["Name"]
    # the cached copy was dropped on commit
    assert client.get("/server", headers=headers).json()["TrackOpens"] is True
    assert client.get(f"/servers/{server['ID']}", headers=account_headers).json()["TrackOpens"] is True


def test_token_errors_are_401_with_code_10_naming_the_header(
    client: TestClient, account_headers: dict[str, str]
) -> None:
    server = create(client, account_headers)
    server_headers = {"X-Postmark-Server-Token": server["ApiTokens"][0]}
    unknown = "00000000-0000-0000-0000-000000000000"

    message = assert_error(client.get("/servers?count=1&offset=0"), 401, 10)
    assert "X-Postmark-Account-Token" in message
    message = assert_error(client.get("/servers?count=1&offset=0", headers=server_headers), 401, 10)
    assert "X-Postmark-Account-Token" in message
    unknown_headers = {"X-Postmark-Account-Token": unknown}
    message = assert_error(client.get("/servers?count=1&offset=0", headers=unknown_headers), 401, 10)
    assert "X-Postmark-Account-Token" in message
    # a server token put in the account header is the wrong kind
    message = assert_error(
        client.get("/servers?count=1&offset=0", headers={"X-Postmark-Account-Token": server["ApiTokens"][0]}), 401, 10
    )
    assert "X-Postmark-Account-Token" in message

    message = assert_error(client.get("/server"), 401, 10)
    assert "X-Postmark-Server-Token" in message
    message = assert_error(client.get("/server", headers=account_headers), 401, 10)
    assert "X-Postmark-Server-Token" in message
    message = assert_error(client.get("/server", headers={"X-Postmark-Server-Token": unknown}), 401, 10)
    assert "X-Postmark-Server-Token" in message


def test_header_names_and_token_case_do_not_matter(client: TestClient, account: NewAccount) -> None:
    headers = {"x-postmark-account-token": account.account_token.upper()}
    assert client.get("/servers?count=1&offset=0", headers=headers).status_code == 200


def test_paths_and_query_names_in_any_case_with_trailing_slash(
    client: TestClient, account_headers: dict[str, str]
) -> None:
    created = client.post("/SERVERS/", json={"name": "Lenient", "COLOR": "Blue"}, headers=account_headers)
    assert created.status_code == 200 and created.json()["Color"] == "blue"
    listing = client.get("/Servers/?Count=5&OFFSET=0&Name=len", headers=account_headers).json()
    assert listing["TotalCount"] == 1
    server_id = created.json()["ID"]
    assert client.get(f"/servers/{server_id}/", headers=account_headers).status_code == 200
    assert client.put(f"/Servers/{server_id}", json={"trackopens": True}, headers=account_headers).json()["TrackOpens"]


def test_invalid_json_is_402(client: TestClient, account_headers: dict[str, str]) -> None:
    for raw in (b"{bad", b"[1, 2]", b'"text"', b"\xff\xfe"):
        assert_error(client.post("/servers", content=raw, headers=account_headers), 422, 402)


def test_unknown_route_and_wrong_method_are_postmark_errors(
    client: TestClient, account_headers: dict[str, str]
) -> None:
    assert_error(client.get("/no-such-thing", headers=account_headers), 404, 9404)
    response = client.patch("/servers", headers=account_headers)
    assert_error(response, 405, 9405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_every_mutation_writes_one_audit_event(
    client: TestClient, account: NewAccount, account_headers: dict[str, str], runtime: Runtime
) -> None:
    server = create(client, account_headers)
    client.put(f"/servers/{server['ID']}", json={"Color": "red"}, headers={**account_headers, "User-Agent": "ua/1"})
    client.put(f"/servers/{server['ID']}", json={"Color": "red"}, headers=account_headers)  # no change, no event
    client.post("/servers", json={"Name": "Production"}, headers=account_headers)  # refused, no event
    with runtime.db.session_scope(write=False) as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_type == "server", AuditEvent.action != "server_token.viewed")
            .order_by(AuditEvent.id)
        ).all()
        # The answer to the first edit showed the server's tokens: a security event, once.
        views = session.scalars(select(AuditEvent.target_id).where(AuditEvent.action == "server_token.viewed")).all()
    assert views == [str(server["ID"])]
    assert [e.action for e in events] == ["server.created", "server.updated"]
    created, updated = events
    assert created.account_id == account.account.id
    assert created.actor_credential == "account_token" and created.actor_label == "account token 'Default'"
    assert created.target_id == str(server["ID"]) and created.target_label == "Production"
    assert created.via == "api" and created.ip == "testclient" and created.request_id
    assert updated.changes == {"color": {"before": "purple", "after": "red"}}
    assert updated.user_agent == "ua/1"
    assert all(server["ApiTokens"][0] not in str(e.changes) for e in events)
