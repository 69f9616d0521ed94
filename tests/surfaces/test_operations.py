"""What operators rely on around the API: health and readiness, metrics, request ids,
access logs, OpenAPI, rate limits and cache invalidation between processes over Redis."""

from __future__ import annotations

import io
import json
import logging
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.app import create_app
from postwarden.cache import INVALIDATION_CHANNEL
from postwarden.identity import Actor
from postwarden.logs import JSONFormatter
from postwarden.runtime import Runtime
from postwarden.tokens.scim import ScimTokenService
from tests.conftest import REDIS_URL, create_account, free_port, make_settings

ANY_SERVERS = "/servers?count=10&offset=0"


def assert_error(response: httpx2.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"ErrorCode", "Message"} and body["ErrorCode"] == code
    assert response.headers["X-PM-ApiErrorCode"] == str(code)
    return body


@contextmanager
def app_client(
    database_url: str, tmp_path: Path, client_ip: str = "testclient", **overrides: Any
) -> Iterator[TestClient]:
    """An app of its own, as a separate server process would run it, started with its lifespan."""
    app = create_app(make_settings(database_url, tmp_path, **overrides))
    with TestClient(app, raise_server_exceptions=False, client=(client_ip, 50000)) as test_client:
        yield test_client


def account_headers_of(account: NewAccount) -> dict[str, str]:
    return {"X-Postmark-Account-Token": account.account_token, "Accept": "application/json"}


def fresh_window(period_seconds: int = 60) -> None:
    """Rate limits count in fixed windows: start a test's requests well inside one."""
    left = period_seconds - time.time() % period_seconds
    if left < 3:
        time.sleep(left + 0.05)


def unique_ip() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2]}"


# -- health, readiness, metrics, OpenAPI ------------------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"Status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"Status": "ready"}


@pytest.mark.parametrize("unreachable", ["postgresql", "sqlite"])
def test_readyz_is_503_when_the_database_is_unreachable(
    tmp_path: Path, unreachable: str, caplog: pytest.LogCaptureFixture
) -> None:
    if unreachable == "postgresql":
        url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postwarden?connect_timeout=2"
    else:
        gone = tmp_path / "gone"
        gone.mkdir()
        url = f"sqlite:///{gone / 'postwarden.db'}"
        shutil.rmtree(gone)
    with app_client(url, tmp_path) as test_client:
        refused = test_client.get("/readyz")
        body = assert_error(refused, 503, 100)
        assert "database" in body["Message"]
        assert refused.headers["X-Request-Id"]
        # the process itself is fine: only readiness fails
        assert test_client.get("/healthz").status_code == 200
    assert any(r.name == "postwarden" and "readiness" in r.getMessage() for r in caplog.records)


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    samples: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                samples[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_requests_by_route_template(client: TestClient, account_headers: dict[str, str]) -> None:
    created = client.post("/servers", json={"Name": "Production"}, headers=account_headers)
    server_id = created.json()["ID"]
    assert client.get(f"/servers/{server_id}", headers=account_headers).status_code == 200
    assert client.get(f"/SERVERS/{server_id}/", headers=account_headers).status_code == 200  # same route
    assert client.get("/servers/99999", headers=account_headers).status_code == 404
    assert client.get("/no/such/endpoint").status_code == 404

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = metric_samples(response.text, "postwarden_http_requests_total")
    route = "/servers/{server_id}"
    assert counts[(("method", "GET"), ("route", route), ("status", "200"))] == 2
    assert counts[(("method", "GET"), ("route", route), ("status", "404"))] == 1
    assert counts[(("method", "POST"), ("route", "/servers"), ("status", "200"))] == 1
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert not any(str(server_id) in dict(labels)["route"] for labels in counts)

    durations = metric_samples(response.text, "postwarden_http_request_duration_seconds_count")
    assert durations[(("method", "GET"), ("route", route))] == 3


def test_metrics_name_scim_routes_in_full(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    with runtime.db.session_scope() as session:
        _, token = ScimTokenService(session, Actor.system("tests"), runtime).create_token(account.account.id, "okta")
    scim = {"Authorization": f"Bearer {token}"}
    assert client.get("/scim/v2/Users?count=1", headers=scim).status_code == 200
    assert client.get("/scim/v2/Users/424242", headers=scim).status_code == 404
    assert client.get("/scim/v2/Nothing", headers=scim).status_code == 404

    counts = metric_samples(client.get("/metrics").text, "postwarden_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/scim/v2/Users"), ("status", "200"))] == 1
    assert counts[(("method", "GET"), ("route", "/scim/v2/Users/{resource_id}"), ("status", "404"))] == 1
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1


