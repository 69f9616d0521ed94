#!/usr/bin/env python3
"""Audit log export and chain verification at 10,000 and 1,000,000 events: time and peak memory.

Run with the project's interpreter (``make bench-audit`` does this)::

    .venv/bin/python bench/audit.py [--sizes 10000,1000000] [--database-url postgresql://...]
        [--output bench/results/audit.json] [--check]

For each size N it:

1. makes a fresh database: a SQLite file in a temp dir, or with ``--database-url`` a
   PostgreSQL schema of its own (``bench_audit_<hex>_<size>``), dropped afterwards; migrates
   it and creates one account through ``AccountService.create_account`` (which records the
   account's first events and gives an account token);
2. appends N events to that account's hash chain, as ``audit.record`` would have: varied
   actions, actors (members signed in, personal, account and SCIM tokens, the command
   line), targets, ``changes`` with before and after, IP addresses, user agents and request
   ids, ``occurred_at`` spread in order over the last year; each event's ``chain_hash`` is
   ``event_hash`` under the installation's audit key, linked to the one before it from the
   chain's head on. They go in with Core ``INSERT`` executemany, ``--batch`` rows a
   transaction, the head row (``audit_chains``) moved in the same transaction. Then the
   database is settled as a long-running one would be (SQLite: the write-ahead log
   checkpointed and emptied; PostgreSQL: ``VACUUM ANALYZE``);
3. starts ``postwarden serve`` (the CLI beside this interpreter) as a process of its own on
   a loopback port and waits for ``/readyz``; reads its ``VmRSS`` and ``VmHWM`` from
   ``/proc/<pid>/status``, resets its ``VmHWM`` to its current RSS (``/proc/<pid>/clear_refs``),
   streams ``GET /audit-events/export?format=jsonl`` with the account token (counting bytes
   and lines, never holding the body), reads ``VmHWM`` again (the export's peak) and stops
   the server; then the same with a new server for ``format=csv``. The line count must be
   the account's event count (plus the header for CSV) and the last line the chain's head;
4. runs ``postwarden audit export --account ID --output FILE`` (JSON Lines) and
   ``postwarden audit verify --account ID`` as processes of their own, through the CLI's
   entry point with a wrapper that reads ``VmHWM`` once the CLI is imported, resets it, and
   reads it again at exit (the command's peak). Export must write every event, ending with
   the head; verify must exit 0 and report the chain intact over every event.

Why the resets: a process's lifetime peak includes its start-up (imports, and a server's
first requests), which can sit above what a streaming export needs and would hide growth
smaller than that. Both peaks are shown (export/command and life) and the target is on the
first. ``ru_maxrss`` from ``os.wait4`` is kept in the JSON as a cross-check (after the
reset it should equal the export's or command's peak), not compared: ``execve`` folds the
RSS of the image it replaces into it, so a child's figure is at least this process's RSS
when it forked (its peak, had it vforked), recorded beside it as ``bench_rss_at_spawn_mb``.

It prints the figures for each size and the ratios of the largest size to the smallest.
The target: an export's peak RSS at the largest size is under 1.5x its peak at the
smallest (HTTP JSON Lines, HTTP CSV and CLI export, each PASS/FAIL); verify's ratio is
shown for information. It writes ``bench/results/audit.json``; ``--check`` makes the exit
code 1 when an export target fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import httpx
from _common import (
    BenchError,
    ServeProcess,
    add_database_url,
    add_output,
    add_sizes,
    child_environment,
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
    spawn,
    start_postwarden,
    tail,
    versions,
    wait_ready,
    write_results,
)
from sqlalchemy import func, insert, select, text, update

from postwarden.accounts.service import AccountService
from postwarden.audit import AuditAction, AuditChain, AuditEvent, event_hash
from postwarden.identity import Actor, Credential, Via
from postwarden.runtime import Runtime
from postwarden.tokens.secrets import Keyring

DEFAULT_SIZES = (10_000, 1_000_000)
MAX_RATIO = 1.5
BATCH = 5_000
MB = 1024 * 1024
EVENTS = AuditEvent.__table__
#: The export kinds whose peak RSS ratio is the target.
EXPORTS: Final = ("http_jsonl", "http_csv", "cli_export")


# --------------------------------------------------------------------------
# databases


def database_bytes(runtime: Runtime) -> int:
    """The database file (SQLite), or the audit table with its indexes (PostgreSQL)."""
    with runtime.db.engine.connect() as connection:
        if runtime.db.is_sqlite:
            pages = connection.exec_driver_sql("PRAGMA page_count").scalar_one()
            page_size = connection.exec_driver_sql("PRAGMA page_size").scalar_one()
            return int(pages) * int(page_size)
        return int(connection.execute(text("SELECT pg_total_relation_size('audit_events')")).scalar_one())


# --------------------------------------------------------------------------
# the events


@dataclass(frozen=True)
class EventActor:
    credential: str
    label: str
    user_id: int | None
    token_id: int | None
    via: str


GIVEN_NAMES: Final = ("amelie", "björn", "chen", "dara", "émile", "farah", "gus", "hana", "ivan", "joão", "kofi")
USER_AGENTS: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Postmark.NET 5.2.0",
    "postmark-python/0.4.0",
    "Terraform/1.8.5 terraform-provider-postmark/0.9.1",
    "Okta SCIM Client 1.0.0",
    "curl/8.5.0",
)
COLORS: Final = ("blue", "green", "purple", "red", "yellow", "grey", "orange", "turquoise")
ROLES: Final = ("Member", "Technical", "Admin", "Billing")
#: Where each resource's events point: membership events are about a user, and so on.
TARGET_TYPES: Final = {
    "membership": "user",
    "server_access": "user",
    "billing": "account",
    "credential": "token",
    "user": "user",
}


class EventFactory:
    """Varied, plausible events of one account, from a seeded generator (the same every run)."""

    def __init__(self, account_id: int, seed: int = 20_240_601) -> None:
        self.account_id = account_id
        self.rng = random.Random(seed)
        self.members = [(10_000 + k, f"{GIVEN_NAMES[k % len(GIVEN_NAMES)]}.{k}@bench.example") for k in range(240)]
        actors: list[EventActor] = []
        for user_id, email in self.members:
            actors.append(EventActor(Credential.SESSION.value, email, user_id, None, Via.CONSOLE.value))
        for k, (user_id, email) in enumerate(self.members[:40]):
            actors.append(
                EventActor(
                    Credential.PERSONAL_TOKEN.value,
                    f"{email} (personal token 'deploy')",
                    user_id,
                    500 + k,
                    Via.API.value,
                )
            )
        actors += [
            EventActor(Credential.ACCOUNT_TOKEN.value, "account token 'Terraform'", None, 7, Via.API.value),
            EventActor(Credential.ACCOUNT_TOKEN.value, "account token 'CI'", None, 8, Via.API.value),
            EventActor(Credential.SCIM_TOKEN.value, "SCIM token 'Okta'", None, 3, Via.SCIM.value),
            EventActor(Credential.SYSTEM.value, "cli: tokens show", None, None, Via.CLI.value),
            EventActor(Credential.SYSTEM.value, "worker: audit retention", None, None, Via.WORKER.value),
        ]
        self.actors = actors
        self.actions = [action.value for action in AuditAction]
        self.ips = [f"203.0.113.{k}" for k in range(1, 255)] + [f"198.51.100.{k}" for k in range(1, 255)]
        self.ips += [f"2001:db8:{k:x}::{k * 7:x}" for k in range(1, 64)]

    def target(self, action: str) -> tuple[str, str, str]:
        resource = action.split(".", 1)[0]
        target_type = TARGET_TYPES.get(resource, resource)
        number = self.rng.randint(1, 50_000)
        if target_type == "user":
            user_id, email = self.rng.choice(self.members)
            return target_type, str(user_id), email
        labels = {
            "account": "Bench",
            "server": f"Transactional {number}",
            "domain": f"mail{number}.example.com",
            "template": f"welcome-email-{number}",
            "webhook": f"https://hooks{number % 97}.example.com/postmark/{number}",
            "sender": f"billing+{number}@example.com",
            "suppression": f"bounced{number}@example.net",
        }
        return target_type, str(number), labels.get(target_type, f"{target_type} {number}")

    def changes(self, action: str) -> dict[str, Any]:
        rng = self.rng
        created = action.endswith((".created", ".accepted"))
        pool: list[tuple[str, Any, Any]] = [
            ("name", f"Stream {rng.randint(1, 999)}", f"Stream {rng.randint(1, 999)}"),
            ("color", rng.choice(COLORS), rng.choice(COLORS)),
            ("role", rng.choice(ROLES), rng.choice(ROLES)),
            ("track_opens", False, True),
            ("smtp_api_activated", True, False),
            ("email", rng.choice(self.members)[1], rng.choice(self.members)[1]),
            ("server_ids", sorted(rng.sample(range(1, 400), 2)), sorted(rng.sample(range(1, 400), 3))),
            ("description", "", f"Notifications for team {rng.randint(1, 60)} — ünïcode"),
        ]
        chosen = rng.sample(pool, rng.randint(0, 3))
        return {name: {"before": None if created else before, "after": after} for name, before, after in chosen}

    def fields(self, seq: int, occurred_at: datetime) -> dict[str, Any]:
        rng = self.rng
        actor = rng.choice(self.actors)
        action = rng.choice(self.actions)
        target_type, target_id, target_label = self.target(action)
        from_cli = actor.via in {Via.CLI.value, Via.WORKER.value}
        return {
            "chain": self.account_id,
            "seq": seq,
            "occurred_at": occurred_at,
            "account_id": self.account_id,
            "actor_credential": actor.credential,
            "actor_label": actor.label,
            "actor_user_id": actor.user_id,
            "actor_token_id": actor.token_id,
            "via": actor.via,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "target_label": target_label,
            "changes": self.changes(action),
            "request_id": "" if from_cli else f"{rng.getrandbits(128):032x}",
            "ip": "" if from_cli else rng.choice(self.ips),
            "user_agent": "" if from_cli else rng.choice(USER_AGENTS),
        }


@dataclass(frozen=True)
class ChainState:
    """The account's chain as it stands: its event count and head."""

    events: int
    head_seq: int
    head_hash: str


