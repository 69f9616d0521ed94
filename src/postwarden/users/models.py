from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class User(Base):
    """One person, who may belong to several accounts."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased: addresses are matched case-insensitively.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    #: The TOTP secret, encrypted; set at enrolment, in force once ``totp_enabled_at`` is set.
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: The last TOTP time step accepted: a code is good once, never replayed.
    totp_last_step: Mapped[int | None] = mapped_column(default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(Base):
    """A user's place in one account: the account role (names live in ``policy.Role``)."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("account_id", "user_id"),
        Index("ix_memberships_account_id_role", "account_id", "role"),
        # The last line of defence for "exactly one Owner": a second one cannot be stored.
        # SCIM looks people up by userName (any case) and by the identity provider's id.
        Index("uq_memberships_account_id_user_name_key", "account_id", "user_name_key", unique=True),
        Index("ix_memberships_account_id_external_id", "account_id", "external_id"),
        Index(
            "uq_memberships_one_owner",
            "account_id",
            unique=True,
            sqlite_where=text("role = 'Owner'"),
            postgresql_where=text("role = 'Owner'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    #: Technical only: reach just the servers listed in ``server_access`` instead of all.
    servers_limited: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set while the member is suspended (SCIM ``active: false``): kept, but no credential works.
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    # The member as the account's identity provider describes them (SCIM User). ``user_name``
    # is the email the member was added with unless the provider names them otherwise.
    user_name: Mapped[str] = mapped_column(String(320))
    #: ``user_name`` as compared: lower-cased, unique in the account.
    user_name_key: Mapped[str] = mapped_column(String(320))
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    display_name: Mapped[str | None] = mapped_column(String(255), default=None)
    formatted_name: Mapped[str | None] = mapped_column(String(255), default=None)
    family_name: Mapped[str | None] = mapped_column(String(255), default=None)
    given_name: Mapped[str | None] = mapped_column(String(255), default=None)
    middle_name: Mapped[str | None] = mapped_column(String(255), default=None)
    honorific_prefix: Mapped[str | None] = mapped_column(String(255), default=None)
    honorific_suffix: Mapped[str | None] = mapped_column(String(255), default=None)
    employee_number: Mapped[str | None] = mapped_column(String(255), default=None)
    cost_center: Mapped[str | None] = mapped_column(String(255), default=None)
    organization: Mapped[str | None] = mapped_column(String(255), default=None)
    division: Mapped[str | None] = mapped_column(String(255), default=None)
    department: Mapped[str | None] = mapped_column(String(255), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Bumped by every change of the member's SCIM representation: its ETag.
    version: Mapped[int] = mapped_column(default=1)


class MemberEmail(Base):
    """One of a member's addresses as the identity provider lists them (SCIM ``emails``)."""

    __tablename__ = "member_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"), index=True)
    value: Mapped[str] = mapped_column(String(320))
    #: ``value`` lower-cased, for lookups such as Entra's ``emails[type eq "work"].value eq``.
    value_key: Mapped[str] = mapped_column(String(320), index=True)
    type: Mapped[str | None] = mapped_column(String(40), default=None)
    primary: Mapped[bool | None] = mapped_column(default=None)


class ServerAccessGrant(Base):
    """One member's access to one server (``policy.ServerAccess``); no row is No access."""

    __tablename__ = "server_access"
    __table_args__ = (UniqueConstraint("membership_id", "server_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(ForeignKey("memberships.id", ondelete="CASCADE"))
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(20))


class RecoveryCode(Base):
    """A single-use code that stands in for a TOTP code; only its keyed digest is kept."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class UserSession(Base):
    """A signed-in user in one account (the console's cookie, or the API's bearer session)."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    secret_digest: Mapped[str] = mapped_column(String(64), unique=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    #: When its user last typed their password in it: sensitive console actions ask again after a while.
    password_confirmed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PasswordReset(Base):
    """A mailed "forgotten password" link: single use, short-lived, only its digest stored."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    requested_ip: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
