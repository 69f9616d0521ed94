"""The audit log: one append-only row for every change, written in the change's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String, Text, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow
from postwarden.identity import Actor


class AuditAction(StrEnum):
    """``<resource>.<past-tense verb>``, alphabetical."""

    ACCOUNT_CREATED = "account.created"
    ACCOUNT_OWNERSHIP_TRANSFERRED = "account.ownership_transferred"
    ACCOUNT_UPDATED = "account.updated"
    ACCOUNT_TOKEN_CREATED = "account_token.created"
    ACCOUNT_TOKEN_ROTATED = "account_token.rotated"
    ACCOUNT_TOKEN_UPDATED = "account_token.updated"
    BILLING_UPDATED = "billing.updated"
    DOMAIN_CREATED = "domain.created"
    DOMAIN_DELETED = "domain.deleted"
    DOMAIN_DKIM_ROTATED = "domain.dkim_rotated"
    DOMAIN_UPDATED = "domain.updated"
    DOMAIN_VERIFIED = "domain.verified"
    GROUP_ACCESS_UPDATED = "group.access_updated"
    GROUP_CREATED = "group.created"
    GROUP_DELETED = "group.deleted"
    GROUP_UPDATED = "group.updated"
    INVITATION_ACCEPTED = "invitation.accepted"
    INVITATION_CREATED = "invitation.created"
    INVITATION_RESENT = "invitation.resent"
    INVITATION_REVOKED = "invitation.revoked"
    MEMBERSHIP_CREATED = "membership.created"
    MEMBERSHIP_DELETED = "membership.deleted"
    MEMBERSHIP_RESTORED = "membership.restored"
    MEMBERSHIP_SUSPENDED = "membership.suspended"
    MEMBERSHIP_UPDATED = "membership.updated"
    MESSAGE_STREAM_ARCHIVED = "message_stream.archived"
    MESSAGE_STREAM_CREATED = "message_stream.created"
    MESSAGE_STREAM_UNARCHIVED = "message_stream.unarchived"
    MESSAGE_STREAM_UPDATED = "message_stream.updated"
    PERSONAL_TOKEN_CREATED = "personal_token.created"
    PERSONAL_TOKEN_REVOKED = "personal_token.revoked"
    SCIM_TOKEN_CREATED = "scim_token.created"
    SCIM_TOKEN_REVOKED = "scim_token.revoked"
    SENDER_CONFIRMATION_SENT = "sender.confirmation_sent"
    SENDER_CONFIRMED = "sender.confirmed"
    SENDER_CREATED = "sender.created"
    SENDER_DELETED = "sender.deleted"
    SENDER_UPDATED = "sender.updated"
    SERVER_ACCESS_UPDATED = "server_access.updated"
    SERVER_CREATED = "server.created"
    SERVER_DELETED = "server.deleted"
    SERVER_TOKEN_ROTATED = "server_token.rotated"
    SERVER_UPDATED = "server.updated"
    SESSION_CREATED = "session.created"
    SESSION_REVOKED = "session.revoked"
    SUPPRESSION_CREATED = "suppression.created"
    SUPPRESSION_DELETED = "suppression.deleted"
    TEMPLATE_CREATED = "template.created"
    TEMPLATE_DELETED = "template.deleted"
    TEMPLATE_PUSHED = "template.pushed"
    TEMPLATE_UPDATED = "template.updated"
    USER_CREATED = "user.created"
    USER_EMAIL_CHANGED = "user.email_changed"
    USER_LOGIN_FAILED = "user.login_failed"
    USER_RECOVERY_CODE_USED = "user.recovery_code_used"
    USER_TWO_FACTOR_DISABLED = "user.two_factor_disabled"
    USER_TWO_FACTOR_ENABLED = "user.two_factor_enabled"
    WEBHOOK_CREATED = "webhook.created"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_SECRET_ROTATED = "webhook.secret_rotated"
    WEBHOOK_TESTED = "webhook.tested"
    WEBHOOK_UPDATED = "webhook.updated"


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    #: Kept without a foreign key so events outlive what they describe.
    account_id: Mapped[int | None] = mapped_column(index=True)
    actor_credential: Mapped[str] = mapped_column(String(20))
    actor_label: Mapped[str] = mapped_column(String(320))
    actor_user_id: Mapped[int | None]
    actor_token_id: Mapped[int | None]
    via: Mapped[str] = mapped_column(String(10))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str] = mapped_column(String(64))
    #: A readable name for the target that survives its deletion.
    target_label: Mapped[str] = mapped_column(String(320))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(Text, default="")


REDACTED = "[redacted]"
_SECRET_WORDS = ("token", "password", "secret", "key")


def redact(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Secrets never reach the log: any field whose name speaks of one is masked."""
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if any(word in name.lower() for word in _SECRET_WORDS):
            clean[name] = REDACTED
        elif isinstance(value, Mapping):
            clean[name] = redact(value)
        else:
            clean[name] = value
    return clean


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    *,
    account_id: int | None,
    target_type: str,
    target_id: int | str,
    target_label: str,
    changes: Mapping[str, Any] | None = None,
) -> AuditEvent:
    event_row = AuditEvent(
        account_id=account_id,
        actor_credential=actor.credential.value,
        actor_label=actor.label,
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        via=actor.via.value,
        action=action.value,
        target_type=target_type,
        target_id=str(target_id),
        target_label=target_label,
        changes=redact(changes or {}),
        request_id=actor.context.request_id,
        ip=actor.context.ip,
        user_agent=actor.context.user_agent,
    )
    session.add(event_row)
    return event_row


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"before": x, "after": y}}`` for the fields that differ."""
    return {
        name: {"before": before.get(name), "after": value} for name, value in after.items() if before.get(name) != value
    }


@event.listens_for(Session, "before_flush")
def _refuse_rewriting_history(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent):
            raise RuntimeError("audit events are append-only")
