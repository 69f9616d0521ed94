#!/usr/bin/env python3
"""Throughput of postwarden's read endpoints against a bare Starlette baseline.

Run with the project's interpreter (``make bench`` does this)::

    .venv/bin/python bench/api_throughput.py [--duration 10] [--rounds 3]
        [--connections 32] [--database-url postgresql://...] [--check] [--profile]

What it does:

1. makes a temp dir, runs ``postwarden migrate`` and ``postwarden init --json``
   against a fresh SQLite file there (or against ``--database-url``, where it
   leaves a ``Bench-<hex>`` account behind);
2. starts ``postwarden serve --workers 1`` and waits for ``GET /healthz``;
3. creates 500 servers through ``POST /servers``;
4. fetches the responses of the three measured endpoints from postwarden and
   starts ``bench/bare_app.py`` under the same uvicorn settings, serving those
   exact bytes as constants;
5. loads both apps with the same client, connection count and duration, the
   apps taking turns over ``--rounds`` rounds: ``GET /server``,
   ``GET /servers/{id}``, ``GET /servers?count=500&offset=0``;
6. prints a table (requests/s, p50, p99, the server's CPU, postwarden/bare
   ratio) and writes ``bench/results/api_throughput.json``.

The load client is ``wrk`` (Debian package ``wrk``; installed with apt-get when
missing and running as root). Without it, a small asyncio HTTP/1.1 keep-alive
client in this file is used instead (``--client python``); it needs a core of
its own to keep up, and on a small machine it caps the bare app's figures, so
its ratios read higher than wrk's.

On a machine with 2 or more cores the servers are pinned to the first CPU and
the load client to the second (``--no-pin`` turns that off). The CPU used by
other processes is read around every run: before a run the bench waits (up to
``--quiet-wait`` seconds) for the machine to go quiet, repeats a disturbed run
(``--retries``), and marks figures that were still disturbed with ``*``.

postwarden runs with its settings as shipped (its own access log on, see
``--no-app-access-log``) except the rate limits, which are lifted; POSTWARDEN_*
variables of the calling shell are not passed on (add settings with ``--env``).
``--profile`` samples postwarden with py-spy under the same load afterwards and
prints where its time goes.

``--check`` makes the exit code 1 when the GET /server ratio is below 0.5.
Every server started here is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    CLK_TCK,
    BenchError,
    ProcSet,
    add_output,
    clean_environment,
    cpu_seconds,
    find_cli,
    free_port,
    generated_at,
    http_call,
    log,
    machine,
    run_main,
    versions,
    wait_ready,
    write_results,
)

CHECK_ENDPOINT = "GET /server"
CHECK_MIN_RATIO = 0.5
# Cores' worth of CPU that other processes may use during a run before the run
# is flagged as disturbed.
BUSY_OTHER_CPU = 0.1

# `postwarden serve` (src/postwarden/surfaces/cli/main.py) runs
#     uvicorn.run(..., workers=N, access_log=False, log_config=None,
#                 proxy_headers=False, server_header=False)
# and leaves `loop` and `http` at "auto" (uvloop and httptools when installed).
# The bare app gets the same settings through uvicorn's command line; keep the
# two in step.
DEFAULT_UVICORN_FLAGS = [
    "--no-access-log",
    "--no-proxy-headers",
    "--no-server-header",
    "--log-level",
    "warning",
]


# --------------------------------------------------------------------------
# small helpers


def pinned(cmd: list[str], cpus: set[int] | None) -> list[str]:
    """`cmd` run on `cpus` only (through taskset), or as it is."""
    if not cpus:
        return cmd
    taskset = shutil.which("taskset")
    if taskset is None:
        return cmd
    return [taskset, "-c", ",".join(map(str, sorted(cpus))), *cmd]


# --------------------------------------------------------------------------
# postwarden set-up


def run_cli(cli: Path, env: dict[str, str], *args: str) -> str:
    res = subprocess.run([str(cli), *args], env=env, capture_output=True, text=True, timeout=300, check=False)
    if res.returncode != 0:
        raise BenchError(
            f"`postwarden {' '.join(args)}` failed with code {res.returncode}:\n{res.stdout}\n{res.stderr}"
        )
    return res.stdout


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object printed by `postwarden init --json`, log lines around it tolerated."""
    text = text.strip()
    candidates = [text, *(line.strip() for line in reversed(text.splitlines()))]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        if not candidate.startswith("{"):
            continue
        try:
            obj = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    raise BenchError(f"no JSON object in output:\n{text}")


