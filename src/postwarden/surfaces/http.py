"""What every HTTP surface shares: JSON responses and the per-request middleware
(request id, rate limits, metrics, access log), written as one plain ASGI layer because
each extra middleware layer costs the hot path measurably."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from hashlib import blake2b
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postwarden.ratelimit import RateLimiter, Verdict

JSON_MEDIA_TYPE = "application/json; charset=utf-8"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_TOKEN_HEADERS = frozenset({b"x-postmark-server-token", b"x-postmark-account-token", b"authorization"})


class AccessLog:
    """One JSON line per request on stderr, in the shape of ``logs.JSONFormatter``.

    Lines are written together once per event-loop turn rather than through ``logging``:
    the logging module's per-record work cost the hot path a third of its throughput.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._pending: list[str] = []
        self._flush_scheduled = False
        self._second = -1
        self._second_text = ""

    def write(
        self,
        *,
        request_id: str,
        method: str,
        path: str,
        route: str,
        status: int,
        duration_ms: float,
        client_ip: str,
        user_agent: str,
    ) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        # Built by hand: json.dumps of a dictionary was the largest cost of a cached read.
        self._pending.append(
            f'{{"time":"{self._second_text}.{int(now % 1 * 1000):03d}+00:00","level":"info",'
            f'"logger":"postwarden.access","message":"request","request_id":{_json_string(request_id)},'
            f'"method":{_json_string(method)},"path":{_json_string(path)},"route":{_json_string(route)},'
            f'"status":{status:d},"duration_ms":{duration_ms!r},"client_ip":{_json_string(client_ip)},'
            f'"user_agent":{_json_string(user_agent)}}}'
        )
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        lines, self._pending = self._pending, []
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


def dump_json(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


class JSONBytesResponse(Response):
    media_type = JSON_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return dump_json(content)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        #: (method, route, status) -> the labelled children, looked up once per combination
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.registry = registry
        self.requests = Counter(
            "postwarden_http_requests_total",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "postwarden_http_request_duration_seconds",
            "HTTP request duration by route.",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


class Mounted:
    """Sends the requests under ``prefix`` to ``mounted``, as a Starlette ``Mount`` would (the
    prefix moves into ``root_path``), and all others on to ``app``: one test of the path, not
    a walk past every route of the other surfaces."""

    def __init__(self, app: ASGIApp, prefix: str, mounted: ASGIApp) -> None:
        self.app = app
        self.prefix = prefix
        self.mounted = mounted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == self.prefix or path.startswith(self.prefix + "/")):
            scope["root_path"] = scope.get("root_path", "") + self.prefix
            scope["mount_path"] = self.prefix  # metrics and logs name the route in full
            await self.mounted(scope, receive, send)
            return
        await self.app(scope, receive, send)


ErrorRenderer = Callable[[Verdict], Response]


class RequestMiddleware:
    """Request id in and out, rate limits, metrics and one JSON access-log line."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        metrics: Metrics,
        rate_limited: ErrorRenderer,
        access_log: AccessLog | None,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.metrics = metrics
        self.rate_limited = rate_limited
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming_id = token = user_agent = b""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming_id = value
            elif name == b"user-agent":
                user_agent = value
            elif name in _TOKEN_HEADERS and not token:
                token = value
        request_id = incoming_id.decode("latin-1")
        if not _REQUEST_ID_RE.match(request_id):
            request_id = os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        client = scope.get("client")
        ip = client[0] if client else ""
        extra_headers = [(b"x-request-id", request_id.encode())]

        verdict: Verdict | None = None
        if scope["path"] not in _UNLIMITED_PATHS:
            # Tokens are keyed by a hash: no plaintext secret becomes a key in memory or Redis.
            token_key = blake2b(token.strip().lower(), digest_size=16).hexdigest() if token else None
            verdict = await self.limiter.check(token_key=token_key, ip=ip)
            if verdict is not None:
                extra_headers += (
                    (b"ratelimit-limit", b"%d" % verdict.limit),
                    (b"ratelimit-remaining", b"%d" % verdict.remaining),
                    (b"ratelimit-reset", b"%d" % verdict.reset_seconds),
                )
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        try:
            if verdict is not None and not verdict.allowed:
                await self.rate_limited(verdict)(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            self._observe(
                scope=scope, status=status, started=started, request_id=request_id, ip=ip, user_agent=user_agent
            )

    def _observe(
        self,
        *,
        scope: MutableMapping[str, Any],
        status: int,
        started: float,
        request_id: str,
        ip: str,
        user_agent: bytes,
    ) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        matched = getattr(route, "path", None)
        route_path = scope.get("mount_path", "") + matched if matched else "unmatched"
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        self.metrics.observe(method, route_path, status, elapsed)
        if self.access_log is not None:
            self.access_log.write(
                request_id=request_id,
                method=method,
                path=scope["path"],
                route=route_path,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
                client_ip=ip,
                user_agent=user_agent.decode("latin-1"),
            )
