"""webhooks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import postwarden.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("message_stream", sa.String(length=30), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("http_auth_username", sa.String(length=255), nullable=False),
        sa.Column("http_auth_password_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("http_headers", sa.JSON(), nullable=False),
        sa.Column("triggers", sa.JSON(), nullable=False),
        sa.Column("signing_secret_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", postwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_webhooks_server_id_servers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhooks_server_id"), ["server_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhooks_server_id"))
    op.drop_table("webhooks")
