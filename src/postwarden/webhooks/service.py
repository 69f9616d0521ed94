"""Webhooks: the only code that creates, edits, re-keys or deletes them.

A webhook belongs to one stream of one server. Its secrets (the Basic auth password and the
signing secret of its deliveries) are encrypted with the keyring rather than hashed: Postmark
shows the password again, and every delivery needs both in clear. Callers who may read the
server's webhooks but not change them (View only) see neither, nor credentials in the URL.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import utcnow
from postwarden.errors import Conflict, InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, allows
from postwarden.runtime import Runtime
from postwarden.servers.models import MessageStream, Server
from postwarden.servers.service import reach_server
from postwarden.urls import outbound_url_problem
from postwarden.webhooks.models import Webhook

#: Each trigger and its fields, in Postmark's order; every one is always stored and shown.
TRIGGERS: Final[Mapping[str, tuple[str, ...]]] = {
    "Open": ("Enabled", "PostFirstOpenOnly"),
    "Click": ("Enabled",),
    "Delivery": ("Enabled",),
    "Bounce": ("Enabled", "IncludeContent"),
    "SpamComplaint": ("Enabled", "IncludeContent"),
    "SubscriptionChange": ("Enabled",),
}
#: Postmark's bounce and spam complaint webhooks exist on transactional streams only; a
#: broadcast stream reports both as subscription changes.
TRANSACTIONAL_ONLY_TRIGGERS: Final = ("Bounce", "SpamComplaint")
BROADCAST_STREAM_TYPE: Final = "Broadcasts"
INBOUND_STREAM_TYPE: Final = "Inbound"
DEFAULT_STREAM: Final = "outbound"
#: Postmark limits webhooks per stream without saying how many; its web pages offer ten URLs.
WEBHOOKS_PER_STREAM: Final = 10
USERNAME_MAX_LENGTH: Final = 255
SIGNING_SECRET_PREFIX: Final = "whsec_"
#: Headers that frame the HTTP request itself: set by a webhook, they would corrupt every delivery.
FRAMING_HEADERS: Final = frozenset({"connection", "content-length", "host", "transfer-encoding"})
#: RFC 9110 field names (tokens).
HEADER_NAME_PATTERN: Final = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
#: No control characters other than tab: no HTTP header value may carry them.
HEADER_VALUE_PATTERN: Final = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
_HEADER_NAME_RE: Final = re.compile(HEADER_NAME_PATTERN)
_HEADER_VALUE_RE: Final = re.compile(HEADER_VALUE_PATTERN)
#: Fields an edit may send back but never change.
_FIXED_FIELDS: Final = frozenset({"webhook_id", "message_stream"})

Triggers = dict[str, dict[str, bool]]
#: Some fields of some triggers, as given by a caller: ``{"Open": {"Enabled": True}}``.
TriggerChanges = Mapping[str, Mapping[str, bool]]


@dataclass(frozen=True)
class HttpHeader:
    """A custom header as given; None is a missing name or value (refused)."""

    name: str | None
    value: str | None


@dataclass(frozen=True)
class WebhookFields:
    """What a caller sent; None means not given (on an edit: keep the current value)."""

    url: str | None = None
    #: Refused on create (1356); on an edit, only the webhook's own ID (1357).
    webhook_id: int | None = None
    #: Chosen on create (default ``outbound``); on an edit, only the current one (1357).
    message_stream: str | None = None
    username: str | None = None
    password: str | None = None
    http_headers: list[HttpHeader] | None = None
    triggers: TriggerChanges | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def changes_something(self) -> bool:
        """Whether a changeable field is given (``ID`` and ``MessageStream`` are not)."""
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name not in _FIXED_FIELDS)


@dataclass(frozen=True)
class WebhookView:
    """A webhook as its caller may see it; secrets only for callers who may change it."""

    webhook: Webhook
    url: str
    password: str
    #: None for callers who may not change the webhook.
    signing_secret: str | None


class WebhookService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    # reading

    def list_webhooks(self, server_id: int, message_stream: str | None = None) -> list[WebhookView]:
        """All the server's webhooks, or one stream's (1226 when the server has no such stream)."""
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_READ)
        query = select(Webhook).where(Webhook.server_id == server.id)
        if message_stream is not None:
            self._stream(server, message_stream)
            query = query.where(Webhook.message_stream == message_stream)
        reveal = self._reveals_secrets(server)
        return [self._view(webhook, reveal=reveal) for webhook in self.session.scalars(query.order_by(Webhook.id))]

    def get_webhook(self, server_id: int, webhook_id: int) -> WebhookView:
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_READ)
        return self._view(self._find(server, webhook_id), reveal=self._reveals_secrets(server))

    # changing

    def create_webhook(self, server_id: int, given: WebhookFields) -> WebhookView:
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_MANAGE)
        if given.is_empty():
            raise InvalidRequest(Reason.WEBHOOK_BODY_MISSING, "A request body must be provided, with at least 'Url'.")
        if given.webhook_id is not None:
            raise InvalidRequest(
                Reason.WEBHOOK_ID_GIVEN, "'ID' must not be provided when creating a webhook: the server assigns it."
            )
        url = self._checked_url(given.url)
        stream = self._stream(server, given.message_stream or DEFAULT_STREAM, lock=True)
        if stream.archived_at is not None:
            raise InvalidRequest(
                Reason.WEBHOOK_STREAM_ARCHIVED,
                f"The message stream '{stream.stream_id}' is archived: unarchive it to add webhooks to it.",
            )
        if stream.stream_type == INBOUND_STREAM_TYPE:
            raise InvalidRequest(
                Reason.WEBHOOK_STREAM_INBOUND,
                "Webhooks cannot be created on an inbound stream: inbound mail goes to the server's InboundHookUrl.",
            )
        triggers = merged_triggers({}, given.triggers)
        _check_triggers_fit(stream.stream_type, triggers)
        username = _checked_username(given.username or "")
        headers = _checked_headers(given.http_headers or [])
        self._check_stream_limit(server, stream)
        signing_secret = new_signing_secret()
        webhook = Webhook(
            server_id=server.id,
            message_stream=stream.stream_id,
            url=url,
            http_auth_username=username,
            http_auth_password_encrypted=self._sealed(given.password),
            http_headers=headers,
            triggers=triggers,
            signing_secret_encrypted=self.runtime.keyring.encrypt(signing_secret),
        )
        self.session.add(webhook)
        self.session.flush()  # assigns webhook.id for the audit event
        self._record(server, webhook, AuditAction.WEBHOOK_CREATED, audit.changed_fields({}, self._snapshot(webhook)))
        return WebhookView(webhook, webhook.url, given.password or "", signing_secret)

    def update_webhook(self, server_id: int, webhook_id: int, given: WebhookFields) -> WebhookView:
        """Partial: what is not given keeps its value, down to each field of each trigger;
        ``HttpHeaders`` is replaced as a whole (``[]`` clears it)."""
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_MANAGE)
        webhook = self._find(server, webhook_id)
        if given.webhook_id not in (None, webhook.id) or given.message_stream not in (None, webhook.message_stream):
            raise InvalidRequest(
                Reason.WEBHOOK_IMMUTABLE_FIELD,
                "You cannot update the 'ID' or 'MessageStream' fields of a webhook: "
                "create a new webhook on the other stream instead.",
            )
        if not given.changes_something():
            raise InvalidRequest(
                Reason.WEBHOOK_BODY_MISSING,
                "A request body must be provided, with at least one of Url, HttpAuth, HttpHeaders or Triggers.",
            )
        before = self._snapshot(webhook)
        self._apply(server, webhook, given)
        changes = audit.changed_fields(before, self._snapshot(webhook))
        if changes:
            webhook.updated_at = utcnow()
            self._record(server, webhook, AuditAction.WEBHOOK_UPDATED, changes)
        return self._view(webhook, reveal=True)

    def rotate_secret(self, server_id: int, webhook_id: int) -> WebhookView:
        """A new signing secret in place of the old one, which is kept nowhere."""
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_MANAGE)
        webhook = self._find(server, webhook_id)
        signing_secret = new_signing_secret()
        webhook.signing_secret_encrypted = self.runtime.keyring.encrypt(signing_secret)
        webhook.updated_at = utcnow()
        self._record(server, webhook, AuditAction.WEBHOOK_SECRET_ROTATED, {"signing_secret": audit.REDACTED})
        return WebhookView(webhook, webhook.url, self._password(webhook), signing_secret)

    def delete_webhook(self, server_id: int, webhook_id: int) -> int:
        server = reach_server(self.session, self.actor, server_id, Permission.WEBHOOKS_MANAGE)
        webhook = self._find(server, webhook_id)
        before = self._snapshot(webhook)
        self._record(server, webhook, AuditAction.WEBHOOK_DELETED, audit.changed_fields(before, dict.fromkeys(before)))
        self.session.delete(webhook)
        return webhook.id

    # rules

    def _apply(self, server: Server, webhook: Webhook, given: WebhookFields) -> None:
        """Each given field, checked then set (a refusal rolls the whole request back)."""
        if given.url is not None:
            webhook.url = self._checked_url(given.url)
        if given.username is not None:
            webhook.http_auth_username = _checked_username(given.username)
        if given.password is not None:
            webhook.http_auth_password_encrypted = self._sealed(given.password)
        if given.http_headers is not None:
            webhook.http_headers = _checked_headers(given.http_headers)
        if given.triggers is not None:
            triggers = merged_triggers(webhook.triggers, given.triggers)
            _check_triggers_fit(self._stream(server, webhook.message_stream).stream_type, triggers)
            webhook.triggers = triggers

    def _find(self, server: Server, webhook_id: int) -> Webhook:
        webhook = self.session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.server_id == server.id))
        if webhook is None:
            raise NotFound(Reason.WEBHOOK_NOT_FOUND, f"The webhook for the provided 'ID' ({webhook_id}) was not found.")
        return webhook

    def _stream(self, server: Server, stream_id: str, *, lock: bool = False) -> MessageStream:
        query = select(MessageStream).where(MessageStream.server_id == server.id, MessageStream.stream_id == stream_id)
        # The row lock serialises concurrent creates on one stream, so the limit holds under
        # races (PostgreSQL; SQLite writers already hold the database lock from BEGIN).
        stream = self.session.scalar(query.with_for_update() if lock else query)
        if stream is None:
            raise NotFound(
                Reason.STREAM_NOT_FOUND,
                "The message stream for the provided 'MessageStream' was not found on this server "
                "(GET /message-streams lists them).",
            )
        return stream

    def _check_stream_limit(self, server: Server, stream: MessageStream) -> None:
        count = self.session.scalar(
            select(func.count()).where(Webhook.server_id == server.id, Webhook.message_stream == stream.stream_id)
        )
        if (count or 0) >= WEBHOOKS_PER_STREAM:
            raise Conflict(
                Reason.WEBHOOK_LIMIT_REACHED,
                f"The stream '{stream.stream_id}' already has {WEBHOOKS_PER_STREAM} webhooks, the most a stream may "
                "have: delete one, or enable more triggers on an existing one.",
            )

    def _checked_url(self, url: str | None) -> str:
        clean = (url or "").strip()
        if not clean:
            raise InvalidRequest(Reason.WEBHOOK_URL_INVALID, "The request must contain a valid 'Url' field.")
        problem = outbound_url_problem(clean, allow_private=self.runtime.settings.allow_private_urls)
        if problem is None and any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in clean):
            problem = "it must not contain control characters"
        if problem is not None:
            raise InvalidRequest(Reason.WEBHOOK_URL_INVALID, f"The 'Url' field is not a valid webhook URL: {problem}.")
        return clean

    def _reveals_secrets(self, server: Server) -> bool:
        return allows(self.actor, Permission.WEBHOOKS_MANAGE, account_id=server.account_id, server_id=server.id)

    def _sealed(self, password: str | None) -> bytes | None:
        return self.runtime.keyring.encrypt(password) if password else None

    def _password(self, webhook: Webhook) -> str:
        sealed = webhook.http_auth_password_encrypted
        return self.runtime.keyring.decrypt(sealed) if sealed is not None else ""

    def _view(self, webhook: Webhook, *, reveal: bool) -> WebhookView:
        if not reveal:
            return WebhookView(webhook, masked_url(webhook.url), "", None)
        signing_secret = self.runtime.keyring.decrypt(webhook.signing_secret_encrypted)
        return WebhookView(webhook, webhook.url, self._password(webhook), signing_secret)

    def _snapshot(self, webhook: Webhook) -> dict[str, Any]:
        """The audited fields. Secrets appear under names that ``audit.record`` masks, so a
        changed secret shows as changed and never as a value."""
        return {
            "url": masked_url(webhook.url),
            "url_password": _userinfo(webhook.url),
            "message_stream": webhook.message_stream,
            "http_auth_username": webhook.http_auth_username,
            "http_auth_password": self._password(webhook),
            "http_headers": [header["Name"] for header in webhook.http_headers],
            "http_header_secrets": [header["Value"] for header in webhook.http_headers],
            "triggers": webhook.triggers,
        }

    def _record(self, server: Server, webhook: Webhook, action: AuditAction, changes: Mapping[str, Any]) -> None:
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=server.account_id,
            target_type="webhook",
            target_id=webhook.id,
            target_label=f"{webhook.message_stream} {masked_url(webhook.url)}"[:320],
            changes=changes,
        )


def new_signing_secret() -> str:
    return SIGNING_SECRET_PREFIX + secrets.token_urlsafe(32)


def merged_triggers(current: Mapping[str, Any], changes: TriggerChanges | None) -> Triggers:
    """All six triggers with all their fields: ``changes`` over ``current``, false where neither says."""
    changes = changes or {}
    return {
        trigger: {
            name: bool(changes.get(trigger, {}).get(name, current.get(trigger, {}).get(name, False))) for name in names
        }
        for trigger, names in TRIGGERS.items()
    }


def masked_url(url: str) -> str:
    """``url`` with the credentials it may carry (``https://user:pass@host/``) masked."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=f"{audit.REDACTED}@{parts.netloc.rpartition('@')[2]}"))


def _userinfo(url: str) -> str | None:
    netloc = urlsplit(url).netloc
    return netloc.rpartition("@")[0] if "@" in netloc else None


def _check_triggers_fit(stream_type: str, triggers: Triggers) -> None:
    if stream_type != BROADCAST_STREAM_TYPE:
        return
    for trigger in TRANSACTIONAL_ONLY_TRIGGERS:
        if triggers[trigger]["Enabled"]:
            raise InvalidRequest(
                Reason.WEBHOOK_TRIGGER_UNSUPPORTED,
                f"The {trigger} trigger is not supported on a broadcast stream: enable SubscriptionChange, "
                "which reports its bounces and spam complaints.",
            )


def _checked_username(username: str) -> str:
    if ":" in username:
        raise InvalidRequest(
            Reason.WEBHOOK_FIELD_INVALID,
            "The 'HttpAuth' 'Username' must not contain ':', which separates it from the password in Basic auth.",
        )
    if len(username) > USERNAME_MAX_LENGTH:
        raise InvalidRequest(
            Reason.WEBHOOK_FIELD_INVALID, f"The 'HttpAuth' 'Username' must be at most {USERNAME_MAX_LENGTH} characters."
        )
    return username


def _checked_headers(headers: list[HttpHeader]) -> list[dict[str, str]]:
    checked = []
    for header in headers:
        if header.name is None or not _HEADER_NAME_RE.fullmatch(header.name):
            raise InvalidRequest(
                Reason.WEBHOOK_HEADER_NAME_INVALID,
                "Each 'HttpHeaders' item needs a valid 'Name': letters, digits and !#$%&'*+-.^_`|~ only.",
            )
        if header.name.lower() in FRAMING_HEADERS:
            raise InvalidRequest(
                Reason.WEBHOOK_HEADER_NAME_INVALID,
                f"The '{header.name}' header frames the HTTP request itself and cannot be set on a webhook.",
            )
        if header.value is None or not _HEADER_VALUE_RE.fullmatch(header.value):
            raise InvalidRequest(
                Reason.WEBHOOK_FIELD_INVALID,
                f"The 'HttpHeaders' item '{header.name}' needs a 'Value' without line breaks or control characters.",
            )
        checked.append({"Name": header.name, "Value": header.value})
    return checked