def chain_state(runtime: Runtime, account_id: int) -> ChainState:
    with runtime.db.engine.connect() as connection:
        events = connection.execute(select(func.count()).where(EVENTS.c.chain == account_id)).scalar_one()
        seq, head_hash = connection.execute(
            select(AuditChain.seq, AuditChain.head_hash).where(AuditChain.chain == account_id)
        ).one()
    return ChainState(int(events), int(seq), str(head_hash))


@dataclass(frozen=True)
class Written:
    account_id: int
    account_token: str
    #: Events the account's creation recorded, before the bench's.
    events_before: int
    written: int
    seconds: float
    settle_seconds: float
    database_mb: float

    @property
    def per_second(self) -> float:
        return self.written / self.seconds


def write_events(runtime: Runtime, size: int, batch: int) -> Written:
    """One account, and ``size`` events appended to its chain in batches."""
    with runtime.db.session_scope() as session:
        created = AccountService(session, Actor.system("bench"), runtime).create_account(
            "Bench", owner_email="owner@bench.example"
        )
    account_id = created.account.id
    key = runtime.keyring.audit_key
    before = chain_state(runtime, account_id)
    if before.events != before.head_seq:
        raise BenchError(f"the new account has {before.events} events but its chain's head is at {before.head_seq}")
    seq, prev_hash = before.head_seq, before.head_hash
    factory = EventFactory(account_id)
    span_us = 365 * 24 * 3600 * 1_000_000
    start = datetime.now(UTC) - timedelta(microseconds=span_us)

    t0 = time.perf_counter()
    for first in range(0, size, batch):
        rows: list[dict[str, Any]] = []
        for i in range(first, min(size, first + batch)):
            seq += 1
            fields = factory.fields(seq, start + timedelta(microseconds=i * span_us // size))
            chain_hash = event_hash(key, prev_hash, fields)
            rows.append({**fields, "prev_hash": prev_hash, "chain_hash": chain_hash})
            prev_hash = chain_hash
        # The head moves with its events, so the chain holds after every batch.
        with runtime.db.engine.begin() as connection:
            connection.execute(insert(AuditEvent), rows)
            connection.execute(
                update(AuditChain).where(AuditChain.chain == account_id).values(seq=seq, head_hash=prev_hash)
            )
    seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    settle(runtime)
    settle_seconds = time.perf_counter() - t1
    after = chain_state(runtime, account_id)
    if (after.events, after.head_seq, after.head_hash) != (before.events + size, seq, prev_hash):
        raise BenchError(f"after writing, the chain stands at {after}; expected {before.events + size} events")
    return Written(
        account_id=account_id,
        account_token=created.account_token,
        events_before=before.events,
        written=size,
        seconds=seconds,
        settle_seconds=settle_seconds,
        database_mb=database_bytes(runtime) / MB,
    )


# --------------------------------------------------------------------------
# processes


#: Runs the ``postwarden`` command line as its console script does, and reports the peak
#: RSS of the command itself: the high-water mark is read once the CLI is imported, then
#: reset (``/proc/self/clear_refs``), and read again at exit.
CLI_WRAPPER: Final = """
import sys

from postwarden.surfaces.cli.main import cli


def hwm_kib():
    with open("/proc/self/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


startup = hwm_kib()
with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
    fh.write("5")
try:
    cli.main(args=sys.argv[1:], prog_name="postwarden")
finally:
    print(f"[bench-peak] startup={startup} command={hwm_kib()}", file=sys.stderr, flush=True)
"""
_PEAK_LINE = re.compile(r"^\[bench-peak\] startup=(\d+) command=(\d+)$", re.MULTILINE)


def reap(popen: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
    """Waits for the child; its exit code and ``ru_maxrss`` in MB (KiB on Linux).

    A cross-check only (see the module docstring): a child's ``ru_maxrss`` is at least this
    process's RSS when it forked. The figures compared come from ``/proc/<pid>/status``
    (``VmHWM``), which counts the child's own memory only.
    """
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(popen.pid, os.WNOHANG)
        if pid == popen.pid:
            popen.returncode = os.waitstatus_to_exitcode(status)
            return popen.returncode, usage.ru_maxrss / 1024
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            os.wait4(popen.pid, 0)
            popen.returncode = -signal.SIGKILL
            raise BenchError(f"{popen.args!r} did not end within {timeout:.0f}s")
        time.sleep(0.01)


def memory_mb(pid: int | str) -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` (the peak RSS) of a running process, in MB."""
    figures: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in {"VmRSS", "VmHWM"}:
                figures[name] = int(value.split()[0]) / 1024
    return figures


def reset_peak(pid: int) -> None:
    """Resets the process's ``VmHWM`` to its current RSS (Linux 4.0 and later)."""
    with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")


@contextlib.contextmanager
def postwarden_server(cli: Path, env: dict[str, str], log_path: Path) -> Iterator[ServeProcess]:
    """A server of its own, forked (see ``spawn``) and reaped for its ``ru_maxrss`` (``reap``)."""
    server = start_postwarden(cli, env, log_path, fork=True)
    popen = server.proc.popen
    try:
        wait_ready(server.proc, server.base_url)
        yield server
    finally:
        if popen.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGTERM)
            reap(popen, timeout=30)


# --------------------------------------------------------------------------
# the measurements


@dataclass
class HttpExport:
    format: str
    events: int
    seconds: float
    first_byte_seconds: float
    bytes: int
    lines: int
    #: The server's RSS once ready, before the request.
    rss_before_mb: float
    #: Its peak RSS from its start until ready: imports, the migrations check, the app built.
    startup_peak_mb: float
    #: Its peak RSS while it served the export (the high-water mark reset just before).
    peak_mb: float
    #: The peak over the server's life: max(startup_peak_mb, peak_mb).
    process_peak_mb: float
    ru_maxrss_mb: float
    bench_rss_at_spawn_mb: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def check_last_line(fmt: str, last_line: bytes, state: ChainState) -> None:
    if fmt == "jsonl":
        document = json.loads(last_line)
        ok = document.get("Sequence") == state.head_seq and document.get("Hash") == state.head_hash
    else:
        ok = last_line.rstrip(b"\r").decode().rsplit(",", 1)[-1] == state.head_hash
    if not ok:
        raise BenchError(f"the {fmt} export does not end with the chain's head: {last_line[:300]!r}")


def http_export(
    runtime: Runtime, cli: Path, env: dict[str, str], written: Written, tmp: Path, *, fmt: str
) -> HttpExport:
    """One export through a server of its own. The account token's first use from the
    loopback address is an event of the chain (``credential.used_from_new_ip``), recorded
    before the stream starts: the export is checked against the chain as it stands after."""
    log_path = tmp / f"serve-{fmt}-{written.written}.log"
    headers = {"X-Postmark-Account-Token": written.account_token, "Accept-Encoding": "identity"}
    bench_rss = memory_mb("self")["VmRSS"]
    with (
        postwarden_server(cli, env, log_path) as server,
        httpx.Client(base_url=server.base_url, timeout=httpx.Timeout(30.0, read=600.0)) as http,
    ):
        pid = server.proc.popen.pid
        startup = memory_mb(pid)
        reset_peak(pid)
        before = memory_mb(pid)
        nbytes = lines = 0
        first_byte: float | None = None
        last = b""
        t0 = time.perf_counter()
        with http.stream("GET", "/audit-events/export", params={"format": fmt}, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise BenchError(f"export {fmt} -> HTTP {response.status_code}: {response.text[:500]}")
            for chunk in response.iter_bytes():
                if first_byte is None:
                    first_byte = time.perf_counter() - t0
                nbytes += len(chunk)
                lines += chunk.count(b"\n")
                last = (last + chunk)[-8192:]
        seconds = time.perf_counter() - t0
        after = memory_mb(pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        _code, ru_maxrss = reap(server.proc.popen, timeout=30)
    state = chain_state(runtime, written.account_id)
    expected = state.events + (fmt == "csv")
    if lines != expected:
        raise BenchError(f"the {fmt} export has {lines} lines, expected {expected}")
    check_last_line(fmt, last.rstrip(b"\n").rsplit(b"\n", 1)[-1], state)
    return HttpExport(
        format=fmt,
        events=state.events,
        seconds=seconds,
        first_byte_seconds=first_byte or seconds,
        bytes=nbytes,
        lines=lines,
        rss_before_mb=before["VmRSS"],
        startup_peak_mb=startup["VmHWM"],
        peak_mb=after["VmHWM"],
        process_peak_mb=max(startup["VmHWM"], after["VmHWM"]),
        ru_maxrss_mb=ru_maxrss,
        bench_rss_at_spawn_mb=bench_rss,
    )


@dataclass
class CliRun:
    command: str
    events: int
    seconds: float
    #: Peak RSS of the command itself, from once the CLI was imported to its exit.
    peak_mb: float
    #: Peak RSS while the CLI was imported.
    startup_peak_mb: float
    #: The peak over the process's life: max(startup_peak_mb, peak_mb).
    process_peak_mb: float
    ru_maxrss_mb: float
    bench_rss_at_spawn_mb: float
    output: str


def cli_run(env: dict[str, str], args: list[str], log_path: Path, events: int) -> CliRun:
    bench_rss = memory_mb("self")["VmRSS"]
    t0 = time.perf_counter()
    popen = spawn([sys.executable, "-c", CLI_WRAPPER, *args], env, log_path, fork=True)
    code, ru_maxrss = reap(popen, timeout=3600)
    seconds = time.perf_counter() - t0
    output = log_path.read_text(errors="replace").strip()
    if code != 0:
        raise BenchError(f"postwarden {' '.join(args)} exited with {code}:\n{tail(log_path)}")
    peaks = _PEAK_LINE.search(output)
    if peaks is None:
        raise BenchError(f"postwarden {' '.join(args)} did not report its peak RSS:\n{tail(log_path)}")
    startup, command = int(peaks[1]) / 1024, int(peaks[2]) / 1024
    return CliRun(
        command="postwarden " + " ".join(args),
        events=events,
        seconds=seconds,
        peak_mb=command,
        startup_peak_mb=startup,
        process_peak_mb=max(startup, command),
        ru_maxrss_mb=ru_maxrss,
        bench_rss_at_spawn_mb=bench_rss,
        output=_PEAK_LINE.sub("", output).strip(),
    )


def cli_export(runtime: Runtime, env: dict[str, str], written: Written, tmp: Path) -> tuple[CliRun, int]:
    state = chain_state(runtime, written.account_id)
    out = tmp / f"export-{written.written}.jsonl"
    try:
        run = cli_run(
            env,
            ["audit", "export", "--account", str(written.account_id), "--output", str(out)],
            tmp / f"cli-export-{written.written}.log",
            state.events,
        )
        nbytes = out.stat().st_size
        with open(out, "rb") as fh:
            fh.seek(max(0, nbytes - 8192))
            last_line = fh.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    finally:
        out.unlink(missing_ok=True)
    if f"{state.events} events written" not in run.output:
        raise BenchError(f"audit export wrote something else than {state.events} events: {run.output[-300:]}")
    check_last_line("jsonl", last_line, state)
    return run, nbytes


def cli_verify(runtime: Runtime, env: dict[str, str], written: Written, tmp: Path) -> CliRun:
    state = chain_state(runtime, written.account_id)
    run = cli_run(
        env,
        ["audit", "verify", "--account", str(written.account_id)],
        tmp / f"verify-{written.written}.log",
        state.events,
    )
    expected = re.compile(
        rf"account {written.account_id}: {state.events} events, chain intact \(head {state.head_seq}\)"
    )
    if not expected.search(run.output):
        raise BenchError(f"audit verify did not report the chain intact over {state.events} events: {run.output}")
    return run


# --------------------------------------------------------------------------
# one size


def bench_size(args: argparse.Namespace, cli: Path, size: int, tmp: Path) -> dict[str, Any]:
    data_dir = tmp / f"data-{size}"
    data_dir.mkdir()
    secret_key = secrets.token_hex(32)
    key = Keyring(secret_key.encode()).audit_key
    with fresh_database(args.database_url, "audit", size, tmp, audit_key=key) as url:
        runtime = Runtime.start(make_settings(url, data_dir, secret_key))
        try:
            written = write_events(runtime, size, args.batch)
            log(
                f"{size:,} events: written in {written.seconds:.1f}s ({written.per_second:,.0f}/s), "
                f"settled in {written.settle_seconds:.1f}s; database {written.database_mb:.0f} MB"
            )
            env = child_environment(url, data_dir, secret_key)
            exports: dict[str, HttpExport] = {}
            for fmt in ("jsonl", "csv"):
                result = http_export(runtime, cli, env, written, tmp, fmt=fmt)
                exports[fmt] = result
                log(
                    f"{size:,} events: HTTP {fmt} export {result.seconds:.1f}s, {result.bytes / MB:.0f} MB "
                    f"({result.mb_per_s:.1f} MB/s), server RSS {result.rss_before_mb:.0f} MB, "
                    f"peak {result.peak_mb:.0f} MB"
                )
            export_run, export_bytes = cli_export(runtime, env, written, tmp)
            log(f"{size:,} events: CLI export {export_run.seconds:.1f}s, peak {export_run.peak_mb:.0f} MB")
            verify_run = cli_verify(runtime, env, written, tmp)
            log(f"{size:,} events: verify {verify_run.seconds:.1f}s, peak {verify_run.peak_mb:.0f} MB")
        finally:
            runtime.db.dispose()

    def http_figures(result: HttpExport) -> dict[str, Any]:
        return {**asdict(result), "mb_per_s": result.mb_per_s, "events_per_s": result.events_per_s}

    def cli_figures(result: CliRun, **extra: Any) -> dict[str, Any]:
        return {**asdict(result), "events_per_s": result.events / result.seconds, **extra}

    return {
        "size": size,
        "events_before": written.events_before,
        "write": {
            "events": written.written,
            "seconds": written.seconds,
            "events_per_s": written.per_second,
            "settle_seconds": written.settle_seconds,
            "database_mb": written.database_mb,
        },
        "http_jsonl": http_figures(exports["jsonl"]),
        "http_csv": http_figures(exports["csv"]),
        "cli_export": cli_figures(export_run, bytes=export_bytes),
        "verify": cli_figures(verify_run),
    }


# --------------------------------------------------------------------------
# report


def ratios(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Largest size over smallest: each export's and verify's own peak (``kind``) and the
    peak over its process's life (``kind/process``)."""
    smallest, largest = runs[0], runs[-1]
    out: dict[str, float] = {}
    for kind in (*EXPORTS, "verify"):
        out[kind] = largest[kind]["peak_mb"] / smallest[kind]["peak_mb"]
        out[f"{kind}/process"] = largest[kind]["process_peak_mb"] / smallest[kind]["process_peak_mb"]
    return out


ROWS: Final = (
    # label, kind, figure, format, ratio key
    ("events written/s", "write", "events_per_s", "{:,.0f}", None),
    ("database MB", "write", "database_mb", "{:,.0f}", None),
    ("HTTP JSONL export s", "http_jsonl", "seconds", "{:,.2f}", None),
    ("  MB/s", "http_jsonl", "mb_per_s", "{:,.1f}", None),
    ("  events/s", "http_jsonl", "events_per_s", "{:,.0f}", None),
    ("  server RSS before MB", "http_jsonl", "rss_before_mb", "{:,.1f}", None),
    ("  server peak, export MB", "http_jsonl", "peak_mb", "{:,.1f}", "http_jsonl"),
    ("  server peak, life MB", "http_jsonl", "process_peak_mb", "{:,.1f}", "http_jsonl/process"),
    ("HTTP CSV export s", "http_csv", "seconds", "{:,.2f}", None),
    ("  MB/s", "http_csv", "mb_per_s", "{:,.1f}", None),
    ("  server RSS before MB", "http_csv", "rss_before_mb", "{:,.1f}", None),
    ("  server peak, export MB", "http_csv", "peak_mb", "{:,.1f}", "http_csv"),
    ("  server peak, life MB", "http_csv", "process_peak_mb", "{:,.1f}", "http_csv/process"),
    ("CLI export s", "cli_export", "seconds", "{:,.2f}", None),
    ("  events/s", "cli_export", "events_per_s", "{:,.0f}", None),
    ("  peak, command MB", "cli_export", "peak_mb", "{:,.1f}", "cli_export"),
    ("  peak, life MB", "cli_export", "process_peak_mb", "{:,.1f}", "cli_export/process"),
    ("verify s", "verify", "seconds", "{:,.2f}", None),
    ("  events/s", "verify", "events_per_s", "{:,.0f}", None),
    ("  peak, command MB", "verify", "peak_mb", "{:,.1f}", "verify"),
    ("  peak, life MB", "verify", "process_peak_mb", "{:,.1f}", "verify/process"),
)
LABELS: Final = {
    "http_jsonl": "HTTP JSONL export",
    "http_csv": "HTTP CSV export",
    "cli_export": "CLI export",
    "verify": "CLI verify",
}


def print_table(runs: list[dict[str, Any]], ratio: dict[str, float], db_kind: str) -> None:
    columns = [f"{run['size']:,} events" for run in runs]
    header = f"{'figure (' + db_kind + ')':<26}" + "".join(f"{column:>18}" for column in columns) + f"{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for label, kind, figure, form, ratio_of in ROWS:
        cells = "".join(f"{form.format(run[kind][figure]):>18}" for run in runs)
        print(f"{label:<26}{cells}{'' if ratio_of is None else f'{ratio[ratio_of]:>8.2f}'}")
    print(
        "sizes: events written; the account's own events (creation, the token's first use) come on top.\n"
        "peak, export / command: the process's peak RSS (VmHWM) over the export or command alone, reset once\n"
        "  the server was ready or the CLI imported; peak, life: over the whole process, start-up included.\n"
        "ratio: largest size / smallest. One fresh server per HTTP export."
    )
    print()
    smallest, largest = runs[0]["size"], runs[-1]["size"]
    for kind in EXPORTS:
        verdict = "PASS" if ratio[kind] < MAX_RATIO else "FAIL"
        print(
            f"{LABELS[kind]} peak RSS at {largest:,} / at {smallest:,} events = {ratio[kind]:.2f} "
            f"(target < {MAX_RATIO}): {verdict}"
        )
    print(f"{LABELS['verify']} peak RSS at {largest:,} / at {smallest:,} events = {ratio['verify']:.2f} (information)")


def memory_total_mb() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo", encoding="ascii") as fh:
        return int(fh.readline().split()[1]) / 1024
    return None


def run(args: argparse.Namespace) -> int:
    sizes = parse_sizes(args.sizes)
    if len(sizes) < 2 or sizes[0] < 1:
        raise BenchError("--sizes wants at least two sizes of 1 or more events")
    if args.batch < 1:
        raise BenchError("--batch must be 1 or more")
    if not Path("/proc/self/status").exists():
        raise BenchError("this bench reads peak RSS from /proc: it runs on Linux")
    cli = find_cli()
    db_kind = database_kind(args.database_url)
    tmp = Path(tempfile.mkdtemp(prefix="postwarden-audit-"))
    started = time.perf_counter()
    try:
        log(f"work dir {tmp}; database {db_kind}")
        runs = [bench_size(args, cli, size, tmp) for size in sizes]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started

    ratio = ratios(runs)
    print()
    print_table(runs, ratio, db_kind)
    passed = {kind: ratio[kind] < MAX_RATIO for kind in EXPORTS}

    result = {
        "generated_at": generated_at(),
        "machine": machine(memory_mb=memory_total_mb(), sqlite=sqlite3.sqlite_version),
        "versions": versions(["postwarden", "uvicorn", "starlette", "fastapi", "sqlalchemy", "httpx", "psycopg"]),
        "settings": {"database": db_kind, "sizes": sizes, "batch": args.batch},
        "seconds": elapsed,
        "runs": runs,
        "peak_rss_ratio_largest_over_smallest": ratio,
        "goal_max_ratio": MAX_RATIO,
        "pass": passed,
    }
    write_results(args.output, rounded(result), seconds=elapsed)

    if args.check and not all(passed.values()):
        print(f"CHECK FAILED: an export's peak RSS ratio is {MAX_RATIO} or more")
        return 1
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="audit log export and verification: time and peak RSS by log size")
    add_sizes(p, DEFAULT_SIZES, "event counts")
    p.add_argument("--batch", type=int, default=BATCH, help=f"events inserted per transaction ({BATCH})")
    add_database_url(p)
    add_output(p, "audit")
    p.add_argument("--check", action="store_true", help=f"exit 1 if an export's peak RSS ratio is {MAX_RATIO} or more")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_main(run, parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
