#!/usr/bin/env python3
"""SCIM filters and paging as an account grows: postwarden against scim2-server.

Run with the project's interpreter (``make bench-scim`` does this)::

    .venv/bin/python bench/scim.py [--sizes 1000,10000,100000] [--requests 50]
        [--warmup 5] [--budget 20] [--output bench/results/scim.json]

For each size N it:

1. makes a fresh SQLite database in a temp dir, migrates it, creates one account through
   ``AccountService.create_account`` and bulk inserts N members (``users``, ``memberships``
   and one work email each in ``member_emails``): ``user000000@example.com`` and on, named
   ``Given{i} Family{i}``; then creates a SCIM token through ``ScimTokenService`` and
   settles the database (the write-ahead log checkpointed and emptied);
2. serves postwarden with uvicorn in this process on a loopback port (one worker, no access
   log) and times, one request after another over one keep-alive connection, after
   ``--warmup`` requests, with ``Authorization: Bearer pwscim_...``:

   * ``GET /scim/v2/Users?filter=userName eq "user{N/2}@example.com"`` (one result),
   * ``GET /scim/v2/Users?filter=userName co "r0004"&count=100`` (users 400 to 499),
   * ``GET /scim/v2/Users?startIndex=1&count=100`` (the first page of 100);

3. does the same against scim2-server's ASGI application over its in-memory storage
   (the default provider: RFC 7643 schemas and resource types), loaded with the same
   users, the Owner included, served the same way, at ``/v2/Users``.

Each request kind is timed ``--requests`` times, or fewer once ``--budget`` seconds have
gone by (never fewer than five), so that a slow kind does not hold the run up.

It prints the median time per request for each kind and size, and the two targets:

(a) postwarden's ``userName eq`` at the largest size over the smallest (100,000 / 1,000
    by default) stays under 2.0;
(b) postwarden is faster than scim2-server at 10,000 users for every kind.

It writes the figures to ``--output`` and exits 1 when a target fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from _common import (
    BenchError,
    add_output,
    add_sizes,
    bulk_insert,
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
from scim2_models import Email, EnterpriseUser, Meta, Name
from scim2_models import User as ScimUser
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
from scim2_server.utils import load_default_provider
from sqlalchemy import func, select, update

from postwarden.accounts.models import Account
from postwarden.accounts.service import AccountService
from postwarden.app import create_app
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.tokens.scim import ScimTokenService
from postwarden.users.models import MemberEmail, Membership, User

DEFAULT_SIZES = (1_000, 10_000, 100_000)
MAX_GROWTH = 2.0
COMPARED_SIZE = 10_000
PAGE = 100
MIN_SAMPLES = 5
#: In ``user000400@example.com`` to ``user000499@example.com`` only: 100 users at every size.
CO_SUBSTRING = "r0004"
OWNER_EMAIL = "owner@bench.example"
#: Stands in for a password hash: nobody signs in during the bench.
PASSWORD_HASH = "bench-no-password"


def email_of(i: int) -> str:
    return f"user{i:06d}@example.com"


# --------------------------------------------------------------------------
# the requests


@dataclass(frozen=True)
class Kind:
    label: str
    query: dict[str, str]
    #: Checks the first answer's JSON; returns what is wrong with it, or None.
    check: Callable[[dict[str, Any]], str | None]


def kinds_for(size: int) -> list[Kind]:
    wanted = email_of(size // 2)

    def one_result(body: dict[str, Any]) -> str | None:
        found = [r.get("userName") for r in body.get("Resources", [])]
        if body.get("totalResults") != 1 or found != [wanted]:
            return f"wanted totalResults 1 and {wanted}, got {body.get('totalResults')} and {found[:3]}"
        return None

    def some_results(body: dict[str, Any]) -> str | None:
        names = [str(r.get("userName")) for r in body.get("Resources", [])]
        if not body.get("totalResults") or not names or not all(CO_SUBSTRING in n for n in names):
            return f"wanted users containing {CO_SUBSTRING!r}, got {body.get('totalResults')} and {names[:3]}"
        return None

    def full_page(body: dict[str, Any]) -> str | None:
        count = len(body.get("Resources", []))
        return None if count == PAGE else f"wanted {PAGE} Resources, got {count}"

    return [
        Kind("userName eq", {"filter": f'userName eq "{wanted}"'}, one_result),
        Kind(
            f'userName co "{CO_SUBSTRING}"',
            {"filter": f'userName co "{CO_SUBSTRING}"', "count": str(PAGE)},
            some_results,
        ),
        Kind(f"page of {PAGE}", {"startIndex": "1", "count": str(PAGE)}, full_page),
    ]


def users_path(prefix: str, kind: Kind) -> str:
    # %20 for spaces and every quote escaped, as identity providers send them.
    return f"{prefix}/Users?{urlencode(kind.query, quote_via=quote)}"


@dataclass
class Timing:
    median_ms: float
    p95_ms: float
    samples: int
    total_results: int
    response_bytes: int


def time_kind(http: httpx.Client, path: str, kind: Kind, args: argparse.Namespace) -> Timing:
    first = http.get(path)
    if first.status_code != 200:
        raise BenchError(f"GET {path} -> HTTP {first.status_code}: {first.text[:500]}")
    body = first.json()
    problem = kind.check(body)
    if problem is not None:
        raise BenchError(f"GET {path}: {problem}")
    for _ in range(args.warmup):
        http.get(path)
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < args.requests:
        if len(samples) >= MIN_SAMPLES and time.perf_counter() - started > args.budget:
            break
        t0 = time.perf_counter()
        response = http.get(path)
        samples.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise BenchError(f"GET {path} -> HTTP {response.status_code}: {response.text[:500]}")
    samples.sort()
    return Timing(
        median_ms=statistics.median(samples) * 1000,
        p95_ms=samples[min(len(samples) - 1, int(len(samples) * 0.95))] * 1000,
        samples=len(samples),
        total_results=int(body.get("totalResults", 0)),
        response_bytes=len(first.content),
    )


def time_all(base_url: str, prefix: str, token: str, size: int, args: argparse.Namespace) -> dict[str, Timing]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}
    gc.collect()  # the previous server's leftovers are not collected on this one's clock
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
        return {kind.label: time_kind(http, users_path(prefix, kind), kind, args) for kind in kinds_for(size)}


# --------------------------------------------------------------------------
# postwarden


def seed(runtime: Runtime, size: int) -> tuple[str, float]:
    """One account with ``size`` Members inserted in bulk; returns a SCIM token and the seconds."""
    t0 = time.perf_counter()
    operator = Actor.system("bench")
    with runtime.db.session_scope() as session:
        created = AccountService(session, operator, runtime).create_account("Bench", owner_email=OWNER_EMAIL)
    account_id = created.account.id
    now = dt.datetime.now(dt.UTC)
    emails = [email_of(i) for i in range(size)]

    with runtime.db.engine.begin() as connection:
        bulk_insert(
            connection,
            User,
            [
                {"email": email, "name": f"Given{i} Family{i}", "password_hash": PASSWORD_HASH, "created_at": now}
                for i, email in enumerate(emails)
            ],
        )
        user_ids = dict(
            connection.execute(select(User.email, User.id).where(User.email.like("user%@example.com"))).tuples().all()
        )
        bulk_insert(
            connection,
            Membership,
            [
                {
                    "account_id": account_id,
                    "user_id": user_ids[email],
                    "role": "Member",
                    "servers_limited": False,
                    "created_at": now,
                    "user_name": email,
                    "user_name_key": email.lower(),
                    "given_name": f"Given{i}",
                    "family_name": f"Family{i}",
                    "display_name": f"Given{i} Family{i}",
                    "updated_at": now,
                    "version": 1,
                }
                for i, email in enumerate(emails)
            ],
        )
        membership_ids = dict(
            connection.execute(
                select(Membership.user_name, Membership.id).where(
                    Membership.account_id == account_id, Membership.role == "Member"
                )
            )
            .tuples()
            .all()
        )
        bulk_insert(
            connection,
            MemberEmail,
            [
                {
                    "membership_id": membership_ids[email],
                    "value": email,
                    "value_key": email.lower(),
                    "type": "work",
                    "primary": True,
                }
                for email in emails
            ],
        )
        # The services keep this count on every join; the bulk load bypasses them.
        connection.execute(
            update(Account)
            .where(Account.id == account_id)
            .values(member_count=select(func.count()).where(Membership.account_id == account_id).scalar_subquery())
        )

    with runtime.db.session_scope() as session:
        _row, token = ScimTokenService(session, operator, runtime).create_token(account_id, "bench")
    settle(runtime)
    return token, time.perf_counter() - t0


def bench_postwarden(size: int, tmp: Path, args: argparse.Namespace) -> tuple[dict[str, Timing], float]:
    data_dir = tmp / f"data-{size}"
    data_dir.mkdir()
    with fresh_database(None, "scim", size, tmp) as url:  # a SQLite file: this bench has no --database-url
        settings = make_settings(url, data_dir)
        runtime = Runtime.start(settings)
        try:
            token, seconds = seed(runtime, size)
            log(f"{size:,} users: postwarden seeded in {seconds:.1f}s")
            with serve_in_thread(create_app(settings, runtime=runtime), "postwarden") as base_url:
                return time_all(base_url, "/scim/v2", token, size, args), seconds
        finally:
            runtime.db.dispose()


# --------------------------------------------------------------------------
# scim2-server


def scim2_user(user_name: str, given: str, family: str, created: dt.datetime, version: int) -> ScimUser[EnterpriseUser]:
    # What the default provider's User resource type stores: with the enterprise extension.
    return ScimUser[EnterpriseUser](
        id=uuid.uuid4().hex,
        user_name=user_name,
        name=Name(given_name=given, family_name=family),
        display_name=f"{given} {family}",
        emails=[Email(value=user_name, type="work", primary=True)],
        active=True,
        meta=Meta(resource_type="User", created=created, last_modified=created, version=f'W/"{version}"'),
    )


def scim2_storage(size: int) -> InMemoryStorage:
    """The same users as postwarden's account, the Owner included, stored without a request each.

    ``InMemoryStorage.resources`` stores and indexes resources that already have their id
    and meta, as ``create`` would have left them.
    """
    now = dt.datetime.now(dt.UTC)
    users = [scim2_user(OWNER_EMAIL, "Owner", "Bench", now, 1)]
    users += [scim2_user(email_of(i), f"Given{i}", f"Family{i}", now, i + 2) for i in range(size)]
    storage = InMemoryStorage()
    storage.resources = list(users)
    return storage


def bench_scim2_server(size: int, args: argparse.Namespace) -> tuple[dict[str, Timing], float]:
    t0 = time.perf_counter()
    storage = scim2_storage(size)
    seconds = time.perf_counter() - t0
    log(f"{size:,} users: scim2-server loaded in {seconds:.1f}s")
    app = ASGIApplication(AsyncInMemoryStorage(storage), load_default_provider())
    with serve_in_thread(app, "scim2-server") as base_url:
        # The default application asks for no credentials; the token is sent all the same.
        return time_all(base_url, "/v2", "bench", size, args), seconds


# --------------------------------------------------------------------------
# report


@dataclass
class Run:
    size: int
    postwarden: dict[str, Timing]
    scim2_server: dict[str, Timing]
    postwarden_seed_seconds: float
    scim2_server_load_seconds: float


def print_table(runs: list[Run]) -> None:
    header = f"{'request':<24}{'users':>9}{'postwarden ms':>15}{'scim2-server ms':>17}{'ratio':>9}"
    print(header)
    print("-" * len(header))
    for label in runs[0].postwarden:
        for run in runs:
            pw, other = run.postwarden[label], run.scim2_server[label]
            ratio = other.median_ms / pw.median_ms
            print(f"{label:<24}{run.size:>9,}{pw.median_ms:>15.2f}{other.median_ms:>17.2f}{ratio:>8.2f}x")
    print(
        "figures: median time per request, sequential requests on one keep-alive connection; "
        "ratio = scim2-server / postwarden (how many times faster postwarden is)"
    )


def check_targets(runs: list[Run]) -> dict[str, bool | None]:
    """Prints the two targets; a target the sizes run cannot tell is None (SKIP)."""
    by_size = {run.size: run for run in runs}
    eq = kinds_for(2)[0].label
    smallest, largest = runs[0], runs[-1]
    results: dict[str, bool | None] = {}

    print()
    if len(runs) < 2:
        results["a"] = None
        print(f"(a) postwarden {eq}, largest / smallest size < {MAX_GROWTH}: SKIP (one size run)")
    else:
        growth = largest.postwarden[eq].median_ms / smallest.postwarden[eq].median_ms
        results["a"] = growth < MAX_GROWTH
        print(
            f"(a) postwarden {eq} at {largest.size:,} / at {smallest.size:,} users = {growth:.2f} "
            f"(target < {MAX_GROWTH}): {'PASS' if results['a'] else 'FAIL'}"
        )

    compared = by_size.get(COMPARED_SIZE)
    if compared is None:
        results["b"] = None
        print(f"(b) postwarden faster than scim2-server at {COMPARED_SIZE:,} users: SKIP (size not run)")
    else:
        slower = [
            label for label, pw in compared.postwarden.items() if pw.median_ms >= compared.scim2_server[label].median_ms
        ]
        results["b"] = not slower
        detail = "every request kind" if not slower else "slower at " + ", ".join(slower)
        print(
            f"(b) postwarden faster than scim2-server at {COMPARED_SIZE:,} users: "
            f"{'PASS' if results['b'] else 'FAIL'} ({detail})"
        )
    return results


def results(args: argparse.Namespace, runs: list[Run], targets: dict[str, bool | None]) -> dict[str, Any]:
    def figures(timings: dict[str, Timing]) -> dict[str, Any]:
        return {label: vars(t) for label, t in timings.items()}

    return {
        "generated_at": generated_at(),
        "machine": machine(),
        "versions": versions(["postwarden", "scim2-server", "scim2-models", "uvicorn", "sqlalchemy", "httpx"]),
        "settings": {
            "database": "sqlite",
            "requests": args.requests,
            "warmup": args.warmup,
            "budget_seconds": args.budget,
        },
        "runs": [
            {
                "size": run.size,
                "postwarden_seed_seconds": round(run.postwarden_seed_seconds, 2),
                "scim2_server_load_seconds": round(run.scim2_server_load_seconds, 2),
                "postwarden": figures(run.postwarden),
                "scim2_server": figures(run.scim2_server),
            }
            for run in runs
        ],
        "targets": {
            "a_eq_growth_under": MAX_GROWTH,
            "b_faster_at": COMPARED_SIZE,
            "pass": targets,
        },
    }


def run(args: argparse.Namespace) -> int:
    sizes = parse_sizes(args.sizes)
    if not sizes or sizes[0] < 500:
        raise BenchError(f"--sizes wants sizes of 500 or more users (the {CO_SUBSTRING!r} filter needs 500)")
    if args.requests < 1:
        raise BenchError("--requests must be 1 or more")
    tmp = Path(tempfile.mkdtemp(prefix="postwarden-scim-"))
    runs: list[Run] = []
    try:
        log(f"work dir {tmp}")
        for size in sizes:
            pw, seed_seconds = bench_postwarden(size, tmp, args)
            other, load_seconds = bench_scim2_server(size, args)
            runs.append(Run(size, pw, other, seed_seconds, load_seconds))
            for label, timing in pw.items():
                log(
                    f"{size:,} users, {label}: postwarden {timing.median_ms:.2f} ms ({timing.samples}), "
                    f"scim2-server {other[label].median_ms:.2f} ms ({other[label].samples})"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print_table(runs)
    targets = check_targets(runs)
    write_results(args.output, results(args, runs, targets))
    return 1 if False in targets.values() else 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="SCIM filters and paging by account size: postwarden vs scim2-server")
    add_sizes(p, DEFAULT_SIZES, "user counts")
    p.add_argument("--requests", type=int, default=50, help="timed requests per kind, size and server (50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed requests first (5)")
    p.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help=f"stop timing a kind after this many seconds, once it has {MIN_SAMPLES} samples (20)",
    )
    add_output(p, "scim")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
