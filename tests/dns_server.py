"""A real authoritative DNS server on loopback, so DNS checks are tested over the wire, not mocked.

Records are set by the test at run time; answers go out over UDP and TCP on one port, as a
resolver retries over TCP when a UDP answer is truncated.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import CNAME, QTYPE, RCODE, RR, TXT, DNSError
from dnslib.server import DNSLogger, DNSServer

#: A DNS character-string holds at most 255 bytes (RFC 1035 §3.3); longer TXT data is several.
MAX_CHARACTER_STRING = 255


def _key(name: str) -> str:
    return name.rstrip(".").lower()


def split_txt(value: str) -> list[bytes]:
    data = value.encode()
    return [data[i : i + MAX_CHARACTER_STRING] for i in range(0, len(data), MAX_CHARACTER_STRING)] or [b""]


class DnsTestServer:
    """Serves whatever the test added; unknown names are NXDOMAIN, known names without the type are empty."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._txt: dict[str, list[list[bytes]]] = {}
        self._cname: dict[str, str] = {}
        self._servfail: set[str] = set()
        self._drop: set[str] = set()
        self._servers: list[Any] = []
        self._threads: list[threading.Thread] = []
        self.port = 0

    @property
    def nameserver(self) -> str:
        """What ``DnsChecker`` takes: ``127.0.0.1:PORT``."""
        return f"127.0.0.1:{self.port}"

    def add_txt(self, name: str, value: str | list[str]) -> None:
        """One TXT record; a string is split into 255-byte character-strings, a list is used as given."""
        chunks = split_txt(value) if isinstance(value, str) else [chunk.encode() for chunk in value]
        with self._lock:
            self._txt.setdefault(_key(name), []).append(chunks)

    def add_cname(self, name: str, target: str) -> None:
        with self._lock:
            self._cname[_key(name)] = target

    def set_servfail(self, name: str) -> None:
        with self._lock:
            self._servfail.add(_key(name))

    def set_timeout(self, name: str) -> None:
        """Queries for ``name`` get no answer at all, so the client times out."""
        with self._lock:
            self._drop.add(_key(name))

    def clear(self) -> None:
        with self._lock:
            self._txt.clear()
            self._cname.clear()
            self._servfail.clear()
            self._drop.clear()

    def resolve(self, request: Any, handler: Any) -> Any:
        qname = request.q.qname
        name = _key(str(qname))
        qtype = request.q.qtype
        reply = request.reply()
        reply.header.aa = 1
        with self._lock:
            if name in self._drop:
                # The handler sends nothing when the resolver raises DNSError.
                raise DNSError(f"dropping the query for {name}")
            if name in self._servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            if name in self._cname:
                target = self._cname[name]
                reply.add_answer(RR(qname, QTYPE.CNAME, rdata=CNAME(target), ttl=60))
                if qtype == QTYPE.TXT:
                    for chunks in self._txt.get(_key(target), []):
                        reply.add_answer(RR(target, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
                return reply
            if name not in self._txt:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            if qtype == QTYPE.TXT:
                for chunks in self._txt[name]:
                    reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
            return reply

    def start(self) -> None:
        logger = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        for _attempt in range(20):
            udp = DNSServer(self, address="127.0.0.1", port=0, logger=logger)
            port = int(udp.server.server_address[1])
            try:
                tcp = DNSServer(self, address="127.0.0.1", port=port, tcp=True, logger=logger)
            except OSError:
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                # A short poll interval keeps shutdown, and so each test's teardown, quick.
                thread = threading.Thread(
                    target=server.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
                )
                thread.start()
                self._threads.append(thread)
            return
        raise RuntimeError("no free port for both UDP and TCP on 127.0.0.1")

    def stop(self) -> None:
        for server in self._servers:
            server.server.shutdown()
            server.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers = []
        self._threads = []


@pytest.fixture
def dns_server() -> Iterator[DnsTestServer]:
    server = DnsTestServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
