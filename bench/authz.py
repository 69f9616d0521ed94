#!/usr/bin/env python3
"""Time per request of the team and authorization reads as an account grows.

Run with the project's interpreter::

    .venv/bin/python bench/authz.py [--sizes 100,10000,100000] [--servers 1000]
        [--requests 300] [--warmup 50] [--database-url postgresql://...] [--check]

For each size it:

1. makes a fresh database: a SQLite file in a temp dir, or with ``--database-url`` a
   PostgreSQL schema of its own (``bench_authz_<hex>_<size>``), dropped afterwards;
2. migrates it, creates one account through ``AccountService.create_account`` and bulk
   inserts ``--servers`` servers and ``size`` members (role Member, each with View only
   access on two servers), plus a personal token for one of them; then settles the
   database as a long-running one would be (SQLite: the write-ahead log checkpointed and
   emptied; PostgreSQL: ``VACUUM ANALYZE``);
3. serves postwarden with uvicorn in this process on a loopback port and times, one
   request after another over one keep-alive connection, after ``--warmup`` requests:

   * ``GET /users?count=100&offset=0`` with the account token,
   * ``GET /users/{id}`` of a member with the account token,
   * ``GET /servers/{id}`` by that member, who has View only access on the server,
     with the member's personal token (``Authorization: Bearer pw_...``).

It prints the median time per request at each size and, per endpoint, the ratio of the
largest size to the smallest, which should stay under 2.0 (PASS/FAIL); writes
``bench/results/authz.json``. ``--check`` makes the exit code 1 when a ratio fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Connection, create_engine, func, insert, select, text, update

from postwarden.accounts.models import Account
from postwarden.accounts.service import AccountService
from postwarden.app import create_app
from postwarden.config import Settings
from postwarden.db import Base
from postwarden.identity import Actor
from postwarden.migrations import upgrade
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.tokens.models import PersonalToken
from postwarden.tokens.personal import new_personal_token
from postwarden.users.models import Membership, ServerAccessGrant, User
from postwarden.users.passwords import hash_password

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "authz.json"
DEFAULT_SIZES = (100, 10_000, 100_000)
MAX_RATIO = 2.0
CHUNK = 5_000
GRANTS_PER_MEMBER = 2


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def psycopg_url(url: str, schema: str | None = None) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if schema:
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    return url


# --------------------------------------------------------------------------
# databases


@contextlib.contextmanager
def fresh_database(database_url: str | None, size: int, tmp: Path) -> Iterator[str]:
    """The URL of an empty, migrated database for one size; dropped on the way out."""
    if database_url is None:
        url = f"sqlite:///{tmp}/authz-{size}.db"
        upgrade(url)
        yield url
        return
    schema = f"bench_authz_{secrets.token_hex(4)}_{size}"
    admin = create_engine(psycopg_url(database_url))
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            url = psycopg_url(database_url, schema)
            upgrade(url)
            yield url
        finally:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        admin.dispose()


def make_settings(database_url: str, data_dir: Path) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": secrets.token_hex(32),
        "public_url": "http://postwarden.bench",
        "rate_limit_per_token": "off",
        "rate_limit_per_ip": "off",
        "access_log": False,
        "embedded_worker": False,
    }
    return Settings(**values)


@dataclass
class Seeded:
    account_token: str
    member_user_id: int
    member_token: str
    server_id: int
    members: int
    servers: int
    grants: int
    seconds: float


def chunked(rows: Sequence[dict[str, Any]], size: int = CHUNK) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def bulk_insert(connection: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    for chunk in chunked(rows):
        connection.execute(insert(model), list(chunk))


def seed(runtime: Runtime, members: int, servers: int, password_hash: str) -> Seeded:
    """One account with ``servers`` servers and ``members`` Members, inserted in bulk."""
    t0 = time.perf_counter()
    with runtime.db.session_scope() as session:
        created = AccountService(session, Actor.system("bench"), runtime).create_account(
            "Bench", owner_email="owner@bench.example"
        )
    account_id = created.account.id

    with runtime.db.engine.begin() as connection:
        bulk_insert(
            connection,
            Server,
            [
                {
                    "account_id": account_id,
                    "name": f"Bench {i:05d}",
                    "name_key": f"bench {i:05d}",
                    "inbound_hash": secrets.token_hex(16),
                }
                for i in range(servers)
            ],
        )
        server_ids = list(
            connection.scalars(select(Server.id).where(Server.account_id == account_id).order_by(Server.name_key))
        )

        emails = [f"member{i:06d}@bench.example" for i in range(members)]
        bulk_insert(
            connection,
            User,
            [{"email": email, "name": f"Member {i}", "password_hash": password_hash} for i, email in enumerate(emails)],
        )
        user_ids = dict(
            connection.execute(select(User.email, User.id).where(User.email.like("member%@bench.example")))
            .tuples()
            .all()
        )
        bulk_insert(
            connection,
            Membership,
            [
                {
                    "account_id": account_id,
                    "user_id": user_ids[email],
                    "role": "Member",
                    "user_name": email,
                    "user_name_key": email,
                }
                for email in emails
            ],
        )
        membership_ids = dict(
            connection.execute(
                select(Membership.user_id, Membership.id).where(
                    Membership.account_id == account_id, Membership.role == "Member"
                )
            )
            .tuples()
            .all()
        )

        # Member i sees servers i and i + n/2 (mod n): every server has members, none
        # has a member twice.
        grants = [
            {
                "membership_id": membership_ids[user_ids[email]],
                "server_id": server_ids[(i + k * (servers // GRANTS_PER_MEMBER)) % servers],
                "level": "ViewOnly",
            }
            for i, email in enumerate(emails)
            for k in range(GRANTS_PER_MEMBER)
        ]
        bulk_insert(connection, ServerAccessGrant, grants)

        measured = members // 2
        member_user_id = user_ids[emails[measured]]
        server_id = server_ids[measured % servers]
        member_token = new_personal_token()
        connection.execute(
            insert(PersonalToken),
            {
                "user_id": member_user_id,
                "account_id": account_id,
                "name": "bench",
                "secret_digest": runtime.keyring.digest(member_token),
            },
        )
        # The service keeps this count on every join; the bulk load bypasses the service.
        connection.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(member_count=select(func.count()).where(Membership.account_id == account_id).scalar_subquery())
        )
    settle(runtime)
    return Seeded(
        account_token=created.account_token,
        member_user_id=member_user_id,
        member_token=member_token,
        server_id=server_id,
        members=members,
        servers=servers,
        grants=len(grants),
        seconds=time.perf_counter() - t0,
    )


def settle(runtime: Runtime) -> None:
    """Leave the database as a long-running one would be after the bulk load.

    SQLite: fold the write-ahead log into the file and empty it. Nothing writes while the
    bench reads, so without this every read would look its pages up in a log as large as
    the data. PostgreSQL: vacuum and analyze, as autovacuum would have done by now.
    """
    if runtime.db.is_sqlite:
        with runtime.db.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with runtime.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


# --------------------------------------------------------------------------
# serving and timing


@contextlib.contextmanager
def serve(settings: Settings, runtime: Runtime) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, runtime=runtime),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise BenchError("postwarden did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass(frozen=True)
class Endpoint:
    label: str
    path: str
    headers: dict[str, str]


def endpoints_for(seeded: Seeded) -> list[Endpoint]:
    accept = {"Accept": "application/json"}
    account = {"X-Postmark-Account-Token": seeded.account_token, **accept}
    member = {"Authorization": f"Bearer {seeded.member_token}", **accept}
    return [
        Endpoint("GET /users?count=100&offset=0", "/users?count=100&offset=0", account),
        Endpoint("GET /users/{id}", f"/users/{seeded.member_user_id}", account),
        Endpoint("GET /servers/{id} (ViewOnly member)", f"/servers/{seeded.server_id}", member),
    ]


def time_endpoint(http: httpx.Client, ep: Endpoint, *, warmup: int, requests: int) -> dict[str, Any]:
    first = http.get(ep.path, headers=ep.headers)
    if first.status_code != 200:
        raise BenchError(f"{ep.label} -> HTTP {first.status_code}: {first.text[:500]}")
    for _ in range(warmup):
        http.get(ep.path, headers=ep.headers)
    samples: list[float] = []
    failures = 0
    for _ in range(requests):
        t0 = time.perf_counter()
        response = http.get(ep.path, headers=ep.headers)
        samples.append(time.perf_counter() - t0)
        if response.status_code != 200:
            failures += 1
    samples.sort()
    return {
        "endpoint": ep.label,
        "requests": requests,
        "median_ms": statistics.median(samples) * 1000,
        "mean_ms": statistics.fmean(samples) * 1000,
        "p95_ms": samples[min(len(samples) - 1, int(len(samples) * 0.95))] * 1000,
        "non_200": failures,
        "response_bytes": len(first.content),
    }


def bench_size(args: argparse.Namespace, size: int, tmp: Path, password_hash: str) -> dict[str, Any]:
    data_dir = tmp / f"data-{size}"
    data_dir.mkdir()
    with fresh_database(args.database_url, size, tmp) as url:
        settings = make_settings(url, data_dir)
        runtime = Runtime.start(settings)
        try:
            seeded = seed(runtime, size, args.servers, password_hash)
            log(
                f"{size} members: seeded {seeded.servers} servers, {seeded.members} members, "
                f"{seeded.grants} grants in {seeded.seconds:.1f}s"
            )
            with serve(settings, runtime) as base_url, httpx.Client(base_url=base_url, timeout=60) as http:
                rows = [
                    time_endpoint(http, ep, warmup=args.warmup, requests=args.requests) for ep in endpoints_for(seeded)
                ]
        finally:
            runtime.db.dispose()
    return {"size": size, "seed_seconds": round(seeded.seconds, 2), "grants": seeded.grants, "results": rows}


# --------------------------------------------------------------------------
# report


def ratios(runs: list[dict[str, Any]]) -> dict[str, float]:
    smallest, largest = runs[0], runs[-1]
    out: dict[str, float] = {}
    for low, high in zip(smallest["results"], largest["results"], strict=True):
        out[low["endpoint"]] = high["median_ms"] / low["median_ms"]
    return out


def print_table(runs: list[dict[str, Any]], ratio: dict[str, float]) -> None:
    sizes = [run["size"] for run in runs]
    header = f"{'endpoint':<38}" + "".join(f"{f'{s:,} ms':>13}" for s in sizes) + f"{'ratio':>8}  goal"
    print(header)
    print("-" * len(header))
    for i, label in enumerate(ratio):
        cells = "".join(f"{run['results'][i]['median_ms']:>13.2f}" for run in runs)
        flag = " !" if any(run["results"][i]["non_200"] for run in runs) else ""
        verdict = "PASS" if ratio[label] < MAX_RATIO else "FAIL"
        print(f"{label:<38}{cells}{ratio[label]:>8.2f}  {verdict}{flag}")
    if any(r["non_200"] for run in runs for r in run["results"]):
        print("! = some responses were not 200; see the JSON")
    print(
        f"figures: median time per request over sequential requests on one connection; "
        f"ratio = {sizes[-1]:,} / {sizes[0]:,} members, goal < {MAX_RATIO}"
    )


def versions(names: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run(args: argparse.Namespace) -> int:
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    if len(sizes) < 2 or sizes[0] < 2:
        raise BenchError("--sizes wants at least two sizes of 2 or more members")
    if args.servers < GRANTS_PER_MEMBER:
        raise BenchError(f"--servers must be at least {GRANTS_PER_MEMBER}")
    db_kind = args.database_url.split(":", 1)[0].split("+", 1)[0] if args.database_url else "sqlite"
    tmp = Path(tempfile.mkdtemp(prefix="postwarden-authz-"))
    try:
        log(f"work dir {tmp}; database {db_kind}")
        password_hash = hash_password(secrets.token_urlsafe(16))
        runs = [bench_size(args, size, tmp, password_hash) for size in sizes]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ratio = ratios(runs)
    print()
    print_table(runs, ratio)

    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": versions(["postwarden", "uvicorn", "starlette", "fastapi", "sqlalchemy", "httpx"]),
        "settings": {
            "database": db_kind,
            "sizes": sizes,
            "servers": args.servers,
            "grants_per_member": GRANTS_PER_MEMBER,
            "requests": args.requests,
            "warmup": args.warmup,
        },
        "runs": runs,
        "ratio_largest_over_smallest": {k: round(v, 3) for k, v in ratio.items()},
        "goal_max_ratio": MAX_RATIO,
        "pass": {k: v < MAX_RATIO for k, v in ratio.items()},
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out}")

    if args.check and not all(v < MAX_RATIO for v in ratio.values()):
        print(f"CHECK FAILED: some ratio is {MAX_RATIO} or more")
        return 1
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="time per request of the team and authorization reads by account size")
    p.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="comma-separated member counts (100,10000,100000)",
    )
    p.add_argument("--servers", type=int, default=1000, help="servers in the account at every size (1000)")
    p.add_argument("--requests", type=int, default=300, help="timed requests per endpoint and size (300)")
    p.add_argument("--warmup", type=int, default=50, help="untimed requests first (50)")
    p.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL database to bench in, one schema per size, dropped afterwards (default: temp SQLite)",
    )
    p.add_argument("--output", default=str(RESULTS_PATH), help="JSON results file (bench/results/authz.json)")
    p.add_argument("--check", action="store_true", help=f"exit 1 if a ratio is {MAX_RATIO} or more")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
