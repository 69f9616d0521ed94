"""The schema comes only from migrations: an empty database upgraded to head matches the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from postwarden.audit_log.chain import verify_chain
from postwarden.db import Database, make_engine
from postwarden.migrations import alembic_config, upgrade
from postwarden.tables import metadata
from postwarden.tokens.secrets import Keyring
from tests.conftest import PG_URL, _psycopg_url


def assert_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert context.get_current_revision() == ScriptDirectory.from_config(alembic_config(url)).get_current_head()
            assert compare_metadata(context, metadata) == []
            assert set(inspect(connection).get_table_names()) >= {t.name for t in metadata.sorted_tables}
    finally:
        engine.dispose()


def test_sqlite_empty_database_upgrades_to_head_without_drift(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    assert_matches_models(url)
    upgrade(url)  # running again changes nothing
    assert_matches_models(url)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wal.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_postgresql_empty_schema_upgrades_to_head_without_drift(worker_name: str) -> None:
    schema = f"pw_migrations_{worker_name}"
    admin = create_engine(_psycopg_url(PG_URL))
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = _psycopg_url(PG_URL, schema)
        upgrade(url)
        assert_matches_models(url)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def test_events_recorded_before_the_chain_are_chained_by_the_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0010")
    engine = make_engine(url)
    with engine.begin() as connection:
        for account_id, action in ((7, "server.created"), (None, "user.login_failed"), (7, "server.updated")):
            connection.execute(
                text(
                    "INSERT INTO audit_events (occurred_at, account_id, actor_credential, actor_label, via, action, "
                    "target_type, target_id, target_label, changes, request_id, ip, user_agent) VALUES "
                    "('2026-01-02 03:04:05.000006', :account, 'system', 'cli: x', 'cli', :action, 'server', '1', "
                    "'Old', '{\"name\": {\"before\": null, \"after\": \"Old\"}}', '', '', '')"
                ),
                {"account": account_id, "action": action},
            )
    engine.dispose()
    with pytest.raises(RuntimeError, match="postwarden migrate"):  # events cannot be chained without the key
        upgrade(url)
    keyring = Keyring(b"k" * 32)
    upgrade(url, audit_key=keyring.audit_key)
    assert_matches_models(url)
    database = Database(url, audit_key=keyring.audit_key)
    with database.session_scope(write=False) as session:
        account_chain = verify_chain(session, keyring.audit_key, 7)
        installation_chain = verify_chain(session, keyring.audit_key, 0)
    database.dispose()
    assert (account_chain.valid, account_chain.checked, account_chain.head_seq) == (True, 2, 2)
    assert (installation_chain.valid, installation_chain.checked) == (True, 1)
