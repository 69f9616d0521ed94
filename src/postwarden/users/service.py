"""People in accounts: who is a member, with which role and which servers.

The rules themselves (who may change whom, one Owner) live in ``policy``; this service
applies them to rows, under a lock on the account row so that concurrent changes to the
same account's people happen one after another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final, cast

from sqlalchemy import ColumnElement, CursorResult, Result, and_, delete, exists, false, func, or_, select, true, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.accounts.models import Account
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import Conflict, InvalidRequest, NotFound, Reason
from postwarden.groups.models import Group, GroupMember, GroupServerAccess
from postwarden.groups.service import group_grants, group_grants_of, touch_groups_of
from postwarden.identity import Actor, Credential
from postwarden.paging import check_page
from postwarden.policy import (
    ALWAYS_VISIBLE,
    ROLE_SERVER_ACCESS,
    ROLES_WITH_SERVER_LIMIT,
    ROLES_WITH_SERVER_LIST,
    Permission,
    Role,
    ServerAccess,
    access_level,
    allows,
    check_removal,
    check_role_change,
    check_server_list,
    check_transfer,
    require,
    sees_every_member,
    server_access,
    strongest,
    visible_servers,
)
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.tokens.models import PersonalToken
from postwarden.users.models import Membership, ServerAccessGrant, User, UserSession
from postwarden.users.passwords import MIN_PASSWORD_LENGTH, hash_password

#: One "@", a dot in the domain, no spaces or control characters (docs/api.md states it too).
EMAIL_PATTERN: Final = r"^[^@\s\x00-\x1f\x7f\x85]+@[^@\s\x00-\x1f\x7f\x85]+\.[^@\s\x00-\x1f\x7f\x85]+$"
_EMAIL_RE: Final = re.compile(EMAIL_PATTERN)
EMAIL_MAX_LENGTH: Final = 320


def normalize_email(email: str) -> str:
    stripped = email.strip()
    address = stripped.lower()
    if len(stripped) > EMAIL_MAX_LENGTH or len(address) > EMAIL_MAX_LENGTH or not _EMAIL_RE.match(stripped):
        raise InvalidRequest(Reason.USER_EMAIL_INVALID, f"'{email}' is not a valid email address.")
    return address


def parse_role(value: str) -> Role:
    for role in Role:
        if role.value.lower() == value.strip().lower():
            return role
    raise InvalidRequest(
        Reason.ROLE_INVALID, f"Unknown role '{value}'. Use one of: {', '.join(r.value for r in Role)}."
    )


def parse_access(value: str) -> ServerAccess:
    wanted = value.replace(" ", "").replace("_", "").lower()
    for level in ServerAccess:
        if level.value.lower() == wanted:
            return level
    raise InvalidRequest(
        Reason.SERVER_ACCESS_INVALID,
        f"Unknown server access '{value}'. Use one of: {', '.join(a.value for a in ServerAccess)}.",
    )


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(
            Reason.PASSWORD_TOO_SHORT, f"The password must have at least {MIN_PASSWORD_LENGTH} characters."
        )


@dataclass(frozen=True, slots=True)
class MemberGrants:
    """What a member's credentials carry into an ``Actor`` (cached per token)."""

    role: str
    servers_limited: bool
    server_access: tuple[tuple[int, str], ...]
    two_factor_missing: bool
    #: What the member's SCIM groups add (``policy.server_access`` takes the strongest).
    group_roles: frozenset[str] = frozenset()
    group_server_access: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class Member:
    membership: Membership
    user: User
    #: Access granted server by server (server id -> ``ServerAccess`` value).
    listed_access: dict[int, str]
    #: What the member's SCIM groups add: roles, and server id -> level.
    group_roles: frozenset[str] = frozenset()
    group_access: dict[int, str] = field(default_factory=dict)

    @property
    def role(self) -> Role:
        return Role(self.membership.role)

    @property
    def default_access(self) -> ServerAccess:
        """The access on servers granted nothing one by one (by the member or a group)."""
        return strongest(
            access_level(self.role, limited=self.membership.servers_limited, listed=None),
            *(ROLE_SERVER_ACCESS[Role(role)] for role in self.group_roles),
        )

    def access_on(self, server_id: int) -> ServerAccess:
        by_group = self.group_access.get(server_id)
        return strongest(
            self.default_access,
            access_level(self.role, limited=self.membership.servers_limited, listed=self.listed_access.get(server_id)),
            ServerAccess(by_group) if by_group is not None else ServerAccess.NONE,
        )


