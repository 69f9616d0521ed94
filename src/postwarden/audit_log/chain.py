"""Checking a chain link by link, and pruning its oldest events behind a signed checkpoint.

Both stream the chain in ``seq`` order, a batch of rows at a time, so a chain of any
length is checked in the memory of one batch.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from postwarden.audit import (
    AuditChain,
    AuditEvent,
    checkpoint_signature,
    event_hash,
    locked_head,
)
from postwarden.db import utcnow

BATCH: Final = 2000
_EVENTS = AuditEvent.__table__


@dataclass(frozen=True)
class BrokenLink:
    """The first place the chain does not hold, and what is wrong there."""

    seq: int
    event_id: int | None
    problem: str


@dataclass(frozen=True)
class ChainReport:
    chain: int
    checked: int
    first_seq: int | None
    last_seq: int | None
    head_seq: int
    head_hash: str
    pruned_seq: int
    pruned_at: datetime | None
    broken: BrokenLink | None

    @property
    def valid(self) -> bool:
        return self.broken is None


def verify_chain(session: Session, key: bytes, chain: int) -> ChainReport:
    head = session.get(AuditChain, chain) or AuditChain(
        chain=chain, seq=0, head_hash="", pruned_seq=0, pruned_hash="", checkpoint_signature=""
    )
    checked, first_seq, last_seq = 0, None, None
    broken = _checkpoint_problem(key, head)
    expected_seq, prev_hash = head.pruned_seq + 1, head.pruned_hash
    if broken is None:
        for row in stream_rows(session, select(_EVENTS).where(_EVENTS.c.chain == chain).order_by(_EVENTS.c.seq)):
            broken = _link_problem(key, row, expected_seq, prev_hash)
            if broken is not None:
                break
            checked += 1
            first_seq = first_seq or row["seq"]
            last_seq = row["seq"]
            expected_seq, prev_hash = row["seq"] + 1, row["chain_hash"]
        else:
            broken = _head_problem(head, expected_seq - 1, prev_hash)
    return ChainReport(
        chain=chain,
        checked=checked,
        first_seq=first_seq,
        last_seq=last_seq,
        head_seq=head.seq,
        head_hash=head.head_hash,
        pruned_seq=head.pruned_seq,
        pruned_at=head.pruned_at,
        broken=broken,
    )


def chains(session: Session) -> list[int]:
    """Every chain there is: those with a head, and any whose head was removed."""
    with_head = set(session.scalars(select(AuditChain.chain)))
    return sorted(with_head | set(session.scalars(select(AuditEvent.chain).distinct())))


def stream_rows(session: Session, statement: Any) -> Iterator[Mapping[str, Any]]:
    """Rows as mappings, fetched ``BATCH`` at a time (a server-side cursor on PostgreSQL)."""
    result = session.execute(statement.execution_options(yield_per=BATCH))
    for partition in result.mappings().partitions():
        yield from cast("list[Mapping[str, Any]]", partition)


@dataclass(frozen=True)
class Pruned:
    chain: int
    events: int
    through_seq: int


def prune_chain(session: Session, key: bytes, chain: int, older_than: datetime) -> Pruned:
    """Deletes the chain's events from before ``older_than`` and leaves a signed checkpoint of
    the last one deleted, so the first event kept still links to something verifiable."""
    head = locked_head(session, chain)
    through = session.scalar(
        select(func.max(AuditEvent.seq)).where(AuditEvent.chain == chain, AuditEvent.occurred_at < older_than)
    )
    if through is None or through <= head.pruned_seq:
        return Pruned(chain, 0, head.pruned_seq)
    through_hash = session.scalar(
        select(AuditEvent.chain_hash).where(AuditEvent.chain == chain, AuditEvent.seq == through)
    )
    assert through_hash is not None
    # A bulk statement, not the unit of work: the ORM refuses to delete audit events
    # (audit.py), and only this may.
    deleted = session.execute(
        delete(AuditEvent).where(AuditEvent.chain == chain, AuditEvent.seq <= through),
        execution_options={"synchronize_session": False},
    )
    head.pruned_seq = through
    head.pruned_hash = through_hash
    head.pruned_at = utcnow()
    head.checkpoint_signature = checkpoint_signature(key, chain, through, through_hash)
    return Pruned(chain, int(getattr(deleted, "rowcount", 0) or 0), through)


def _checkpoint_problem(key: bytes, head: AuditChain) -> BrokenLink | None:
    if head.pruned_seq == 0 and not head.pruned_hash and not head.checkpoint_signature:
        return None
    expected = checkpoint_signature(key, head.chain, head.pruned_seq, head.pruned_hash)
    if not hmac.compare_digest(expected, head.checkpoint_signature):
        return BrokenLink(head.pruned_seq, None, "the checkpoint left by pruning is not signed by this installation")
    return None


def _link_problem(key: bytes, row: Mapping[str, Any], expected_seq: int, prev_hash: str) -> BrokenLink | None:
    seq, event_id = row["seq"], row["id"]
    if seq < expected_seq:
        return BrokenLink(seq, event_id, f"event {seq} lies before the pruning checkpoint at {expected_seq - 1}")
    if seq > expected_seq:
        return BrokenLink(expected_seq, None, f"event {expected_seq} is missing (the next one kept is {seq})")
    if not hmac.compare_digest(event_hash(key, row["prev_hash"], row), row["chain_hash"]):
        return BrokenLink(seq, event_id, "its content differs from what was recorded")
    if not hmac.compare_digest(row["prev_hash"], prev_hash):
        return BrokenLink(seq, event_id, "it does not link to the event before it")
    return None


def _head_problem(head: AuditChain, last_seq: int, last_hash: str) -> BrokenLink | None:
    if head.seq > last_seq:
        return BrokenLink(last_seq + 1, None, f"events {last_seq + 1} to {head.seq} are missing from the end")
    if head.seq < last_seq or not hmac.compare_digest(head.head_hash, last_hash):
        return BrokenLink(last_seq, None, "the chain's head does not match its last event")
    return None
