"""The Webhooks API over HTTP: every field, every rule and ErrorCode, who sees which secret,
and the audit trail of every change."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.servers.models import MessageStream
from postwarden.webhooks.models import Webhook
from tests.conftest import create_account
from tests.surfaces.postmark.test_servers import assert_error
from tests.surfaces.team.helpers import add_member, sign_in

URL = "https://hooks.example.com/postmark"
WEBHOOK_FIELDS = ["ID", "Url", "MessageStream", "HttpAuth", "HttpHeaders", "Triggers", "SigningSecret"]
NO_TRIGGERS = {
    "Open": {"Enabled": False, "PostFirstOpenOnly": False},
    "Click": {"Enabled": False},
    "Delivery": {"Enabled": False},
    "Bounce": {"Enabled": False, "IncludeContent": False},
    "SpamComplaint": {"Enabled": False, "IncludeContent": False},
    "SubscriptionChange": {"Enabled": False},
}


@dataclass
class Server:
    id: int
    token: dict[str, str]


def new_server(client: TestClient, account_headers: dict[str, str], name: str = "Production") -> Server:
    created = client.post("/servers", json={"Name": name}, headers=account_headers)
    assert created.status_code == 200, created.text
    return Server(created.json()["ID"], {"X-Postmark-Server-Token": created.json()["ApiTokens"][0]})


@pytest.fixture
def server(client: TestClient, account_headers: dict[str, str]) -> Server:
    return new_server(client, account_headers)


def create(client: TestClient, headers: dict[str, str], path: str = "/webhooks", **body: Any) -> Any:
    response = client.post(path, json={"Url": URL, **body}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def edit(client: TestClient, server: Server, webhook_id: int, **body: Any) -> Any:
    response = client.put(f"/webhooks/{webhook_id}", json=body, headers=server.token)
    assert response.status_code == 200, response.text
    return response.json()


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_create_returns_every_field_every_trigger_and_a_signing_secret(client: TestClient, server: Server) -> None:
    webhook = create(client, server.token)
    assert list(webhook) == WEBHOOK_FIELDS
    assert isinstance(webhook["ID"], int)
    assert (webhook["Url"], webhook["MessageStream"]) == (URL, "outbound")
    assert webhook["HttpAuth"] == {"Username": "", "Password": ""}
    assert webhook["HttpHeaders"] == []
    assert webhook["Triggers"] == NO_TRIGGERS
    assert webhook["SigningSecret"].startswith("whsec_") and len(webhook["SigningSecret"]) > 40
    assert client.get(f"/webhooks/{webhook['ID']}", headers=server.token).json() == webhook
    assert client.get("/webhooks", headers=server.token).json() == {"Webhooks": [webhook]}


def test_create_keeps_auth_headers_and_the_triggers_given(client: TestClient, server: Server) -> None:
    webhook = create(
        client,
        server.token,
        MessageStream="broadcast",
        HttpAuth={"Username": "hook", "Password": "s3cret"},
        HttpHeaders=[{"Name": "X-Api-Key", "Value": "k-123"}, {"Name": "X-Tag", "Value": "a\tb"}],
        Triggers={"Open": {"Enabled": True}, "SubscriptionChange": {"Enabled": True}, "Delivery": None},
    )
    assert webhook["MessageStream"] == "broadcast"
    assert webhook["HttpAuth"] == {"Username": "hook", "Password": "s3cret"}  # echoed, as Postmark does
    assert webhook["HttpHeaders"] == [{"Name": "X-Api-Key", "Value": "k-123"}, {"Name": "X-Tag", "Value": "a\tb"}]
    assert webhook["Triggers"] == {
        **NO_TRIGGERS,
        "Open": {"Enabled": True, "PostFirstOpenOnly": False},
        "SubscriptionChange": {"Enabled": True},
    }
    assert client.get(f"/webhooks/{webhook['ID']}", headers=server.token).json() == webhook


def test_keys_match_in_any_case_and_paths_with_a_trailing_slash(client: TestClient, server: Server) -> None:
    body = {"url": URL, "httpauth": {"username": "u", "PASSWORD": "p"}, "triggers": {"bounce": {"enabled": True}}}
    created = client.post("/Webhooks/", json=body, headers=server.token)
    assert created.status_code == 200, created.text
    assert created.json()["HttpAuth"] == {"Username": "u", "Password": "p"}
    assert created.json()["Triggers"]["Bounce"] == {"Enabled": True, "IncludeContent": False}


def test_the_list_filters_by_stream_and_refuses_an_unknown_one(client: TestClient, server: Server) -> None:
    outbound = create(client, server.token)
    broadcast = create(client, server.token, MessageStream="broadcast")
    assert client.get("/webhooks", headers=server.token).json()["Webhooks"] == [outbound, broadcast]
    for query in ("MessageStream=broadcast", "messageStream=broadcast", "message_stream=broadcast"):
        assert client.get(f"/webhooks?{query}", headers=server.token).json() == {"Webhooks": [broadcast]}
    assert client.get("/webhooks?MessageStream=inbound", headers=server.token).json() == {"Webhooks": []}
    assert_error(client.get("/webhooks?MessageStream=nope", headers=server.token), 422, 1226)
    assert_error(client.get("/webhooks?MessageStream=", headers=server.token), 422, 1226)


def test_an_edit_changes_only_what_it_gives(client: TestClient, server: Server, runtime: Runtime) -> None:
    webhook = create(
        client,
        server.token,
        HttpAuth={"Username": "hook", "Password": "old"},
        HttpHeaders=[{"Name": "X-One", "Value": "1"}],
        Triggers={"Open": {"Enabled": True, "PostFirstOpenOnly": True}, "Bounce": {"Enabled": True}},
    )
    one_field = edit(client, server, webhook["ID"], Triggers={"Open": {"PostFirstOpenOnly": False}})
    assert one_field["Triggers"]["Open"] == {"Enabled": True, "PostFirstOpenOnly": False}
    assert one_field == {**webhook, "Triggers": {**webhook["Triggers"], "Open": one_field["Triggers"]["Open"]}}

    edited = edit(
        client,
        server,
        webhook["ID"],
        Url="https://other.example.com/hook",
        HttpAuth={"Password": "new"},
        HttpHeaders=[],
        Triggers={"Click": {"Enabled": True}, "Bounce": None},
    )
    assert edited["Url"] == "https://other.example.com/hook"
    assert edited["HttpAuth"] == {"Username": "hook", "Password": "new"}
    assert edited["HttpHeaders"] == []
    assert edited["Triggers"]["Click"] == {"Enabled": True}
    assert edited["Triggers"]["Bounce"] == {"Enabled": True, "IncludeContent": False}
    assert edited["SigningSecret"] == webhook["SigningSecret"]
    assert client.get(f"/webhooks/{webhook['ID']}", headers=server.token).json() == edited
    with runtime.db.session_scope(write=False) as session:
        row = session.get(Webhook, webhook["ID"])
        assert row is not None and row.updated_at is not None


def test_a_fetched_webhook_can_be_sent_back_but_its_id_and_stream_cannot_change(
    client: TestClient, server: Server
) -> None:
    webhook = create(client, server.token)
    round_trip = {**webhook, "Url": "https://other.example.com/hook"}
    del round_trip["SigningSecret"]
    assert edit(client, server, webhook["ID"], **round_trip)["Url"] == "https://other.example.com/hook"
    for change in ({"ID": webhook["ID"] + 1}, {"MessageStream": "broadcast"}, {"MessageStream": ""}):
        answer = client.put(f"/webhooks/{webhook['ID']}", json={"Url": URL, **change}, headers=server.token)
        assert_error(answer, 422, 1357)


@pytest.mark.parametrize(
    "body",
    [None, {}, {"Url": None, "Triggers": None}, {"Triggers": {}}, {"HttpAuth": {}}, {"Foo": 1}, {"ID": "same"}],
)
def test_an_edit_that_changes_nothing_is_refused(client: TestClient, server: Server, body: Any) -> None:
    webhook = create(client, server.token)
    if body == {"ID": "same"}:
        body = {"ID": webhook["ID"], "MessageStream": "outbound"}
    answer = client.put(f"/webhooks/{webhook['ID']}", json=body, headers=server.token)
    assert_error(answer, 422, 1355)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (None, 1355),
        ({}, 1355),
        ({"Url": None}, 1355),
        ({"MessageStream": "outbound"}, 1354),
        ({"Url": ""}, 1354),
        ({"Url": "   "}, 1354),
        ({"Url": "ftp://hooks.example.com/x"}, 1354),
        ({"Url": "hooks.example.com/x"}, 1354),
        ({"Url": "https://hooks.example.com/a b"}, 1354),
        ({"Url": "https://hooks.example.com/\x01"}, 1354),
        ({"Url": "https://localhost/hook"}, 1354),
        ({"Url": "https://intranet/hook"}, 1354),
        ({"Url": "http://127.0.0.1:8080/hook"}, 1354),
        ({"Url": "http://10.1.2.3/hook"}, 1354),
        ({"Url": "http://192.168.0.10/hook"}, 1354),
        ({"Url": "http://169.254.169.254/latest/meta-data"}, 1354),
        ({"Url": "http://[::1]/hook"}, 1354),
        ({"Url": URL, "ID": 5}, 1356),
        ({"Url": URL, "MessageStream": "nope"}, 1226),
        ({"Url": URL, "MessageStream": "inbound"}, 1351),
        ({"Url": URL, "MessageStream": "broadcast", "Triggers": {"Bounce": {"Enabled": True}}}, 1353),
        ({"Url": URL, "MessageStream": "broadcast", "Triggers": {"SpamComplaint": {"Enabled": True}}}, 1353),
        ({"Url": URL, "HttpHeaders": [{"Name": "Bad Name", "Value": "x"}]}, 1358),
        ({"Url": URL, "HttpHeaders": [{"Name": "X-Injected\r\nEvil", "Value": "x"}]}, 1358),
        ({"Url": URL, "HttpHeaders": [{"Name": "", "Value": "x"}]}, 1358),
        ({"Url": URL, "HttpHeaders": [{"Value": "x"}]}, 1358),
        ({"Url": URL, "HttpHeaders": [{"Name": "content-length", "Value": "1"}]}, 1358),
        ({"Url": URL, "HttpHeaders": [{"Name": "Host", "Value": "evil.example.com"}]}, 1358),
        ({"Url": URL, "HttpHeaders": [{"Name": "X-Ok", "Value": "a\r\nX-Evil: 1"}]}, 1361),
        ({"Url": URL, "HttpHeaders": [{"Name": "X-Ok"}]}, 1361),
        ({"Url": URL, "HttpAuth": {"Username": "a:b", "Password": "p"}}, 1361),
        ({"Url": URL, "HttpAuth": {"Username": "u" * 256}}, 1361),
        ({"Url": 5}, 402),
        ({"Url": URL, "Triggers": {"Open": {"Enabled": "yes"}}}, 402),
        ({"Url": URL, "HttpHeaders": {"Name": "X"}}, 402),
        ({"Url": URL, "HttpAuth": "user:pass"}, 402),
    ],
)
def test_create_refuses_with_postmarks_codes(client: TestClient, server: Server, body: Any, code: int) -> None:
    assert_error(client.post("/webhooks", json=body, headers=server.token), 422, code)
    assert client.get("/webhooks", headers=server.token).json() == {"Webhooks": []}


def test_edits_are_checked_like_creates(client: TestClient, server: Server) -> None:
    webhook = create(client, server.token, MessageStream="broadcast")
    for body, code in [
        ({"Url": "http://127.0.0.1/hook"}, 1354),
        ({"Triggers": {"Bounce": {"Enabled": True}}}, 1353),
        ({"HttpHeaders": [{"Name": "Transfer-Encoding", "Value": "chunked"}]}, 1358),
        ({"HttpAuth": {"Username": "a:b"}}, 1361),
    ]:
        assert_error(client.put(f"/webhooks/{webhook['ID']}", json=body, headers=server.token), 422, code)
    assert client.get(f"/webhooks/{webhook['ID']}", headers=server.token).json() == webhook
    # Disabled, they may be set on a broadcast stream: an edit that sends every trigger back works.
    assert edit(client, server, webhook["ID"], Triggers=NO_TRIGGERS)["Triggers"] == NO_TRIGGERS


def test_private_addresses_are_allowed_when_the_operator_allows_them(
    client: TestClient, server: Server, runtime: Runtime
) -> None:
    runtime.settings.allow_private_urls = True
    assert create(client, server.token, Url="http://127.0.0.1:8080/hook")["Url"] == "http://127.0.0.1:8080/hook"
    assert create(client, server.token, Url="http://receiver.internal/hook")["Url"] == "http://receiver.internal/hook"
    assert_error(client.post("/webhooks", json={"Url": "ftp://127.0.0.1/"}, headers=server.token), 422, 1354)


def test_archived_streams_take_no_new_webhooks_but_keep_theirs(
    client: TestClient, server: Server, runtime: Runtime
) -> None:
    webhook = create(client, server.token, MessageStream="broadcast")
    with runtime.db.session_scope() as session:
        session.execute(
            update(MessageStream)
            .where(MessageStream.server_id == server.id, MessageStream.stream_id == "broadcast")
            .values(archived_at=utcnow())
        )
    answer = client.post("/webhooks", json={"Url": URL, "MessageStream": "broadcast"}, headers=server.token)
    assert_error(answer, 422, 1350)
    assert edit(client, server, webhook["ID"], Url="https://other.example.com/")["MessageStream"] == "broadcast"
    assert (
        client.get("/webhooks?MessageStream=broadcast", headers=server.token).json()["Webhooks"][0]["ID"]
        == (webhook["ID"])
    )


def test_a_stream_has_at_most_ten_webhooks(client: TestClient, server: Server) -> None:
    for n in range(10):
        create(client, server.token, Url=f"{URL}/{n}")
    assert_error(client.post("/webhooks", json={"Url": URL}, headers=server.token), 422, 1359)
    assert create(client, server.token, MessageStream="broadcast")["MessageStream"] == "broadcast"
    first = client.get("/webhooks", headers=server.token).json()["Webhooks"][0]["ID"]
    assert client.delete(f"/webhooks/{first}", headers=server.token).status_code == 200
    assert create(client, server.token)["MessageStream"] == "outbound"


def test_delete_answers_postmarks_message_and_the_webhook_is_gone(client: TestClient, server: Server) -> None:
    webhook = create(client, server.token)
    deleted = client.delete(f"/webhooks/{webhook['ID']}", headers=server.token)
    assert deleted.status_code == 200
    assert deleted.json() == {"ErrorCode": 0, "Message": f"Webhook {webhook['ID']} removed."}
    assert_error(client.get(f"/webhooks/{webhook['ID']}", headers=server.token), 422, 1352)
    assert_error(client.delete(f"/webhooks/{webhook['ID']}", headers=server.token), 422, 1352)
    assert_error(client.put(f"/webhooks/{webhook['ID']}", json={"Url": URL}, headers=server.token), 422, 1352)
    assert client.get("/webhooks", headers=server.token).json() == {"Webhooks": []}


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "1.5", "99999999999", "²"])
def test_malformed_ids_name_no_webhook(client: TestClient, server: Server, raw: str) -> None:
    assert_error(client.get(f"/webhooks/{raw}", headers=server.token), 422, 1352)


def test_another_servers_webhook_is_not_found(
    client: TestClient, server: Server, account_headers: dict[str, str]
) -> None:
    other = new_server(client, account_headers, "Staging")
    theirs = create(client, other.token)
    for method in ("GET", "PUT", "DELETE"):
        answer = client.request(method, f"/webhooks/{theirs['ID']}", json={"Url": URL}, headers=server.token)
        assert_error(answer, 422, 1352)
    assert_error(client.post(f"/webhooks/{theirs['ID']}/rotate-secret", headers=server.token), 422, 1352)
    assert client.get(f"/webhooks/{theirs['ID']}", headers=other.token).json() == theirs


def test_another_accounts_server_is_not_reached(client: TestClient, runtime: Runtime, server: Server) -> None:
    stranger = create_account(runtime, "Stranger")
    stranger_headers = {"X-Postmark-Account-Token": stranger.account_token}
    assert_error(client.get(f"/webhooks?server_id={server.id}", headers=stranger_headers), 404, 601)


def test_secrets_are_encrypted_at_rest(client: TestClient, server: Server, runtime: Runtime) -> None:
    webhook = create(client, server.token, HttpAuth={"Username": "hook", "Password": "pa55word"})
    with runtime.db.session_scope(write=False) as session:
        row = session.get(Webhook, webhook["ID"])
        assert row is not None and row.http_auth_password_encrypted is not None
        assert b"pa55word" not in row.http_auth_password_encrypted
        assert webhook["SigningSecret"].encode() not in row.signing_secret_encrypted
        assert runtime.keyring.decrypt(row.http_auth_password_encrypted) == "pa55word"
        assert runtime.keyring.decrypt(row.signing_secret_encrypted) == webhook["SigningSecret"]
    cleared = edit(client, server, webhook["ID"], HttpAuth={"Username": "", "Password": ""})
    assert cleared["HttpAuth"] == {"Username": "", "Password": ""}
    with runtime.db.session_scope(write=False) as session:
        row = session.get(Webhook, webhook["ID"])
        assert row is not None and row.http_auth_password_encrypted is None


def test_rotating_the_signing_secret_replaces_it_and_is_audited_without_it(
    client: TestClient, server: Server, runtime: Runtime
) -> None:
    webhook = create(client, server.token, HttpAuth={"Username": "hook", "Password": "pw"})
    rotated = client.post(f"/webhooks/{webhook['ID']}/rotate-secret", headers=server.token)
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()
    assert fresh["SigningSecret"].startswith("whsec_") and fresh["SigningSecret"] != webhook["SigningSecret"]
    assert fresh == {**webhook, "SigningSecret": fresh["SigningSecret"]}
    assert client.get(f"/webhooks/{webhook['ID']}", headers=server.token).json() == fresh
    assert client.post(f"/webhooks/{webhook['ID']}/rotate-secret", json={}, headers=server.token).status_code == 200
    (event, _second) = events(runtime, "webhook.secret_rotated")
    assert (event.target_type, event.target_id) == ("webhook", str(webhook["ID"]))
    assert event.actor_credential == "server_token"
    assert event.changes == {"signing_secret": "[redacted]"}
    assert fresh["SigningSecret"] not in json.dumps(event.changes)


def test_view_only_reads_without_secrets_and_changes_nothing(
    client: TestClient, server: Server, account: NewAccount, runtime: Runtime
) -> None:
    webhook = create(
        client,
        server.token,
        Url="https://user:url-pass@hooks.example.com/x",
        HttpAuth={"Username": "hook", "Password": "pw"},
    )
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={server.id: ServerAccess.VIEW})
    viewer = sign_in(client, "viewer@example.org")
    on_server = f"server_id={server.id}"
    seen = client.get(f"/webhooks/{webhook['ID']}?{on_server}", headers=viewer).json()
    assert "SigningSecret" not in seen
    assert seen["HttpAuth"] == {"Username": "hook", "Password": ""}
    assert seen["Url"] == "https://[redacted]@hooks.example.com/x"
    assert client.get(f"/webhooks?{on_server}", headers=viewer).json() == {"Webhooks": [seen]}
    refusals = [
        client.post(f"/webhooks?{on_server}", json={"Url": URL}, headers=viewer),
        client.put(f"/webhooks/{webhook['ID']}?{on_server}", json={"Url": URL}, headers=viewer),
        client.delete(f"/webhooks/{webhook['ID']}?{on_server}", headers=viewer),
        client.post(f"/webhooks/{webhook['ID']}/rotate-secret?{on_server}", headers=viewer),
    ]
    for refused in refusals:
        assert_error(refused, 403, 9001)
    assert client.get(f"/webhooks/{webhook['ID']}", headers=server.token).json() == webhook


def test_an_auditor_walks_every_servers_webhooks_with_the_account_token(
    client: TestClient, account_headers: dict[str, str]
) -> None:
    servers = [new_server(client, account_headers, name) for name in ("Alpha", "Beta", "Gamma")]
    made = {s.id: [create(client, s.token, Url=f"{URL}/{s.id}/{n}")["ID"] for n in range(s.id % 3)] for s in servers}
    listing = client.get("/servers?count=500&offset=0", headers=account_headers).json()
    found = {
        listed["ID"]: [
            hook["ID"]
            for hook in client.get(f"/webhooks?server_id={listed['ID']}", headers=account_headers).json()["Webhooks"]
        ]
        for listed in listing["Servers"]
    }
    assert found == made
    assert_error(client.get("/webhooks", headers=account_headers), 422, 9038)


def test_a_server_token_reaches_only_its_own_server(
    client: TestClient, server: Server, account_headers: dict[str, str]
) -> None:
    other = new_server(client, account_headers, "Staging")
    assert client.get(f"/webhooks?server_id={server.id}", headers=server.token).status_code == 200
    assert_error(client.get(f"/webhooks?server_id={other.id}", headers=server.token), 404, 601)
    assert_error(client.get("/webhooks"), 401, 10)


def test_every_change_is_audited_with_its_actor_and_no_secret(
    client: TestClient, server: Server, runtime: Runtime, account: NewAccount, account_headers: dict[str, str]
) -> None:
    secrets = ["url-pass", "auth-pass", "header-secret", "auth-pass-2", "header-secret-2"]
    on_server = f"?server_id={server.id}"
    webhook = create(
        client,
        account_headers,
        f"/webhooks{on_server}",
        Url="https://user:url-pass@hooks.example.com/x",
        HttpAuth={"Username": "hook", "Password": "auth-pass"},
        HttpHeaders=[{"Name": "X-Api-Key", "Value": "header-secret"}],
    )
    edit(
        client,
        server,
        webhook["ID"],
        HttpAuth={"Password": "auth-pass-2"},
        HttpHeaders=[{"Name": "X-Api-Key", "Value": "header-secret-2"}],
        Triggers={"Delivery": {"Enabled": True}},
    )
    edit(client, server, webhook["ID"], Triggers={"Delivery": {"Enabled": True}})  # no change: no event
    client.delete(f"/webhooks/{webhook['ID']}", headers=server.token)

    (created,) = events(runtime, "webhook.created")
    (updated,) = events(runtime, "webhook.updated")
    (deleted,) = events(runtime, "webhook.deleted")
    for event in (created, updated, deleted):
        assert (event.account_id, event.target_type, event.target_id) == (
            account.account.id,
            "webhook",
            str(webhook["ID"]),
        )
        assert event.target_label == "outbound https://[redacted]@hooks.example.com/x"
        stored = json.dumps(event.changes)
        assert not [secret for secret in secrets if secret in stored], stored
        assert webhook["SigningSecret"] not in stored
    assert (created.actor_credential, updated.actor_credential) == ("account_token", "server_token")
    assert created.changes["url"] == {"before": None, "after": "https://[redacted]@hooks.example.com/x"}
    assert created.changes["http_headers"] == {"before": None, "after": ["X-Api-Key"]}
    assert created.changes["http_auth_password"] == "[redacted]"
    assert set(updated.changes) == {"http_auth_password", "http_header_secrets", "triggers"}
    assert updated.changes["triggers"]["after"]["Delivery"] == {"Enabled": True}
    assert deleted.changes["message_stream"] == {"before": "outbound", "after": None}