@dataclass(frozen=True)
class Profile:
    """The caller as ``GET /me`` shows it."""

    user: User
    #: (account id, account name, role) of every account the user belongs to.
    accounts: list[tuple[int, str, str]]
    permissions: list[Permission]
    #: (server id, name, access) of each server the caller reaches in the current account.
    servers: list[tuple[int, str, ServerAccess]]


@dataclass(frozen=True)
class MemberPage:
    total: int
    members: list[Member]


@dataclass(frozen=True)
class ServerAccessChange:
    """``PUT /users/{id}/servers``: a level for every server first (if given), then per server."""

    all_servers: ServerAccess | None
    servers: dict[int, ServerAccess]


def member_grants(session: Session, account_id: int, user_id: int) -> MemberGrants | None:
    """The grants behind a personal token or session; None when the user is no member, or
    a suspended one."""
    row = session.execute(
        select(Membership.id, Membership.role, Membership.servers_limited, Account.require_two_factor)
        .join(Account, Account.id == Membership.account_id)
        .where(Membership.account_id == account_id, Membership.user_id == user_id, Membership.suspended_at.is_(None))
    ).one_or_none()
    if row is None:
        return None
    membership_id, role, limited, two_factor_required = row
    access = tuple(
        (server_id, level)
        for server_id, level in session.execute(
            select(ServerAccessGrant.server_id, ServerAccessGrant.level)
            .where(ServerAccessGrant.membership_id == membership_id)
            .order_by(ServerAccessGrant.server_id)
        )
    )
    missing = False
    if two_factor_required:
        missing = session.scalar(select(User.totp_enabled_at).where(User.id == user_id)) is None
    group_roles, group_access = group_grants(session, membership_id)
    return MemberGrants(role, limited, access, missing, group_roles, group_access)


