"""scim: tokens, groups, members' SCIM profile and suspension

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 02:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import postwarden.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROFILE_COLUMNS = (
    "external_id",
    "display_name",
    "formatted_name",
    "family_name",
    "given_name",
    "middle_name",
    "honorific_prefix",
    "honorific_suffix",
    "employee_number",
    "cost_center",
    "organization",
    "division",
    "department",
)


def upgrade() -> None:
    op.create_table(
        "scim_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", postwarden.db.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", postwarden.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", postwarden.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_scim_tokens_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scim_tokens")),
        sa.UniqueConstraint("secret_digest", name=op.f("uq_scim_tokens_secret_digest")),
    )
    op.create_index(op.f("ix_scim_tokens_account_id"), "scim_tokens", ["account_id"], unique=False)

    # Plain ADD COLUMNs: a batch copy of the table on SQLite would lose its partial index.
    columns: list[sa.Column[Any]] = [
        sa.Column("suspended_at", postwarden.db.UTCDateTime(), nullable=True),
        sa.Column("user_name", sa.String(length=320), nullable=False, server_default=""),
        sa.Column("user_name_key", sa.String(length=320), nullable=False, server_default=""),
        *(sa.Column(name, sa.String(length=255), nullable=True) for name in _PROFILE_COLUMNS),
        sa.Column(
            "updated_at", postwarden.db.UTCDateTime(), nullable=False, server_default="1970-01-01 00:00:00+00:00"
        ),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
    ]
    for column in columns:
        op.add_column("memberships", column)
    # Every member so far is known by the address they were added with.
    op.execute(
        "UPDATE memberships SET user_name = (SELECT email FROM users WHERE users.id = memberships.user_id), "
        "user_name_key = (SELECT email FROM users WHERE users.id = memberships.user_id), updated_at = created_at"
    )
    op.create_index(
        "uq_memberships_account_id_user_name_key", "memberships", ["account_id", "user_name_key"], unique=True
    )
    op.create_index("ix_memberships_account_id_external_id", "memberships", ["account_id", "external_id"])

    op.create_table(
        "member_emails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("value_key", sa.String(length=320), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=True),
        sa.Column("primary", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_member_emails_membership_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_emails")),
    )
    op.create_index(op.f("ix_member_emails_membership_id"), "member_emails", ["membership_id"], unique=False)
    op.create_index(op.f("ix_member_emails_value_key"), "member_emails", ["value_key"], unique=False)

    op.create_table(
        "groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("display_name_key", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=True),
        sa.Column("created_at", postwarden.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", postwarden.db.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_groups_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    op.create_index(op.f("ix_groups_account_id"), "groups", ["account_id"], unique=False)
    op.create_index("ix_groups_account_id_display_name_key", "groups", ["account_id", "display_name_key"])
    op.create_index("ix_groups_account_id_external_id", "groups", ["account_id", "external_id"])

    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["membership_id"],
            ["memberships.id"],
            name=op.f("fk_group_members_membership_id_memberships"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "membership_id", name=op.f("pk_group_members")),
    )
    op.create_index(op.f("ix_group_members_membership_id"), "group_members", ["membership_id"], unique=False)

    op.create_table(
        "group_server_access",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("server_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_server_access_group_id_groups"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["server_id"], ["servers.id"], name=op.f("fk_group_server_access_server_id_servers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "server_id", name=op.f("pk_group_server_access")),
    )
    op.create_index(op.f("ix_group_server_access_server_id"), "group_server_access", ["server_id"], unique=False)


def downgrade() -> None:
    op.drop_table("group_server_access")
    op.drop_table("group_members")
    op.drop_table("groups")
    op.drop_table("member_emails")
    op.drop_index("ix_memberships_account_id_external_id", table_name="memberships")
    op.drop_index("uq_memberships_account_id_user_name_key", table_name="memberships")
    with op.batch_alter_table("memberships") as batch:
        for name in ("suspended_at", "user_name", "user_name_key", *_PROFILE_COLUMNS, "updated_at", "version"):
            batch.drop_column(name)
    op.drop_table("scim_tokens")
