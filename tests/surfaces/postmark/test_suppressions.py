"""The Suppressions API over HTTP: dump filters, create and delete item by item, who may
change the list, the audit trail, concurrent requests, and the indexes the queries use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Connection
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.servers.models import MessageStream
from postwarden.suppressions.models import Suppression
from tests.conftest import LiveServer
from tests.surfaces.postmark.test_message_streams import Server, create
from tests.surfaces.postmark.test_servers import assert_error
from tests.surfaces.team.helpers import add_member, sign_in

INVALID = "An invalid email address was provided."
NOT_YOURS = "You do not have the required authority to change this suppression."
DUMP_FIELDS = ["EmailAddress", "SuppressionReason", "Origin", "CreatedAt"]


@pytest.fixture
def server(client: TestClient, account_headers: dict[str, str]) -> Server:
    return Server(client, account_headers)


def body(*addresses: str) -> dict[str, Any]:
    return {"Suppressions": [{"EmailAddress": address} for address in addresses]}


def suppress(client: TestClient, headers: dict[str, str], *addresses: str, stream: str = "outbound") -> Any:
    response = client.post(f"/message-streams/{stream}/suppressions", json=body(*addresses), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["Suppressions"]


def lift(client: TestClient, headers: dict[str, str], *addresses: str, stream: str = "outbound") -> Any:
    response = client.post(f"/message-streams/{stream}/suppressions/delete", json=body(*addresses), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["Suppressions"]


def dump(client: TestClient, headers: dict[str, str], query: str = "", stream: str = "outbound") -> list[Any]:
    response = client.get(f"/message-streams/{stream}/suppressions/dump{query}", headers=headers)
    assert response.status_code == 200, response.text
    assert list(response.json()) == ["Suppressions"]
    return list(response.json()["Suppressions"])


def stored(runtime: Runtime, server_id: int, address: str, *, reason: str, origin: str, at: datetime) -> None:
    """A suppression as sending records it (hard bounce, spam complaint), which no API call makes."""
    with runtime.db.session_scope() as session:
        stream = session.scalar(
            select(MessageStream).where(MessageStream.server_id == server_id, MessageStream.stream_id == "outbound")
        )
        assert stream is not None
        session.add(
            Suppression(
                message_stream_id=stream.id,
                email_address=address,
                address_key=address.lower(),
                reason=reason,
                origin=origin,
                created_at=at,
            )
        )


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def test_suppressing_is_per_address_and_idempotent(client: TestClient, server: Server, runtime: Runtime) -> None:
    results = suppress(client, server.headers, "Jane@Example.com", "not an address", "jane@example.COM", "bob@x.org")
    assert results == [
        {"EmailAddress": "Jane@Example.com", "Status": "Suppressed", "Message": None},
        {"EmailAddress": "not an address", "Status": "Failed", "Message": INVALID},
        {"EmailAddress": "jane@example.COM", "Status": "Suppressed", "Message": None},
        {"EmailAddress": "bob@x.org", "Status": "Suppressed", "Message": None},
    ]
    listing = dump(client, server.headers)
    assert [list(entry) for entry in listing] == [DUMP_FIELDS, DUMP_FIELDS]
    assert sorted((e["EmailAddress"], e["SuppressionReason"], e["Origin"]) for e in listing) == [
        ("Jane@Example.com", "ManualSuppression", "Customer"),
        ("bob@x.org", "ManualSuppression", "Customer"),
    ]
    for entry in listing:
        created = datetime.fromisoformat(entry["CreatedAt"])
        assert created.utcoffset() is not None and abs(created - utcnow()) < timedelta(minutes=1)

    assert suppress(client, server.headers, "JANE@example.com") == [
        {"EmailAddress": "JANE@example.com", "Status": "Suppressed", "Message": None}
    ]
    assert dump(client, server.headers) == listing  # nothing new, the first spelling kept
    assert [e.target_label for e in events(runtime, "suppression.created")] == ["Jane@Example.com", "bob@x.org"]
    assert dump(client, server.headers, stream="broadcast") == []  # suppressions are per stream


def test_the_dump_filters(client: TestClient, server: Server, runtime: Runtime) -> None:
    stored(
        runtime,
        server.id,
        "bounced@example.com",
        reason="HardBounce",
        origin="Recipient",
        at=datetime(2024, 1, 10, 8, tzinfo=UTC),
    )
    late = datetime(2024, 1, 20, 23, 59, tzinfo=UTC)
    stored(runtime, server.id, "angry@example.com", reason="SpamComplaint", origin="Recipient", at=late)
    stored(
        runtime,
        server.id,
        "staff@example.com",
        reason="ManualSuppression",
        origin="Admin",
        at=datetime(2024, 1, 21, tzinfo=UTC),
    )
    suppress(client, server.headers, "today@example.com")

    def addresses(query: str) -> list[str]:
        return [entry["EmailAddress"] for entry in dump(client, server.headers, query)]

    everyone = ["bounced@example.com", "angry@example.com", "staff@example.com", "today@example.com"]
    assert addresses("") == everyone  # oldest first
    assert addresses("?count=1&offset=2") == everyone  # postmark.js adds paging; the dump ignores it
    assert addresses("?SuppressionReason=HardBounce") == ["bounced@example.com"]
    assert addresses("?suppressionReason=spamcomplaint") == ["angry@example.com"]
    assert addresses("?Origin=Recipient") == ["bounced@example.com", "angry@example.com"]
    assert addresses("?origin=customer&SuppressionReason=ManualSuppression") == ["today@example.com"]
    assert addresses("?fromdate=2024-01-10&todate=2024-01-20") == ["bounced@example.com", "angry@example.com"]
    assert addresses("?fromDate=2024-01-11&toDate=2024-01-21") == ["angry@example.com", "staff@example.com"]
    assert addresses("?todate=2024-01-09") == []
    assert addresses("?fromdate=2024-01-21&todate=2024-01-10") == []
    assert addresses("?EmailAddress=Angry@Example.com") == ["angry@example.com"]
    assert addresses("?emailAddress=nobody@example.com") == []

    stream = "/message-streams/outbound/suppressions/dump"
    text = assert_error(client.get(f"{stream}?SuppressionReason=Bounce", headers=server.headers), 422, 1404)
    assert text == "The 'SuppressionReason' must be one of: HardBounce, SpamComplaint, ManualSuppression."
    text = assert_error(client.get(f"{stream}?Origin=Somebody", headers=server.headers), 422, 1405)
    assert text == "The 'Origin' must be one of: Recipient, Customer, Admin."
    for query in ("fromdate=2024-1-5", "todate=2024-02-30", "fromdate=20240105", "todate=yesterday"):
        text = assert_error(client.get(f"{stream}?{query}", headers=server.headers), 422, 1400)
        assert text == f"The '{query.split('=')[0]}' query parameter must be a date as YYYY-MM-DD."


def test_deleting_lifts_all_but_spam_complaints(client: TestClient, server: Server, runtime: Runtime) -> None:
    stored(runtime, server.id, "bounced@example.com", reason="HardBounce", origin="Recipient", at=utcnow())
    stored(runtime, server.id, "angry@example.com", reason="SpamComplaint", origin="Recipient", at=utcnow())
    suppress(client, server.headers, "Manual@Example.com")
    results = lift(
        client,
        server.headers,
        "manual@example.com",
        "bounced@example.com",
        "ANGRY@example.com",
        "never@example.com",
        "nope",
    )
    assert results == [
        {"EmailAddress": "manual@example.com", "Status": "Deleted", "Message": None},
        {"EmailAddress": "bounced@example.com", "Status": "Deleted", "Message": None},
        {"EmailAddress": "ANGRY@example.com", "Status": "Failed", "Message": NOT_YOURS},
        {"EmailAddress": "never@example.com", "Status": "Deleted", "Message": None},
        {"EmailAddress": "nope", "Status": "Failed", "Message": INVALID},
    ]
    assert [entry["EmailAddress"] for entry in dump(client, server.headers)] == ["angry@example.com"]
    deleted = events(runtime, "suppression.deleted")
    assert sorted(event.target_label for event in deleted) == ["Manual@Example.com", "bounced@example.com"]
    bounce = next(event for event in deleted if event.target_label == "bounced@example.com")
    assert bounce.target_type == "suppression"
    assert bounce.changes == {
        "server_id": {"before": server.id, "after": None},
        "message_stream": {"before": "outbound", "after": None},
        "reason": {"before": "HardBounce", "after": None},
        "origin": {"before": "Recipient", "after": None},
    }
    assert lift(client, server.headers, "manual@example.com")[0]["Status"] == "Deleted"
    assert len(events(runtime, "suppression.deleted")) == 2  # a no-op writes no event


@pytest.mark.parametrize("action", ["suppressions", "suppressions/delete"])
def test_the_body_must_carry_at_most_fifty_addresses(client: TestClient, server: Server, action: str) -> None:
    path = f"/message-streams/outbound/{action}"
    nothing: list[dict[str, Any]] = [{}, {"Suppressions": None}, {"Other": []}]
    for missing in nothing:
        text = assert_error(client.post(path, json=missing, headers=server.headers), 422, 1409)
        assert text == 'A proper request body must be provided: {"Suppressions": [{"EmailAddress": "..."}]}.'
    assert_error(client.post(path, headers=server.headers), 422, 1409)
    too_many = body(*(f"user{n}@example.com" for n in range(51)))
    text = assert_error(client.post(path, json=too_many, headers=server.headers), 422, 1410)
    assert text == "At most 50 suppressions can be given in one request; this one has 51."
    assert_error(client.post(path, json={"Suppressions": [{"Address": "a@b.co"}]}, headers=server.headers), 422, 402)
    assert_error(client.post(path, json={"Suppressions": ["a@b.co"]}, headers=server.headers), 422, 402)
    fifty = body(*(f"user{n}@example.com" for n in range(50)))
    assert len(client.post(path, json=fifty, headers=server.headers).json()["Suppressions"]) == 50
    assert client.post(path, json={"Suppressions": []}, headers=server.headers).json() == {"Suppressions": []}


def test_an_unknown_stream_is_1226(client: TestClient, server: Server, account_headers: dict[str, str]) -> None:
    elsewhere = Server(client, account_headers, "Staging")
    create(client, elsewhere.headers, "theirs")
    for stream in ("nope", "theirs", "Outbound"):
        base = f"/message-streams/{stream}/suppressions"
        assert_error(client.get(f"{base}/dump", headers=server.headers), 422, 1226)
        assert_error(client.post(base, json=body("a@b.co"), headers=server.headers), 422, 1226)
        assert_error(client.post(f"{base}/delete", json=body("a@b.co"), headers=server.headers), 422, 1226)


def test_view_only_dumps_but_changes_nothing(
    client: TestClient, server: Server, runtime: Runtime, account: NewAccount
) -> None:
    suppress(client, server.headers, "kept@example.com")
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={server.id: ServerAccess.VIEW})
    viewer = sign_in(client, "viewer@example.org")
    base = f"/message-streams/outbound/suppressions{{}}?server_id={server.id}"
    answer = client.get(base.format("/dump"), headers=viewer)
    assert [entry["EmailAddress"] for entry in answer.json()["Suppressions"]] == ["kept@example.com"]
    assert_error(client.post(base.format(""), json=body("new@example.com"), headers=viewer), 403, 9001)
    assert_error(client.post(base.format("/delete"), json=body("kept@example.com"), headers=viewer), 403, 9001)
    assert [entry["EmailAddress"] for entry in dump(client, server.headers)] == ["kept@example.com"]


def test_an_account_token_names_the_server_and_changes_are_audited(
    client: TestClient, server: Server, account_headers: dict[str, str], account: NewAccount, runtime: Runtime
) -> None:
    base = "/message-streams/broadcast/suppressions"
    assert_error(client.post(base, json=body("a@example.com"), headers=account_headers), 422, 9038)
    answer = client.post(f"{base}?server_id={server.id}", json=body("A@example.com"), headers=account_headers)
    assert answer.json()["Suppressions"][0]["Status"] == "Suppressed"
    assert [e["EmailAddress"] for e in dump(client, server.headers, stream="broadcast")] == ["A@example.com"]
    (created,) = events(runtime, "suppression.created")
    assert (created.actor_credential, created.account_id) == ("account_token", account.account.id)
    assert (created.target_type, created.target_label) == ("suppression", "A@example.com")
    with runtime.db.session_scope(write=False) as session:
        row = session.scalar(select(Suppression))
        assert row is not None and created.target_id == str(row.id)
    assert created.changes == {
        "server_id": {"before": None, "after": server.id},
        "message_stream": {"before": None, "after": "broadcast"},
        "reason": {"before": None, "after": "ManualSuppression"},
        "origin": {"before": None, "after": "Customer"},
    }


def test_concurrent_requests_suppress_an_address_once(live_server: LiveServer, account: NewAccount) -> None:
    created = httpx.post(
        f"{live_server.base_url}/servers",
        json={"Name": "Busy"},
        headers={"X-Postmark-Account-Token": account.account_token},
    )
    headers = {"X-Postmark-Server-Token": created.json()["ApiTokens"][0]}

    def one(n: int) -> Any:
        addresses = ["same@example.com", f"only{n}@example.com"]
        url = f"{live_server.base_url}/message-streams/outbound/suppressions"
        return httpx.post(url, json=body(*addresses), headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(one, range(8)))
    assert [answer.status_code for answer in answers] == [200] * 8
    assert all(a.json()["Suppressions"][0]["Status"] == "Suppressed" for a in answers)
    with live_server.runtime.db.session_scope(write=False) as session:
        keys = sorted(session.scalars(select(Suppression.address_key)))
        labels = session.scalars(select(AuditEvent.target_label).where(AuditEvent.action == "suppression.created"))
        assert keys == sorted(["same@example.com", *(f"only{n}@example.com" for n in range(8))])
        assert sorted(labels) == keys


@pytest.fixture
def statements(runtime: Runtime) -> Iterator[list[tuple[str, Any]]]:
    """The statements that touch the suppressions table while the test runs."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Connection, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "suppressions" in statement and not statement.startswith("INSERT"):
            seen.append((statement, parameters))

    event.listen(runtime.db.engine, "before_cursor_execute", capture)
    yield seen
    event.remove(runtime.db.engine, "before_cursor_execute", capture)


def test_dumps_and_address_lookups_are_index_range_scans(
    client: TestClient, server: Server, runtime: Runtime, statements: list[tuple[str, Any]]
) -> None:
    suppress(client, server.headers, "a@example.com", "b@example.com")
    statements.clear()
    for query in ("", "?EmailAddress=a@example.com", "?fromdate=2024-01-01&todate=2030-01-01&Origin=Customer"):
        dump(client, server.headers, query)
    lift(client, server.headers, "a@example.com")
    captured = list(statements)
    assert len(captured) == 5  # three dumps; the delete and what it left
    with runtime.db.engine.connect() as connection:
        if runtime.db.is_sqlite:
            for statement, parameters in captured:
                plan = " | ".join(
                    row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                )
                assert re.search("SEARCH suppressions USING (COVERING )?INDEX", plan), plan
                assert "SCAN suppressions" not in plan, plan
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: ask what the indexes allow
            for statement, parameters in captured:
                plan = " | ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters))
                assert "Index" in plan and "Seq Scan on suppressions" not in plan, plan