class UserService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    # users and memberships as created by accounts and invitations

    def find_user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email.strip().lower()))

    def create_user(self, email: str, password: str, *, name: str = "") -> User:
        address = normalize_email(email)
        check_password(password)
        if self.find_user_by_email(address) is not None:
            raise Conflict(Reason.USER_EMAIL_TAKEN, f"A user with the email {address} already exists.")
        user = User(email=address, name=name, password_hash=hash_password(password))
        self.session.add(user)
        self.session.flush()  # assigns user.id for the audit row
        audit.record(
            self.session,
            self.actor,
            AuditAction.USER_CREATED,
            account_id=None,
            target_type="user",
            target_id=user.id,
            target_label=address,
            changes={"email": {"before": None, "after": address}, "name": {"before": None, "after": name}},
        )
        return user

    def add_membership(
        self,
        account_id: int,
        user: User,
        role: Role,
        *,
        servers_limited: bool = False,
        server_access: dict[int, ServerAccess] | None = None,
    ) -> Membership:
        """Called by account creation and invitation acceptance, which authorised the grant."""
        membership = Membership(
            account_id=account_id,
            user_id=user.id,
            role=role.value,
            servers_limited=servers_limited,
            user_name=user.email,
            user_name_key=user.email,
        )
        self.session.add(membership)
        self.session.execute(
            update(Account).where(Account.id == account_id).values(member_count=Account.member_count + 1)
        )
        self.session.flush()  # assigns membership.id for the access rows and audit row
        granted = {
            server_id: level for server_id, level in (server_access or {}).items() if level is not ServerAccess.NONE
        }
        for server_id, level in granted.items():
            self.session.add(ServerAccessGrant(membership_id=membership.id, server_id=server_id, level=level.value))
        audit.record(
            self.session,
            self.actor,
            AuditAction.MEMBERSHIP_CREATED,
            account_id=account_id,
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            changes={
                "role": {"before": None, "after": role.value},
                "servers_limited": {"before": None, "after": servers_limited},
                "server_access": {"before": None, "after": {str(s): level.value for s, level in granted.items()}},
            },
        )
        return membership

    # reading members

    def list_members(
        self,
        account_id: int,
        *,
        count: int,
        offset: int,
        role: Role | None = None,
        server_id: int | None = None,
        has_two_factor: bool | None = None,
        email: str | None = None,
    ) -> MemberPage:
        require(self.actor, Permission.USERS_READ, account_id=account_id)
        check_page(count, offset, Reason.TEAM_QUERY_INVALID)
        query = (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.account_id == account_id, self._visible())
        )
        if role is not None:
            query = query.where(Membership.role == role.value)
        if server_id is not None:
            query = query.where(_reaches(server_id))
        if has_two_factor is not None:
            query = query.where(User.totp_enabled_at.is_not(None) if has_two_factor else User.totp_enabled_at.is_(None))
        if email:
            query = query.where(User.email.contains(email.strip().lower(), autoescape=True))
        unfiltered = role is None and server_id is None and has_two_factor is None and not email
        if unfiltered and sees_every_member(self.actor):
            total = self.session.scalar(select(Account.member_count).where(Account.id == account_id))
        else:
            counted = query.with_only_columns(Membership.id).subquery()
            total = self.session.scalar(select(func.count()).select_from(counted))
        # In the order people joined: the account's index serves any page without a sort.
        rows = self.session.execute(query.order_by(Membership.id).limit(count).offset(offset)).all()
        return MemberPage(total or 0, self._with_access([(m, u) for m, u in rows]))

    def get_member(self, account_id: int, user_id: int) -> Member:
        require(self.actor, Permission.USERS_READ, account_id=account_id)
        row = self.session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.account_id == account_id, Membership.user_id == user_id, self._visible())
        ).one_or_none()
        if row is None:
            raise NotFound(Reason.USER_NOT_FOUND, f"User {user_id} is not a member of this account.")
        return self._with_access([(row[0], row[1])])[0]

    def servers_seen_by_caller(self, account_id: int) -> list[tuple[int, str]]:
        """(id, name) of the account's servers the caller reaches, by name: the columns of
        a member's access as the caller may see it."""
        require(self.actor, Permission.USERS_READ, account_id=account_id)
        query = select(Server.id, Server.name).where(Server.account_id == account_id)
        reachable = visible_servers(self.actor)
        if reachable is not None:
            query = query.where(Server.id.in_(reachable))
        return [(sid, name) for sid, name in self.session.execute(query.order_by(Server.name_key, Server.id))]

    def profile(self, account_id: int) -> Profile:
        require(self.actor, Permission.PROFILE_READ, account_id=account_id)
        user = self.session.get(User, self.actor.user_id) if self.actor.user_id is not None else None
        if user is None:
            raise NotFound(Reason.USER_NOT_FOUND, "The signed-in user no longer exists.")
        accounts = [
            (account.id, account.name, role)
            for account, role in self.session.execute(
                select(Account, Membership.role)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.user_id == user.id)
                .order_by(Account.name, Account.id)
            )
        ]
        permissions = [p for p in Permission if allows(self.actor, p, account_id=account_id)]
        query = select(Server.id, Server.name).where(Server.account_id == account_id)
        reachable = visible_servers(self.actor)
        if reachable is not None:
            query = query.where(Server.id.in_(reachable))
        servers = [
            (server_id, name, server_access(self.actor, server_id))
            for server_id, name in self.session.execute(query.order_by(Server.name_key, Server.id))
        ]
        return Profile(user, accounts, permissions, servers)

    # changing members

    def set_role(
        self, account_id: int, user_id: int, role: Role | None, *, servers_limited: bool | None = None
    ) -> Member:
        """A new role and/or Technical limit; None keeps what the member has."""
        require(self.actor, Permission.USERS_MANAGE, account_id=account_id)
        self._lock_account(account_id)
        member = self.get_member(account_id, user_id)
        current = member.role
        role = current if role is None else role
        check_role_change(current, role)
        limited = member.membership.servers_limited if servers_limited is None else servers_limited
        if role not in ROLES_WITH_SERVER_LIMIT:
            if servers_limited:
                check_server_list(role, limited=True)
            limited = False
        if role is current and limited == member.membership.servers_limited:
            return member
        changes: dict[str, object] = {}
        if role is not current:
            changes["role"] = {"before": current.value, "after": role.value}
            member.membership.role = role.value
        if limited != member.membership.servers_limited:
            changes["servers_limited"] = {"before": member.membership.servers_limited, "after": limited}
            member.membership.servers_limited = limited
        if role not in ROLES_WITH_SERVER_LIST and member.listed_access:
            # Owner, Admin and Billing reach servers by role alone; stale grants must not return later.
            changes["server_access"] = {"before": _wire(member.listed_access), "after": {}}
            self.session.execute(
                delete(ServerAccessGrant).where(ServerAccessGrant.membership_id == member.membership.id)
            )
            member.listed_access.clear()
        self._record(AuditAction.MEMBERSHIP_UPDATED, account_id, member, changes)
        return member

    def set_server_access(self, account_id: int, user_id: int, change: ServerAccessChange) -> Member:
        require(self.actor, Permission.USERS_MANAGE, account_id=account_id)
        self._lock_account(account_id)
        member = self.get_member(account_id, user_id)
        check_server_list(member.role, limited=False)
        account_servers = set(self.session.scalars(select(Server.id).where(Server.account_id == account_id)))
        unknown = sorted(set(change.servers) - account_servers)
        if unknown:
            raise InvalidRequest(
                Reason.SERVER_ACCESS_INVALID,
                f"Server {unknown[0]} is not a server of this account.",
            )
        wanted = dict(member.listed_access)
        if change.all_servers is not None:
            wanted = dict.fromkeys(account_servers, change.all_servers.value)
        for server_id, given in change.servers.items():
            wanted[server_id] = given.value
        wanted = {server_id: value for server_id, value in wanted.items() if value != ServerAccess.NONE.value}
        if wanted == member.listed_access:
            return member
        membership_id = member.membership.id
        for server_id in member.listed_access.keys() - wanted.keys():
            self.session.execute(
                delete(ServerAccessGrant).where(
                    ServerAccessGrant.membership_id == membership_id, ServerAccessGrant.server_id == server_id
                )
            )
        for server_id, level in wanted.items():
            before = member.listed_access.get(server_id)
            if before is None:
                self.session.add(ServerAccessGrant(membership_id=membership_id, server_id=server_id, level=level))
            elif before != level:
                self.session.execute(
                    update(ServerAccessGrant)
                    .where(ServerAccessGrant.membership_id == membership_id, ServerAccessGrant.server_id == server_id)
                    .values(level=level)
                )
        changes: dict[str, object] = {"server_access": {"before": _wire(member.listed_access), "after": _wire(wanted)}}
        member.listed_access.clear()
        member.listed_access.update(wanted)
        self._record(AuditAction.SERVER_ACCESS_UPDATED, account_id, member, changes)
        return member

    def remove_member(self, account_id: int, user_id: int) -> Member:
        """Removes the membership and revokes the user's sessions and tokens in this account."""
        require(self.actor, Permission.USERS_MANAGE, account_id=account_id)
        self._lock_account(account_id)
        member = self.get_member(account_id, user_id)
        check_removal(member.role)
        tokens, sessions = revoke_credentials(self.session, account_id, user_id)
        touch_groups_of(self.session, member.membership.id)
        changes = {
            "role": {"before": member.role.value, "after": None},
            "server_access": {"before": _wire(member.listed_access), "after": None},
            "personal_tokens_revoked": tokens,
            "sessions_revoked": sessions,
        }
        self.session.delete(member.membership)
        self.session.execute(
            update(Account).where(Account.id == account_id).values(member_count=Account.member_count - 1)
        )
        self._record(AuditAction.MEMBERSHIP_DELETED, account_id, member, changes)
        return member

    def transfer_ownership(self, account_id: int, new_owner_id: int) -> Member:
        """The Owner hands the account to an Admin and becomes an Admin."""
        require(self.actor, Permission.OWNERSHIP_TRANSFER, account_id=account_id)
        self._lock_account(account_id)
        # The operator hands over the current Owner's place; anyone else, their own.
        mine = self.session.scalar(
            select(Membership).where(
                Membership.account_id == account_id,
                Membership.role == Role.OWNER.value
                if self.actor.credential is Credential.SYSTEM
                else Membership.user_id == self.actor.user_id,
            )
        )
        target = self.get_member(account_id, new_owner_id)
        check_transfer(self.actor, actor_role=Role(mine.role) if mine else None, target_role=target.role)
        assert mine is not None  # check_transfer refused anyone but the Owner and the operator
        mine.role = Role.ADMIN.value
        self.session.flush()  # the old Owner steps down before the new one is stored: one Owner, always
        target.membership.role = Role.OWNER.value
        target.listed_access.clear()
        self.session.execute(delete(ServerAccessGrant).where(ServerAccessGrant.membership_id == target.membership.id))
        audit.record(
            self.session,
            self.actor,
            AuditAction.ACCOUNT_OWNERSHIP_TRANSFERRED,
            account_id=account_id,
            target_type="user",
            target_id=target.user.id,
            target_label=target.user.email,
            changes={"owner": {"before": mine.user_id, "after": target.user.id}},
        )
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))
        return target

    # helpers

    def _lock_account(self, account_id: int) -> None:
        lock_account(self.session, account_id)

    def _visible(self) -> ColumnElement[bool]:
        """Who sees whom: Owner and Admin everyone; others the Owner, the Admins, themselves
        and the members who share a server with them."""
        if sees_every_member(self.actor):
            return true()
        reachable = visible_servers(self.actor)
        shares: ColumnElement[bool]
        if reachable is None:
            shares = or_(_reaches_every_server(), _has_listed_access(None))
        elif reachable:
            shares = or_(_reaches_every_server(), _has_listed_access(reachable))
        else:
            shares = false()
        return or_(
            Membership.role.in_([role.value for role in ALWAYS_VISIBLE]),
            Membership.user_id == self.actor.user_id,
            shares,
        )

    def _with_access(self, rows: list[tuple[Membership, User]]) -> list[Member]:
        return members_with_access(self.session, rows)

    def _record(self, action: AuditAction, account_id: int, member: Member, changes: dict[str, object]) -> None:
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=account_id,
            target_type="user",
            target_id=member.user.id,
            target_label=member.user.email,
            changes=changes,
        )
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))


