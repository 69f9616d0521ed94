"""The background queue (huey): SQLite under the data directory by default, Redis when
configured. Jobs are stored, so they survive a restart; ``postwarden serve`` runs a worker
in-process unless told not to, and ``postwarden worker`` runs one apart.

Webhook deliveries keep their own durable queue in the database (the delivery rows); the
huey job only drains it. A job is queued when a delivery is created (many creations share
one queued job), scheduled for the next retry when a run ends, and queued by every worker
as it starts, which picks up whatever a process that died left due.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Final

from huey import Huey, RedisHuey, SqliteHuey, crontab
from huey.api import Task
from huey.consumer import Consumer

from postwarden.audit_log.service import AuditLogService
from postwarden.db import utcnow
from postwarden.identity import Actor, Via
from postwarden.mail.service import MailService, TemporaryFailure
from postwarden.runtime import Runtime
from postwarden.webhook_deliveries.dispatcher import Dispatcher

logger = logging.getLogger("postwarden.tasks")

MAIL_RETRIES = 5
MAIL_RETRY_DELAY_SECONDS = 10
#: How long one run drains webhook deliveries before it makes way for other jobs (it is
#: queued again at once when deliveries are still due).
WEBHOOK_RUN_SECONDS = 30
#: Set while a drain is queued and not yet started: wakes meanwhile need no job of their own.
_DRAIN_QUEUED: Final = "webhook-deliveries:drain-queued"
#: When the scheduled drain runs, while it is scheduled and not yet started.
_WAKE_AT: Final = "webhook-deliveries:wake-at"


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

        def drain_webhook_deliveries(wake_at: str | None = None) -> None:
            self.huey.delete(_DRAIN_QUEUED)  # wakes from now on are covered only by a new run
            if wake_at is not None and self.huey.get(_WAKE_AT, peek=True) == wake_at:
                self.huey.delete(_WAKE_AT)
            drained = Dispatcher(runtime).drain(max_seconds=WEBHOOK_RUN_SECONDS)
            if drained.attempts:
                logger.info("webhook deliveries: %d attempts made and logged", drained.attempts)
            if drained.more_due:
                self.wake_webhooks()
            elif drained.next_due_at is not None:
                self._wake_webhooks_at(drained.next_due_at)

        self._drain_webhooks = self.huey.task()(drain_webhook_deliveries)

        def sweep_webhook_deliveries() -> None:
            # A marker left by a process that died before its run started would hold back every wake.
            self.huey.delete(_DRAIN_QUEUED)
            self.wake_webhooks()

        self.huey.on_startup()(sweep_webhook_deliveries)

        def prune_audit_log() -> None:
            days = runtime.settings.audit_retention_days
            if days is None:
                return
            with runtime.db.session_scope() as session:
                pruned = AuditLogService(session, Actor.system("audit retention", via=Via.WORKER)).prune(
                    runtime.keyring.audit_key, utcnow() - timedelta(days=days)
                )
            for entry in pruned:
                logger.info("audit log: %d events of chain %d pruned", entry.events, entry.chain)

        # Hourly on every worker: pruning is idempotent, and each chain's head lock keeps
        # two workers from pruning one chain at once.
        self.prune_audit_log = self.huey.periodic_task(crontab(minute="17"))(prune_audit_log)

    def enqueue_mail(self, message_id: int) -> None:
        self._deliver_mail(message_id)

    def wake_webhooks(self) -> None:
        """Have a worker post the webhook deliveries that are due, soon."""
        if self.huey.put_if_empty(_DRAIN_QUEUED, "1"):
            self._drain_webhooks()

    def _wake_webhooks_at(self, due: datetime) -> None:
        scheduled = self.huey.get(_WAKE_AT, peek=True)
        if scheduled is not None and utcnow() <= datetime.fromisoformat(scheduled) <= due:
            return  # that run comes first, and schedules the next one itself
        wake_at = due.isoformat()
        self.huey.put(_WAKE_AT, wake_at)
        self._drain_webhooks.schedule(args=(wake_at,), eta=due)

    def consumer(self, *, workers: int = 1, embedded: bool = False, **options: Any) -> Consumer:
        consumer_class = EmbeddedConsumer if embedded else Consumer
        # An idle worker looks for jobs every second at most (huey's default backs off to ten).
        options.setdefault("max_delay", 1.0)
        return consumer_class(self.huey, workers=workers, worker_type="thread", periodic=True, **options)


class EmbeddedConsumer(Consumer):  # type: ignore[misc]  # huey ships no type information
    """A consumer inside the web server: the server owns the process's signals."""

    def _set_signal_handlers(self) -> None:
        return None
