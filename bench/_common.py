"""What the benches in this directory share, so that it stays the same in all of them.

Each bench is a script of its own, run as ``.venv/bin/python bench/<name>.py``; they find
a free port, start ``postwarden serve`` and wait for it, make and drop a fresh database per
size, read a process's CPU time, write ``bench/results/<name>.json`` and exit the same way.
One copy of those steps means a fix to one reaches every bench.

Only the standard library is imported at the top: ``api_throughput.py`` runs its load
client as a copy of itself and counts that process's CPU time, which imports of
postwarden, SQLAlchemy or uvicorn would inflate. The functions that need them import
them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from postwarden.config import Settings
    from postwarden.db import Base
    from postwarden.runtime import Runtime

BENCH_DIR = Path(__file__).resolve().parent
#: Rows per ``INSERT`` executemany when seeding.
CHUNK = 5_000
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def log(msg: str) -> None:
    """Progress goes to stderr, so that stdout holds the table alone."""
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The bench cannot go on; ``run_main`` prints the message and exits with 2."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def results_path(name: str) -> Path:
    return BENCH_DIR / "results" / f"{name}.json"


def http_call(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: object | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise BenchError(f"not a plain http URL: {url}")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    hdrs = {"Accept": "application/json", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request(method, target, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------
# processes


def tail(path: Path, n: int = 30) -> str:
    """The end of a process's log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def spawn(cmd: list[str], env: dict[str, str], log_path: Path, *, fork: bool = False) -> subprocess.Popen[bytes]:
    """A process in a session of its own, its output in ``log_path``: Ctrl-C in the
    terminal doesn't reach it, and a signal to its group takes down whatever it forks.

    ``fork``: the session is made in a ``preexec_fn``, which also makes Popen fork rather
    than vfork: the child's ``ru_maxrss`` then holds this process's RSS when it forked,
    not its peak (see ``audit.py``). Only while no other thread runs in this process.
    """
    with open(log_path, "wb") as fh:
        if fork:
            return subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                preexec_fn=os.setsid,  # noqa: PLW1509
            )
        return subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )


@dataclass
class Proc:
    """A process a bench started (see ``spawn``), named for its error messages."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def tail(self, n: int = 40) -> str:
        return tail(self.log_path, n)

    def terminate(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        """Waits for it to end until ``deadline`` (``time.monotonic``), then kills its group."""
        try:
            self.popen.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self, timeout: float = 8.0) -> None:
        self.terminate()
        self.wait_or_kill(time.monotonic() + timeout)


@dataclass
class ProcSet:
    """Processes stopped together, the last started first, on the way out."""

    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, cmd: list[str], *, env: dict[str, str], log_path: Path) -> Proc:
        proc = Proc(name, spawn(cmd, env, log_path), log_path)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        deadline = time.monotonic() + 8
        for proc in reversed(self.procs):
            proc.wait_or_kill(deadline)
        self.procs.clear()


def wait_ready(proc: Proc, base_url: str, *, path: str = "/readyz", timeout: float = 60.0) -> None:
    """Until ``GET path`` answers 200; fails at once, with the end of its log, if the
    process exits first."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise BenchError(
                f"{proc.name} exited with code {proc.popen.returncode} before "
                f"answering {path}; its output:\n{proc.tail()}"
            )
        try:
            status, _, body = http_call("GET", base_url + path, timeout=2)
            if status == 200:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.05)
    raise BenchError(
        f"{proc.name} did not answer GET {path} with 200 within {timeout:.0f}s "
        f"(last: {last}); its output:\n{proc.tail()}"
    )


def find_cli(explicit: str | None = None) -> Path:
    """The ``postwarden`` command the venv installed beside this interpreter, or ``explicit``."""
    path = Path(explicit) if explicit else Path(sys.executable).parent / "postwarden"
    if not path.exists():
        raise BenchError(
            f"postwarden CLI not found at {path}; run this with the project venv's python (.venv/bin/python)"
        )
    return path


@dataclass
class ServeProcess:
    """A ``postwarden serve`` process and the URL it answers on."""

    proc: Proc
    base_url: str


def start_postwarden(cli: Path, env: dict[str, str], log_path: Path, *, fork: bool = False) -> ServeProcess:
    """``postwarden serve`` on a free loopback port, not waited for (``wait_ready``): a bench
    with several lets them start up together."""
    port = free_port()
    popen = spawn([str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)], env, log_path, fork=fork)
    return ServeProcess(Proc("postwarden serve", popen, log_path), f"http://127.0.0.1:{port}")


def clean_environment() -> dict[str, str]:
    """This process's environment less any POSTWARDEN_* settings: a shell's must not skew the figures."""
    inherited = os.environ  # noqa: TID251 - the environment of the processes started here
    return {k: v for k, v in inherited.items() if not k.startswith("POSTWARDEN_")}


