"""The ``postwarden`` command line, run for real against the test database, and the
installed command as an operator starts it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from redis import Redis
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.app import create_app
from postwarden.audit import AuditEvent
from postwarden.cache import INVALIDATION_CHANNEL
from postwarden.config import Settings
from postwarden.runtime import Runtime
from postwarden.surfaces.cli.main import DEMO_OWNER, cli
from tests.conftest import REDIS_URL, SECRET, free_port, make_settings

POSTWARDEN = Path(sys.executable).with_name("postwarden")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # The CLI is another process as far as the app is concerned: without Redis the app may
    # keep a token it has seen for cache_ttl_seconds, so these tests read it fresh each time.
    return make_settings(database_url, tmp_path, cache_ttl_seconds=0)


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "POSTWARDEN_DATABASE_URL": database_url,
        "POSTWARDEN_DATA_DIR": str(tmp_path),
        "POSTWARDEN_SECRET_KEY": SECRET,
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def ok(env: dict[str, str], *args: str) -> Result:
    result = run(env, *args)
    assert result.exit_code == 0, result.output
    return result


def assert_clean_failure(result: Result, *, code: int = 1) -> str:
    """One clear message on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: ") or "\nError: " in result.stderr
    return result.stderr


def init(env: dict[str, str], name: str = "Acme", email: str = "owner@acme.example") -> dict[str, Any]:
    result = ok(env, "init", "--account", name, "--owner-email", email, "--json")
    created: dict[str, Any] = json.loads(result.stdout)
    return created


def audit_events(runtime: Runtime) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def new_events(runtime: Runtime, before: int) -> list[tuple[str, str]]:
    return [(event.action, event.via) for event in audit_events(runtime)[before:]]


def create_server(client: TestClient, account_token: str, name: str = "Production") -> dict[str, Any]:
    response = client.post("/servers", json={"Name": name}, headers={"X-Postmark-Account-Token": account_token})
    assert response.status_code == 200, response.text
    server: dict[str, Any] = response.json()
    return server


def test_migrate_is_idempotent(cli_env: dict[str, str]) -> None:
    for _ in range(2):
        result = ok(cli_env, "migrate")
        assert "up to date" in result.stderr


def test_init_prints_one_json_object_whose_token_works(
    cli_env: dict[str, str], client: TestClient, runtime: Runtime
) -> None:
    result = ok(cli_env, "init", "--account", "Acme", "--owner-email", "Owner@Acme.example", "--json")
    assert len(result.stdout.strip().splitlines()) == 1
    created = json.loads(result.stdout)
    assert {"AccountID", "AccountToken", "OwnerEmail", "OwnerPassword"} <= set(created)
    assert created["OwnerEmail"] == "owner@acme.example"
    assert re.fullmatch(UUID_RE, created["AccountToken"])
    assert len(created["OwnerPassword"]) >= 10

    response = client.get("/servers?count=10&offset=0", headers={"X-Postmark-Account-Token": created["AccountToken"]})
    assert response.status_code == 200, response.text
    assert response.json() == {"TotalCount": 0, "Servers": []}
    events = audit_events(runtime)
    assert {event.action for event in events if event.via == "cli"} == {
        "user.created",
        "account.created",
        "membership.created",
        "account_token.created",
    }
    # The token's first use over the API is a security event (from the API, not the command line).
    [first_use] = [event for event in events if event.via != "cli"]
    assert (first_use.action, first_use.target_type, first_use.changes["first_use"]) == (
        "credential.used_from_new_ip",
        "account_token",
        True,
    )


def test_init_with_a_chosen_password_and_plain_output(cli_env: dict[str, str]) -> None:
    result = ok(
        cli_env, "init", "--account", "Acme", "--owner-email", "a@acme.example", "--owner-password", "long enough pw"
    )
    assert "long enough pw" in result.stdout
    assert "Account:        Acme (ID 1)" in result.stdout
    assert "postwarden tokens show" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--account", "Acme", "--owner-email", "not-an-address"], "'not-an-address' is not a valid email address."),
        (
            ["--account", "Acme", "--owner-email", "a@acme.example", "--owner-password", "short"],
            "at least 10 characters",
        ),
        (["--account", "   ", "--owner-email", "a@acme.example"], "account name must be 1 to 255 characters"),
    ],
)
def test_init_refuses_bad_input_with_one_clear_line(
    cli_env: dict[str, str], runtime: Runtime, args: list[str], message: str
) -> None:
    stderr = assert_clean_failure(run(cli_env, "init", *args, "--json"))
    assert message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert audit_events(runtime) == []


