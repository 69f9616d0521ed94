"""One attempt to post a delivery: the HTTP request Postmark would make, signed, and what
its answer means for the delivery.

Requests go through one keep-alive connection pool per worker run. The address a host
name resolves to is checked when the connection is made, and the connection goes to that
checked address, so a name that resolves to a private address (at creation or only later)
is refused unless the operator allows private targets.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from types import TracebackType
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

import httpcore

from postwarden import __version__
from postwarden.db import utcnow

SIGNATURE_HEADER: Final = "X-Postwarden-Signature"
RETRIES_HEADER: Final = "X-PM-Retries-Remaining"
USER_AGENT: Final = f"postwarden/{__version__} (webhooks)"
#: Enough of an answer to keep the connection for the next request; a receiver that sends
#: more is cut off (it only needs to say 2xx).
MAX_RESPONSE_BYTES: Final = 64 * 1024
#: Statuses that may mean something else tomorrow: the receiver is busy or broken.
RETRIED_STATUSES: Final = frozenset({408, 429})


class Outcome(Enum):
    DELIVERED = "delivered"
    #: Try again later (5xx, 408, 429, no answer), while retries remain.
    RETRY = "retry"
    #: The receiver refused it for good (any other status).
    DROPPED = "dropped"
    #: Never to be posted: the URL names a private address or cannot be called at all.
    REFUSED = "refused"


@dataclass(frozen=True)
class Outgoing:
    """Everything one attempt needs, read from the database before any request is made."""

    delivery_id: int
    url: str
    body: bytes
    custom_headers: list[tuple[str, str]]
    username: str
    password: str
    signing_secret: str
    retries_remaining: int


@dataclass(frozen=True)
class AttemptResult:
    delivery_id: int
    attempted_at: datetime
    http_status: int | None
    error: str
    duration_ms: int
    outcome: Outcome


class PrivateAddressRefused(Exception):
    """The URL's host is, or resolves to, an address the operator does not let postwarden call."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value: HMAC-SHA256, keyed with the webhook's signing secret,
    over ``"<timestamp>."`` and the exact body, so a receiver can refuse old replays."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def outcome_of(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status >= 500 or status in RETRIED_STATUSES:
        return Outcome.RETRY
    return Outcome.DROPPED


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself and connects to the addresses it checked."""

    def __init__(self, *, allow_private: bool) -> None:
        self._backend = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface, passed on
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        private = [address for address in addresses if not is_public(address)]
        if private and not self._allow_private:
            raise PrivateAddressRefused(
                f"{host} resolves to {private[0]}, a private, loopback or link-local address, "
                "which this installation does not call"
            )
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # getaddrinfo answers at least one address or raises
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"{host} could not be resolved: {exc.strerror}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class Sender:
    """Posts attempts over one connection pool; use as ``async with Sender(...) as sender``."""

    def __init__(self, *, timeout_seconds: float, max_connections: int, allow_private: bool) -> None:
        self._timeout = timeout_seconds
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=max_connections,
            keepalive_expiry=30,
            network_backend=GuardedBackend(allow_private=allow_private),
        )

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._pool.aclose()

    async def post(self, outgoing: Outgoing) -> AttemptResult:
        attempted_at = utcnow()
        started = time.monotonic()
        status: int | None = None
        error = ""
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._request(outgoing)
            outcome = outcome_of(status)
            if outcome is not Outcome.DELIVERED:
                error = f"the receiver answered HTTP {status}"
        except PrivateAddressRefused as exc:
            outcome, error = Outcome.REFUSED, str(exc)
        except (ValueError, httpcore.UnsupportedProtocol, httpcore.LocalProtocolError) as exc:
            outcome, error = Outcome.REFUSED, f"the URL cannot be called: {exc}"
        except (TimeoutError, httpcore.TimeoutException):
            outcome, error = Outcome.RETRY, f"no answer within {self._timeout:g} seconds"
        except (httpcore.NetworkError, httpcore.RemoteProtocolError, OSError) as exc:
            outcome, error = Outcome.RETRY, f"{type(exc).__name__}: {exc}".rstrip(": ")
        duration_ms = round((time.monotonic() - started) * 1000)
        return AttemptResult(outgoing.delivery_id, attempted_at, status, error, duration_ms, outcome)

    async def _request(self, outgoing: Outgoing) -> int:
        parts = urlsplit(outgoing.url)
        host = parts.hostname or ""
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        url = httpcore.URL(scheme=parts.scheme, host=host, port=parts.port, target=target)
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self._timeout)
        async with self._pool.stream(
            "POST",
            url,
            headers=request_headers(outgoing, parts.netloc.rpartition("@")[2], _url_credentials(parts)),
            content=outgoing.body,
            extensions={"timeout": timeouts},
        ) as response:
            received = 0
            async for chunk in response.aiter_stream():
                received += len(chunk)
                if received > MAX_RESPONSE_BYTES:
                    break
            return response.status


def _url_credentials(parts: SplitResult) -> tuple[str, str] | None:
    """Basic auth written into the URL (``https://user:pass@host/``), as Postmark takes it."""
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


def request_headers(outgoing: Outgoing, host: str, url_credentials: tuple[str, str] | None) -> list[tuple[str, str]]:
    """The webhook's own headers, then the delivery's, which no custom header overrides."""
    headers: dict[str, tuple[str, str]] = {"user-agent": ("User-Agent", USER_AGENT)}
    for name, value in outgoing.custom_headers:
        headers[name.lower()] = (name, value)
    credentials = (outgoing.username, outgoing.password) if outgoing.username else url_credentials
    if credentials is not None:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
        headers["authorization"] = ("Authorization", f"Basic {token}")
    timestamp = int(time.time())
    for name, value in (
        ("Host", host),
        ("Content-Type", "application/json"),
        (RETRIES_HEADER, str(outgoing.retries_remaining)),
        (SIGNATURE_HEADER, sign(outgoing.signing_secret, outgoing.body, timestamp)),
    ):
        headers[name.lower()] = (name, value)
    return list(headers.values())
