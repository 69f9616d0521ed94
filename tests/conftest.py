"""Every test runs against a real database: once on SQLite and once on PostgreSQL.

SQLite tests get a fresh copy of a migrated file; PostgreSQL tests share one migrated
schema per test process, emptied after each test.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from postwarden.accounts.service import AccountService, NewAccount
from postwarden.app import create_app
from postwarden.config import Settings
from postwarden.identity import Actor
from postwarden.migrations import upgrade
from postwarden.runtime import Runtime
from postwarden.tables import metadata

PG_URL = os.environ.get("POSTWARDEN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("POSTWARDEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-key-for-postwarden-tests"


def _psycopg_url(url: str, schema: str | None = None) -> str:
    url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if schema:
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    return url


@pytest.fixture(scope="session")
def worker_name(request: pytest.FixtureRequest) -> str:
    """Unique to this test process, so that concurrent runs on one machine share no schema."""
    worker = str(getattr(request.config, "workerinput", {}).get("workerid", "main"))
    return f"{worker}_{os.getpid()}"


@dataclass
class Backend:
    name: str
    url_for_test: Callable[[Path], str]
    clean: Callable[[], None]


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, worker_name: str
) -> Iterator[Backend]:
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("sqlite-template") / "template.db"
        upgrade(f"sqlite:///{template}")

        def sqlite_url(tmp: Path) -> str:
            target = tmp / "postwarden.db"
            shutil.copyfile(template, target)
            return f"sqlite:///{target}"

        yield Backend("sqlite", sqlite_url, lambda: None)
        return

    schema = f"pw_test_{worker_name}"
    admin = create_engine(_psycopg_url(PG_URL))
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = _psycopg_url(PG_URL, schema)
    upgrade(url)
    engine = create_engine(url)
    tables = ", ".join(table.name for table in metadata.sorted_tables)

    def truncate() -> None:
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))

    yield Backend("postgresql", lambda _tmp: url, truncate)
    engine.dispose()
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def database_url(backend: Backend, tmp_path: Path) -> Iterator[str]:
    yield backend.url_for_test(tmp_path)
    backend.clean()


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": SECRET,
        "public_url": "http://postwarden.test",
        "rate_limit_per_token": "off",
        "rate_limit_per_ip": "off",
        "access_log": False,
        "embedded_worker": False,
        # No test reaches the internet: a closed loopback port fails DNS lookups at once.
        "dns_nameservers": ["127.0.0.1:9"],
        "dns_timeout_seconds": 1.0,
        "dkim_key_bits": 1024,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = Runtime.start(settings)
    yield runtime
    runtime.db.dispose()


@pytest.fixture
def client(settings: Settings, runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(settings, runtime=runtime), raise_server_exceptions=False) as test_client:
        yield test_client


def create_account(runtime: Runtime, name: str = "Acme", *, server_limit: int | None = None) -> NewAccount:
    with runtime.db.session_scope() as session:
        return AccountService(session, Actor.system("tests"), runtime).create_account(
            name, owner_email=f"owner@{name.lower().replace(' ', '-')}.example", server_limit=server_limit
        )


@pytest.fixture
def account(runtime: Runtime) -> NewAccount:
    return create_account(runtime)


@pytest.fixture
def account_headers(account: NewAccount) -> dict[str, str]:
    return {"X-Postmark-Account-Token": account.account_token, "Accept": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    host_port: str
    runtime: Runtime

    @property
    def base_url(self) -> str:
        return f"http://{self.host_port}"


def run_live_server(app: Any, runtime: Runtime) -> Iterator[LiveServer]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"127.0.0.1:{port}", runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(settings: Settings, runtime: Runtime) -> Iterator[LiveServer]:
    """postwarden over real HTTP on a free loopback port."""
    yield from run_live_server(create_app(settings, runtime=runtime), runtime)


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.base_url, timeout=30) as http_client:
        yield http_client
