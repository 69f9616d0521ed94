"""SCIM groups: sets of members, kept by the identity provider, that grant what the
account's Owner or an Admin maps to them (an account role, access to some servers)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (
        Index("ix_groups_account_id_display_name_key", "account_id", "display_name_key"),
        Index("ix_groups_account_id_external_id", "account_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    display_name_key: Mapped[str] = mapped_column(String(255))
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    #: The account role its members hold at least (``policy.GROUP_ROLES``); None grants none.
    role: Mapped[str | None] = mapped_column(String(20), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Bumped by every change of the group as SCIM shows it: its ETag.
    version: Mapped[int] = mapped_column(default=1)


class GroupMember(Base):
    __tablename__ = "group_members"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    membership_id: Mapped[int] = mapped_column(
        ForeignKey("memberships.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class GroupServerAccess(Base):
    """The access a group's members get on one server (``policy.ServerAccess``)."""

    __tablename__ = "group_server_access"

    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True, index=True)
    level: Mapped[str] = mapped_column(String(20))
