"""Outgoing mail through the real queue (huey on SQLite) to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select

from postwarden.mail.models import OutboxMessage
from postwarden.mail.service import MailService
from postwarden.runtime import Runtime
from postwarden.surfaces.cli.main import cli
from postwarden.tasks import TaskQueue
from tests.conftest import SECRET, free_port, make_settings


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = False

    async def handle_DATA(self, _server: object, _session: object, envelope: object) -> str:  # noqa: N802 - aiosmtpd's hook name
        if self.refuse:
            return "451 4.3.0 try again later"
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.05)


def mail_runtime(database_url: str, tmp_path: Path, port: int | None) -> Runtime:
    overrides = {"smtp_host": "127.0.0.1", "smtp_port": port} if port else {}
    return Runtime.start(make_settings(database_url, tmp_path, **overrides))


def queue_one(runtime: Runtime, queue: TaskQueue, to: str = "someone@example.com") -> int:
    with runtime.db.session_scope() as session:
        message = MailService(session, runtime.settings, queue.enqueue_mail).queue(
            to_address=to, subject="Confirm your sender", text_body="Open http://postwarden.test/confirm/abc"
        )
    return message.id


def status_of(runtime: Runtime, message_id: int) -> OutboxMessage:
    with runtime.db.session_scope(write=False) as session:
        found = session.get(OutboxMessage, message_id)
        assert found is not None
        return found


def test_queued_mail_reaches_the_smtp_server(database_url: str, tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    runtime = mail_runtime(database_url, tmp_path, port)
    queue = TaskQueue(runtime)
    consumer = queue.consumer(embedded=True)
    consumer.start()
    try:
        message_id = queue_one(runtime, queue)
        wait_for(lambda: status_of(runtime, message_id).status == "sent")
    finally:
        consumer.stop(graceful=True)
    (delivered,) = inbox.messages
    assert delivered["To"] == "someone@example.com"
    assert delivered["Subject"] == "Confirm your sender"
    assert "http://postwarden.test/confirm/abc" in delivered.get_payload()
    assert status_of(runtime, message_id).attempts == 1


def test_a_rolled_back_change_sends_nothing(database_url: str, tmp_path: Path) -> None:
    runtime = mail_runtime(database_url, tmp_path, None)
    queue = TaskQueue(runtime)

    def failing_change() -> None:
        with runtime.db.session_scope() as session:
            mail = MailService(session, runtime.settings, queue.enqueue_mail)
            mail.queue(to_address="a@example.com", subject="s", text_body="b")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert len(queue.huey) == 0
    with runtime.db.session_scope(write=False) as session:
        assert session.scalars(select(OutboxMessage)).all() == []


def test_jobs_survive_a_restart(database_url: str, tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    runtime = mail_runtime(database_url, tmp_path, port)
    message_id = queue_one(runtime, TaskQueue(runtime))  # queued while no worker runs
    assert status_of(runtime, message_id).status == "queued"

    restarted = TaskQueue(mail_runtime(database_url, tmp_path, port))  # a new process's queue
    consumer = restarted.consumer(embedded=True)
    consumer.start()
    try:
        wait_for(lambda: status_of(runtime, message_id).status == "sent")
    finally:
        consumer.stop(graceful=True)
    assert len(inbox.messages) == 1


def test_a_refusing_relay_is_retried_and_the_error_is_visible(
    database_url: str, tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    inbox.refuse = True
    runtime = mail_runtime(database_url, tmp_path, port)
    queue = TaskQueue(runtime)
    message_id = queue_one(runtime, queue)
    task = queue.huey.dequeue()
    queue.huey.execute(task)
    first = status_of(runtime, message_id)
    assert (first.status, first.attempts) == ("queued", 1)
    assert "451" in first.last_error
    assert queue.huey.scheduled_count() == 1  # the retry waits with backoff

    inbox.refuse = False
    (retry,) = queue.huey.scheduled()
    assert retry.eta is not None and retry.retries == 4
    queue.huey.execute(retry, timestamp=retry.eta)  # as the scheduler does once the delay is over
    assert status_of(runtime, message_id).status == "sent"
    assert len(inbox.messages) == 1


def test_without_a_relay_mail_is_held_in_the_outbox_and_shown_by_the_cli(database_url: str, tmp_path: Path) -> None:
    runtime = mail_runtime(database_url, tmp_path, None)
    queue = TaskQueue(runtime)
    message_id = queue_one(runtime, queue, to="held@example.com")
    queue.huey.execute(queue.huey.dequeue())
    held = status_of(runtime, message_id)
    assert held.status == "held" and "POSTWARDEN_SMTP_HOST" in held.last_error

    env = {
        "POSTWARDEN_DATABASE_URL": database_url,
        "POSTWARDEN_DATA_DIR": str(tmp_path),
        "POSTWARDEN_SECRET_KEY": SECRET,
    }
    listing = CliRunner().invoke(cli, ["outbox", "list"], env=env)
    assert listing.exit_code == 0 and "held@example.com" in listing.output and "held" in listing.output
    shown = CliRunner().invoke(cli, ["outbox", "show", str(message_id)], env=env)
    assert shown.exit_code == 0 and "http://postwarden.test/confirm/abc" in shown.output
    missing = CliRunner().invoke(cli, ["outbox", "show", "999999"], env=env)
    assert missing.exit_code == 1 and "999999" in missing.output
