"""Suppressions: the only code that adds addresses to a stream's suppression list or
takes them off it.

An address is suppressed per stream, whatever its spelling. Callers suppress by hand
(``ManualSuppression`` from the ``Customer``); hard bounces and spam complaints arrive from
the sending side. A spam complaint is the recipient's own word, so no caller can lift it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Insert, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from postwarden import audit
from postwarden.addresses import is_email_address
from postwarden.audit import AuditAction
from postwarden.db import utcnow
from postwarden.errors import InvalidRequest, Reason
from postwarden.identity import Actor
from postwarden.message_streams.service import get_stream
from postwarden.policy import Permission
from postwarden.servers.models import MessageStream, Server
from postwarden.servers.service import reach_server
from postwarden.suppressions.models import Suppression

REASONS: Final = ("HardBounce", "SpamComplaint", "ManualSuppression")
ORIGINS: Final = ("Recipient", "Customer", "Admin")
#: Reasons that only the recipient can undo.
UNDELETABLE_REASONS: Final = frozenset({"SpamComplaint"})
MAX_PER_REQUEST: Final = 50
INVALID_ADDRESS: Final = "An invalid email address was provided."
NOT_YOURS: Final = "You do not have the required authority to change this suppression."


class Status(StrEnum):
    SUPPRESSED = "Suppressed"
    DELETED = "Deleted"
    FAILED = "Failed"


@dataclass(frozen=True)
class Outcome:
    """What happened to one address of a request, in the request's order."""

    email_address: str
    status: Status
    message: str | None = None


@dataclass(frozen=True)
class DumpFilters:
    """Optional filters of a dump; reason and origin in any case, dates inclusive (UTC)."""

    reason: str | None = None
    origin: str | None = None
    from_date: date | None = None
    to_date: date | None = None
    email_address: str | None = None