def test_init_twice_with_the_same_owner_is_refused(cli_env: dict[str, str]) -> None:
    init(cli_env)
    stderr = assert_clean_failure(run(cli_env, "init", "--account", "Other", "--owner-email", "owner@acme.example"))
    assert "already exists" in stderr


@pytest.mark.parametrize("database_file", ["missing", "empty"])
def test_commands_on_a_database_never_migrated_say_to_migrate(tmp_path: Path, database_file: str) -> None:
    path = tmp_path / "fresh.db"
    if database_file == "empty":
        path.touch()
    env = {
        "POSTWARDEN_DATABASE_URL": f"sqlite:///{path}",
        "POSTWARDEN_DATA_DIR": str(tmp_path),
        "POSTWARDEN_SECRET_KEY": SECRET,
    }
    for args in (["init", "--account", "Acme", "--owner-email", "a@acme.example"], ["accounts", "list"]):
        stderr = assert_clean_failure(run(env, *args))
        assert "run `postwarden migrate`" in stderr, args
        assert len(stderr.strip().splitlines()) == 1
    assert path.exists() == (database_file == "empty")


def test_commands_before_the_data_dir_exists_say_to_migrate(tmp_path: Path) -> None:
    env = {"POSTWARDEN_DATA_DIR": str(tmp_path / "not-yet"), "POSTWARDEN_SECRET_KEY": SECRET}
    stderr = assert_clean_failure(run(env, "tokens", "show"))
    assert "run `postwarden migrate`" in stderr
    ok(env, "migrate")
    assert ok(env, "accounts", "list").stdout.startswith("no accounts yet")


def test_accounts_list_plain_and_json(cli_env: dict[str, str], client: TestClient) -> None:
    assert "no accounts yet" in ok(cli_env, "accounts", "list").stdout
    assert json.loads(ok(cli_env, "accounts", "list", "--json").stdout) == []

    acme = init(cli_env, "Acme", "owner@acme.example")
    ok(cli_env, "init", "--account", "Beta Co", "--owner-email", "owner@beta.example", "--server-limit", "3")
    create_server(client, acme["AccountToken"], "One")
    create_server(client, acme["AccountToken"], "Two")

    rows = json.loads(ok(cli_env, "accounts", "list", "--json").stdout)
    assert [(r["AccountID"], r["Name"], r["Servers"], r["ServerLimit"]) for r in rows] == [
        (acme["AccountID"], "Acme", 2, None),
        (acme["AccountID"] + 1, "Beta Co", 0, 3),
    ]
    assert all(r["CreatedAt"] for r in rows)

    lines = ok(cli_env, "accounts", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "SERVERS", "LIMIT", "NAME"]
    assert lines[1].split() == [str(acme["AccountID"]), "2", "-", "Acme"]
    assert lines[2].split() == [str(acme["AccountID"] + 1), "0", "3", "Beta", "Co"]


def test_tokens_show_matches_what_the_api_returned(cli_env: dict[str, str], client: TestClient) -> None:
    created = init(cli_env)
    server = create_server(client, created["AccountToken"])

    shown = json.loads(ok(cli_env, "tokens", "show", "--json").stdout)
    assert len(shown) == 1
    entry = shown[0]
    assert entry["AccountID"] == created["AccountID"] and entry["AccountName"] == "Acme"
    assert [t["Token"] for t in entry["AccountTokens"]] == [created["AccountToken"]]
    assert entry["AccountTokens"][0]["CanDeleteServers"] is False
    assert entry["Servers"] == [{"ID": server["ID"], "Name": "Production", "ApiTokens": server["ApiTokens"]}]

    plain = ok(cli_env, "tokens", "show").stdout
    assert f"Account {created['AccountID']}: Acme" in plain
    assert created["AccountToken"] in plain
    assert f"server {server['ID']} 'Production': {server['ApiTokens'][0]}" in plain

    only = json.loads(ok(cli_env, "tokens", "show", "--account", str(created["AccountID"]), "--json").stdout)
    assert only == shown
    missing = assert_clean_failure(run(cli_env, "tokens", "show", "--account", "999"))
    assert "Account 999 was not found." in missing


