"""A webhook receiver on loopback for the delivery tests: it keeps every request it gets and
answers from a script, as a customer's endpoint would (succeed, fail, stall)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Answer:
    status: int = 200
    #: Seconds to wait before answering: longer than the webhook timeout is a timeout.
    stall: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    #: Answers for the coming requests, in order; 200 once it runs out.
    script: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/postmark"

    def answer_next(self, *answers: int | Answer) -> None:
        with self.lock:
            self.script.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def take_answer(self) -> Answer:
        with self.lock:
            return self.script.pop(0) if self.script else Answer()

    def record(self, request: Received) -> None:
        with self.lock:
            self.received.append(request)


def serve_receiver() -> Iterator[Receiver]:
    """Runs until the generator is closed (a pytest fixture's teardown)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as webhook senders use it

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.record(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()))
            answer = receiver.take_answer()
            time.sleep(answer.stall)
            try:
                self.send_response(answer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting and closed the connection

        def log_message(self, format: str, *args: object) -> None:
            return None

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # several workers connect at once

    server = Server(("127.0.0.1", 0), Handler)
    receiver = Receiver(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
