"""audit: hash chain per account, chain heads and pruning checkpoints, token sightings

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 04:30:00.000000

Events recorded before this revision are chained here, in the order they were written.
That needs the installation's secret key: ``postwarden migrate`` passes it. A database
with events and no key refuses to upgrade rather than leave them out of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

import postwarden.db
from postwarden.audit import HASHED_FIELDS, event_hash

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENTS = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()),
    sa.column("occurred_at", postwarden.db.UTCDateTime()),
    sa.column("account_id", sa.Integer()),
    sa.column("actor_credential", sa.String()),
    sa.column("actor_label", sa.String()),
    sa.column("actor_user_id", sa.Integer()),
    sa.column("actor_token_id", sa.Integer()),
    sa.column("via", sa.String()),
    sa.column("action", sa.String()),
    sa.column("target_type", sa.String()),
    sa.column("target_id", sa.String()),
    sa.column("target_label", sa.String()),
    sa.column("changes", sa.JSON()),
    sa.column("request_id", sa.String()),
    sa.column("ip", sa.String()),
    sa.column("user_agent", sa.Text()),
    sa.column("chain", sa.Integer()),
    sa.column("seq", sa.BigInteger()),
    sa.column("prev_hash", sa.String()),
    sa.column("chain_hash", sa.String()),
)


def upgrade() -> None:
    chains = op.create_table(
        "audit_chains",
        sa.Column("chain", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("pruned_seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_hash", sa.String(length=64), nullable=False),
        sa.Column("pruned_at", postwarden.db.UTCDateTime(), nullable=True),
        sa.Column("checkpoint_signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name=op.f("pk_audit_chains")),
    )
    op.create_table(
        "token_sightings",
        sa.Column("credential", sa.String(length=20), nullable=False),
        sa.Column("token_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", postwarden.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("credential", "token_id", "ip", name=op.f("pk_token_sightings")),
    )
    for name, column_type in (
        ("chain", sa.Integer()),
        ("seq", sa.BigInteger()),
        ("prev_hash", sa.String(length=64)),
        ("chain_hash", sa.String(length=64)),
    ):
        op.add_column("audit_events", sa.Column(name, column_type, nullable=True))
    _chain_existing_events(chains)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("chain", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("chain_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_chain_seq"), ["chain", "seq"])


def _chain_existing_events(chains: Any) -> None:
    bind = op.get_bind()
    if bind.execute(sa.select(sa.func.count()).select_from(_EVENTS)).scalar_one() == 0:
        return
    key = context.config.attributes.get("audit_key")
    if not isinstance(key, bytes):
        raise RuntimeError("existing audit events must be chained with the secret key: run `postwarden migrate`")
    heads: dict[int, tuple[int, str]] = {}
    rows = bind.execute(sa.select(_EVENTS).order_by(_EVENTS.c.id)).mappings().all()
    for row in rows:
        chain = row["account_id"] or 0
        seq, prev_hash = heads.get(chain, (0, ""))
        fields = {**row, "chain": chain, "seq": seq + 1}
        chain_hash = event_hash(key, prev_hash, {name: fields[name] for name in HASHED_FIELDS})
        bind.execute(
            sa.update(_EVENTS)
            .where(_EVENTS.c.id == row["id"])
            .values(chain=chain, seq=seq + 1, prev_hash=prev_hash, chain_hash=chain_hash)
        )
        heads[chain] = (seq + 1, chain_hash)
    op.bulk_insert(
        chains,
        [
            {"chain": chain, "seq": seq, "head_hash": head_hash, "pruned_seq": 0, "pruned_hash": ""}
            | {"pruned_at": None, "checkpoint_signature": ""}
            for chain, (seq, head_hash) in heads.items()
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_chain_seq"), type_="unique")
        batch_op.drop_column("chain_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
        batch_op.drop_column("chain")
    op.drop_table("token_sightings")
    op.drop_table("audit_chains")