def test_rotate_server_tokens(cli_env: dict[str, str], client: TestClient, runtime: Runtime) -> None:
    created = init(cli_env)
    server = create_server(client, created["AccountToken"])
    old = server["ApiTokens"][0]
    assert client.get("/server", headers={"X-Postmark-Server-Token": old}).status_code == 200

    before = len(audit_events(runtime))
    result = ok(cli_env, "tokens", "rotate", "--server", str(server["ID"]))
    new = result.stdout.strip()
    assert re.fullmatch(UUID_RE, new) and new != old
    assert new_events(runtime, before) == [("server_token.rotated", "cli")]

    refused = client.get("/server", headers={"X-Postmark-Server-Token": old})
    assert refused.status_code == 401 and refused.json()["ErrorCode"] == 10
    accepted = client.get("/server", headers={"X-Postmark-Server-Token": new})
    assert accepted.status_code == 200 and accepted.json()["ApiTokens"] == [new]
    shown = json.loads(ok(cli_env, "tokens", "show", "--json").stdout)
    assert shown[0]["Servers"][0]["ApiTokens"] == [new]

    missing = assert_clean_failure(run(cli_env, "tokens", "rotate", "--server", "999"))
    assert "there is no server 999" in missing


def test_rotate_account_token(cli_env: dict[str, str], client: TestClient, runtime: Runtime) -> None:
    created = init(cli_env)
    old = created["AccountToken"]
    token_id = json.loads(ok(cli_env, "tokens", "show", "--json").stdout)[0]["AccountTokens"][0]["ID"]
    assert client.get("/servers?count=1&offset=0", headers={"X-Postmark-Account-Token": old}).status_code == 200

    before = len(audit_events(runtime))
    new = ok(cli_env, "tokens", "rotate", "--account-token", str(token_id)).stdout.strip()
    assert re.fullmatch(UUID_RE, new) and new != old
    assert new_events(runtime, before) == [("account_token.rotated", "cli")]

    refused = client.get("/servers?count=1&offset=0", headers={"X-Postmark-Account-Token": old})
    assert refused.status_code == 401 and refused.json()["ErrorCode"] == 10
    assert client.get("/servers?count=1&offset=0", headers={"X-Postmark-Account-Token": new}).status_code == 200
    tokens = json.loads(ok(cli_env, "tokens", "show", "--json").stdout)[0]["AccountTokens"]
    assert [(t["Name"], t["Token"]) for t in tokens] == [("Default", new)]

    again = assert_clean_failure(run(cli_env, "tokens", "rotate", "--account-token", str(token_id)))
    assert f"Account token {token_id} was not found." in again


@pytest.mark.parametrize("args", [[], ["--server", "1", "--account-token", "1"]])
def test_rotate_needs_exactly_one_target(cli_env: dict[str, str], runtime: Runtime, args: list[str]) -> None:
    stderr = assert_clean_failure(run(cli_env, "tokens", "rotate", *args), code=2)
    assert "give exactly one of --server ID or --account-token ID" in stderr
    assert "Usage:" in stderr
    assert audit_events(runtime) == []


