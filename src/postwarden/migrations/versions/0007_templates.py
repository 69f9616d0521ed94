"""templates

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import postwarden.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=True),
        sa.Column("alias_key", sa.String(length=255), nullable=True),
        sa.Column("template_type", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("layout_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", postwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["layout_id"], ["templates.id"], name=op.f("fk_templates_layout_id_templates")),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_templates_server_id_servers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_templates")),
        sa.UniqueConstraint("server_id", "alias_key", name=op.f("uq_templates_server_id_alias_key")),
    )
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_templates_layout_id"), ["layout_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_templates_server_id"), ["server_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_templates_server_id"))
        batch_op.drop_index(batch_op.f("ix_templates_layout_id"))
    op.drop_table("templates")
