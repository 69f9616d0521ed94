"""The audit log as its readers use it: ``/audit-events`` pages, filters, the following
cursor, one event, streamed exports, and the hash chain that shows tampering."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditChain, AuditEvent
from postwarden.audit_log.chain import prune_chain, verify_chain
from postwarden.db import utcnow
from postwarden.identity import Actor
from postwarden.policy import Role
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerFields, ServerService
from tests.conftest import create_account
from tests.surfaces.team.helpers import add_member, create_server, sign_in


def headers_of(account: NewAccount) -> dict[str, str]:
    return {"X-Postmark-Account-Token": account.account_token}


def events(client: TestClient, account: NewAccount, query: str = "") -> dict[str, Any]:
    answer = client.get(f"/audit-events?count=500&offset=0{query}", headers=headers_of(account))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def verify(client: TestClient, account: NewAccount) -> dict[str, Any]:
    answer = client.get("/audit-events/verify", headers=headers_of(account))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def rename_servers(client: TestClient, account: NewAccount, server_id: int, times: int) -> None:
    for n in range(times):
        answer = client.put(f"/servers/{server_id}", json={"Name": f"Renamed {n}"}, headers=headers_of(account))
        assert answer.status_code == 200, answer.text


def error_code(answer: Any) -> tuple[int, int]:
    return answer.status_code, answer.json()["ErrorCode"]


# -- reading ---------------------------------------------------------------------------------


def test_events_read_newest_first_with_actor_target_changes_and_request_details(
    client: TestClient, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Billing mails")
    renamed = client.put(
        f"/servers/{server_id}",
        json={"Name": "Invoices"},
        headers={**headers_of(account), "User-Agent": "ops-script/1.0", "X-Request-ID": "req-42"},
    )
    assert renamed.status_code == 200
    body = events(client, account, "&action=server.*")
    assert body["TotalCount"] == 2
    newest, oldest = body["AuditEvents"]
    assert (newest["Action"], oldest["Action"]) == ("server.updated", "server.created")
    assert newest["Sequence"] > oldest["Sequence"] and body["Cursor"] == newest["Sequence"]
    assert newest["Target"] == {"Type": "server", "ID": str(server_id), "Label": "Invoices"}
    assert newest["Changes"]["name"] == {"before": "Billing mails", "after": "Invoices"}
    assert newest["Actor"]["Type"] == "account_token" and newest["Via"] == "api"
    assert newest["UserAgent"] == "ops-script/1.0" and newest["IP"] == "testclient"
    assert newest["RequestID"]
    assert len(newest["Hash"]) == 64 and newest["PreviousHash"] != newest["Hash"]
    one = client.get(f"/audit-events/{newest['ID']}", headers=headers_of(account))
    assert one.status_code == 200 and one.json() == newest


def test_filters_by_actor_action_target_via_and_time(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    server_id = create_server(client, account, "A")
    create_server(client, account, "B")
    add_member(runtime, account, "tech@example.org", Role.TECHNICAL)
    tech = sign_in(client, "tech@example.org")
    assert client.put(f"/servers/{server_id}", json={"Color": "Red"}, headers=tech).status_code == 200

    by_tech = events(client, account, "&actor=TECH@example.org&action=server.updated")
    assert [e["Actor"]["Label"] for e in by_tech["AuditEvents"]] == ["tech@example.org"]
    user_id = by_tech["AuditEvents"][0]["Actor"]["UserID"]
    assert events(client, account, f"&actoruserid={user_id}&action=server.*")["TotalCount"] == 1
    on_a = events(client, account, f"&targettype=server&targetid={server_id}&action=server.*")
    assert [e["Action"] for e in on_a["AuditEvents"]] == ["server.updated", "server.created"]
    assert events(client, account, "&action=server.created")["TotalCount"] == 2
    assert events(client, account, "&via=scim")["TotalCount"] == 0
    assert {e["Via"] for e in events(client, account, "&via=cli")["AuditEvents"]} == {"cli"}  # the test set-up
    today = utcnow().date()
    assert events(client, account, f"&fromdate={today}&todate={today}&action=server.created")["TotalCount"] == 2
    tomorrow = today + timedelta(days=1)
    assert events(client, account, f"&fromdate={tomorrow}")["TotalCount"] == 0
    since = (utcnow() - timedelta(minutes=5)).isoformat()
    assert events(client, account, f"&fromdate={since}&action=server.created".replace("+", "%2B"))["TotalCount"] == 2


def test_following_with_the_cursor_returns_only_what_is_new_oldest_first(
    client: TestClient, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Followed")
    first = events(client, account)
    cursor = first["Cursor"]
    nothing = client.get(f"/audit-events?count=10&after={cursor}", headers=headers_of(account)).json()
    assert (nothing["TotalCount"], nothing["AuditEvents"], nothing["Cursor"]) == (0, [], cursor)
    rename_servers(client, account, server_id, 3)
    follow = "&action=server.updated"
    page = client.get(f"/audit-events?count=2&after={cursor}{follow}", headers=headers_of(account)).json()
    assert page["TotalCount"] == 3
    assert [e["Changes"]["name"]["after"] for e in page["AuditEvents"]] == ["Renamed 0", "Renamed 1"]
    rest = client.get(f"/audit-events?count=2&after={page['Cursor']}{follow}", headers=headers_of(account)).json()
    assert [e["Changes"]["name"]["after"] for e in rest["AuditEvents"]] == ["Renamed 2"]


def test_another_accounts_events_are_invisible(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    other = create_account(runtime, "Other")
    create_server(client, other, "Theirs")
    theirs = events(client, other, "&action=server.created")["AuditEvents"][0]
    answer = client.get(f"/audit-events/{theirs['ID']}", headers=headers_of(account))
    assert error_code(answer) == (404, 9050)
    assert all(e["Target"]["Label"] != "Theirs" for e in events(client, account)["AuditEvents"])
    assert error_code(client.get("/audit-events/abc", headers=headers_of(account))) == (404, 9050)


def test_bad_queries_are_refused_with_9051(client: TestClient, account: NewAccount) -> None:
    for query in (
        "",  # count and offset are required
        "?count=0&offset=0",
        "?count=10&offset=0&action=server.exploded",
        "?count=10&offset=0&action=nothing.*",
        "?count=10&offset=0&via=telepathy",
        "?count=10&offset=0&fromdate=yesterday",
        "?count=10&offset=0&fromdate=2026-02-30",
        "?count=10&after=-1",
    ):
        answer = client.get(f"/audit-events{query}", headers=headers_of(account))
        assert error_code(answer) == (422, 9051), query
    for query in (
        "?count=10&offset=0&fromdate=2026-03-02&todate=2026-03-01",
        "?count=10&offset=0&targetid=5",
        "?count=10&offset=5&after=3",
    ):
        answer = client.get(f"/audit-events{query}", headers=headers_of(account))
        assert error_code(answer) == (422, 9052), query
    answer = client.get("/audit-events/export?format=xml", headers=headers_of(account))
    assert error_code(answer) == (422, 9051)


def test_members_other_than_owner_and_admins_may_not_read_the_log(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    assert client.get("/audit-events?count=1&offset=0", headers=sign_in(client, "admin@example.org")).status_code == 200
    for role in (Role.TECHNICAL, Role.BILLING, Role.MEMBER):
        email = f"{role.value.lower()}@example.org"
        add_member(runtime, account, email, role)
        caller = sign_in(client, email)
        for path in ("/audit-events?count=1&offset=0", "/audit-events/export", "/audit-events/verify"):
            assert error_code(client.get(path, headers=caller)) == (403, 9001), (role, path)


# -- export ----------------------------------------------------------------------------------


def test_export_streams_every_matching_event_as_json_lines_and_csv(client: TestClient, account: NewAccount) -> None:
    server_id = create_server(client, account, '=HYPERLINK("http://evil")')
    rename_servers(client, account, server_id, 3)
    listed = events(client, account, "&action=server.*")
    expected_ids = [e["ID"] for e in reversed(listed["AuditEvents"])]  # the export runs oldest first

    jsonl = client.get("/audit-events/export?action=server.*", headers=headers_of(account))
    assert jsonl.status_code == 200
    assert jsonl.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="audit-events-' in jsonl.headers["content-disposition"]
    exported = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [e["ID"] for e in exported] == expected_ids
    assert exported == list(reversed(listed["AuditEvents"]))

    as_csv = client.get("/audit-events/export?format=csv&action=server.*", headers=headers_of(account))
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [int(row["ID"]) for row in rows] == expected_ids
    created = rows[0]
    assert created["Action"] == "server.created"
    # A label a spreadsheet would run as a formula is defused.
    assert created["TargetLabel"] == '\'=HYPERLINK("http://evil")'
    assert json.loads(rows[1]["Changes"])["name"]["after"] == "Renamed 0"

    everything = client.get("/audit-events/export", headers=headers_of(account))
    assert len(everything.text.splitlines()) == events(client, account)["TotalCount"]


# -- the hash chain --------------------------------------------------------------------------


def test_an_untouched_chain_verifies(client: TestClient, account: NewAccount) -> None:
    server_id = create_server(client, account, "Chained")
    rename_servers(client, account, server_id, 2)
    report = verify(client, account)
    total = events(client, account)["TotalCount"]
    assert report["Valid"] is True and report["BrokenLink"] is None
    assert report["CheckedEvents"] == total == report["LastSequence"] == report["Head"]["Sequence"]
    assert report["FirstSequence"] == 1


def test_editing_an_event_in_the_database_is_reported_as_the_first_broken_link(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Evidence")
    rename_servers(client, account, server_id, 3)
    target = events(client, account, "&action=server.updated")["AuditEvents"][-1]  # the first rename
    with runtime.db.engine.begin() as connection:  # as someone with the database's password would
        connection.execute(
            text("UPDATE audit_events SET actor_label = 'somebody else' WHERE id = :id"), {"id": target["ID"]}
        )
    report = verify(client, account)
    assert report["Valid"] is False
    assert report["BrokenLink"] == {
        "Sequence": target["Sequence"],
        "EventID": target["ID"],
        "Problem": "its content differs from what was recorded",
    }


def test_a_removed_event_and_a_forged_hash_are_reported(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Evidence")
    rename_servers(client, account, server_id, 3)
    renames = events(client, account, "&action=server.updated")["AuditEvents"]
    with runtime.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": renames[1]["ID"]})
    broken = verify(client, account)["BrokenLink"]
    assert broken["Sequence"] == renames[1]["Sequence"] and "missing" in broken["Problem"]

    # A rewritten row with a hash recomputed without the installation's key is caught too.
    with runtime.db.engine.begin() as connection:
        connection.execute(
            text("UPDATE audit_events SET chain_hash = :h WHERE id = :id"), {"h": "0" * 64, "id": renames[2]["ID"]}
        )
    assert verify(client, account)["BrokenLink"]["Sequence"] == renames[2]["Sequence"]


def test_events_cut_from_the_end_are_reported(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    server_id = create_server(client, account, "Tail")
    rename_servers(client, account, server_id, 2)
    last = events(client, account)["AuditEvents"][0]
    with runtime.db.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": last["ID"]})
    broken = verify(client, account)["BrokenLink"]
    assert broken["Sequence"] == last["Sequence"] and "missing from the end" in broken["Problem"]


def test_sequence_numbers_are_gapless_per_account_across_accounts(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    other = create_account(runtime, "Other")
    for n in range(3):
        create_server(client, account, f"Mine {n}")
        create_server(client, other, f"Theirs {n}")
    for owner in (account, other):
        sequences = [e["Sequence"] for e in events(client, owner)["AuditEvents"]]
        assert sequences == list(range(len(sequences), 0, -1))
        assert verify(client, owner)["Valid"]


# -- pruning ---------------------------------------------------------------------------------


def test_pruning_leaves_a_signed_checkpoint_that_keeps_the_chain_verifiable(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Old")
    rename_servers(client, account, server_id, 2)
    before = events(client, account)["TotalCount"]
    chain = account.account.id
    with runtime.db.session_scope() as session:
        pruned = prune_chain(session, runtime.keyring.audit_key, chain, utcnow() + timedelta(seconds=1))
    assert pruned.events == before and pruned.through_seq == before
    assert events(client, account)["TotalCount"] == 0
    rename_servers(client, account, server_id, 1)
    report = verify(client, account)
    assert report["Valid"] is True, report
    assert (report["PrunedThroughSequence"], report["FirstSequence"], report["CheckedEvents"]) == (
        before,
        before + 1,
        1,
    )

    # Moving the checkpoint (to hide that more was pruned) breaks its signature.
    with runtime.db.session_scope() as session:
        session.execute(update(AuditChain).where(AuditChain.chain == chain).values(pruned_seq=before - 1))
    report = verify(client, account)
    assert report["Valid"] is False and "checkpoint" in report["BrokenLink"]["Problem"]


def test_pruning_keeps_what_is_younger_than_the_cutoff(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Kept")
    with runtime.db.session_scope() as session:
        nothing = prune_chain(session, runtime.keyring.audit_key, account.account.id, utcnow() - timedelta(days=1))
    assert nothing.events == 0
    rename_servers(client, account, server_id, 1)
    with runtime.db.session_scope(write=False) as session:
        count = session.scalar(select(func.count()).where(AuditEvent.account_id == account.account.id))
    assert count == events(client, account)["TotalCount"] >= 2
    assert verify(client, account)["Valid"]


def test_concurrent_changes_in_one_account_chain_without_gaps_in_commit_order(
    runtime: Runtime, account: NewAccount
) -> None:
    """Writers of one account wait for the chain's head: sequences stay gapless and every
    link holds, however the transactions interleave."""

    def create(n: int) -> None:
        with runtime.db.session_scope() as session:
            ServerService(session, Actor.system("tests"), runtime).create_server(
                account.account.id, ServerFields(name=f"Concurrent {n}")
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, range(40)))
    with runtime.db.session_scope(write=False) as session:
        sequences = list(
            session.scalars(
                select(AuditEvent.seq).where(AuditEvent.account_id == account.account.id).order_by(AuditEvent.id)
            )
        )
        report = verify_chain(session, runtime.keyring.audit_key, account.account.id)
    assert sorted(sequences) == list(range(1, len(sequences) + 1))
    assert report.valid and report.checked == len(sequences) >= 40
