"""Webhook deliveries end to end: a test event asked for over the API, posted by the real
background queue to a real receiver on loopback, every attempt read back from the log."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.tasks import TaskQueue
from postwarden.webhook_deliveries.dispatcher import Dispatcher
from postwarden.webhook_deliveries.models import WebhookDelivery
from postwarden.webhook_deliveries.service import WebhookDeliveryService
from tests.conftest import free_port, make_settings
from tests.webhook_deliveries.conftest import RETRY_DELAYS, TIMEOUT_SECONDS, MakeHook
from tests.webhook_deliveries.receiver import Answer, Receiver

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def documented_snippet(language: str) -> str:
    """The signature check that docs/api.md gives readers, in ``language`` (python or js)."""
    section = API_DOC.read_text().split("## Webhook deliveries (beyond Postmark)", 1)[1].split("\n## ", 1)[0]
    (snippet,) = re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    return str(snippet)


def python_verifier() -> Callable[[str, bytes, str], bool]:
    namespace: dict[str, Any] = {}
    exec(documented_snippet("python"), namespace)  # noqa: S102 - the documented code, run as readers would
    verify: Callable[[str, bytes, str], bool] = namespace["verify_signature"]
    return verify


def node_verifies(tmp_path: Path, secret: str, body: bytes, header: str) -> bool:
    node = shutil.which("node")
    if node is None:
        pytest.skip("NODE.JS IS MISSING: the documented Node signature check was NOT run.")
    script = tmp_path / "verify.js"
    script.write_text(
        documented_snippet("js")
        + "\nconst [secret, bodyFile, header] = process.argv.slice(2);\n"
        + 'process.stdout.write(String(verifySignature(secret, require("node:fs").readFileSync(bodyFile), header)));\n'
    )
    body_file = tmp_path / "body.json"
    body_file.write_bytes(body)
    run = subprocess.run(
        [node, str(script), secret, str(body_file), header], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    return {"true": True, "false": False}[run.stdout]


def statuses(delivery: dict[str, Any]) -> list[int | None]:
    return [attempt["HttpStatus"] for attempt in delivery["Attempts"]]


def wait_for_requests(receiver: Receiver, count: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while len(receiver.received) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"the receiver got {len(receiver.received)} requests, not {count}")
        time.sleep(0.05)


def test_a_test_event_arrives_signed_with_basic_auth_and_the_webhooks_headers(
    make_hook: MakeHook, receiver: Receiver, worker: None, tmp_path: Path
) -> None:
    hook = make_hook(
        HttpAuth={"Username": "hooks", "Password": "s3cret:pass"},
        HttpHeaders=[{"Name": "X-Customer", "Value": "acme"}],
    )
    queued = hook.test("Bounce")
    assert queued["Status"] == "Pending" and queued["Attempts"] == []

    delivered = hook.wait_until_final(queued["ID"])
    assert delivered["Status"] == "Delivered"
    (attempt,) = delivered["Attempts"]
    assert list(attempt) == ["Number", "AttemptedAt", "HttpStatus", "Error", "DurationMilliseconds", "RetriesRemaining"]
    assert (attempt["Number"], attempt["HttpStatus"], attempt["Error"]) == (1, 200, "")
    assert attempt["RetriesRemaining"] == len(RETRY_DELAYS)
    (request,) = receiver.received
    assert request.path == "/hooks/postmark"
    assert json.loads(request.body) == queued["Payload"] == delivered["Payload"]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-pm-retries-remaining"] == str(len(RETRY_DELAYS))
    assert request.headers["x-customer"] == "acme"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"hooks:s3cret:pass").decode()

    signature = request.headers["x-postwarden-signature"]
    verify = python_verifier()
    assert verify(hook.signing_secret, request.body, signature)
    assert not verify("whsec_not-the-webhooks-secret", request.body, signature)
    assert not verify(hook.signing_secret, request.body.replace(b"john@", b"jane@"), signature)
    assert node_verifies(tmp_path, hook.signing_secret, request.body, signature)
    assert not node_verifies(tmp_path, "whsec_not-the-webhooks-secret", request.body, signature)


def test_credentials_in_the_url_become_basic_auth(make_hook: MakeHook, receiver: Receiver, worker: None) -> None:
    hook = make_hook(Url=receiver.url.replace("http://", "http://ops%40acme:p%3Ass@"))
    hook.wait_until_final(hook.test()["ID"])
    (request,) = receiver.received
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"ops@acme:p:ss").decode()


def test_a_500_is_retried_after_the_delay_and_then_delivered(
    make_hook: MakeHook, receiver: Receiver, worker: None
) -> None:
    hook = make_hook()
    receiver.answer_next(500)
    delivered = hook.wait_until_final(hook.test()["ID"])

    assert delivered["Status"] == "Delivered"
    assert statuses(delivered) == [500, 200]
    assert [a["RetriesRemaining"] for a in delivered["Attempts"]] == [2, 1]
    assert delivered["Attempts"][0]["Error"] == "the receiver answered HTTP 500"
    first, second = receiver.received
    assert [first.headers["x-pm-retries-remaining"], second.headers["x-pm-retries-remaining"]] == ["2", "1"]
    assert second.body == first.body
    assert second.at - first.at >= RETRY_DELAYS[0] - 0.05
    moments = [delivered["CreatedAt"], *(a["AttemptedAt"] for a in delivered["Attempts"]), delivered["CompletedAt"]]
    created, tried, retried, done = (datetime.fromisoformat(moment) for moment in moments)
    assert created <= tried < retried <= done


def test_after_the_last_retry_the_delivery_has_failed_with_every_attempt_logged(
    make_hook: MakeHook, receiver: Receiver, worker: None
) -> None:
    hook = make_hook()
    receiver.answer_next(503, 502, 500)
    failed = hook.wait_until_final(hook.test()["ID"])

    assert failed["Status"] == "Failed"
    assert statuses(failed) == [503, 502, 500]
    assert [a["RetriesRemaining"] for a in failed["Attempts"]] == [2, 1, 0]
    assert [a["Number"] for a in failed["Attempts"]] == [1, 2, 3]
    assert failed["NextAttemptAt"] is None and failed["CompletedAt"] is not None
    assert len(receiver.received) == 3


def test_a_400_is_dropped_and_never_retried(make_hook: MakeHook, receiver: Receiver, worker: None) -> None:
    hook = make_hook()
    receiver.answer_next(400)
    dropped = hook.wait_until_final(hook.test()["ID"])

    assert dropped["Status"] == "Dropped"
    assert statuses(dropped) == [400]
    time.sleep(sum(RETRY_DELAYS) + 1)  # past every retry it would have had
    assert len(receiver.received) == 1
    assert hook.delivery(dropped["ID"])["Attempts"] == dropped["Attempts"]


@pytest.mark.parametrize(
    "answer",
    [Answer(408), Answer(429), Answer(200, stall=TIMEOUT_SECONDS + 1)],
    ids=["408", "429", "timeout"],
)
def test_busy_receivers_and_timeouts_are_retried(
    make_hook: MakeHook, receiver: Receiver, worker: None, answer: Answer
) -> None:
    hook = make_hook()
    receiver.answer_next(answer)
    delivered = hook.wait_until_final(hook.test()["ID"])

    assert delivered["Status"] == "Delivered"
    first = delivered["Attempts"][0]
    if answer.stall:
        assert first["HttpStatus"] is None
        assert first["Error"] == f"no answer within {TIMEOUT_SECONDS:g} seconds"
        assert TIMEOUT_SECONDS * 1000 <= first["DurationMilliseconds"] < (TIMEOUT_SECONDS + 1) * 1000
    else:
        assert first["HttpStatus"] == answer.status
    assert statuses(delivered)[1:] == [200]


def test_an_unreachable_receiver_is_retried_until_it_fails(make_hook: MakeHook, worker: None) -> None:
    hook = make_hook(Url=f"http://127.0.0.1:{free_port()}/closed")
    failed = hook.wait_until_final(hook.test()["ID"])

    assert failed["Status"] == "Failed"
    assert statuses(failed) == [None, None, None]
    assert all(a["Error"].startswith("ConnectError") for a in failed["Attempts"])


def test_every_record_type_arrives_as_its_sample(make_hook: MakeHook, receiver: Receiver, worker: None) -> None:
    hook = make_hook()
    kinds = ["Delivery", "Bounce", "SpamComplaint", "Open", "Click", "SubscriptionChange"]
    queued = [hook.test(kind) for kind in kinds]
    for delivery in queued:
        assert hook.wait_until_final(delivery["ID"])["Status"] == "Delivered"
    assert sorted(json.loads(r.body)["RecordType"] for r in receiver.received) == sorted(kinds)
    assert [d["RecordType"] for d in hook.deliveries()] == kinds[::-1]  # newest first


def test_a_host_resolving_to_loopback_is_refused_once_private_urls_are_not_allowed(
    make_hook: MakeHook, receiver: Receiver, database_url: str, tmp_path: Path
) -> None:
    """The webhook was created while private targets were allowed; the operator has since
    turned that off. ``localhost`` is a name: only the connection-time check sees its address."""
    hook = make_hook(Url=receiver.url.replace("127.0.0.1", "localhost"))
    strict = Runtime.start(make_settings(database_url, tmp_path, allow_private_urls=False))
    consumer = TaskQueue(strict).consumer(embedded=True)
    consumer.start()
    try:
        refused = hook.wait_until_final(hook.test()["ID"])
    finally:
        consumer.stop(graceful=True)
        strict.db.dispose()

    assert refused["Status"] == "Failed"
    (attempt,) = refused["Attempts"]
    assert attempt["HttpStatus"] is None
    assert re.fullmatch(
        r"localhost resolves to (127\.0\.0\.1|::1), a private, loopback or link-local address, "
        r"which this installation does not call",
        attempt["Error"],
    ), attempt["Error"]
    assert receiver.received == []


def test_workers_draining_at_once_never_post_a_delivery_twice(
    make_hook: MakeHook, receiver: Receiver, runtime: Runtime
) -> None:
    hook = make_hook()
    queued = [hook.test() for _ in range(150)]
    dispatchers = [Dispatcher(runtime) for _ in range(3)]
    threads = [threading.Thread(target=d.drain, kwargs={"max_seconds": 30}) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    message_ids = [json.loads(r.body)["MessageID"] for r in receiver.received]
    assert sorted(message_ids) == sorted(d["Payload"]["MessageID"] for d in queued)
    log = hook.deliveries()
    assert {d["Status"] for d in log} == {"Delivered"}
    assert all(len(d["Attempts"]) == 1 for d in log)


def test_a_rolled_back_test_posts_nothing(make_hook: MakeHook, runtime: Runtime, receiver: Receiver) -> None:
    hook = make_hook()
    queue = TaskQueue(runtime)

    def failing_request() -> None:
        with runtime.db.session_scope() as session:
            service = WebhookDeliveryService(session, Actor.system("tests"), queue.wake_webhooks)
            service.send_test(hook.server_id, hook.id)
            raise RuntimeError("the request failed after the test was queued")

    with pytest.raises(RuntimeError):
        failing_request()
    with runtime.db.session_scope(write=False) as session:
        assert session.scalars(select(WebhookDelivery)).all() == []
    assert len(queue.huey) == 0
