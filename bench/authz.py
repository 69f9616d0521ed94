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
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import (
    BenchError,
    add_database_url,
    add_output,
    add_sizes,
    bulk_insert,
    database_kind,
    fresh_database,
    generated_at,
    log,
    machine,
    make_settings,
    parse_sizes,
    run_main,
    serve_in_thread,
    settle,
    versions,
    write_results,
)
from sqlalchemy import func, insert, select, update

from postwarden.accounts.models import Account
from postwarden.accounts.service import AccountService
from postwarden.app import create_app
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.tokens.models import PersonalToken
from postwarden.tokens.personal import new_personal_token
from postwarden.users.models import Membership, ServerAccessGrant, User
from postwarden.users.passwords import hash_password

DEFAULT_SIZES = (100, 10_000, 100_000)
MAX_RATIO = 2.0
GRANTS_PER_MEMBER = 2


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


# --------------------------------------------------------------------------
# serving and timing


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
    with fresh_database(args.database_url, "authz", size, tmp) as url:
        settings = make_settings(url, data_dir)
        runtime = Runtime.start(settings)
        try:
            seeded = seed(runtime, size, args.servers, password_hash)
            log(
                f"{size} members: seeded {seeded.servers} servers, {seeded.members} members, "
                f"{seeded.grants} grants in {seeded.seconds:.1f}s"
            )
            with (
                serve_in_thread(create_app(settings, runtime=runtime), "postwarden") as base_url,
                httpx.Client(base_url=base_url, timeout=60) as http,
            ):
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


def run(args: argparse.Namespace) -> int:
    sizes = parse_sizes(args.sizes)
    if len(sizes) < 2 or sizes[0] < 2:
        raise BenchError("--sizes wants at least two sizes of 2 or more members")
    if args.servers < GRANTS_PER_MEMBER:
        raise BenchError(f"--servers must be at least {GRANTS_PER_MEMBER}")
    db_kind = database_kind(args.database_url)
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
        "generated_at": generated_at(),
        "machine": machine(),
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
    write_results(args.output, result)

    if args.check and not all(v < MAX_RATIO for v in ratio.values()):
        print(f"CHECK FAILED: some ratio is {MAX_RATIO} or more")
        return 1
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="time per request of the team and authorization reads by account size")
    add_sizes(p, DEFAULT_SIZES, "member counts")
    p.add_argument("--servers", type=int, default=1000, help="servers in the account at every size (1000)")
    p.add_argument("--requests", type=int, default=300, help="timed requests per endpoint and size (300)")
    p.add_argument("--warmup", type=int, default=50, help="untimed requests first (50)")
    add_database_url(p)
    add_output(p, "authz")
    p.add_argument("--check", action="store_true", help=f"exit 1 if a ratio is {MAX_RATIO} or more")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
