#!/usr/bin/env python3
"""Time to first byte of the console's Users page with 10 and 1,000 members.

Run with the project's interpreter (``make bench-console`` does this)::

    .venv/bin/python bench/console.py [--sizes 10,1000] [--servers 100] [--requests 30]
        [--warmup 5] [--database-url postgresql://...] [--output bench/results/console.json]
        [--check]

For each size N (members, the Owner included) it:

1. makes a fresh database: a SQLite file in a temp dir, or with ``--database-url`` a
   PostgreSQL schema of its own (``bench_console_<hex>_<size>``), dropped afterwards; and
   migrates it;
2. seeds one account as people would have filled it: the account and its Owner through
   ``AccountService.create_account``; ``--servers`` servers (bulk inserted); N - 1 users
   (bulk inserted, sharing one password hash, about 40% with two-factor authentication on)
   who join through ``UserService.add_membership``, which records each join in the audit
   log and keeps the account's member count. Their roles follow a fixed cycle of 20: 12
   Members, 4 Technical (2 of them limited to a list of servers), 2 Admins and 2 Billing.
   A Member is given View only or Full access on 1 to 6 servers (two Members of each 20
   on none), a limited Technical on 2 to 8; two SCIM groups add theirs (one with View only
   on five servers, one giving the Technical role) to one member in ten; one in fifty is
   suspended. Five invitations are pending. Then the database is settled as a long-running
   one would be (SQLite: the write-ahead log checkpointed and emptied; PostgreSQL:
   ``VACUUM ANALYZE``);
3. starts ``postwarden serve`` (the CLI beside this interpreter) as a process of its own on
   a free loopback port, waits for ``/readyz``, and signs in as the Owner through the
   console's form (``GET /console/sign-in`` for the CSRF token, then ``POST`` it with the
   email and password), keeping the cookies;
4. checks the Users page as a person would read it: one column per server, one row per
   member up to 50; beyond 50 members, 50 rows, "Page 1 of ..." and a link to page 2,
   and page 2 shows the next 50 members.

Then it times ``GET /console/users`` on every size's server in turn (one request to each
per round, so that a change in the machine's load weighs on every size alike), after
``--warmup`` rounds, for ``--requests`` rounds: time to first byte is from sending the
request until the first byte of the body arrives (``iter_raw``'s first chunk), over one
keep-alive connection per server, ``Accept-Encoding: identity``.

It also reads each server process's CPU time (``/proc/<pid>/stat``) before and after the
timed rounds: CPU time per request, which other load on the machine inflates less than it
does wall-clock times; and the load average before and after.

It prints the median and p95 time to first byte for each size, the ratio of the largest
size's median to the smallest's, which should stay under 2.0 (PASS/FAIL), the ratio of
CPU time per request (for information), and whether the large page is paged. It writes
``bench/results/console.json``; ``--check`` makes the exit code 1 when the ratio or the
paging check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import httpx
from _common import (
    BenchError,
    ServeProcess,
    add_database_url,
    add_output,
    add_sizes,
    bulk_insert,
    child_environment,
    cpu_seconds,
    database_kind,
    find_cli,
    fresh_database,
    generated_at,
    log,
    machine,
    make_settings,
    parse_sizes,
    rounded,
    run_main,
    settle,
    start_postwarden,
    versions,
    wait_ready,
    write_results,
)
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from postwarden.accounts.service import AccountService
from postwarden.db import utcnow
from postwarden.groups.models import Group, GroupMember, GroupServerAccess
from postwarden.identity import Actor
from postwarden.invitations.service import InvitationService, NewInvitations
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.users.models import Membership, User
from postwarden.users.passwords import hash_password
from postwarden.users.service import UserService

DEFAULT_SIZES = (10, 1_000)
DEFAULT_SERVERS = 100
MAX_RATIO = 2.0
#: Rows on one page of the Users table.
PAGE_ROWS: Final = 50
OWNER_EMAIL: Final = "owner@bench.example"
PASSWORD: Final = "correct horse battery staple"
USERS_PATH: Final = "/console/users"
#: The cells of the access columns, as the page writes each ``ServerAccess``.
ACCESS_LABELS: Final = {
    "Full access": ServerAccess.FULL,
    "View only": ServerAccess.VIEW,
    "No access": ServerAccess.NONE,
}

#: The roles members join with, in turn: (role, limited to a list of servers).
ROLE_CYCLE: Final[tuple[tuple[Role, bool], ...]] = (
    (Role.MEMBER, False),
    (Role.TECHNICAL, False),
    (Role.MEMBER, False),
    (Role.ADMIN, False),
    (Role.MEMBER, False),
    (Role.TECHNICAL, True),
    (Role.MEMBER, False),
    (Role.BILLING, False),
    (Role.MEMBER, False),
    (Role.MEMBER, False),
    (Role.TECHNICAL, False),
    (Role.MEMBER, False),
    (Role.MEMBER, False),
    (Role.ADMIN, False),
    (Role.MEMBER, False),
    (Role.TECHNICAL, True),
    (Role.MEMBER, False),
    (Role.BILLING, False),
    (Role.MEMBER, False),
    (Role.MEMBER, False),
)
GIVEN_NAMES: Final = ("Amélie", "Björn", "Chen", "Dara", "Émile", "Farah", "Gus", "Hana", "Ivan", "João", "Kofi")
FAMILY_NAMES: Final = ("Okafor", "Lindqvist", "Wang", "Murphy", "Dubois", "Haddad", "Novak", "Sato", "Petrov", "Silva")
SERVER_NAMES: Final = ("Transactional", "Password resets", "Receipts", "Newsletters", "Alerts", "Onboarding", "Billing")
REGIONS: Final = ("EU", "US", "APAC", "staging", "dev")


# --------------------------------------------------------------------------
# the account


@dataclass
class Seeded:
    members: int
    servers: int
    grants: int
    roles: dict[str, int]
    limited_technical: int
    in_groups: int
    suspended: int
    two_factor: int
    invitations: int
    seconds: float


def server_name(i: int) -> str:
    return f"{SERVER_NAMES[i % len(SERVER_NAMES)]} {REGIONS[i // len(SERVER_NAMES) % len(REGIONS)]} {i:03d}"


def grants_for(rng: random.Random, role: Role, limited: bool, k: int, server_ids: list[int]) -> dict[int, ServerAccess]:
    """The access a member is given server by server: Members on a few, limited Technical
    members on a few more; the roles that reach every server are given none one by one."""
    if role is Role.MEMBER:
        if k % 10 == 9:
            return {}  # joined, not given any server yet
        count = rng.randint(1, 6)
    elif role is Role.TECHNICAL and limited:
        count = rng.randint(2, 8)
    else:
        return {}
    chosen = rng.sample(server_ids, min(count, len(server_ids)))
    return {sid: ServerAccess.VIEW if rng.random() < 0.6 else ServerAccess.FULL for sid in chosen}


def seed(runtime: Runtime, size: int, servers: int) -> Seeded:
    """One account with ``servers`` servers and ``size`` members, the Owner included."""
    t0 = time.perf_counter()
    rng = random.Random(20_240_601 + size)
    operator = Actor.system("bench")
    with runtime.db.session_scope() as session:
        created = AccountService(session, operator, runtime).create_account(
            "Bench", owner_email=OWNER_EMAIL, owner_password=PASSWORD
        )
    account_id = created.account.id

    now = utcnow()
    others = size - 1
    emails = [f"member{k:05d}@bench.example" for k in range(others)]
    with runtime.db.engine.begin() as connection:
        bulk_insert(
            connection,
            Server,
            [
                {
                    "account_id": account_id,
                    "name": server_name(i),
                    "name_key": server_name(i).lower(),
                    "color": ("blue", "green", "purple", "red", "yellow", "grey")[i % 6],
                    "inbound_hash": secrets.token_hex(16),
                }
                for i in range(servers)
            ],
        )
        # One hash for everyone: hashing a password is made slow on purpose, and nobody
        # but the Owner signs in during the bench.
        password_hash = hash_password(PASSWORD)
        bulk_insert(
            connection,
            User,
            [
                {
                    "email": email,
                    "name": ""
                    if k % 7 == 6
                    else f"{GIVEN_NAMES[k % len(GIVEN_NAMES)]} {FAMILY_NAMES[k * 3 % len(FAMILY_NAMES)]}",
                    "password_hash": password_hash,
                    "totp_enabled_at": now - timedelta(days=k % 300) if k % 5 in (0, 3) else None,
                    "created_at": now - timedelta(days=400 - k % 400),
                }
                for k, email in enumerate(emails)
            ],
        )
        server_ids = list(connection.scalars(select(Server.id).where(Server.account_id == account_id)))

    roles: dict[str, int] = {role.value: 0 for role in Role}
    roles[Role.OWNER.value] = 1
    grants = limited_technical = 0
    membership_ids: list[int] = []
    with runtime.db.session_scope() as session:
        users = UserService(session, operator, runtime)
        by_email = {user.email: user for user in session.scalars(select(User).where(User.email.in_(emails)))}
        for k, email in enumerate(emails):
            role, limited = ROLE_CYCLE[k % len(ROLE_CYCLE)]
            access = grants_for(rng, role, limited, k, server_ids)
            membership = users.add_membership(
                account_id, by_email[email], role, servers_limited=limited, server_access=access
            )
            membership_ids.append(membership.id)
            roles[role.value] += 1
            grants += len(access)
            limited_technical += limited
        invite_pending(session, operator, runtime, account_id)

    in_groups, suspended = groups_and_suspensions(runtime, account_id, server_ids, membership_ids, rng)
    settle(runtime)
    return Seeded(
        members=size,
        servers=servers,
        grants=grants,
        roles=roles,
        limited_technical=limited_technical,
        in_groups=in_groups,
        suspended=suspended,
        two_factor=sum(1 for k in range(others) if k % 5 in (0, 3)),
        invitations=5,
        seconds=time.perf_counter() - t0,
    )


def invite_pending(session: Session, operator: Actor, runtime: Runtime, account_id: int) -> None:
    """Five invitations nobody accepted yet: the page lists them under the members."""
    invitations = InvitationService(session, operator, runtime, lambda _invitation_id: None)
    invitations.invite(
        account_id, NewInvitations(emails=[f"invited{k}@bench.example" for k in range(5)], role=Role.MEMBER)
    )


def groups_and_suspensions(
    runtime: Runtime, account_id: int, server_ids: list[int], membership_ids: list[int], rng: random.Random
) -> tuple[int, int]:
    """Two SCIM groups, each with one member in twenty, and one member in fifty suspended,
    as an identity provider would have left them through SCIM (inserted directly)."""
    now = utcnow()
    with runtime.db.engine.begin() as connection:
        group_ids = [
            connection.execute(
                insert(Group)
                .values(account_id=account_id, display_name=name, display_name_key=name.lower(), role=role)
                .returning(Group.id)
            ).scalar_one()
            for name, role in (("Support", None), ("Platform", Role.TECHNICAL.value))
        ]
        bulk_insert(
            connection,
            GroupServerAccess,
            [
                {"group_id": group_ids[0], "server_id": sid, "level": ServerAccess.VIEW.value}
                for sid in rng.sample(server_ids, min(5, len(server_ids)))
            ],
        )
        members = [
            {"group_id": group_ids[k % 20 // 10], "membership_id": mid}
            for k, mid in enumerate(membership_ids)
            if k % 20 in (4, 14)
        ]
        bulk_insert(connection, GroupMember, members)
        suspended = [mid for k, mid in enumerate(membership_ids) if k % 50 == 24]
        if suspended:
            connection.execute(update(Membership).where(Membership.id.in_(suspended)).values(suspended_at=now))
    return len(members), len(suspended)


# --------------------------------------------------------------------------
# the page


@dataclass
class UsersPage:
    """What a person reads on the Users page."""

    server_columns: int = 0
    rows: int = 0
    #: The number of cells of each row (User, Role, 2FA and one per server).
    row_cells: list[int] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    access_cells: dict[str, int] = field(default_factory=dict)
    next_href: str | None = None
    pager_text: str = ""
    total_text: str = ""


class UsersPageParser(HTMLParser):
    """Reads the members table (the first table, whose first header says "User"), the
    pager's link to the next page and the "N members" line."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = UsersPage()
        self.tables = 0
        self.in_members = False
        self.section = ""
        self.cell: list[str] | None = None
        self.row: list[str] | None = None
        self.headers: list[str] = []
        self.in_pager = False
        self.in_span = False
        self.hint: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "table":
            self.tables += 1
            self.in_members = self.tables == 1
        elif self.in_members and tag in ("thead", "tbody"):
            self.section = tag
        elif self.in_members and tag == "tr" and self.section == "tbody":
            self.row = []
        elif self.in_members and tag in ("td", "th"):
            self.cell = []
        elif tag == "nav" and "pager" in (attributes.get("class") or "").split():
            self.in_pager = True
        elif self.in_pager and tag == "a" and attributes.get("rel") == "next":
            self.page.next_href = attributes.get("href")
        elif self.in_pager and tag == "span":
            self.in_span = True
        elif tag == "p" and "hint" in (attributes.get("class") or "").split() and not self.page.total_text:
            self.hint = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.in_members:
            self.in_members = False
            self.section = ""
        elif self.in_members and tag in ("td", "th") and self.cell is not None:
            content = " ".join("".join(self.cell).split())
            if self.section == "thead":
                self.headers.append(content)
            elif self.row is not None:
                self.row.append(content)
            self.cell = None
        elif self.in_members and tag == "tr" and self.row is not None:
            self.page.rows += 1
            self.page.row_cells.append(len(self.row))
            if self.row:
                self.page.emails.append(self.row[0].split()[0] if self.row[0] else "")
            for content in self.row[3:]:
                self.page.access_cells[content] = self.page.access_cells.get(content, 0) + 1
            self.row = None
        elif tag == "nav":
            self.in_pager = False
        elif tag == "span":
            self.in_span = False
        elif tag == "p" and self.hint is not None:
            text_seen = " ".join("".join(self.hint).split())
            if re.fullmatch(r"[\d,]+ members?", text_seen):
                self.page.total_text = text_seen
            self.hint = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)
        if self.in_pager and self.in_span:
            self.page.pager_text += data
        if self.hint is not None:
            self.hint.append(data)

    def close(self) -> None:
        super().close()
        self.page.server_columns = max(0, len(self.headers) - 3)
        if self.headers[:1] != ["User"]:
            raise BenchError(f"the first table of the Users page is not the members table: headers {self.headers[:5]}")