class SuppressionService:
    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    def dump(self, server_id: int, stream_id: str, filters: DumpFilters) -> list[Suppression]:
        """Every suppression of the stream that passes the filters, oldest first."""
        server = reach_server(self.session, self.actor, server_id, Permission.SUPPRESSIONS_READ)
        stream = get_stream(self.session, server.id, stream_id)
        query = select(Suppression).where(Suppression.message_stream_id == stream.id)
        if filters.reason is not None:
            query = query.where(Suppression.reason == _reason(filters.reason))
        if filters.origin is not None:
            query = query.where(Suppression.origin == _origin(filters.origin))
        if filters.email_address is not None:
            query = query.where(Suppression.address_key == filters.email_address.strip().lower())
        if filters.from_date is not None:
            query = query.where(Suppression.created_at >= _midnight(filters.from_date))
        if filters.to_date is not None:
            query = query.where(Suppression.created_at < _midnight(filters.to_date + timedelta(days=1)))
        return list(self.session.scalars(query.order_by(Suppression.created_at, Suppression.id)))

    def suppress(self, server_id: int, stream_id: str, addresses: list[str] | None) -> list[Outcome]:
        """Suppress each valid address by hand; one already suppressed, for any reason, stays as it is."""
        server = reach_server(self.session, self.actor, server_id, Permission.SUPPRESSIONS_MANAGE)
        stream = get_stream(self.session, server.id, stream_id)
        given = _checked(addresses)
        outcomes = [
            Outcome(address, Status.SUPPRESSED) if _valid(address) else Outcome(address, Status.FAILED, INVALID_ADDRESS)
            for address in given
        ]
        spellings: dict[str, str] = {}
        for outcome in outcomes:
            if outcome.status is Status.SUPPRESSED:
                spellings.setdefault(outcome.email_address.strip().lower(), outcome.email_address.strip())
        if spellings:
            for row in self.session.execute(self._insert_new(stream, spellings)).all():
                self._record(server, stream, AuditAction.SUPPRESSION_CREATED, row.id, row.email_address, before=None)
        return outcomes

    def unsuppress(self, server_id: int, stream_id: str, addresses: list[str] | None) -> list[Outcome]:
        """Lift each address's suppression; an address that was not suppressed counts as lifted."""
        server = reach_server(self.session, self.actor, server_id, Permission.SUPPRESSIONS_MANAGE)
        stream = get_stream(self.session, server.id, stream_id)
        given = _checked(addresses)
        keys = sorted({address.strip().lower() for address in given if _valid(address)})
        if not keys:
            return [_lifted(address, set()) for address in given]
        in_stream = (Suppression.message_stream_id == stream.id, Suppression.address_key.in_(keys))
        deleted = self.session.execute(
            delete(Suppression)
            .where(*in_stream, Suppression.reason.not_in(UNDELETABLE_REASONS))
            .returning(Suppression.id, Suppression.email_address, Suppression.reason, Suppression.origin)
        ).all()
        # What is left of these addresses is what no caller may lift.
        kept = set(self.session.scalars(select(Suppression.address_key).where(*in_stream)))
        for row in deleted:
            before = {"reason": row.reason, "origin": row.origin}
            self._record(server, stream, AuditAction.SUPPRESSION_DELETED, row.id, row.email_address, before=before)
        return [_lifted(address, kept) for address in given]

    # helpers

    def _insert_new(self, stream: MessageStream, spellings: dict[str, str]) -> ReturningInsert[tuple[int, str]]:
        """One INSERT that skips addresses already suppressed, even by a concurrent request,
        and returns the rows it created (both backends speak ``ON CONFLICT DO NOTHING``)."""
        now = utcnow()
        rows = [
            {
                "message_stream_id": stream.id,
                "email_address": spelling,
                "address_key": key,
                "reason": "ManualSuppression",
                "origin": "Customer",
                "created_at": now,
            }
            for key, spelling in spellings.items()
        ]
        unique = ["message_stream_id", "address_key"]
        statement: Insert
        if self.session.get_bind().dialect.name == "postgresql":
            statement = postgresql.insert(Suppression).values(rows).on_conflict_do_nothing(index_elements=unique)
        else:
            statement = sqlite.insert(Suppression).values(rows).on_conflict_do_nothing(index_elements=unique)
        return statement.returning(Suppression.id, Suppression.email_address)

    def _record(
        self,
        server: Server,
        stream: MessageStream,
        action: AuditAction,
        suppression_id: int,
        address: str,
        *,
        before: dict[str, str] | None,
    ) -> None:
        """Created (``before`` None) or deleted: where, and the reason and origin it had or has."""
        values: dict[str, Any] = {"server_id": server.id, "message_stream": stream.stream_id}
        values |= before or {"reason": "ManualSuppression", "origin": "Customer"}
        changes = {
            field: {"before": value, "after": None} if before else {"before": None, "after": value}
            for field, value in values.items()
        }
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=server.account_id,
            target_type="suppression",
            target_id=suppression_id,
            target_label=address,
            changes=changes,
        )


def _checked(addresses: list[str] | None) -> list[str]:
    if addresses is None:
        raise InvalidRequest(
            Reason.SUPPRESSION_BODY_MISSING,
            'A proper request body must be provided: {"Suppressions": [{"EmailAddress": "..."}]}.',
        )
    if len(addresses) > MAX_PER_REQUEST:
        raise InvalidRequest(
            Reason.SUPPRESSION_TOO_MANY,
            f"At most {MAX_PER_REQUEST} suppressions can be given in one request; this one has {len(addresses)}.",
        )
    return addresses


def _valid(address: str) -> bool:
    return is_email_address(address.strip())


def _lifted(address: str, kept: set[str]) -> Outcome:
    if not _valid(address):
        return Outcome(address, Status.FAILED, INVALID_ADDRESS)
    if address.strip().lower() in kept:
        return Outcome(address, Status.FAILED, NOT_YOURS)
    return Outcome(address, Status.DELETED)


def _reason(value: str) -> str:
    for reason in REASONS:
        if reason.lower() == value.lower():
            return reason
    raise InvalidRequest(
        Reason.SUPPRESSION_REASON_INVALID, "The 'SuppressionReason' must be one of: " + ", ".join(REASONS) + "."
    )


def _origin(value: str) -> str:
    for origin in ORIGINS:
        if origin.lower() == value.lower():
            return origin
    raise InvalidRequest(Reason.SUPPRESSION_ORIGIN_INVALID, "The 'Origin' must be one of: " + ", ".join(ORIGINS) + ".")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)
