"""console: forgotten-password links, pinned servers, when a session last confirmed its password

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 07:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import postwarden.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("requested_ip", sa.String(length=64), nullable=False),
        sa.Column("created_at", postwarden.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", postwarden.db.UTCDateTime(), nullable=False),
        sa.Column("used_at", postwarden.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_password_resets_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_password_resets_token_digest")),
    )
    op.create_index(op.f("ix_password_resets_user_id"), "password_resets", ["user_id"], unique=False)
    op.create_table(
        "server_pins",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("pinned_at", postwarden.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_server_pins_server_id_servers"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_server_pins_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "server_id", name=op.f("pk_server_pins")),
    )
    op.create_index(op.f("ix_server_pins_server_id"), "server_pins", ["server_id"], unique=False)
    # Existing sessions confirmed their password when they were opened.
    op.add_column("user_sessions", sa.Column("password_confirmed_at", postwarden.db.UTCDateTime(), nullable=True))
    op.execute("UPDATE user_sessions SET password_confirmed_at = created_at")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.alter_column("password_confirmed_at", existing_type=postwarden.db.UTCDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_column("password_confirmed_at")
    op.drop_index(op.f("ix_server_pins_server_id"), table_name="server_pins")
    op.drop_table("server_pins")
    op.drop_index(op.f("ix_password_resets_user_id"), table_name="password_resets")
    op.drop_table("password_resets")
