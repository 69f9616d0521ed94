"""team and access

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 08:50:16.926630
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import postwarden.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing rows take the server defaults; new rows get theirs from the models.
    op.create_table(
        "invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("server_access", sa.JSON(), nullable=False),
        sa.Column("servers_limited", sa.Boolean(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", postwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("expires_at", postwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("accepted_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_invitations_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_invitations_token_digest")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_account_id"), ["account_id"], unique=False)

    op.create_table(
        "personal_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("server_ids", sa.JSON(), nullable=True),
        sa.Column("expires_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_used_ip", sa.String(length=64), nullable=False),
        sa.Column("created_at", postwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_personal_tokens_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_personal_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_tokens")),
        sa.UniqueConstraint("secret_digest", name=op.f("uq_personal_tokens_secret_digest")),
    )
    with op.batch_alter_table("personal_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_personal_tokens_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_personal_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        sa.Column("used_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_recovery_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=False),
        sa.Column("created_at", postwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", postwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", postwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_user_sessions_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_sessions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint("secret_digest", name=op.f("uq_user_sessions_secret_digest")),
    )
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_sessions_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_user_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "server_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_server_access_membership_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_server_access_server_id_servers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_server_access")),
        sa.UniqueConstraint("membership_id", "server_id", name=op.f("uq_server_access_membership_id_server_id")),
    )
    with op.batch_alter_table("server_access", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_server_access_server_id"), ["server_id"], unique=False)

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("require_two_factor", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("sending_paused", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("plan", sa.String(length=40), nullable=False, server_default="Platform"))
        batch_op.add_column(sa.Column("receipt_recipients", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("billing_error_recipients", sa.JSON(), nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("bill_to", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("member_count", sa.Integer(), nullable=False, server_default="0"))

    op.execute(
        "UPDATE accounts SET member_count = (SELECT count(*) FROM memberships WHERE memberships.account_id = accounts.id)"
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("servers_limited", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index("ix_memberships_account_id_role", ["account_id", "role"], unique=False)
        batch_op.create_index(
            "uq_memberships_one_owner",
            ["account_id"],
            unique=True,
            sqlite_where=sa.text("role = 'Owner'"),
            postgresql_where=sa.text("role = 'Owner'"),
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret_encrypted", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("totp_enabled_at", postwarden.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_login_at", postwarden.db.UTCDateTime(timezone=True), nullable=True))

    # ### end Alembic commands ###


def downgrade() -> None:
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enabled_at")
        batch_op.drop_column("totp_secret_encrypted")

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index("uq_memberships_one_owner")
        batch_op.drop_index("ix_memberships_account_id_role")
        batch_op.drop_column("servers_limited")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("member_count")
        batch_op.drop_column("bill_to")
        batch_op.drop_column("billing_error_recipients")
        batch_op.drop_column("receipt_recipients")
        batch_op.drop_column("plan")
        batch_op.drop_column("sending_paused")
        batch_op.drop_column("require_two_factor")

    with op.batch_alter_table("server_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_server_access_server_id"))

    op.drop_table("server_access")
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_sessions_user_id"))
        batch_op.drop_index(batch_op.f("ix_user_sessions_account_id"))

    op.drop_table("user_sessions")
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_user_id"))

    op.drop_table("recovery_codes")
    with op.batch_alter_table("personal_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_personal_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_personal_tokens_account_id"))

    op.drop_table("personal_tokens")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitations_account_id"))

    op.drop_table("invitations")
    # ### end Alembic commands ###