def create_servers(base_url: str, account_token: str, count: int, concurrency: int = 8) -> list[dict[str, Any]]:
    headers = {"X-Postmark-Account-Token": account_token}

    def one(i: int) -> dict[str, Any]:
        body = {"Name": f"bench-{i:03d}"}
        for attempt in range(20):
            status, _, raw = http_call("POST", base_url + "/servers", headers, body)
            if status in {200, 201}:
                created: dict[str, Any] = json.loads(raw)
                return created
            if status in {429, 503}:
                time.sleep(0.05 * (attempt + 1))
                continue
            raise BenchError(f"POST /servers {body} -> HTTP {status}: {raw[:500]!r}")
        raise BenchError(f"POST /servers {body}: still refused after retries")

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(1, count + 1)))


# --------------------------------------------------------------------------
# load clients


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


# wrk's `done` hook prints one JSON line; its latency object is what `--latency`
# summarises, read here at exactly p50 and p99.
WRK_LUA = """\
wrk.method = "GET"
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"status_errors\\":%d," ..
    "\\"socket_errors\\":%d,\\"p50_us\\":%.1f,\\"p99_us\\":%.1f}}\\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ensure_wrk() -> str | None:
    path = shutil.which("wrk")
    if path or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return path
    log("wrk not found; installing it with apt-get")
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}  # noqa: TID251 - a child's environment
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(install, env=apt_env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=apt_env, capture_output=True, check=False)
        subprocess.run(install, env=apt_env, capture_output=True, check=False)
    return shutil.which("wrk")


def parse_bench_line(stdout: str) -> dict[str, Any] | None:
    for line in stdout.splitlines():
        if line.startswith("BENCHJSON "):
            data: dict[str, Any] = json.loads(line[len("BENCHJSON ") :])
            return data
    return None


@dataclass
class LoadClient:
    kind: str  # "wrk" or "python"
    wrk: str | None
    connections: int
    threads: int
    cpus: set[int] | None
    workdir: Path

    def run(self, url: str, headers: dict[str, str], duration: float) -> LoadResult:
        if self.kind == "wrk":
            return self._run_wrk(url, headers, duration)
        return self._run_python(url, headers, duration)

    def _run_wrk(self, url: str, headers: dict[str, str], duration: float) -> LoadResult:
        assert self.wrk is not None
        script = self.workdir / "bench.lua"
        script.write_text(
            WRK_LUA.format(
                headers="\n".join(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
            )
        )
        cmd = [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "30s",
            "--latency",
            "-s",
            str(script),
            url,
        ]
        res = subprocess.run(pinned(cmd, self.cpus), capture_output=True, text=True, check=False)
        data = parse_bench_line(res.stdout)
        if data is None:
            raise BenchError(f"wrk gave no result (code {res.returncode}):\n{res.stdout}\n{res.stderr}")
        dur = data["duration_us"] / 1e6
        return LoadResult(
            requests=data["requests"],
            duration_s=dur,
            rps=data["requests"] / dur if dur else 0.0,
            p50_ms=data["p50_us"] / 1000,
            p99_ms=data["p99_us"] / 1000,
            non_2xx=data["status_errors"],
            socket_errors=data["socket_errors"],
        )

    def _run_python(self, url: str, headers: dict[str, str], duration: float) -> LoadResult:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
        spec = {
            "host": parts.hostname,
            "port": parts.port,
            "request_b64": base64.b64encode(("\r\n".join(lines) + "\r\n\r\n").encode()).decode(),
            "connections": self.connections,
            "duration": duration,
        }
        cmd = [sys.executable, str(Path(__file__).resolve()), "--_pyload", json.dumps(spec)]
        res = subprocess.run(pinned(cmd, self.cpus), capture_output=True, text=True, check=False)
        data = parse_bench_line(res.stdout)
        if data is None:
            raise BenchError(f"load client gave no result:\n{res.stdout}\n{res.stderr}")
        return LoadResult(
            requests=data["requests"],
            duration_s=data["duration_s"],
            rps=data["requests"] / data["duration_s"] if data["duration_s"] else 0.0,
            p50_ms=data["p50_ms"],
            p99_ms=data["p99_ms"],
            non_2xx=data["non_2xx"],
            socket_errors=data["socket_errors"],
        )


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for header_line in head.split(b"\r\n")[1:]:
        name, _, value = header_line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _pyload(*, host: str, port: int, request: bytes, connections: int, duration: float) -> dict[str, Any]:
    """Keep-alive HTTP/1.1 load: `connections` loops of request, response, repeat."""
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            counts["errors"] += 1
            return
        try:
            while (t0 := time.perf_counter()) < deadline:
                writer.write(request)
                status = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if not 200 <= status < 400:
                    counts["non_2xx"] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            counts["errors"] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "p50_ms": pct(50) * 1000,
        "p99_ms": pct(99) * 1000,
        "non_2xx": counts["non_2xx"],
        "socket_errors": counts["errors"],
    }


def pyload_main(spec_json: str) -> None:
    """Entry point of the built-in client, run in a process of its own."""
    spec = json.loads(spec_json)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    out = asyncio.run(
        _pyload(
            host=spec["host"],
            port=spec["port"],
            request=base64.b64decode(spec["request_b64"]),
            connections=spec["connections"],
            duration=spec["duration"],
        )
    )
    print("BENCHJSON " + json.dumps(out), flush=True)


def make_client(args: argparse.Namespace, workdir: Path, cpus: set[int] | None) -> LoadClient:
    wrk = None
    if args.client in {"auto", "wrk"}:
        wrk = ensure_wrk()
        if wrk is None and args.client == "wrk":
            raise BenchError(
                "wrk is not installed and could not be installed (`apt-get install wrk` needs root); "
                "use --client python for the built-in, slower load client"
            )
        if wrk is None:
            log("wrk not available; falling back to the built-in asyncio client")
    kind = "wrk" if wrk else "python"
    return LoadClient(kind, wrk, args.connections, args.threads, cpus, workdir)


# --------------------------------------------------------------------------
# CPU accounting (Linux /proc; figures are None elsewhere)


def _machine_cpu() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def _process_cpu(pid: int) -> float | None:
    """CPU seconds used so far by process `pid`, all its threads."""
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError):
        return None


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# Processes whose CPU counts as the database's, not as a disturbance, when
# postwarden runs against a database server (--database-url).
DATABASE_PROCESS_NAMES = frozenset({"postgres", "postmaster", "mariadbd", "mysqld"})


def _named_processes_cpu(names: frozenset[str]) -> float:
    total = 0.0
    if not names:
        return total
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm", encoding="utf-8", errors="replace") as fh:
                comm = fh.read().strip()
        except OSError:
            continue
        if comm in names:
            total += _process_cpu(int(entry.name)) or 0.0
    return total


@dataclass
class CpuSample:
    machine: tuple[float, float] | None
    servers: dict[int, float | None]
    children: float
    database: float

    @classmethod
    def take(cls, pids: list[int], db_names: frozenset[str] = frozenset()) -> CpuSample:
        return cls(
            _machine_cpu(),
            {pid: _process_cpu(pid) for pid in pids},
            _children_cpu(),
            _named_processes_cpu(db_names),
        )


@dataclass
class CpuUse:
    server: float | None  # cores used by the loaded server
    client: float  # cores used by the load client
    database: float  # cores used by the database server (with --database-url)
    other: float | None  # cores used by anything else on the machine
    steal: float | None  # cores taken by the hypervisor


def cpu_use(before: CpuSample, after: CpuSample, loaded_pid: int, seconds: float) -> CpuUse:
    def delta(pid: int) -> float | None:
        a, b = before.servers.get(pid), after.servers.get(pid)
        return None if a is None or b is None else b - a

    server = delta(loaded_pid)
    client = after.children - before.children
    database = max(0.0, after.database - before.database)  # processes may come and go
    other = steal = None
    if before.machine and after.machine:
        busy = after.machine[0] - before.machine[0]
        ours = client + database + sum(d for pid in before.servers if (d := delta(pid)) is not None)
        other = max(0.0, busy - ours) / seconds
        steal = (after.machine[1] - before.machine[1]) / seconds
    return CpuUse(
        server=None if server is None else server / seconds,
        client=client / seconds,
        database=database / seconds,
        other=other,
        steal=steal,
    )


# --------------------------------------------------------------------------
# the run


@dataclass
class Target:
    url: str
    pid: int


@dataclass
class Endpoint:
    label: str
    path: str
    route: str  # Starlette route template for the bare app
    headers: dict[str, str]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def wait_for_quiet(
    pids: list[int], max_wait: float, window: float = 1.0, db_names: frozenset[str] = frozenset()
) -> None:
    """Wait (up to `max_wait` s) until other processes use little CPU."""
    if max_wait <= 0:
        return
    deadline = time.monotonic() + max_wait
    waited = False
    while time.monotonic() < deadline:
        before = CpuSample.take(pids, db_names)
        time.sleep(window)
        use = cpu_use(before, CpuSample.take(pids, db_names), pids[0], window)
        if use.other is None or use.other <= BUSY_OTHER_CPU:
            if waited:
                log("  the machine is quiet again")
            return
        if not waited:
            log(f"  other processes use {_pct(use.other).strip()} of a core; waiting up to {max_wait:.0f}s")
            waited = True
    log("  still busy; measuring anyway")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:4.0f}%"


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(_median(known), 3) if known else None


def _max_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(max(known), 3) if known else None


def measure(
    client: LoadClient,
    endpoints: list[Endpoint],
    targets: dict[str, Target],
    *,
    duration: float,
    warmup: float,
    rounds: int,
    retries: int = 1,
    quiet_wait: float = 0.0,
    db_names: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """Load every endpoint on every app, the apps taking turns round by round.

    Each round gives every app `duration` seconds, so a slow spell of the
    machine hits both. A row's figures are the medians over the rounds, and an
    endpoint's ratio is the median of the per-round ratios. CPU use is read
    around every run: the server's share of a core says whether it was the
    bottleneck, and CPU used by anything else says whether the machine was
    quiet enough to trust the figures. Before each run the machine is given up
    to `quiet_wait` seconds to calm down; a disturbed run is repeated up to
    `retries` times.
    """
    rows: list[dict[str, Any]] = []
    ratio: dict[str, float | None] = {}
    for ep in endpoints:
        per_app: dict[str, list[LoadResult]] = {app: [] for app in targets}
        cpu: dict[str, list[CpuUse]] = {app: [] for app in targets}
        pids = [t.pid for t in targets.values()]
        if warmup > 0:
            for target in targets.values():
                client.run(target.url + ep.path, ep.headers, warmup)
        for n in range(1, rounds + 1):
            for app, target in targets.items():
                for attempt in range(1 + retries):
                    wait_for_quiet(pids, quiet_wait, db_names=db_names)
                    before = CpuSample.take(pids, db_names)
                    started = time.monotonic()
                    r = client.run(target.url + ep.path, ep.headers, duration)
                    use = cpu_use(before, CpuSample.take(pids, db_names), target.pid, time.monotonic() - started)
                    log(
                        f"{ep.label:<34} {app:<10} round {n}/{rounds}: {r.rps:8.0f} req/s"
                        f"  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  server CPU {_pct(use.server)}"
                        f"  client {_pct(use.client)}"
                        + (f"  database {_pct(use.database)}" if db_names else "")
                        + f"  other {_pct(use.other)}"
                    )
                    if r.non_2xx or r.socket_errors:
                        log(f"  warning: {r.non_2xx} non-2xx responses, {r.socket_errors} socket errors")
                    if use.other is None or use.other <= BUSY_OTHER_CPU:
                        break
                    again = "; running it again" if attempt < retries else ""
                    log(f"  warning: other processes used {_pct(use.other).strip()} of a core during this run{again}")
                per_app[app].append(r)
                cpu[app].append(use)
        for app, results in per_app.items():
            rows.append(
                {
                    "endpoint": ep.label,
                    "app": app,
                    "rps": round(_median([r.rps for r in results]), 1),
                    "p50_ms": round(_median([r.p50_ms for r in results]), 3),
                    "p99_ms": round(_median([r.p99_ms for r in results]), 3),
                    "requests": sum(r.requests for r in results),
                    "non_2xx": sum(r.non_2xx for r in results),
                    "socket_errors": sum(r.socket_errors for r in results),
                    "server_cpu": _median_or_none([c.server for c in cpu[app]]),
                    "other_cpu_max": _max_or_none([c.other for c in cpu[app]]),
                    "rounds": [
                        {
                            "rps": round(r.rps, 1),
                            "p50_ms": round(r.p50_ms, 3),
                            "p99_ms": round(r.p99_ms, 3),
                            "requests": r.requests,
                            "duration_s": round(r.duration_s, 3),
                            "server_cpu": _round(c.server),
                            "client_cpu": _round(c.client),
                            "database_cpu": _round(c.database) if db_names else None,
                            "other_cpu": _round(c.other),
                            "steal_cpu": _round(c.steal),
                        }
                        for r, c in zip(results, cpu[app], strict=True)
                    ],
                }
            )
        pw, bare = per_app.get("postwarden"), per_app.get("bare")
        if pw and bare and all(b.rps for b in bare):
            ratio[ep.label] = round(_median([p.rps / b.rps for p, b in zip(pw, bare, strict=True)]), 3)
        else:
            ratio[ep.label] = None
    return rows, ratio


def print_table(rows: list[dict[str, Any]], ratio: dict[str, float | None], rounds: int) -> None:
    header = f"{'endpoint':<34} {'app':<11} {'req/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'srv CPU':>8} {'ratio':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        rat = ""
        value = ratio.get(r["endpoint"])
        if r["app"] == "postwarden" and value is not None:
            rat = f"{value:.2f}"
        flag = " !" if r["non_2xx"] or r["socket_errors"] else ""
        if r["other_cpu_max"] is not None and r["other_cpu_max"] > BUSY_OTHER_CPU:
            flag += " *"
        print(
            f"{r['endpoint']:<34} {r['app']:<11} {r['rps']:>10.0f} "
            f"{r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {_pct(r['server_cpu']):>8} {rat:>7}{flag}"
        )
    if any(r["non_2xx"] or r["socket_errors"] for r in rows):
        print("! = some responses were not 2xx, or connections failed; see the JSON")
    if any(r["other_cpu_max"] is not None and r["other_cpu_max"] > BUSY_OTHER_CPU for r in rows):
        print(
            f"* = other processes used over {_pct(BUSY_OTHER_CPU).strip()} of a core in some round: figures disturbed"
        )
    print(f"figures: medians of {rounds} round(s); ratio = postwarden req/s / bare req/s (median of per-round ratios)")


# --------------------------------------------------------------------------
# profiling (--profile): py-spy samples of postwarden under the same load


def find_py_spy(explicit: str | None) -> str:
    candidates = [explicit] if explicit else [str(Path(sys.executable).parent / "py-spy"), shutil.which("py-spy")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise BenchError("--profile needs py-spy: `pip install py-spy` into this venv, or pass --py-spy PATH")


def _frame_parts(frame: str) -> tuple[str, str]:
    """py-spy's "function (path:line)" as (function, short path)."""
    name, _, rest = frame.rpartition(" (")
    if not name:
        return frame, ""
    path = rest.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = "stdlib/" + path.split("/", 1)[-1]
            break
    return name, path


