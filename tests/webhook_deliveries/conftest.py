"""What the delivery tests share: a loopback receiver, short retry delays, the queue's worker
running in the test process, and a webhook created through the API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from postwarden.config import Settings
from postwarden.runtime import Runtime
from postwarden.tasks import TaskQueue
from tests.conftest import make_settings
from tests.webhook_deliveries.receiver import Receiver, serve_receiver

#: Retry delays short enough for a test, long enough to see them (the scheduler ticks each second).
RETRY_DELAYS = [1.0, 1.0]
TIMEOUT_SECONDS = 1.0


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The receiver listens on loopback, which only an operator's setting lets webhooks call."""
    return make_settings(
        database_url,
        tmp_path,
        allow_private_urls=True,
        webhook_retry_delays_seconds=RETRY_DELAYS,
        webhook_timeout_seconds=TIMEOUT_SECONDS,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve_receiver()


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[None]:
    """The background worker, as ``postwarden serve`` embeds it."""
    consumer = TaskQueue(runtime).consumer(embedded=True)
    consumer.start()
    yield
    consumer.stop(graceful=True)


@dataclass
class Hook:
    """A webhook on a fresh server, and the server token that reaches it."""

    client: TestClient
    id: int
    server_id: int
    headers: dict[str, str]
    signing_secret: str

    def test(self, record_type: str | None = None) -> dict[str, Any]:
        body = {} if record_type is None else {"RecordType": record_type}
        answer = self.client.post(f"/webhooks/{self.id}/test", json=body, headers=self.headers)
        assert answer.status_code == 200, answer.text
        delivery: dict[str, Any] = answer.json()
        return delivery

    def deliveries(self) -> list[dict[str, Any]]:
        answer = self.client.get(f"/webhooks/{self.id}/deliveries?count=500&offset=0", headers=self.headers)
        assert answer.status_code == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["Deliveries"]
        return found

    def delivery(self, delivery_id: int) -> dict[str, Any]:
        return next(d for d in self.deliveries() if d["ID"] == delivery_id)

    def wait_until_final(self, delivery_id: int, seconds: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while (found := self.delivery(delivery_id))["Status"] == "Pending":
            if time.monotonic() > deadline:
                pytest.fail(f"delivery {delivery_id} still pending: {found}")
            time.sleep(0.1)
        return found


MakeHook = Callable[..., Hook]


@pytest.fixture
def make_hook(client: TestClient, account_headers: dict[str, str], receiver: Receiver) -> MakeHook:
    def make(**fields: Any) -> Hook:
        server = client.post("/servers", json={"Name": f"Hooks {time.monotonic_ns()}"}, headers=account_headers)
        assert server.status_code == 200, server.text
        headers = {"X-Postmark-Server-Token": server.json()["ApiTokens"][0], "Accept": "application/json"}
        created = client.post("/webhooks", json={"Url": receiver.url, **fields}, headers=headers)
        assert created.status_code == 200, created.text
        webhook = created.json()
        return Hook(client, webhook["ID"], server.json()["ID"], headers, webhook["SigningSecret"])

    return make
