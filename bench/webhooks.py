#!/usr/bin/env python3
"""Webhook deliveries per second: postwarden's worker against a bare HTTP client loop and
``wrk``, all posting to the same local receiver.

Run with the project's interpreter (``make bench-webhooks`` does this)::

    .venv/bin/python bench/webhooks.py [--events 10000] [--database-url postgresql://...]
        [--worker-concurrency 8] [--loop-concurrency 1,2,4,8,16,32] [--check]

What it does:

1. starts the receiver, a process of its own (asyncio with uvloop and httptools: it answers
   ``200`` with an empty body to every POST, on keep-alive connections);
2. makes a fresh database (a SQLite file in a temp dir, or ``--database-url``, where it
   leaves a ``Bench-<hex>`` account behind), migrates it, and creates an account, a server
   and a webhook on the receiver's URL with Basic auth and a custom header, through the
   services;
3. starts ``postwarden worker`` and queues ``--events`` test events (the six record types in
   turn) in one transaction through ``WebhookDeliveryService.send_test``, the code behind
   ``POST /webhooks/{id}/test``. Through the service rather than the API: the HTTP API's own
   throughput is ``bench/api_throughput.py``'s figure, and 10k requests would measure it,
   not delivery. The clock starts when those rows are written, as the transaction commits,
   and stops at the last delivery logged (the latest ``CompletedAt``), so it includes the
   worker noticing the work;
4. checks the log: every delivery ``Delivered`` with exactly one attempt, answered 200;
5. replays the very bodies postwarden posted (with the same headers) with a bare ``httpx``
   async loop at each ``--loop-concurrency``, timed from its first request to its last
   answer, and keeps the best;
6. loads the receiver with ``wrk`` posting the same body: the receiver's capacity, so that
   neither figure above is the receiver's limit;
7. prints a table and writes ``bench/results/webhooks.json``.

The senders (worker, loop, wrk) run on the first CPU and the receiver on the second
(``--no-pin`` turns that off); this process waits on the second. ``wrk`` is the Debian
package (installed with apt-get when missing and running as root); without it that row is
left out. ``--check`` makes the exit code 1 when postwarden is below 0.5x the best loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from _common import BenchError, ProcSet, free_port, log, versions
from api_throughput import ensure_wrk, lua_string, parse_bench_line, pinned
from sqlalchemy import func, select

from postwarden.accounts.service import AccountService
from postwarden.config import Settings
from postwarden.db import utcnow
from postwarden.identity import Actor
from postwarden.migrations import upgrade
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerFields, ServerService
from postwarden.tasks import TaskQueue
from postwarden.webhook_deliveries.models import DeliveryStatus, WebhookDelivery, WebhookDeliveryAttempt
from postwarden.webhook_deliveries.payloads import RECORD_TYPES
from postwarden.webhook_deliveries.sender import Outgoing, request_headers
from postwarden.webhook_deliveries.service import WebhookDeliveryService
from postwarden.webhooks.service import HttpHeader, WebhookFields, WebhookService

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "webhooks.json"
CHECK_MIN_RATIO = 0.5
SENDER_CPUS, RECEIVER_CPUS = {0}, {1}
AUTH = ("bench", "bench-password")
CUSTOM_HEADER = ("X-Bench", "webhooks")

# --------------------------------------------------------------------------
# the receiver and the bare loop, each run in a process of its own


def receiver_main(port: int) -> None:
    import httptools
    import uvloop

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass of it
            self.parser = httptools.HttpRequestParser(self)

        def data_received(self, data: bytes) -> None:
            self.parser.feed_data(data)

        def on_message_complete(self) -> None:
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", port, backlog=1024)
        print("ready", flush=True)
        await server.serve_forever()

    uvloop.run(serve())


def bare_loop_main(spec_file: str) -> None:
    """Posts every body once, ``concurrency`` at a time, with one httpx client; prints the time."""
    import httpx

    spec = json.loads(Path(spec_file).read_text())
    bodies = [body.encode() for body in spec["bodies"]]

    async def run() -> dict[str, Any]:
        failures = 0
        pending = iter(bodies)
        limits = httpx.Limits(max_connections=spec["concurrency"], max_keepalive_connections=spec["concurrency"])
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def post_each() -> None:
                nonlocal failures
                for body in pending:
                    answer = await client.post(spec["url"], content=body, headers=spec["headers"])
                    failures += answer.status_code != 200

            started = time.perf_counter()
            await asyncio.gather(*(post_each() for _ in range(spec["concurrency"])))
            return {"seconds": time.perf_counter() - started, "failures": failures}

    print(json.dumps(asyncio.run(run())), flush=True)


# --------------------------------------------------------------------------
# postwarden


@dataclass
class Installation:
    runtime: Runtime
    env: dict[str, str]
    server_id: int
    webhook_id: int
    description: str


def set_up_postwarden(args: argparse.Namespace, tmp: Path, receiver_url: str) -> Installation:
    suffix = secrets.token_hex(4)
    url = args.database_url or f"sqlite:///{tmp}/pw.db"
    env = {
        "POSTWARDEN_DATABASE_URL": url,
        "POSTWARDEN_DATA_DIR": str(tmp),
        "POSTWARDEN_SECRET_KEY": secrets.token_urlsafe(32),
        "POSTWARDEN_ALLOW_PRIVATE_URLS": "true",  # the receiver listens on loopback
        "POSTWARDEN_WEBHOOK_CONCURRENCY": str(args.worker_concurrency),
        "POSTWARDEN_LOG_LEVEL": "INFO",
    }
    settings = Settings(
        database_url=url,
        data_dir=tmp,
        secret_key=env["POSTWARDEN_SECRET_KEY"],
        allow_private_urls=True,
        embedded_worker=False,
    )
    upgrade(settings.resolved_database_url)
    runtime = Runtime.start(settings)
    operator = Actor.system("bench")
    with runtime.db.session_scope() as session:
        account = AccountService(session, operator, runtime).create_account(
            f"Bench-{suffix}", owner_email=f"bench+{suffix}@example.com"
        )
        server = ServerService(session, operator, runtime).create_server(account.account.id, ServerFields(name="Bench"))
        webhook = WebhookService(session, operator, runtime).create_webhook(
            server.id,
            WebhookFields(
                url=receiver_url,
                username=AUTH[0],
                password=AUTH[1],
                http_headers=[HttpHeader(*CUSTOM_HEADER)],
            ),
        )
    return Installation(runtime, env, server.id, webhook.webhook.id, url.split(":", 1)[0])


def wait_for_worker(log_path: Path, procs: ProcSet, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while "consumer" not in log_path.read_text(errors="replace").lower():
        worker = procs.procs[-1]
        if worker.popen.poll() is not None:
            raise BenchError(f"postwarden worker exited with {worker.popen.returncode}:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"postwarden worker did not start within {timeout:.0f}s:\n{worker.tail()}")
        time.sleep(0.1)


def queue_events(pw: Installation, events: int) -> datetime:
    """Queues the events in one transaction; returns the moment they are written."""
    wake = TaskQueue(pw.runtime).wake_webhooks
    with pw.runtime.db.session_scope() as session:
        service = WebhookDeliveryService(session, Actor.system("bench"), wake)
        for i in range(events):
            service.send_test(pw.server_id, pw.webhook_id, RECORD_TYPES[i % len(RECORD_TYPES)])
        session.flush()
        queued_at = utcnow()
    return queued_at


def wait_for_deliveries(pw: Installation, events: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    ours = WebhookDelivery.webhook_id == pw.webhook_id
    pending = select(func.count()).where(ours, WebhookDelivery.status == DeliveryStatus.PENDING.value)
    failed = (
        select(WebhookDeliveryAttempt.error)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookDeliveryAttempt.delivery_id)
        .where(ours, WebhookDeliveryAttempt.http_status.is_distinct_from(200))
    )
    while True:
        with pw.runtime.db.session_scope(write=False) as session:
            left = session.scalar(pending) or 0
            error = session.scalar(failed.limit(1))
        if error is not None:
            raise BenchError(f"an attempt failed ({error}); the receiver or the worker is not keeping up")
        if left == 0:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{left} of {events} deliveries still pending after {timeout:.0f}s")
        time.sleep(0.2)


def check_log(pw: Installation, events: int) -> datetime:
    """Every delivery delivered at the first attempt; the moment the last one was logged."""
    ours = WebhookDelivery.webhook_id == pw.webhook_id
    attempts = (
        select(func.count())
        .select_from(WebhookDeliveryAttempt)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookDeliveryAttempt.delivery_id)
    )
    with pw.runtime.db.session_scope(write=False) as session:
        by_status = select(WebhookDelivery.status, func.count()).where(ours).group_by(WebhookDelivery.status)
        statuses = dict(session.execute(by_status).tuples().all())
        logged = session.scalar(attempts.where(ours)) or 0
        answered_200 = session.scalar(attempts.where(ours, WebhookDeliveryAttempt.http_status == 200)) or 0
        most_attempts = session.scalar(select(func.max(WebhookDelivery.attempts_made)).where(ours))
        last = session.scalar(select(func.max(WebhookDelivery.completed_at)).where(ours))
    if statuses != {DeliveryStatus.DELIVERED.value: events} or logged != events or answered_200 != events:
        raise BenchError(f"the log is not {events} deliveries at one attempt each: {statuses}, {logged} attempts")
    if most_attempts != 1 or last is None:
        raise BenchError(f"some delivery took {most_attempts} attempts")
    return last


def posted_bodies(pw: Installation) -> list[str]:
    query = select(WebhookDelivery.payload).where(WebhookDelivery.webhook_id == pw.webhook_id)
    with pw.runtime.db.session_scope(write=False) as session:
        return list(session.scalars(query.order_by(WebhookDelivery.id)))


# --------------------------------------------------------------------------
# the baselines


def loop_headers(receiver_url: str, body: str) -> dict[str, str]:
    """The headers postwarden sends (signature included), for the loop to send as they are."""
    sample = Outgoing(1, receiver_url, body.encode(), [CUSTOM_HEADER], *AUTH, "whsec_bench", 10)
    return {name: value for name, value in request_headers(sample, receiver_url.split("/")[2], None) if name != "Host"}


def run_bare_loop(tmp: Path, receiver_url: str, bodies: list[str], concurrency: int, pin: bool) -> float:
    spec = tmp / f"loop-{concurrency}.json"
    spec.write_text(
        json.dumps(
            {
                "url": receiver_url,
                "bodies": bodies,
                "headers": loop_headers(receiver_url, bodies[0]),
                "concurrency": concurrency,
            }
        )
    )
    cmd = pinned([sys.executable, str(Path(__file__)), "--_bare-loop", str(spec)], SENDER_CPUS if pin else None)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise BenchError(f"the bare loop failed:\n{done.stderr}")
    result = json.loads(done.stdout)
    if result["failures"]:
        raise BenchError(f"the bare loop got {result['failures']} answers other than 200")
    return float(len(bodies) / result["seconds"])


WRK_LUA = """\
wrk.method = "POST"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  io.write(string.format("BENCHJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"errors\\":%d}}\\n",
    summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write))
