"""The webhook delivery endpoints over HTTP (beyond Postmark): asking for a test event, and
reading the delivery log. Delivery itself is tested in tests/webhook_deliveries."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.audit import AuditEvent
from postwarden.runtime import Runtime
from postwarden.surfaces.postmark.webhook_delivery_schemas import DeliveryResponse
from postwarden.tasks import TaskQueue
from tests.surfaces.postmark.test_servers import assert_error

DELIVERY_FIELDS = list(DeliveryResponse.model_fields)


@pytest.fixture
def server(client: TestClient, account_headers: dict[str, str]) -> dict[str, Any]:
    created = client.post("/servers", json={"Name": "Hooks"}, headers=account_headers)
    assert created.status_code == 200, created.text
    found: dict[str, Any] = created.json()
    return found


@pytest.fixture
def server_headers(server: dict[str, Any]) -> dict[str, str]:
    return {"X-Postmark-Server-Token": server["ApiTokens"][0], "Accept": "application/json"}


@pytest.fixture
def webhook_id(client: TestClient, server_headers: dict[str, str]) -> int:
    created = client.post(
        "/webhooks",
        json={"Url": "https://hooks.example.com/postmark", "Triggers": {"Bounce": {"Enabled": True}}},
        headers=server_headers,
    )
    assert created.status_code == 200, created.text
    return int(created.json()["ID"])


def test_a_test_answers_the_queued_delivery_with_every_field(
    client: TestClient, server: dict[str, Any], server_headers: dict[str, str], webhook_id: int, runtime: Runtime
) -> None:
    answer = client.post(f"/webhooks/{webhook_id}/test", headers=server_headers)  # no body: a Delivery event
    assert answer.status_code == 200, answer.text
    delivery = answer.json()
    assert list(delivery) == DELIVERY_FIELDS
    assert delivery["WebhookID"] == webhook_id
    assert (delivery["RecordType"], delivery["Status"], delivery["Attempts"]) == ("Delivery", "Pending", [])
    assert delivery["CompletedAt"] is None and delivery["NextAttemptAt"] is not None
    assert delivery["Payload"]["ServerID"] == server["ID"]
    assert delivery["Payload"]["MessageStream"] == "outbound"
    assert len(TaskQueue(runtime).huey) == 1  # the worker was woken, once the request committed


def test_the_record_type_is_chosen_in_any_case(
    client: TestClient, server_headers: dict[str, str], webhook_id: int
) -> None:
    for given, recorded in [("Bounce", "Bounce"), ("spamcomplaint", "SpamComplaint"), ("OPEN", "Open")]:
        answer = client.post(f"/webhooks/{webhook_id}/test", json={"recordtype": given}, headers=server_headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["RecordType"] == answer.json()["Payload"]["RecordType"] == recorded


def test_an_unknown_record_type_is_refused(client: TestClient, server_headers: dict[str, str], webhook_id: int) -> None:
    answer = client.post(f"/webhooks/{webhook_id}/test", json={"RecordType": "Inbound"}, headers=server_headers)
    message = assert_error(answer, 422, 1361)
    assert "'Inbound'" in message and "SubscriptionChange" in message
    assert_error(client.post(f"/webhooks/{webhook_id}/test", json={"RecordType": 3}, headers=server_headers), 422, 402)


def test_only_the_servers_own_webhooks_are_reached(
    client: TestClient, account_headers: dict[str, str], server_headers: dict[str, str], webhook_id: int
) -> None:
    other = client.post("/servers", json={"Name": "Other"}, headers=account_headers).json()
    other_headers = {"X-Postmark-Server-Token": other["ApiTokens"][0]}
    assert_error(client.post(f"/webhooks/{webhook_id}/test", headers=other_headers), 422, 1352)
    assert_error(client.post(f"/webhooks/{webhook_id + 1000}/test", headers=server_headers), 422, 1352)
    assert_error(client.post("/webhooks/abc/test", headers=server_headers), 422, 1352)
    assert_error(client.get(f"/webhooks/{webhook_id}/deliveries?count=10&offset=0", headers=other_headers), 422, 1352)


def test_the_log_is_newest_first_and_paged(client: TestClient, server_headers: dict[str, str], webhook_id: int) -> None:
    kinds = ["Delivery", "Bounce", "Open", "Click", "SubscriptionChange"]
    ids = [
        client.post(f"/webhooks/{webhook_id}/test", json={"RecordType": k}, headers=server_headers).json()["ID"]
        for k in kinds
    ]

    page = client.get(f"/webhooks/{webhook_id}/deliveries?count=2&offset=1", headers=server_headers).json()
    assert page["TotalCount"] == 5
    assert [d["ID"] for d in page["Deliveries"]] == ids[::-1][1:3]
    assert [d["RecordType"] for d in page["Deliveries"]] == ["Click", "Open"]
    assert all(list(d) == DELIVERY_FIELDS for d in page["Deliveries"])
    beyond = client.get(f"/webhooks/{webhook_id}/deliveries?Count=10&Offset=5", headers=server_headers).json()
    assert beyond == {"TotalCount": 5, "Deliveries": []}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?count=10",
        "?offset=0",
        "?count=0&offset=0",
        "?count=501&offset=0",
        "?count=10&offset=-1",
        "?count=x&offset=0",
    ],
)
def test_bad_paging_is_refused(client: TestClient, server_headers: dict[str, str], webhook_id: int, query: str) -> None:
    assert_error(client.get(f"/webhooks/{webhook_id}/deliveries{query}", headers=server_headers), 422, 9039)


def test_an_account_token_names_the_server(
    client: TestClient, account_headers: dict[str, str], server: dict[str, Any], webhook_id: int
) -> None:
    tested = client.post(f"/webhooks/{webhook_id}/test?server_id={server['ID']}", headers=account_headers)
    assert tested.status_code == 200, tested.text
    log = client.get(
        f"/webhooks/{webhook_id}/deliveries?count=10&offset=0&server_id={server['ID']}", headers=account_headers
    )
    assert [d["ID"] for d in log.json()["Deliveries"]] == [tested.json()["ID"]]
    assert_error(client.post(f"/webhooks/{webhook_id}/test", headers=account_headers), 422, 9038)


def test_a_test_is_audited(
    client: TestClient, server: dict[str, Any], server_headers: dict[str, str], webhook_id: int, runtime: Runtime
) -> None:
    delivery = client.post(f"/webhooks/{webhook_id}/test", json={"RecordType": "Click"}, headers=server_headers).json()
    with runtime.db.session_scope(write=False) as session:
        (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "webhook.tested"))
    assert (event.target_type, event.target_id) == ("webhook", str(webhook_id))
    assert event.target_label == "outbound https://hooks.example.com/postmark"
    assert event.actor_credential == "server_token"
    assert event.changes == {"delivery": {"before": None, "after": {"id": delivery["ID"], "record_type": "Click"}}}
