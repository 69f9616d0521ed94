"""The background queue (huey): SQLite under the data directory by default, Redis when
configured. Jobs are stored, so they survive a restart; ``postwarden serve`` runs a worker
in-process unless told not to, and ``postwarden worker`` runs one apart."""

from __future__ import annotations

import logging
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.api import Task
from huey.consumer import Consumer

from postwarden.mail.service import MailService, TemporaryFailure
from postwarden.runtime import Runtime

logger = logging.getLogger("postwarden.tasks")

MAIL_RETRIES = 5
MAIL_RETRY_DELAY_SECONDS = 10


class TaskQueue:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        if settings.redis_url:
            self.huey: Huey = RedisHuey("postwarden", url=settings.redis_url)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey("postwarden", filename=str(settings.data_dir / "tasks.db"))
        self.runtime = runtime

        def deliver_mail(message_id: int, task: Task) -> str:
            with runtime.db.session_scope() as session:
                service = MailService(session, runtime.settings, self.enqueue_mail)
                try:
                    return service.deliver(message_id, final_attempt=task.retries == 0).status
                except TemporaryFailure:
                    pass  # the attempt and its error are recorded; commit them, then retry
            raise TemporaryFailure(f"outbox message {message_id} not delivered yet")

        self._deliver_mail = self.huey.task(
            retries=MAIL_RETRIES, retry_delay=MAIL_RETRY_DELAY_SECONDS, retry_backoff=2, context=True
        )(deliver_mail)

    def enqueue_mail(self, message_id: int) -> None:
        self._deliver_mail(message_id)

    def consumer(self, *, workers: int = 1, embedded: bool = False, **options: Any) -> Consumer:
        consumer_class = EmbeddedConsumer if embedded else Consumer
        return consumer_class(self.huey, workers=workers, worker_type="thread", periodic=False, **options)


class EmbeddedConsumer(Consumer):  # type: ignore[misc]  # huey ships no type information
    """A consumer inside the web server: the server owns the process's signals."""

    def _set_signal_handlers(self) -> None:
        return None
