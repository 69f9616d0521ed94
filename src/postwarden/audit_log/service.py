"""Reading an account's audit log: filtered pages, following new events, export, verification.

Pages go newest first with ``count``/``offset``. Following uses the account's sequence
numbers as a cursor: they are given in commit order (see ``audit.py``), so asking for the
events after the last one seen never skips one committed late, as ids or times could.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction, AuditEvent
from postwarden.audit_log.chain import ChainReport, Pruned, chains, prune_chain, stream_rows, verify_chain
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.paging import check_page
from postwarden.policy import Permission, require

_EVENTS = AuditEvent.__table__


@dataclass(frozen=True)
class EventFilters:
    """What to keep; every field left None keeps everything."""

    actor: str | None = None
    actor_user_id: int | None = None
    #: An exact action, or a resource's every action as ``"membership.*"``.
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    via: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def known_actions() -> list[str]:
    """Every action, and ``resource.*`` for every resource that has actions."""
    actions = sorted(member.value for member in AuditAction)
    return actions + sorted({action.split(".")[0] + ".*" for action in actions})


def check_action(action: str) -> str:
    if action in known_actions():
        return action
    raise InvalidRequest(
        Reason.AUDIT_QUERY_INVALID,
        f"'{action}' is not an audit action; docs/api.md lists them (or use a resource's 'name.*').",
    )


class AuditLogService:
    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    def list_events(
        self, account_id: int, filters: EventFilters, *, count: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """A page of events, newest first, and how many pass the filters in all."""
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)
        check_page(count, offset, Reason.AUDIT_QUERY_INVALID)
        matching = _filtered(select(_EVENTS), account_id, filters)
        total = self.session.scalar(select(func.count()).select_from(matching.subquery())) or 0
        page = matching.order_by(_EVENTS.c.seq.desc()).limit(count).offset(offset)
        return total, [dict(row) for row in self.session.execute(page).mappings()]

    def events_after(
        self, account_id: int, filters: EventFilters, *, after: int, count: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """The first ``count`` events after sequence number ``after``, oldest first, and how
        many there are after it in all."""
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)
        check_page(count, 0, Reason.AUDIT_QUERY_INVALID)
        if after < 0:
            raise InvalidRequest(Reason.AUDIT_QUERY_INVALID, "The 'after' parameter must be 0 or more.")
        matching = _filtered(select(_EVENTS), account_id, filters).where(_EVENTS.c.seq > after)
        total = self.session.scalar(select(func.count()).select_from(matching.subquery())) or 0
        page = matching.order_by(_EVENTS.c.seq).limit(count)
        return total, [dict(row) for row in self.session.execute(page).mappings()]

    def get_event(self, account_id: int, event_id: int) -> dict[str, Any]:
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)
        row = (
            self.session.execute(select(_EVENTS).where(_EVENTS.c.id == event_id, _EVENTS.c.chain == account_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(Reason.AUDIT_EVENT_NOT_FOUND, f"This account has no audit event {event_id}.")
        return dict(row)

    def authorize_export(self, account_id: int) -> None:
        """Checked before a stream starts: once bytes flow, an error can no longer be answered."""
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)

    def stream_events(self, account_id: int, filters: EventFilters) -> Iterator[Mapping[str, Any]]:
        """Every event that passes the filters, oldest first, in the memory of one batch."""
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)
        yield from stream_rows(self.session, _filtered(select(_EVENTS), account_id, filters).order_by(_EVENTS.c.seq))

    def verify(self, key: bytes, account_id: int) -> ChainReport:
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)
        return verify_chain(self.session, key, account_id)

    def verify_all(self, key: bytes) -> list[ChainReport]:
        """Every chain of the installation (the operator's check)."""
        require(self.actor, Permission.AUDIT_PRUNE)
        return [verify_chain(self.session, key, chain) for chain in chains(self.session)]

    def prune(self, key: bytes, older_than: datetime) -> list[Pruned]:
        """Deletes every chain's events from before ``older_than``; each pruning is an event
        of its chain, so the log tells when and how much was pruned."""
        require(self.actor, Permission.AUDIT_PRUNE)
        done = []
        for chain in chains(self.session):
            pruned = prune_chain(self.session, key, chain, older_than)
            if pruned.events:
                audit.record(
                    self.session,
                    self.actor,
                    AuditAction.AUDIT_LOG_PRUNED,
                    account_id=chain or None,
                    target_type="audit_log",
                    target_id=chain,
                    target_label=f"audit log of account {chain}" if chain else "audit log of the installation",
                    changes={
                        "pruned_through_seq": pruned.through_seq,
                        "events": pruned.events,
                        "older_than": older_than.isoformat(),
                    },
                )
                done.append(pruned)
        return done


def _filtered(statement: Select[Any], account_id: int, filters: EventFilters) -> Select[Any]:
    statement = statement.where(_EVENTS.c.chain == account_id)
    if filters.actor is not None:
        statement = statement.where(func.lower(_EVENTS.c.actor_label) == filters.actor.lower())
    if filters.actor_user_id is not None:
        statement = statement.where(_EVENTS.c.actor_user_id == filters.actor_user_id)
    if filters.action is not None:
        if filters.action.endswith(".*"):
            statement = statement.where(_EVENTS.c.action.startswith(filters.action[:-1], autoescape=True))
        else:
            statement = statement.where(_EVENTS.c.action == filters.action)
    if filters.target_type is not None:
        statement = statement.where(_EVENTS.c.target_type == filters.target_type)
    if filters.target_id is not None:
        statement = statement.where(_EVENTS.c.target_id == filters.target_id)
    if filters.via is not None:
        statement = statement.where(_EVENTS.c.via == filters.via)
    if filters.since is not None:
        statement = statement.where(_EVENTS.c.occurred_at >= filters.since)
    if filters.until is not None:
        statement = statement.where(_EVENTS.c.occurred_at < filters.until)
    return statement
