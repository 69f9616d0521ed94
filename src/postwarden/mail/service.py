"""Outgoing mail: written to the outbox in the caller's transaction, delivered by the
background queue after commit, so a rolled-back change never sends anything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.orm import Session

from postwarden.config import Settings
from postwarden.db import on_commit, utcnow
from postwarden.errors import NotFound, Reason
from postwarden.mail.models import OutboxMessage

QUEUED, SENT, HELD, FAILED = "queued", "sent", "held", "failed"


@dataclass(frozen=True)
class Delivery:
    status: str
    detail: str


class TemporaryFailure(Exception):
    """The relay could not take the message now; the queue retries with backoff."""


class MailService:
    def __init__(self, session: Session, settings: Settings, enqueue: Callable[[int], None]) -> None:
        self.session = session
        self.settings = settings
        self.enqueue = enqueue

    def queue(self, *, to_address: str, subject: str, text_body: str, account_id: int | None = None) -> OutboxMessage:
        message = OutboxMessage(account_id=account_id, to_address=to_address, subject=subject, text_body=text_body)
        self.session.add(message)
        self.session.flush()  # assigns message.id for the queue
        message_id = message.id
        on_commit(self.session, lambda: self.enqueue(message_id))
        return message

    def list_messages(self, *, limit: int = 50, status: str | None = None) -> list[OutboxMessage]:
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
        if status:
            query = query.where(OutboxMessage.status == status)
        return list(self.session.scalars(query))

    def get_message(self, message_id: int) -> OutboxMessage:
        message = self.session.get(OutboxMessage, message_id)
        if message is None:
            raise NotFound(Reason.OUTBOX_MESSAGE_NOT_FOUND, f"There is no outbox message {message_id}.")
        return message

    def deliver(self, message_id: int, *, final_attempt: bool) -> Delivery:
        """Send one queued message through the relay, or hold it when there is none.

        Raises TemporaryFailure (after recording it) so the queue retries, unless this was
        the last attempt, in which case the message is marked failed.
        """
        message = self.get_message(message_id)
        if message.status in (SENT, HELD):
            return Delivery(message.status, "already handled")
        if not self.settings.smtp_host:
            message.status = HELD
            message.last_error = "No SMTP relay is configured (POSTWARDEN_SMTP_HOST); the message stays in the outbox."
            return Delivery(HELD, message.last_error)
        message.attempts += 1
        try:
            asyncio.run(self._send(message))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            message.last_error = f"{type(exc).__name__}: {exc}"
            if final_attempt:
                message.status = FAILED
                return Delivery(FAILED, message.last_error)
            raise TemporaryFailure(message.last_error) from exc
        message.status = SENT
        message.sent_at = utcnow()
        message.last_error = ""
        return Delivery(SENT, "")

    async def _send(self, message: OutboxMessage) -> None:
        email = EmailMessage()
        email["From"] = self.settings.mail_from
        email["To"] = message.to_address
        email["Subject"] = message.subject
        email["Message-ID"] = make_msgid(domain="postwarden.localhost")
        email.set_content(message.text_body)
        security = self.settings.smtp_security
        password = self.settings.smtp_password.get_secret_value() if self.settings.smtp_password else None
        await aiosmtplib.send(
            email,
            hostname=self.settings.smtp_host,
            port=self.settings.smtp_port,
            username=self.settings.smtp_username or None,
            password=password,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            timeout=30,
        )