end
"""


def run_wrk(wrk: str, tmp: Path, receiver_url: str, body: str, *, seconds: int, pin: bool) -> float:
    headers = loop_headers(receiver_url, body)
    script = tmp / "webhooks.lua"
    script.write_text(
        WRK_LUA.format(
            body=lua_string(body),
            headers="\n".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()),
        )
    )
    cmd = [wrk, "-t1", "-c32", f"-d{seconds}s", "-s", str(script), receiver_url]
    done = subprocess.run(pinned(cmd, SENDER_CPUS if pin else None), capture_output=True, text=True, check=False)
    data = parse_bench_line(done.stdout)
    if data is None or data["errors"]:
        raise BenchError(f"wrk failed (code {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return float(data["requests"] / (data["duration_us"] / 1e6))


# --------------------------------------------------------------------------


def print_table(rows: list[tuple[str, float]], best_loop: float) -> None:
    header = f"{'sender':<46} {'deliveries/s':>13} {'vs best loop':>13}"
    print(header)
    print("-" * len(header))
    for label, rate in rows:
        print(f"{label:<46} {rate:>13,.0f} {rate / best_loop:>12.2f}x")


def run(args: argparse.Namespace) -> int:
    procs = ProcSet()
    with tempfile.TemporaryDirectory(prefix="pw-bench-webhooks-") as tmp_name:
        tmp = Path(tmp_name)
        pin = args.pin and (os.cpu_count() or 1) >= 2
        if pin:
            os.sched_setaffinity(0, RECEIVER_CPUS)  # this process mostly waits
        try:
            port = free_port()
            receiver = procs.start(
                "receiver",
                pinned([sys.executable, str(Path(__file__)), "--_receiver", str(port)], RECEIVER_CPUS if pin else None),
                env={"PATH": os.environ.get("PATH", "")},  # noqa: TID251 - a child's environment
                log_path=tmp / "receiver.log",
            )
            deadline = time.monotonic() + 30
            while "ready" not in receiver.log_path.read_text():
                if receiver.popen.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"the receiver did not start:\n{receiver.tail()}")
                time.sleep(0.05)
            receiver_url = f"http://127.0.0.1:{port}/hooks/postmark"

            pw = set_up_postwarden(args, tmp, receiver_url)
            log(f"database {pw.description}; webhook {pw.webhook_id} posts to {receiver_url}")
            worker_log = tmp / "worker.log"
            cli = str(Path(sys.executable).with_name("postwarden"))
            procs.start(
                "postwarden worker",
                pinned([cli, "worker"], SENDER_CPUS if pin else None),
                env=pw.env,
                log_path=worker_log,
            )
            wait_for_worker(worker_log, procs)

            log(f"queueing {args.events} test events through WebhookDeliveryService.send_test, in one transaction")
            queued_at = queue_events(pw, args.events)
            wait_for_deliveries(pw, args.events, timeout=args.timeout)
            last_logged = check_log(pw, args.events)
            seconds = (last_logged - queued_at).total_seconds()
            postwarden_rate = args.events / seconds
            log(f"postwarden: {args.events} delivered and logged in {seconds:.2f}s")
            procs.procs[-1].popen.terminate()

            bodies = posted_bodies(pw)
            loops = {}
            for concurrency in args.loop_concurrency:
                loops[concurrency] = run_bare_loop(tmp, receiver_url, bodies, concurrency, pin)
                log(f"bare httpx loop, concurrency {concurrency}: {loops[concurrency]:,.0f}/s")
            best_concurrency = max(loops, key=lambda c: loops[c])
            best_loop = loops[best_concurrency]

            wrk = ensure_wrk()
            wrk_rate = run_wrk(wrk, tmp, receiver_url, bodies[0], seconds=args.wrk_seconds, pin=pin) if wrk else None
            pw.runtime.db.dispose()
        finally:
            procs.stop_all()

    ratio = postwarden_rate / best_loop
    rows = [(f"postwarden worker (concurrency {args.worker_concurrency}, logged)", postwarden_rate)]
    rows += [
        (f"bare httpx loop, concurrency {c}" + (" (best)" if c == best_concurrency else ""), rate)
        for c, rate in loops.items()
    ]
    if wrk_rate is not None:
        rows.append(("wrk, 32 connections (the receiver's capacity)", wrk_rate))
    print()
    print(
        f"{args.events} test events, queued through WebhookDeliveryService.send_test (the code behind "
        "POST /webhooks/{id}/test) in one transaction, timed from the commit to the last attempt logged"
    )
    print_table(rows, best_loop)
    print(f"\npostwarden / best bare loop: {ratio:.2f} (target {CHECK_MIN_RATIO})")
    if wrk_rate is None:
        print("wrk is not installed: the receiver's capacity was not measured")

    result = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": versions(["postwarden", "httpx", "httpcore", "sqlalchemy", "huey"]),
        "settings": {
            "events": args.events,
            "database": pw.description,
            "queued_through": "WebhookDeliveryService.send_test, one transaction",
            "worker_concurrency": args.worker_concurrency,
            "loop_concurrency": args.loop_concurrency,
            "pinned": pin,
            "sender_cpus": sorted(SENDER_CPUS) if pin else None,
            "receiver_cpus": sorted(RECEIVER_CPUS) if pin else None,
        },
        "postwarden": {"seconds": seconds, "deliveries_per_s": postwarden_rate},
        "bare_loop_per_s": {str(c): rate for c, rate in loops.items()},
        "best_bare_loop": {"concurrency": best_concurrency, "per_s": best_loop},
        "wrk_per_s": wrk_rate,
        "ratio_postwarden_over_best_loop": ratio,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {out}")
    if args.check and ratio < CHECK_MIN_RATIO:
        print(f"CHECK FAILED: {ratio:.2f} < {CHECK_MIN_RATIO}")
        return 1
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="webhook deliveries/s: postwarden vs a bare httpx loop and wrk")
    p.add_argument("--events", type=int, default=10_000, help="test events to deliver (10000)")
    p.add_argument("--database-url", default=None, help="bench against this database instead of a temp SQLite file")
    p.add_argument("--worker-concurrency", type=int, default=8, help="POSTWARDEN_WEBHOOK_CONCURRENCY (8, the default)")
    p.add_argument(
        "--loop-concurrency",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[1, 2, 4, 8, 16, 32],
        help="concurrencies of the bare loop to try (1,2,4,8,16,32)",
    )
    p.add_argument("--wrk-seconds", type=int, default=10, help="seconds of wrk load (10)")
    p.add_argument("--timeout", type=float, default=600, help="give up when deliveries take longer (600 s)")
    p.add_argument("--pin", action=argparse.BooleanOptionalAction, default=True, help="senders on CPU 0 (on)")
    p.add_argument("--output", default=str(RESULTS_PATH), help="JSON results (bench/results/webhooks.json)")
    p.add_argument("--check", action="store_true", help=f"exit 1 below {CHECK_MIN_RATIO}x the best bare loop")
    return p.parse_args(argv)


def _interrupt(_signum: int, _frame: object) -> None:
    """A SIGTERM (timeout(1), CI) unwinds like Ctrl-C, so the receiver and worker are stopped too."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_receiver"]:
        receiver_main(int(argv[1]))
        return 0
    if argv[:1] == ["--_bare-loop"]:
        bare_loop_main(argv[1])
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(parse_args(argv))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; processes stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
