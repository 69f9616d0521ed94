"""A worker killed in the middle of a delivery's retries loses nothing: ``postwarden worker``
runs as a real process against the test database, dies by SIGKILL after the first failed
attempt, and a new worker on another host (an empty task queue) finishes the delivery."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.webhook_deliveries.conftest import MakeHook
from tests.webhook_deliveries.receiver import Receiver

POSTWARDEN = Path(sys.executable).with_name("postwarden")
#: Long enough to kill the first worker and start the next one before the retry is due.
FIRST_RETRY_SECONDS = 4


@contextmanager
def worker_process(database_url: str, data_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    data_dir.mkdir(exist_ok=True)
    env = {
        "POSTWARDEN_DATABASE_URL": database_url,
        "POSTWARDEN_DATA_DIR": str(data_dir),
        "POSTWARDEN_SECRET_KEY": SECRET,
        "POSTWARDEN_ALLOW_PRIVATE_URLS": "true",
        "POSTWARDEN_WEBHOOK_RETRY_DELAYS_SECONDS": f"{FIRST_RETRY_SECONDS},1",
        "POSTWARDEN_WEBHOOK_TIMEOUT_SECONDS": "2",
    }
    with (data_dir / "worker.log").open("wb") as log:
        process = subprocess.Popen([str(POSTWARDEN), "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_worker_killed_between_retries_loses_no_delivery(
    make_hook: MakeHook, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    hook = make_hook()
    receiver.answer_next(500)
    with worker_process(database_url, tmp_path) as first:  # the API's own host: it hears the wake
        delivery_id = hook.test()["ID"]
        wait_for(lambda: len(hook.delivery(delivery_id)["Attempts"]) == 1, "the first attempt to be logged")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    killed_at = time.time()
    pending = hook.delivery(delivery_id)
    assert pending["Status"] == "Pending"
    assert [a["HttpStatus"] for a in pending["Attempts"]] == [500]
    assert len(receiver.received) == 1

    with worker_process(database_url, tmp_path / "another-host") as second:
        final = hook.wait_until_final(delivery_id, seconds=30)
        assert second.poll() is None, (tmp_path / "another-host" / "worker.log").read_text()

    assert final["Status"] == "Delivered"
    assert [(a["Number"], a["HttpStatus"], a["RetriesRemaining"]) for a in final["Attempts"]] == [
        (1, 500, 2),
        (2, 200, 1),
    ]
    first_post, retry = receiver.received
    assert retry.body == first_post.body
    assert retry.at - first_post.at >= FIRST_RETRY_SECONDS - 0.05  # the retry waited its delay, not the restart
    assert retry.at > killed_at