def child_environment(database_url: str, data_dir: Path, secret_key: str) -> dict[str, str]:
    """``make_settings``'s settings for a ``postwarden`` process, quieter logs besides."""
    return clean_environment() | {
        "POSTWARDEN_DATABASE_URL": database_url,
        "POSTWARDEN_DATA_DIR": str(data_dir),
        "POSTWARDEN_SECRET_KEY": secret_key,
        "POSTWARDEN_PUBLIC_URL": "http://postwarden.bench",
        "POSTWARDEN_EMBEDDED_WORKER": "false",
        "POSTWARDEN_ACCESS_LOG": "false",
        "POSTWARDEN_RATE_LIMIT_PER_TOKEN": "off",
        "POSTWARDEN_RATE_LIMIT_PER_IP": "off",
        "POSTWARDEN_LOG_LEVEL": "WARNING",
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used, all its threads (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --------------------------------------------------------------------------
# postwarden in this process


def make_settings(database_url: str, data_dir: Path, secret_key: str | None = None) -> Settings:
    """Nothing between the requests and the database: no rate limits, access log or worker."""
    from postwarden.config import Settings

    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": secret_key or secrets.token_hex(32),
        "public_url": "http://postwarden.bench",
        "rate_limit_per_token": "off",
        "rate_limit_per_ip": "off",
        "access_log": False,
        "embedded_worker": False,
    }
    return Settings(**values)


@contextlib.contextmanager
def serve_in_thread(app: Callable[..., Any], name: str) -> Iterator[str]:
    """An ASGI app served by uvicorn on a thread of this process, on a free loopback port,
    set up as ``postwarden serve`` sets it up; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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
            raise BenchError(f"{name} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# --------------------------------------------------------------------------
# databases


def database_kind(database_url: str | None) -> str:
    """``sqlite`` without ``--database-url``, else its scheme less the driver: ``postgresql``."""
    return database_url.split(":", 1)[0].split("+", 1)[0] if database_url else "sqlite"


def psycopg_url(url: str, schema: str | None = None) -> str:
    """``url`` through psycopg 3, with ``schema`` as its search path."""
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if schema:
        url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    return url


@contextlib.contextmanager
def fresh_database(
    database_url: str | None, name: str, size: int, tmp: Path, *, audit_key: bytes | None = None
) -> Iterator[str]:
    """The URL of an empty, migrated database for one size, removed on the way out: a
    SQLite file in ``tmp``, or in ``database_url`` a PostgreSQL schema of its own
    (``bench_<name>_<hex>_<size>``), so that runs never see each other's rows."""
    from sqlalchemy import create_engine, text

    from postwarden.migrations import upgrade

    if database_url is None:
        path = tmp / f"{name}-{size}.db"
        url = f"sqlite:///{path}"
        upgrade(url, audit_key=audit_key)
        try:
            yield url
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = f"bench_{name}_{secrets.token_hex(4)}_{size}"
    admin = create_engine(psycopg_url(database_url))
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            url = psycopg_url(database_url, schema)
            upgrade(url, audit_key=audit_key)
            yield url
        finally:
            with admin.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        admin.dispose()


def bulk_insert(connection: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Seeding without the services: a large account in seconds rather than hours."""
    from sqlalchemy import insert

    for start in range(0, len(rows), CHUNK):
        connection.execute(insert(model), list(rows[start : start + CHUNK]))


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
# command line and results


def add_sizes(parser: argparse.ArgumentParser, defaults: Sequence[int], counts: str) -> None:
    default = ",".join(map(str, defaults))
    parser.add_argument("--sizes", default=default, help=f"comma-separated {counts} ({default})")


def parse_sizes(text: str) -> list[int]:
    return sorted({int(s) for s in text.split(",")})


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """``--database-url`` for benches that make a schema per size (``fresh_database``)."""
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL database to bench in, one schema per size, dropped afterwards (default: temp SQLite)",
    )


def add_output(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument(
        "--output", default=str(results_path(name)), help=f"JSON results file (bench/results/{name}.json)"
    )


def run_main(
    run: Callable[[argparse.Namespace], int], args: argparse.Namespace, *, interrupted: str = "interrupted"
) -> int:
    """Runs the bench: its exit code, 2 with the message on a ``BenchError``, 130 on Ctrl-C."""
    try:
        return run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130


def generated_at() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def machine(**extra: Any) -> dict[str, Any]:
    """What the figures were taken on, for the results file."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(), **extra}


def versions(names: list[str]) -> dict[str, str | None]:
    """Installed versions of these packages (None: not installed), for the results file."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def rounded(value: Any) -> Any:
    """Floats to 3 decimals, all the way down: the results file is read, not recomputed."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def write_results(output: str | Path, result: dict[str, Any], *, seconds: float | None = None) -> None:
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {out}" + ("" if seconds is None else f" ({seconds:.0f}s in all)"))