def members_with_access(session: Session, rows: list[tuple[Membership, User]]) -> list[Member]:
    """Members with their listed access and their SCIM groups' grants, loaded for the whole
    page at once: what ``Member.access_on`` needs, for ``/users`` and the access review alike."""
    listed: dict[int, dict[int, str]] = {membership.id: {} for membership, _ in rows}
    if listed:
        for membership_id, server_id, level in session.execute(
            select(ServerAccessGrant.membership_id, ServerAccessGrant.server_id, ServerAccessGrant.level).where(
                ServerAccessGrant.membership_id.in_(list(listed))
            )
        ):
            listed[membership_id][server_id] = level
    grants = group_grants_of(session, list(listed))
    return [Member(membership, user, listed[membership.id], *grants[membership.id]) for membership, user in rows]


def revoke_credentials(session: Session, account_id: int, user_id: int) -> tuple[int, int]:
    """Ends a member's personal tokens and sessions in one account: (tokens, sessions) ended.
    Part of removing or suspending the member, which authorise and audit it."""
    now = utcnow()
    tokens = _count(
        session.execute(
            update(PersonalToken)
            .where(
                PersonalToken.account_id == account_id,
                PersonalToken.user_id == user_id,
                PersonalToken.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
    )
    sessions = _count(
        session.execute(
            update(UserSession)
            .where(
                UserSession.account_id == account_id,
                UserSession.user_id == user_id,
                UserSession.revoked_at.is_(None),
            )
            .values(revoked_at=now)
        )
    )
    return tokens, sessions


def lock_account(session: Session, account_id: int) -> None:
    """Changes to one account's people are serialised on its row (SQLite: the write lock)."""
    found = session.scalar(select(Account.id).where(Account.id == account_id).with_for_update())
    if found is None:
        raise NotFound(Reason.ACCOUNT_NOT_FOUND, f"Account {account_id} was not found.")


def _count(result: Result[Any]) -> int:
    """Rows an UPDATE changed."""
    return int(cast(CursorResult[Any], result).rowcount)


def _wire(access: dict[int, str]) -> dict[str, str]:
    return {str(server_id): level for server_id, level in sorted(access.items())}


def _reaches_every_server() -> ColumnElement[bool]:
    """Members whose role, or a role one of their SCIM groups gives, reaches every server."""
    everywhere = [role.value for role, level in ROLE_SERVER_ACCESS.items() if level is not ServerAccess.NONE]
    limitable = [role.value for role in ROLES_WITH_SERVER_LIMIT]
    by_role = and_(
        Membership.role.in_(everywhere),
        or_(Membership.role.not_in(limitable), Membership.servers_limited.is_(False)),
    )
    by_group = exists().where(
        GroupMember.membership_id == Membership.id, Group.id == GroupMember.group_id, Group.role.in_(everywhere)
    )
    return or_(by_role, by_group)


def _has_listed_access(server_ids: frozenset[int] | None) -> ColumnElement[bool]:
    """Members granted access to any of ``server_ids`` (None: any server), one by one or
    through a SCIM group."""
    own = and_(
        ServerAccessGrant.membership_id == Membership.id,
        ServerAccessGrant.level != ServerAccess.NONE.value,
        Membership.role.in_([role.value for role in ROLES_WITH_SERVER_LIST]),
    )
    through_group = and_(
        GroupMember.membership_id == Membership.id,
        GroupServerAccess.group_id == GroupMember.group_id,
        GroupServerAccess.level != ServerAccess.NONE.value,
    )
    if server_ids is not None:
        own = and_(own, ServerAccessGrant.server_id.in_(server_ids))
        through_group = and_(through_group, GroupServerAccess.server_id.in_(server_ids))
    return or_(exists().where(own), exists().where(through_group))


def _reaches(server_id: int) -> ColumnElement[bool]:
    """Members with any access to one server."""
    return or_(_reaches_every_server(), _has_listed_access(frozenset({server_id})))