def test_allow_server_deletion_on_and_off(cli_env: dict[str, str], client: TestClient, runtime: Runtime) -> None:
    created = init(cli_env)
    headers = {"X-Postmark-Account-Token": created["AccountToken"]}
    token_id = json.loads(ok(cli_env, "tokens", "show", "--json").stdout)[0]["AccountTokens"][0]["ID"]
    first = create_server(client, created["AccountToken"], "First")
    second = create_server(client, created["AccountToken"], "Second")
    refused = client.delete(f"/servers/{first['ID']}", headers=headers)
    assert refused.status_code == 422 and refused.json()["ErrorCode"] == 604

    before = len(audit_events(runtime))
    result = ok(cli_env, "tokens", "allow-server-deletion", str(token_id))
    assert f"account token #{token_id}: server deletion on" in result.stdout
    assert new_events(runtime, before) == [("account_token.updated", "cli")]
    assert json.loads(ok(cli_env, "tokens", "show", "--json").stdout)[0]["AccountTokens"][0]["CanDeleteServers"]
    deleted = client.delete(f"/servers/{first['ID']}", headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["ErrorCode"] == 0

    before = len(audit_events(runtime))
    result = ok(cli_env, "tokens", "allow-server-deletion", str(token_id), "--off")
    assert "server deletion off" in result.stdout
    assert new_events(runtime, before) == [("account_token.updated", "cli")]
    refused = client.delete(f"/servers/{second['ID']}", headers=headers)
    assert refused.status_code == 422 and refused.json()["ErrorCode"] == 604

    # switching off what is already off changes nothing and records nothing
    before = len(audit_events(runtime))
    ok(cli_env, "tokens", "allow-server-deletion", str(token_id), "--off")
    assert new_events(runtime, before) == []
    missing = assert_clean_failure(run(cli_env, "tokens", "allow-server-deletion", "999"))
    assert "Account token 999 was not found." in missing


def wait_for_new_subscriber(redis: Redis, before: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        counts = dict(redis.pubsub_numsub(INVALIDATION_CHANNEL))
        if int(counts.get(INVALIDATION_CHANNEL.encode(), 0)) > before:
            return
        time.sleep(0.02)


def test_cli_changes_reach_running_servers_over_redis(
    cli_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    created = init(cli_env)
    redis = Redis.from_url(REDIS_URL)
    subscribers = int(dict(redis.pubsub_numsub(INVALIDATION_CHANNEL)).get(INVALIDATION_CHANNEL.encode(), 0))
    app_settings = make_settings(database_url, tmp_path, redis_url=REDIS_URL, cache_ttl_seconds=300)
    with TestClient(create_app(app_settings), raise_server_exceptions=False) as client:
        wait_for_new_subscriber(redis, subscribers)
        server = create_server(client, created["AccountToken"])
        old = server["ApiTokens"][0]
        assert client.get("/server", headers={"X-Postmark-Server-Token": old}).status_code == 200  # now cached

        ok({**cli_env, "POSTWARDEN_REDIS_URL": REDIS_URL}, "tokens", "rotate", "--server", str(server["ID"]))
        deadline = time.monotonic() + 2
        status = 200
        while status == 200 and time.monotonic() < deadline:
            status = client.get("/server", headers={"X-Postmark-Server-Token": old}).status_code
            time.sleep(0.02)
        assert status == 401
    redis.close()


def test_a_change_still_commits_when_redis_is_down(cli_env: dict[str, str], client: TestClient) -> None:
    created = init(cli_env)
    server = create_server(client, created["AccountToken"])
    env = {**cli_env, "POSTWARDEN_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = ok(env, "tokens", "rotate", "--server", str(server["ID"]))
    new = result.stdout.strip()
    assert re.fullmatch(UUID_RE, new)
    assert "could not notify running servers over Redis" in result.stderr
    assert client.get("/server", headers={"X-Postmark-Server-Token": new}).status_code == 200


# -- the installed command, as its own process ---------------------------------------------


@pytest.fixture
def fresh_env(tmp_path: Path) -> dict[str, str]:
    """The process environment of an operator with a fresh SQLite data dir."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("POSTWARDEN_")}
    env["POSTWARDEN_DATA_DIR"] = str(tmp_path / "var")
    return env


def run_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(POSTWARDEN), *args], env=env, capture_output=True, text=True, timeout=60, check=False)


class Served:
    def __init__(self, process: subprocess.Popen[bytes], stdout: Path, stderr: Path, base_url: str) -> None:
        self.process = process
        self.stdout = stdout
        self.stderr = stderr
        self.base_url = base_url

    def output(self) -> str:
        return self.stdout.read_text()


@contextmanager
def serve(env: dict[str, str], tmp_path: Path, label: str) -> Iterator[Served]:
    port = free_port()
    stdout, stderr = tmp_path / f"{label}.out", tmp_path / f"{label}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([str(POSTWARDEN), "serve", "--port", str(port)], env=env, stdout=out, stderr=err)
    try:
        served = Served(process, stdout, stderr, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"serve exited early: {stderr.read_text()}"
            assert time.monotonic() < deadline, f"serve did not start: {stderr.read_text()}"
            try:
                if httpx.get(f"{served.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_serve_creates_the_demo_account_once(fresh_env: dict[str, str], tmp_path: Path) -> None:
    migrated = run_command(fresh_env, "migrate")
    assert migrated.returncode == 0, migrated.stderr

    with serve(fresh_env, tmp_path, "first") as served:
        output = served.output()
        assert output.count("First start: created a demo account.") == 1
        assert DEMO_OWNER in output
        account_token = re.search(rf"Account token:\s+({UUID_RE})", output)
        server_token = re.search(rf"Server token:\s+({UUID_RE})", output)
        assert account_token and server_token, output

        listed = httpx.get(
            f"{served.base_url}/servers?count=10&offset=0",
            headers={"X-Postmark-Account-Token": account_token[1], "Accept": "application/json"},
        )
        assert listed.status_code == 200, listed.text
        servers = listed.json()["Servers"]
        assert [(s["Name"], s["ApiTokens"]) for s in servers] == [("Demo Server", [server_token[1]])]
        current = httpx.get(f"{served.base_url}/server", headers={"X-Postmark-Server-Token": server_token[1]})
        assert current.status_code == 200 and current.json()["Name"] == "Demo Server"

        access = [json.loads(line) for line in served.stderr.read_text().splitlines() if line.startswith("{")]
        assert any(
            (e["logger"], e["path"], e["status"]) == ("postwarden.access", "/servers", 200) and e["request_id"]
            for e in access
            if e["logger"] == "postwarden.access"
        )

        shown = run_command(fresh_env, "tokens", "show")
        assert shown.returncode == 0, shown.stderr
        assert account_token[1] in shown.stdout and server_token[1] in shown.stdout
    assert served.process.returncode is not None

    with serve(fresh_env, tmp_path, "second") as served:
        assert "demo account" not in served.output()
        assert "Account token" not in served.output()
    listed_accounts = run_command(fresh_env, "accounts", "list", "--json")
    assert [a["Name"] for a in json.loads(listed_accounts.stdout)] == ["Demo"]


def test_serve_before_migrate_says_to_migrate(fresh_env: dict[str, str]) -> None:
    result = run_command(fresh_env, "serve", "--port", str(free_port()))
    assert result.returncode == 1
    assert "run `postwarden migrate`" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_a_bad_setting_names_the_variable(fresh_env: dict[str, str]) -> None:
    env = {**fresh_env, "POSTWARDEN_RATE_LIMIT_PER_IP": "banana"}
    for args in (["serve", "--port", str(free_port())], ["accounts", "list"]):
        result = run_command(env, *args)
        assert result.returncode == 1, result.stderr
        assert "POSTWARDEN_RATE_LIMIT_PER_IP" in result.stderr
        assert "banana" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
        assert len(result.stderr.strip().splitlines()) == 1


def test_accounts_set_server_limit_caps_new_servers(cli_env: dict[str, str], client: TestClient) -> None:
    created = init(cli_env, "Capped", "cap@example.com")
    headers = {"X-Postmark-Account-Token": created["AccountToken"]}
    assert client.post("/servers", json={"Name": "one"}, headers=headers).status_code == 200

    assert "server limit 1" in ok(cli_env, "accounts", "set-server-limit", str(created["AccountID"]), "1").stdout
    refused = client.post("/servers", json={"Name": "two"}, headers=headers)
    assert refused.status_code == 422 and refused.json()["ErrorCode"] == 614

    ok(cli_env, "accounts", "set-server-limit", str(created["AccountID"]), "none")
    assert client.post("/servers", json={"Name": "two"}, headers=headers).status_code == 200

    assert_clean_failure(run(cli_env, "accounts", "set-server-limit", str(created["AccountID"]), "lots"), code=2)
    assert "99999" in assert_clean_failure(run(cli_env, "accounts", "set-server-limit", "99999", "3"))


@pytest.mark.parametrize(("trusted", "seen_ip"), [("127.0.0.1", "203.0.113.9"), ("", "127.0.0.1")])
def test_client_address_comes_from_trusted_proxies_only(
    fresh_env: dict[str, str], tmp_path: Path, trusted: str, seen_ip: str
) -> None:
    assert run_command(fresh_env, "migrate").returncode == 0
    created = json.loads(
        run_command(fresh_env, "init", "--account", "P", "--owner-email", "p@p.example", "--json").stdout
    )
    env = {**fresh_env, "POSTWARDEN_TRUSTED_PROXIES": trusted}
    with serve(env, tmp_path, f"proxy{bool(trusted)}") as served:
        response = httpx.post(
            f"{served.base_url}/servers",
            json={"Name": "Behind a proxy"},
            headers={"X-Postmark-Account-Token": created["AccountToken"], "X-Forwarded-For": "203.0.113.9"},
        )
        assert response.status_code == 200
    runtime = Runtime.start(make_settings("", Path(fresh_env["POSTWARDEN_DATA_DIR"])))
    with runtime.db.session_scope(write=False) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "server.created")).one()
    assert event.ip == seen_ip
