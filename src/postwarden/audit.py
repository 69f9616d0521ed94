"""The audit log: one append-only row for every change, written in the change's transaction.

Each account's events form a hash chain (the events of no account, such as failed
sign-ins of unknown addresses, form chain 0). An event's ``chain_hash`` is a MAC, keyed by
the installation's secret key, of its content and the previous event's hash, so editing,
removing or inserting a row breaks the chain from there on, and nobody without the key can
forge a consistent one. Appending locks the chain's head row (``audit_chains``), which
serializes the account's writers: sequence numbers follow commit order, so a reader that
follows ``seq`` never skips an event committed late.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import JSON, BigInteger, Integer, String, Text, UniqueConstraint, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from postwarden.db import AUDIT_KEY, Base, UTCDateTime, utcnow
from postwarden.identity import Actor


class AuditAction(StrEnum):
    """``<resource>.<past-tense verb>``, alphabetical."""

    ACCOUNT_CREATED = "account.created"
    ACCOUNT_OWNERSHIP_TRANSFERRED = "account.ownership_transferred"
    ACCOUNT_UPDATED = "account.updated"
    ACCOUNT_TOKEN_CREATED = "account_token.created"
    ACCOUNT_TOKEN_ROTATED = "account_token.rotated"
    ACCOUNT_TOKEN_UPDATED = "account_token.updated"
    ACCOUNT_TOKEN_VIEWED = "account_token.viewed"
    AUDIT_LOG_PRUNED = "audit_log.pruned"
    BILLING_UPDATED = "billing.updated"
    CREDENTIAL_USED_FROM_NEW_IP = "credential.used_from_new_ip"
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
    SERVER_PINNED = "server.pinned"
    SERVER_TOKEN_ROTATED = "server_token.rotated"
    SERVER_TOKEN_VIEWED = "server_token.viewed"
    SERVER_UNPINNED = "server.unpinned"
    SERVER_UPDATED = "server.updated"
    SESSION_CREATED = "session.created"
    SESSION_PASSWORD_CONFIRMED = "session.password_confirmed"
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
    USER_PASSWORD_RESET = "user.password_reset"
    USER_PASSWORD_RESET_REQUESTED = "user.password_reset_requested"
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
    __table_args__ = (UniqueConstraint("chain", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The account's id, or 0 for events of no account.
    chain: Mapped[int] = mapped_column(Integer)
    #: Position in the chain, from 1, in commit order.
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))
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


class AuditChain(Base):
    """The head of one chain, and the signed checkpoint left where its oldest events were pruned."""

    __tablename__ = "audit_chains"

    chain: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), default="")
    #: Events up to this seq were pruned; the next one links to ``pruned_hash``.
    pruned_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pruned_hash: Mapped[str] = mapped_column(String(64), default="")
    pruned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    checkpoint_signature: Mapped[str] = mapped_column(String(64), default="")


#: Part of every hash: a new way of hashing gets a new version, and old events keep theirs.
HASH_VERSION: Final = "pw-audit-1"
#: The fields a chain hash covers, in the order of the canonical form.
HASHED_FIELDS: Final = (
    "chain",
    "seq",
    "occurred_at",
    "account_id",
    "actor_credential",
    "actor_label",
    "actor_user_id",
    "actor_token_id",
    "via",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "changes",
    "request_id",
    "ip",
    "user_agent",
)


def canonical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(key: bytes, prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The MAC of one event: its hashed fields as canonical JSON, after the previous hash."""
    content = {name: fields[name] for name in HASHED_FIELDS}
    occurred_at = content["occurred_at"]
    if isinstance(occurred_at, datetime):
        content["occurred_at"] = canonical_time(occurred_at)
    canonical = json.dumps(
        [HASH_VERSION, prev_hash, content], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


def checkpoint_signature(key: bytes, chain: int, seq: int, chain_hash: str) -> str:
    """Signs where pruning cut a chain, so the cut itself cannot be moved unseen."""
    message = f"{HASH_VERSION}|checkpoint|{chain}|{seq}|{chain_hash}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def locked_head(session: Session, chain: int) -> AuditChain:
    """The chain's head, locked until this transaction ends; created on first use."""
    head = session.get(AuditChain, chain, with_for_update=True)
    if head is None:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        session.execute(
            dialect.insert(AuditChain)
            .values(chain=chain, seq=0, head_hash="", pruned_seq=0, pruned_hash="", checkpoint_signature="")
            .on_conflict_do_nothing(index_elements=["chain"])
        )
        head = session.execute(select(AuditChain).where(AuditChain.chain == chain).with_for_update()).scalar_one()
    return head


def audit_key(session: Session) -> bytes:
    key = session.info.get(AUDIT_KEY)
    if not isinstance(key, bytes):
        raise RuntimeError("audit events are written in a session from Database.session_scope(), which holds the key")
    return key


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
        occurred_at=utcnow(),
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
        # Stored exactly as hashed: what JSON cannot keep as it is (a tuple, say) is normalized first.
        changes=json.loads(json.dumps(redact(changes or {}), default=str)),
        request_id=actor.context.request_id,
        ip=actor.context.ip,
        user_agent=actor.context.user_agent,
    )
    _append(session, event_row)
    session.add(event_row)
    return event_row


def _append(session: Session, event_row: AuditEvent) -> None:
    head = locked_head(session, event_row.account_id or 0)
    event_row.chain = head.chain
    event_row.seq = head.seq + 1
    event_row.prev_hash = head.head_hash
    event_row.chain_hash = event_hash(audit_key(session), head.head_hash, _fields(event_row))
    head.seq = event_row.seq
    head.head_hash = event_row.chain_hash


def _fields(event_row: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event_row, name) for name in HASHED_FIELDS}


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"before": x, "after": y}}`` for the fields that differ."""
    return {
        name: {"before": before.get(name), "after": value} for name, value in after.items() if before.get(name) != value
    }


@event.listens_for(Session, "before_flush")
def _refuse_rewriting_history(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent) or (isinstance(obj, AuditChain) and obj in session.deleted):
            raise RuntimeError("audit events are append-only")
