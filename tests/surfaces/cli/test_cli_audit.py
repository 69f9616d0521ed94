"""``postwarden audit``: the operator exports an account's log, verifies every chain and prunes
by the retention setting; ``tokens show`` leaves a trace in the log it is shown in."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text, update

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.runtime import Runtime
from postwarden.tasks import TaskQueue
from tests.conftest import make_settings
from tests.surfaces.cli.test_cli import assert_clean_failure, cli_env, ok, run

__all__ = ["cli_env"]  # the fixture is found by pytest through this import


def account_events(runtime: Runtime, account: NewAccount) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.account_id == account.account.id).order_by(AuditEvent.seq)
            )
        )


def test_export_writes_every_event_oldest_first_as_json_lines_or_csv(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount, tmp_path: Path
) -> None:
    expected = [event.id for event in account_events(runtime, account)]
    assert len(expected) >= 3  # the account's creation: account, user, membership, token
    lines = ok(cli_env, "audit", "export", "--account", str(account.account.id)).stdout.splitlines()
    assert [json.loads(line)["ID"] for line in lines] == expected
    target = tmp_path / "audit.csv"
    result = ok(
        cli_env, "audit", "export", "--account", str(account.account.id), "--format", "csv", "--output", str(target)
    )
    assert f"{len(expected)} events written" in result.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [int(row["ID"]) for row in rows] == expected
    only = ok(cli_env, "audit", "export", "--account", str(account.account.id), "--action", "account.*").stdout
    assert {json.loads(line)["Action"] for line in only.splitlines()} == {"account.created"}
    assert "not an audit action" in assert_clean_failure(
        run(cli_env, "audit", "export", "--account", str(account.account.id), "--action", "bogus")
    )


def test_verify_checks_every_chain_and_fails_naming_the_first_broken_link(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    intact = ok(cli_env, "audit", "verify").stdout
    assert f"account {account.account.id}: " in intact and "chain intact" in intact
    second = account_events(runtime, account)[1]
    with runtime.db.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET changes = '{}' WHERE id = :id"), {"id": second.id})
    broken = run(cli_env, "audit", "verify", "--account", str(account.account.id))
    assert broken.exit_code == 1
    assert f"BROKEN at event {second.seq} (id {second.id}): its content differs" in broken.stdout


def test_prune_deletes_what_retention_allows_and_the_chain_still_verifies(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    assert "kept forever" in assert_clean_failure(run(cli_env, "audit", "prune"))
    assert "no events older than 30 days" in ok(cli_env, "audit", "prune", "--older-than-days", "30").stdout
    created = account_events(runtime, account)
    with runtime.db.session_scope() as session:  # back-date the creation, as if 400 days had passed
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.account_id == account.account.id)
            .values(occurred_at=utcnow() - timedelta(days=400))
            .execution_options(synchronize_session=False)
        )
    # Back-dating broke those events' hashes, but pruning removes them all: what is left
    # verifies from the signed checkpoint.
    pruned = ok({**cli_env, "POSTWARDEN_AUDIT_RETENTION_DAYS": "365"}, "audit", "prune").stdout
    assert f"chain {account.account.id}: {len(created)} events pruned through {created[-1].seq}" in pruned
    remaining = account_events(runtime, account)
    assert [event.action for event in remaining] == ["audit_log.pruned"]
    assert remaining[0].changes["events"] == len(created) and remaining[0].via == "cli"
    assert "chain intact" in ok(cli_env, "audit", "verify", "--account", str(account.account.id)).stdout


def test_showing_tokens_at_the_command_line_is_recorded_in_each_account(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    shown = ok(cli_env, "tokens", "show", "--account", str(account.account.id)).stdout
    assert account.account_token in shown
    [viewed] = [event for event in account_events(runtime, account) if event.action == "account_token.viewed"]
    assert (viewed.via, viewed.actor_label, viewed.target_type) == ("cli", "cli: tokens show", "account_token")


def test_the_worker_prunes_by_the_retention_setting_hourly(
    database_url: str, tmp_path: Path, runtime: Runtime, account: NewAccount
) -> None:
    with runtime.db.session_scope() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.account_id == account.account.id)
            .values(occurred_at=utcnow() - timedelta(days=40))
            .execution_options(synchronize_session=False)
        )
    forever = TaskQueue(Runtime.start(make_settings(database_url, tmp_path)))
    forever.prune_audit_log.call_local()
    assert len(account_events(runtime, account)) > 1  # no retention set: nothing goes
    queue = TaskQueue(Runtime.start(make_settings(database_url, tmp_path, audit_retention_days=30)))
    periodic = queue.prune_audit_log.task_class()
    assert periodic.validate_datetime(datetime(2026, 1, 1, 3, 17)) and not periodic.validate_datetime(
        datetime(2026, 1, 1, 3, 18)
    )  # hourly, at :17
    queue.prune_audit_log.call_local()
    [pruned] = account_events(runtime, account)
    assert (pruned.action, pruned.via, pruned.actor_label) == ("audit_log.pruned", "worker", "audit retention")