def _component(path: str) -> str:
    if path.startswith("stdlib/"):
        return "stdlib " + path.split("/")[1].removesuffix(".py")
    if path.startswith("postwarden/"):
        return "postwarden " + "/".join(path.split("/")[1:]).removesuffix(".py")
    return path.split("/", 1)[0].removesuffix(".py") if path else "(native)"


def summarise_profile(raw: Path, top: int = 15) -> dict[str, Any]:
    """Self time by function and by package from py-spy's collapsed stacks."""
    by_function: dict[str, int] = {}
    by_component: dict[str, int] = {}
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        name, path = _frame_parts(stack.rsplit(";", 1)[-1])
        by_function[f"{name} ({path})"] = by_function.get(f"{name} ({path})", 0) + count
        component = _component(path)
        by_component[component] = by_component.get(component, 0) + count

    def share(counts: dict[str, int]) -> list[list[Any]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [[k, round(100 * v / total, 1)] for k, v in ranked] if total else []

    return {"samples": total, "self_by_package": share(by_component), "self_by_function": share(by_function)}


def profile_endpoints(
    client: LoadClient,
    endpoints: list[Endpoint],
    target: Target,
    *,
    py_spy: str,
    duration: float,
    out_dir: Path,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, Any] = {}
    for ep in endpoints:
        slug = "".join(c if c.isalnum() else "-" for c in ep.route.strip("/")).strip("-") or "root"
        raw = out_dir / f"postwarden-{slug}.txt"
        seconds = max(1, round(duration))
        cmd = [py_spy, "record", "-p", str(target.pid), "-d", str(seconds), "-r", "250"]
        cmd += ["--gil", "--nonblocking", "-f", "raw", "-o", str(raw)]
        log(f"profiling {ep.label} for {seconds}s -> {raw}")
        with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as spy:
            time.sleep(0.3)  # let py-spy attach before the load starts
            r = client.run(target.url + ep.path, ep.headers, seconds)
            _, err = spy.communicate(timeout=seconds + 30)
        if spy.returncode != 0 or not raw.exists():
            raise BenchError(f"py-spy failed (code {spy.returncode}): {err.decode(errors='replace')[-2000:]}")
        summary = summarise_profile(raw)
        summary.update({"file": str(raw), "rps_while_profiled": round(r.rps, 1)})
        summaries[ep.label] = summary
        print(f"\nprofile of postwarden, {ep.label} ({summary['samples']} samples holding the GIL, self time)")
        print("  (native work shows on the Python frame that called it: the socket write on uvicorn's")
        print("  RequestResponseCycle.send, the event loop's own C code on asyncio's Runner.run)")
        for name, pct in summary["self_by_package"]:
            print(f"  {pct:5.1f}%  {name}")
        print("  top functions:")
        for name, pct in summary["self_by_function"]:
            print(f"  {pct:5.1f}%  {name}")
    return summaries


def pick_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    if not pin or not hasattr(os, "sched_getaffinity") or shutil.which("taskset") is None:
        return None, None
    avail = sorted(os.sched_getaffinity(0))
    if len(avail) < 2:
        return None, None
    return {avail[0]}, {avail[1]}


def run(args: argparse.Namespace) -> int:
    cli = find_cli(args.cli)
    python = sys.executable
    tmp = Path(tempfile.mkdtemp(prefix="postwarden-bench-"))
    procs = ProcSet()
    server_cpus, client_cpus = pick_cpus(args.pin)
    try:
        # The servers get this environment less any POSTWARDEN_* settings (so that
        # a shell's settings can't skew the figures), plus the bench's own and --env.
        env = clean_environment() | {
            "POSTWARDEN_DATA_DIR": str(tmp),
            "POSTWARDEN_SECRET_KEY": secrets.token_hex(32),
            "POSTWARDEN_RATE_LIMIT_PER_TOKEN": "1000000/second",
            "POSTWARDEN_RATE_LIMIT_PER_IP": "1000000/second",
            "POSTWARDEN_ACCESS_LOG": "true" if args.app_access_log else "false",
        }
        if args.database_url:
            env["POSTWARDEN_DATABASE_URL"] = args.database_url
            suffix = secrets.token_hex(4)  # the database may hold earlier runs' accounts
            account, owner = f"Bench-{suffix}", f"bench+{suffix}@example.com"
            db_kind = args.database_url.split(":", 1)[0]
        else:
            env["POSTWARDEN_DATABASE_URL"] = f"sqlite:///{tmp}/pw.db"
            account, owner = "Bench", "bench@example.com"
            db_kind = "sqlite"
        for item in args.env:
            key, sep, value = item.partition("=")
            if not sep or not key.startswith("POSTWARDEN_"):
                raise BenchError(f"--env wants POSTWARDEN_NAME=VALUE, not {item!r}")
            env[key] = value

        log(f"work dir {tmp}; database {db_kind}")
        run_cli(cli, env, "migrate")
        init = parse_json_object(run_cli(cli, env, "init", "--account", account, "--owner-email", owner, "--json"))
        account_token = init["AccountToken"]

        client = make_client(args, tmp, client_cpus)
        log(
            f"load client: {client.kind}, {args.connections} connections"
            + (f", {args.threads} thread(s)" if client.kind == "wrk" else "")
            + (
                f"; servers on CPU {sorted(server_cpus)}, client on CPU {sorted(client_cpus)}"
                if server_cpus and client_cpus
                else "; not pinned"
            )
        )

        # -- postwarden
        pw_port = free_port()
        serve_cmd = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(pw_port), "--workers", "1"]
        pw = procs.start("postwarden serve", pinned(serve_cmd, server_cpus), env=env, log_path=tmp / "postwarden.log")
        pw_url = f"http://127.0.0.1:{pw_port}"
        wait_ready(pw, pw_url, path="/healthz")
        log("postwarden is up")

        t0 = time.monotonic()
        servers = create_servers(pw_url, account_token, args.servers)
        log(f"created {len(servers)} servers in {time.monotonic() - t0:.1f}s")
        first = servers[0]
        server_token = first["ApiTokens"][0]
        server_id = first["ID"]

        accept = {"Accept": "application/json"}
        acct = {"X-Postmark-Account-Token": account_token, **accept}
        endpoints = [
            Endpoint("GET /server", "/server", "/server", {"X-Postmark-Server-Token": server_token, **accept}),
            Endpoint("GET /servers/{id}", f"/servers/{server_id}", "/servers/{id}", acct),
            Endpoint(
                f"GET /servers?count={args.servers}&offset=0",
                f"/servers?count={args.servers}&offset=0",
                "/servers",
                acct,
            ),
        ]
        if args.endpoints:
            # by route: "/server", "/servers/{id}", "/servers"
            wanted = {w.strip() for w in args.endpoints.split(",")}
            unknown = wanted - {e.route for e in endpoints}
            if unknown:
                raise BenchError(
                    f"unknown endpoint(s) {sorted(unknown)}: choose from /server, /servers/{{id}}, /servers"
                )
            endpoints = [e for e in endpoints if e.route in wanted]

        # -- the bare app serves postwarden's own bytes
        routes = []
        for ep in endpoints:
            status, headers, body = http_call("GET", pw_url + ep.path, ep.headers)
            if status != 200:
                raise BenchError(f"postwarden: {ep.label} -> HTTP {status}: {body[:500]!r}")
            routes.append(
                {
                    "path": ep.route,
                    "status": status,
                    "content_type": headers.get("content-type", "application/json"),
                    "body_b64": base64.b64encode(body).decode(),
                    "bytes": len(body),
                }
            )
        responses_file = tmp / "bare_responses.json"
        responses_file.write_text(json.dumps({"routes": routes}))

        flags = args.uvicorn_flags.split() if args.uvicorn_flags is not None else list(DEFAULT_UVICORN_FLAGS)
        bare_port = free_port()
        bare_cmd = [
            python,
            "-m",
            "uvicorn",
            "--app-dir",
            str(BENCH_DIR),
            "bare_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(bare_port),
            "--workers",
            "1",
            *flags,
        ]
        bare = procs.start(
            "bare app",
            pinned(bare_cmd, server_cpus),
            env={**env, "BENCH_BARE_RESPONSES": str(responses_file)},
            log_path=tmp / "bare.log",
        )
        bare_url = f"http://127.0.0.1:{bare_port}"
        wait_ready(bare, bare_url, path="/healthz")
        for ep, route in zip(endpoints, routes, strict=True):
            status, _, body = http_call("GET", bare_url + ep.path, ep.headers)
            if status != 200 or base64.b64encode(body).decode() != route["body_b64"]:
                raise BenchError(f"the bare app answers {ep.label} differently (HTTP {status})")
        log("bare app is up and serves the same bytes")

        rows, ratio = measure(
            client,
            endpoints,
            {"postwarden": Target(pw_url, pw.popen.pid), "bare": Target(bare_url, bare.popen.pid)},
            duration=args.duration,
            warmup=args.warmup,
            rounds=args.rounds,
            retries=args.retries,
            quiet_wait=args.quiet_wait,
            db_names=DATABASE_PROCESS_NAMES if args.database_url else frozenset(),
        )

        print()
        print_table(rows, ratio, args.rounds)

        profiles = None
        if args.profile:
            profiles = profile_endpoints(
                client,
                endpoints,
                Target(pw_url, pw.popen.pid),
                py_spy=find_py_spy(args.py_spy),
                duration=args.duration,
                out_dir=Path(args.output).parent / "profiles",
            )

        result = {
            "generated_at": generated_at(),
            "machine": machine(),
            "versions": versions(
                ["postwarden", "uvicorn", "starlette", "fastapi", "pydantic", "uvloop", "httptools", "sqlalchemy"]
            ),
            "settings": {
                "database": db_kind,
                "servers": len(servers),
                "duration_s": args.duration,
                "rounds": args.rounds,
                "warmup_s": args.warmup,
                "quiet_wait_s": args.quiet_wait,
                "retries": args.retries,
                "client": client.kind,
                "connections": args.connections,
                "client_threads": args.threads if client.kind == "wrk" else 1,
                "server_cpus": sorted(server_cpus) if server_cpus else None,
                "client_cpus": sorted(client_cpus) if client_cpus else None,
                "postwarden_access_log": args.app_access_log,
                "postwarden_env": sorted(item.partition("=")[0] for item in args.env),
                "postwarden_cmd": ["postwarden", "serve", "--workers", "1"],
                "bare_uvicorn_flags": ["--workers", "1", *flags],
            },
            "response_bytes": {ep.label: r["bytes"] for ep, r in zip(endpoints, routes, strict=True)},
            "results": rows,
            "ratio_postwarden_over_bare": ratio,
        }
        if profiles is not None:
            result["profiles"] = profiles
        write_results(args.output, result)

        if args.check:
            value = ratio.get(CHECK_ENDPOINT)
            if value is None or value < CHECK_MIN_RATIO:
                print(f"CHECK FAILED: {CHECK_ENDPOINT} ratio {value} < {CHECK_MIN_RATIO}")
                return 1
            print(f"check ok: {CHECK_ENDPOINT} ratio {value:.2f} >= {CHECK_MIN_RATIO}")
        return 0
    finally:
        procs.stop_all()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="postwarden vs a bare Starlette app on the read endpoints")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint, app and round (10)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per endpoint; figures are medians (3)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load per endpoint and app (2)")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each run, wait up to this many seconds for other processes to go quiet (60)",
    )
    p.add_argument("--retries", type=int, default=1, help="repeat a run disturbed by other processes (1)")
    p.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections (32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (1: leaves the other core to the server)")
    p.add_argument(
        "--client",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load client (auto: wrk, else the built-in asyncio one)",
    )
    p.add_argument("--database-url", default=None, help="bench against this database instead of a temp SQLite file")
    p.add_argument("--servers", type=int, default=500, help="servers to create and list (500; the API's maximum)")
    p.add_argument(
        "--endpoints", default=None, help="comma-separated routes to load: /server,/servers/{id},/servers (all)"
    )
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="POSTWARDEN_NAME=VALUE",
        help="an extra postwarden setting for the run (repeatable), e.g. POSTWARDEN_REDIS_URL=redis://127.0.0.1:6379/0",
    )
    p.add_argument(
        "--app-access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="postwarden's own access log (POSTWARDEN_ACCESS_LOG), on as shipped; uvicorn's is off in both apps",
    )
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="servers on the first CPU, the load client on the second (on)",
    )
    p.add_argument(
        "--uvicorn-flags",
        default=None,
        help=f"uvicorn flags for the bare app (default: {' '.join(DEFAULT_UVICORN_FLAGS)}, as postwarden serve)",
    )
    p.add_argument("--cli", default=None, help="the postwarden command (default: next to this python)")
    add_output(p, "api_throughput")
    p.add_argument(
        "--profile",
        action="store_true",
        help="after the measurements, sample postwarden with py-spy under the same load, one run per endpoint; "
        "raw stacks go to bench/results/profiles/",
    )
    p.add_argument("--py-spy", default=None, help="the py-spy command (default: next to this python, then PATH)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir with the servers' logs")
    p.add_argument(
        "--check", action="store_true", help=f"exit 1 if the {CHECK_ENDPOINT} ratio is below {CHECK_MIN_RATIO}"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--_pyload"]:
        pyload_main(argv[1])
        return 0

    def on_term(signum: int, frame: object) -> None:  # let the finally blocks run on SIGTERM too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    return run_main(run, parse_args(argv), interrupted="interrupted; servers stopped")


if __name__ == "__main__":
    sys.exit(main())