def test_openapi_lists_the_api(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "postwarden"
    paths = document["paths"]
    assert {"get", "post"} <= set(paths["/servers"])
    assert {"get", "put"} <= set(paths["/server"])
    assert {"get", "put", "delete"} <= set(paths["/servers/{server_id}"])
    assert {"/healthz", "/readyz", "/metrics"} <= set(paths)


# -- request ids and access log ----------------------------------------------------------------


def test_request_id_is_echoed_when_valid_and_generated_otherwise(client: TestClient) -> None:
    given = "req-42.a_b:C"
    assert client.get("/healthz", headers={"X-Request-Id": given}).headers["X-Request-Id"] == given
    # also on errors
    assert client.get("/servers", headers={"X-Request-Id": given}).headers["X-Request-Id"] == given

    generated = [client.get("/healthz").headers["X-Request-Id"] for _ in range(2)]
    assert all(len(value) == 32 and int(value, 16) >= 0 for value in generated)
    assert generated[0] != generated[1]

    for invalid in (b"has space", b"x" * 65, b"<script>", "ü".encode(), b""):
        echoed = client.get("/healthz", headers=[(b"X-Request-Id", invalid)])
        assert echoed.headers["X-Request-Id"].encode() != invalid
        assert len(echoed.headers["X-Request-Id"]) == 32


def test_one_json_access_log_line_per_request(database_url: str, tmp_path: Path, runtime: Runtime) -> None:
    headers = account_headers_of(create_account(runtime))
    stream = io.StringIO()
    app = create_app(make_settings(database_url, tmp_path, access_log=True), access_log_stream=stream)
    with TestClient(app) as test_client:
        test_client.get("/servers?count=1&offset=0", headers={**headers, "X-Request-Id": "trace-1"})
        test_client.get("/servers/12345", headers=headers)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2

    entry = json.loads(lines[0])
    assert entry["level"] == "info" and entry["logger"] == "postwarden.access" and entry["message"] == "request"
    assert entry["request_id"] == "trace-1"
    assert (entry["method"], entry["path"], entry["route"], entry["status"]) == ("GET", "/servers", "/servers", 200)
    assert entry["client_ip"] == "testclient" and entry["user_agent"]
    assert isinstance(entry["duration_ms"], float)
    assert entry["time"].endswith("+00:00")

    missing = json.loads(lines[1])
    assert (missing["path"], missing["route"], missing["status"]) == ("/servers/12345", "/servers/{server_id}", 404)
    assert len(missing["request_id"]) == 32


def test_no_access_log_when_switched_off(database_url: str, tmp_path: Path) -> None:
    stream = io.StringIO()
    app = create_app(make_settings(database_url, tmp_path, access_log=False), access_log_stream=stream)
    with TestClient(app) as test_client:
        test_client.get("/healthz")
    assert stream.getvalue() == ""


def test_json_formatter_keeps_extras_and_exceptions() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("postwarden", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    record.request_id = "r-1"
    record.where = Path("var/x")
    entry = json.loads(JSONFormatter().format(record))
    assert entry["message"] == "failed here" and entry["level"] == "error"
    assert entry["request_id"] == "r-1" and entry["where"] == "var/x"
    assert "ValueError: boom" in entry["exception"]


# -- rate limits, in memory ----------------------------------------------------------------------


def assert_rate_headers(response: httpx2.Response, limit: int, remaining: int) -> None:
    assert response.headers["RateLimit-Limit"] == str(limit)
    assert response.headers["RateLimit-Remaining"] == str(remaining)
    assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60


def assert_rate_limited(response: httpx2.Response, limit: int) -> None:
    body = assert_error(response, 429, 429)
    assert f"at most {limit} requests" in body["Message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert_rate_headers(response, limit, 0)
    assert response.headers["X-Request-Id"]


def test_rate_limit_per_token(database_url: str, tmp_path: Path, runtime: Runtime) -> None:
    mine = account_headers_of(create_account(runtime, "Acme"))
    theirs = account_headers_of(create_account(runtime, "Other Co"))
    fresh_window()
    with app_client(database_url, tmp_path, rate_limit_per_token="3/minute") as test_client:
        for remaining in (2, 1, 0):
            response = test_client.get(ANY_SERVERS, headers=mine)
            assert response.status_code == 200, response.text
            assert_rate_headers(response, 3, remaining)
        assert_rate_limited(test_client.get(ANY_SERVERS, headers=mine), 3)
        assert test_client.get(ANY_SERVERS, headers=mine).status_code == 429

        other = test_client.get(ANY_SERVERS, headers=theirs)
        assert other.status_code == 200
        assert_rate_headers(other, 3, 2)
        # operations endpoints are never limited
        for _ in range(5):
            assert test_client.get("/healthz").status_code == 200
        assert test_client.get("/metrics").status_code == 200


def test_rate_limit_per_ip_ignores_the_token(database_url: str, tmp_path: Path, runtime: Runtime) -> None:
    accounts = [account_headers_of(create_account(runtime, f"Team {n}")) for n in range(3)]
    fresh_window()
    with app_client(database_url, tmp_path, rate_limit_per_ip="5/minute") as test_client:
        responses = [
            test_client.get(ANY_SERVERS, headers=accounts[0]),
            test_client.get(ANY_SERVERS, headers=accounts[1]),
            test_client.get(ANY_SERVERS, headers=accounts[2]),
            test_client.get(ANY_SERVERS),
            test_client.get("/servers/1", headers=accounts[0]),
        ]
        assert [r.status_code for r in responses] == [200, 200, 200, 401, 404]
        assert [r.headers["RateLimit-Remaining"] for r in responses] == ["4", "3", "2", "1", "0"]
        assert_rate_limited(test_client.get(ANY_SERVERS, headers=accounts[1]), 5)
    with app_client(database_url, tmp_path, client_ip="10.1.2.3", rate_limit_per_ip="5/minute") as elsewhere:
        assert elsewhere.get(ANY_SERVERS, headers=accounts[1]).status_code == 200


def test_the_tighter_of_both_limits_applies(database_url: str, tmp_path: Path, runtime: Runtime) -> None:
    headers = account_headers_of(create_account(runtime))
    fresh_window()
    with app_client(
        database_url, tmp_path, rate_limit_per_token="2/minute", rate_limit_per_ip="10/minute"
    ) as test_client:
        first = test_client.get(ANY_SERVERS, headers=headers)
        assert_rate_headers(first, 2, 1)
        test_client.get(ANY_SERVERS, headers=headers)
        assert_rate_limited(test_client.get(ANY_SERVERS, headers=headers), 2)
        anonymous = test_client.get(ANY_SERVERS)
        assert anonymous.status_code == 401
        assert_rate_headers(anonymous, 10, 6)


# -- several processes sharing Redis -------------------------------------------------------------


@pytest.mark.parametrize("keyed_by", ["token", "ip"])
def test_redis_rate_limits_are_shared_between_processes(
    database_url: str, tmp_path: Path, runtime: Runtime, keyed_by: str
) -> None:
    # Fresh accounts have fresh tokens and each run picks a fresh address, so runs never share a key.
    headers = account_headers_of(create_account(runtime))
    limits = {"rate_limit_per_token": "4/minute"} if keyed_by == "token" else {"rate_limit_per_ip": "4/minute"}
    ip = unique_ip() if keyed_by == "ip" else "testclient"
    fresh_window()
    with (
        app_client(database_url, tmp_path, client_ip=ip, redis_url=REDIS_URL, **limits) as first,
        app_client(database_url, tmp_path, client_ip=ip, redis_url=REDIS_URL, **limits) as second,
    ):
        sequence = [first, first, second, second]
        responses = [app.get(ANY_SERVERS, headers=headers) for app in sequence]
        assert [r.status_code for r in responses] == [200, 200, 200, 200]
        assert [r.headers["RateLimit-Remaining"] for r in responses] == ["3", "2", "1", "0"]
        assert_rate_limited(second.get(ANY_SERVERS, headers=headers), 4)
        assert_rate_limited(first.get(ANY_SERVERS, headers=headers), 4)


def invalidation_subscribers(redis: Redis) -> int:
    counts = dict(redis.pubsub_numsub(INVALIDATION_CHANNEL))
    return int(counts.get(INVALIDATION_CHANNEL.encode(), 0))


def two_processes(
    stack: ExitStack, database_url: str, tmp_path: Path, **overrides: Any
) -> tuple[TestClient, TestClient]:
    """Two apps on one database; with Redis, returns once both listen for invalidations."""
    redis = Redis.from_url(REDIS_URL)
    stack.callback(redis.close)
    before = invalidation_subscribers(redis)
    first = stack.enter_context(app_client(database_url, tmp_path, cache_ttl_seconds=300, **overrides))
    second = stack.enter_context(app_client(database_url, tmp_path, cache_ttl_seconds=300, **overrides))
    if overrides.get("redis_url"):
        deadline = time.monotonic() + 5
        while invalidation_subscribers(redis) < before + 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    return first, second


def server_token_of(test_client: TestClient, account: NewAccount) -> str:
    created = test_client.post("/servers", json={"Name": "Production"}, headers=account_headers_of(account))
    assert created.status_code == 200, created.text
    assert created.json()["TrackOpens"] is False
    return str(created.json()["ApiTokens"][0])


def test_changes_reach_the_other_process_over_redis(database_url: str, tmp_path: Path, runtime: Runtime) -> None:
    account = create_account(runtime)
    with ExitStack() as stack:
        writer, reader = two_processes(stack, database_url, tmp_path, redis_url=REDIS_URL)
        headers = {"X-Postmark-Server-Token": server_token_of(writer, account)}
        assert reader.get("/server", headers=headers).json()["TrackOpens"] is False  # now cached in the reader

        edited = writer.put("/server", json={"TrackOpens": True}, headers=headers)
        assert edited.status_code == 200 and edited.json()["TrackOpens"] is True
        deadline = time.monotonic() + 2
        seen = False
        while not seen and time.monotonic() < deadline:
            seen = reader.get("/server", headers=headers).json()["TrackOpens"]
            time.sleep(0.02)
        assert seen is True


def test_without_redis_the_other_process_keeps_its_cache(database_url: str, tmp_path: Path, runtime: Runtime) -> None:
    # The control for the test above: the reader really serves from its cache.
    account = create_account(runtime)
    with ExitStack() as stack:
        writer, reader = two_processes(stack, database_url, tmp_path)
        headers = {"X-Postmark-Server-Token": server_token_of(writer, account)}
        assert reader.get("/server", headers=headers).json()["TrackOpens"] is False
        assert writer.put("/server", json={"TrackOpens": True}, headers=headers).status_code == 200
        time.sleep(0.3)
        assert reader.get("/server", headers=headers).json()["TrackOpens"] is False
        assert writer.get("/server", headers=headers).json()["TrackOpens"] is True


def test_access_log_lines_stay_valid_json_for_any_header(database_url: str, tmp_path: Path) -> None:
    stream = io.StringIO()
    app = create_app(make_settings(database_url, tmp_path, access_log=True), access_log_stream=stream)
    awkward = 'quote" backslash\\ tab\t café'.encode()
    with TestClient(app) as test_client:
        test_client.get("/healthz/%22%5C", headers=[(b"user-agent", awkward)])
    (entry,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["user_agent"] == awkward.decode("latin-1")
    assert entry["path"] == '/healthz/"\\'
    assert entry["status"] == 404