def read_users_page(html: str) -> UsersPage:
    parser = UsersPageParser()
    parser.feed(html)
    parser.close()
    return parser.page


def console_sign_in(http: httpx.Client) -> None:
    """As a person does: the sign-in form, its CSRF token, email and password posted back."""
    form = http.get("/console/sign-in")
    found = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    if form.status_code != 200 or found is None:
        raise BenchError(f"GET /console/sign-in -> HTTP {form.status_code}, no CSRF token: {form.text[:300]}")
    answer = http.post(
        "/console/sign-in",
        data={"csrf_token": found.group(1), "email": OWNER_EMAIL, "password": PASSWORD},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise BenchError(f"POST /console/sign-in -> HTTP {answer.status_code}: {answer.text[:500]}")
    landing = http.get(USERS_PATH, follow_redirects=False)
    if landing.status_code != 200:
        raise BenchError(f"GET {USERS_PATH} after signing in -> HTTP {landing.status_code}: {landing.text[:300]}")


@dataclass
class PageCheck:
    members: int
    server_columns: int
    rows: int
    page_bytes: int
    access_cells: dict[str, int]
    paginated: bool
    next_href: str | None
    pager_text: str
    total_text: str
    page_2_rows: int | None
    problems: list[str]


def check_page(http: httpx.Client, size: int, servers: int) -> PageCheck:
    """The page shows a column per server and a row per member, up to 50; with more
    members, 50 rows, a link to page 2 and, there, the next 50 members."""
    response = http.get(USERS_PATH)
    if response.status_code != 200:
        raise BenchError(f"GET {USERS_PATH} -> HTTP {response.status_code}: {response.text[:300]}")
    page = read_users_page(response.text)
    problems: list[str] = []
    if page.server_columns != servers:
        problems.append(f"{page.server_columns} server columns, expected {servers}")
    expected_rows = min(size, PAGE_ROWS)
    if page.rows != expected_rows:
        problems.append(f"{page.rows} rows, expected {expected_rows}")
    if any(cells != servers + 3 for cells in page.row_cells):
        problems.append(f"rows of {sorted(set(page.row_cells))} cells, expected {servers + 3}")
    unknown = set(page.access_cells) - set(ACCESS_LABELS)
    if unknown:
        problems.append(f"access cells that are no level: {sorted(unknown)[:3]}")
    if not re.fullmatch(rf"{size:,}|{size}", page.total_text.split(" ", 1)[0] if page.total_text else ""):
        problems.append(f"the page says {page.total_text!r}, expected {size} members")
    paged = size > PAGE_ROWS
    page_2_rows: int | None = None
    if paged:
        pages = -(-size // PAGE_ROWS)
        if page.next_href is None or not page.next_href.endswith(f"{USERS_PATH}?page=2"):
            problems.append(f"no link to page 2 (next: {page.next_href!r})")
        if page.pager_text.strip() != f"Page 1 of {pages}":
            problems.append(f"the pager says {page.pager_text.strip()!r}, expected 'Page 1 of {pages}'")
        if page.next_href is not None:
            second = read_users_page(http.get(page.next_href).text)
            page_2_rows = second.rows
            if second.rows != min(PAGE_ROWS, size - PAGE_ROWS):
                problems.append(f"page 2 has {second.rows} rows")
            if set(second.emails) & set(page.emails):
                problems.append("page 2 repeats members of page 1")
    elif page.next_href is not None:
        problems.append(f"a link to another page with {size} members: {page.next_href}")
    return PageCheck(
        members=size,
        server_columns=page.server_columns,
        rows=page.rows,
        page_bytes=len(response.content),
        access_cells={label: page.access_cells.get(label, 0) for label in ACCESS_LABELS},
        paginated=paged and page.rows == PAGE_ROWS and page.next_href is not None,
        next_href=page.next_href,
        pager_text=page.pager_text.strip(),
        total_text=page.total_text,
        page_2_rows=page_2_rows,
        problems=problems,
    )


# --------------------------------------------------------------------------
# timing


@dataclass
class Sample:
    ttfb: float
    total: float


def time_once(http: httpx.Client) -> Sample:
    """From sending the request to the first byte of the body, and to its last."""
    t0 = time.perf_counter()
    with http.stream("GET", USERS_PATH) as response:
        chunks = response.iter_raw()
        first = next(chunks, b"")
        ttfb = time.perf_counter() - t0
        if response.status_code != 200 or not first:
            raise BenchError(f"GET {USERS_PATH} -> HTTP {response.status_code}")
        for _chunk in chunks:
            pass
    return Sample(ttfb, time.perf_counter() - t0)


@dataclass
class Timing:
    members: int
    requests: int
    ttfb_median_ms: float
    ttfb_p95_ms: float
    ttfb_min_ms: float
    ttfb_max_ms: float
    total_median_ms: float
    #: The server process's CPU time (user and system) per timed request.
    server_cpu_ms: float
    samples_ms: list[float]


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest rank: the smallest value with at least ``fraction`` of the values at or below it."""
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


def summarize(size: int, samples: list[Sample], cpu_ms: float) -> Timing:
    ttfb = sorted(s.ttfb * 1000 for s in samples)
    return Timing(
        members=size,
        requests=len(samples),
        ttfb_median_ms=statistics.median(ttfb),
        ttfb_p95_ms=percentile(ttfb, 0.95),
        ttfb_min_ms=ttfb[0],
        ttfb_max_ms=ttfb[-1],
        total_median_ms=statistics.median(s.total * 1000 for s in samples),
        server_cpu_ms=cpu_ms,
        samples_ms=[s.ttfb * 1000 for s in samples],
    )


def time_rounds(
    clients: dict[int, httpx.Client], pids: dict[int, int], warmup: int, requests: int
) -> dict[int, Timing]:
    """One request to each size's server per round, in turn; warm-up rounds first. Also
    the server's CPU time per timed request, which other load on the machine does not
    inflate as it does wall-clock times."""
    for _ in range(warmup):
        for http in clients.values():
            time_once(http)
    samples: dict[int, list[Sample]] = {size: [] for size in clients}
    cpu_before = {size: cpu_seconds(pid) for size, pid in pids.items()}
    for _ in range(requests):
        for size, http in clients.items():
            samples[size].append(time_once(http))
    cpu_ms = {size: (cpu_seconds(pid) - cpu_before[size]) * 1000 / requests for size, pid in pids.items()}
    return {size: summarize(size, taken, cpu_ms[size]) for size, taken in samples.items()}


# --------------------------------------------------------------------------
# report


def print_table(
    db_kind: str, timings: list[Timing], checks: list[PageCheck], ratio: float, *, servers: int, load: list[float]
) -> None:
    header = (
        f"{'Users page (' + db_kind + ')':<24}{'rows':>6}{'KB':>7}{'TTFB median ms':>16}{'TTFB p95 ms':>13}"
        f"{'total median ms':>17}{'server CPU ms':>15}"
    )
    print(header)
    print("-" * len(header))
    for timing, check in zip(timings, checks, strict=True):
        print(
            f"{f'{timing.members:,} members':<24}{check.rows:>6}{check.page_bytes / 1024:>7.0f}"
            f"{timing.ttfb_median_ms:>16.2f}{timing.ttfb_p95_ms:>13.2f}{timing.total_median_ms:>17.2f}"
            f"{timing.server_cpu_ms:>15.2f}"
        )
    print(
        f"{servers} servers; GET {USERS_PATH} signed in as the Owner, {timings[0].requests} requests per size "
        "taken in turns after a warm-up;\nTTFB: until the first byte of the body; server CPU: the server process's "
        f"CPU time per request; load average before and after: {load[0]:.1f}, {load[1]:.1f} ({os.cpu_count()} CPUs)."
    )
    for check in checks:
        cells = ", ".join(f"{label} {count:,}" for label, count in check.access_cells.items())
        print(f"  {check.members:,} members: {check.server_columns} server columns; access cells: {cells}")
    print()
    smallest, largest = timings[0], timings[-1]
    verdict = "PASS" if ratio < MAX_RATIO else "FAIL"
    print(
        f"TTFB median at {largest.members:,} / at {smallest.members:,} members = {ratio:.2f} "
        f"(target < {MAX_RATIO}): {verdict}"
    )
    print(
        f"server CPU per request at {largest.members:,} / at {smallest.members:,} members = "
        f"{largest.server_cpu_ms / smallest.server_cpu_ms:.2f} (information)"
    )
    big = checks[-1]
    paged = "PASS" if big.paginated and not big.problems else "FAIL"
    print(
        f"{big.members:,}-member page paginated: {paged} ({big.rows} rows, '{big.pager_text}', "
        f"next: {big.next_href}, page 2: {big.page_2_rows} rows)"
    )
    for check in checks:
        for problem in check.problems:
            print(f"  problem at {check.members:,} members: {problem}")


def run(args: argparse.Namespace) -> int:
    sizes = parse_sizes(args.sizes)
    if len(sizes) < 2 or sizes[0] < 1:
        raise BenchError("--sizes wants at least two sizes of 1 or more members")
    if args.servers < 1 or args.requests < 1 or args.warmup < 0:
        raise BenchError("--servers and --requests must be 1 or more, --warmup 0 or more")
    cli = find_cli()
    db_kind = database_kind(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="postwarden-console-"))
    started = time.perf_counter()
    seeded: dict[int, Seeded] = {}
    checks: dict[int, PageCheck] = {}
    try:
        with contextlib.ExitStack() as stack:
            servers: dict[int, ServeProcess] = {}
            for size in sizes:
                url = stack.enter_context(fresh_database(args.database_url, "console", size, tmp))
                data_dir = tmp / f"data-{size}"
                data_dir.mkdir()
                secret_key = secrets.token_hex(32)
                runtime = Runtime.start(make_settings(url, data_dir, secret_key))
                try:
                    seeded[size] = seed(runtime, size, args.servers)
                finally:
                    runtime.db.dispose()
                log(f"{size:,} members, {args.servers} servers: seeded in {seeded[size].seconds:.1f}s")
                # Each size's server starts up while the next size is seeded, and stops
                # before its database is dropped.
                server = start_postwarden(cli, child_environment(url, data_dir, secret_key), tmp / f"serve-{size}.log")
                stack.callback(server.proc.stop, 30)
                servers[size] = server
            clients: dict[int, httpx.Client] = {}
            for size, server in servers.items():
                wait_ready(server.proc, server.base_url)
                http = stack.enter_context(
                    httpx.Client(base_url=server.base_url, timeout=60, headers={"Accept-Encoding": "identity"})
                )
                console_sign_in(http)
                checks[size] = check_page(http, size, args.servers)
                clients[size] = http
                log(f"{size:,} members: signed in as the Owner; page of {checks[size].rows} rows")
            pids = {size: server.proc.popen.pid for size, server in servers.items()}
            load_before = os.getloadavg()
            by_size = time_rounds(clients, pids, args.warmup, args.requests)
            load_after = os.getloadavg()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started

    timings = [by_size[size] for size in sizes]
    page_checks = [checks[size] for size in sizes]
    ratio = timings[-1].ttfb_median_ms / timings[0].ttfb_median_ms
    print()
    load = [load_before[0], load_after[0]]
    print_table(db_kind, timings, page_checks, ratio, servers=args.servers, load=load)
    passed = {
        "ttfb_ratio": ratio < MAX_RATIO,
        "paginated": page_checks[-1].paginated or page_checks[-1].members <= PAGE_ROWS,
        "pages_read_right": not any(check.problems for check in page_checks),
    }
    result = {
        "generated_at": generated_at(),
        "machine": machine(sqlite=sqlite3.sqlite_version, load_average_1min_before_after=load),
        "versions": versions(["postwarden", "uvicorn", "starlette", "jinja2", "sqlalchemy", "httpx", "psycopg"]),
        "settings": {
            "database": db_kind,
            "sizes": sizes,
            "servers": args.servers,
            "requests": args.requests,
            "warmup": args.warmup,
            "path": USERS_PATH,
        },
        "seconds": elapsed,
        "runs": [
            {
                "members": size,
                "seeded": asdict(seeded[size]),
                "page": asdict(checks[size]),
                "timing": asdict(by_size[size]),
            }
            for size in sizes
        ],
        "ttfb_median_ratio_largest_over_smallest": ratio,
        "server_cpu_ratio_largest_over_smallest": timings[-1].server_cpu_ms / timings[0].server_cpu_ms,
        "goal_max_ratio": MAX_RATIO,
        "pass": passed,
    }
    write_results(args.output, rounded(result), seconds=elapsed)
    if args.check and not all(passed.values()):
        print("CHECK FAILED: " + ", ".join(name for name, ok in passed.items() if not ok))
        return 1
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="time to first byte of the console's Users page by account size")
    add_sizes(p, DEFAULT_SIZES, "member counts, the Owner included")
    p.add_argument("--servers", type=int, default=DEFAULT_SERVERS, help=f"servers in the account ({DEFAULT_SERVERS})")
    p.add_argument("--requests", type=int, default=30, help="timed requests per size (30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed requests per size first (5)")
    add_database_url(p)
    add_output(p, "console")
    p.add_argument("--check", action="store_true", help="exit 1 if the ratio or the paging check fails")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
