"""What SCIM groups grant, and the Owner's and Admins' mapping of a group to a role and
servers. The identity provider decides who is in a group (``scim.groups``); only people of
the account decide what a group is worth, so a SCIM token can never widen anyone's access."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.groups.models import Group, GroupMember, GroupServerAccess
from postwarden.identity import Actor
from postwarden.paging import check_page
from postwarden.policy import GROUP_ROLES, Permission, Role, ServerAccess, require, strongest
from postwarden.runtime import Runtime
from postwarden.servers.models import Server


def group_grants(session: Session, membership_id: int) -> tuple[frozenset[str], tuple[tuple[int, str], ...]]:
    """(roles, server access) a member holds through its groups; the strongest level per server."""
    roles, levels = group_grants_of(session, [membership_id])[membership_id]
    return roles, tuple(sorted(levels.items()))


def group_grants_of(session: Session, membership_ids: list[int]) -> dict[int, tuple[frozenset[str], dict[int, str]]]:
    """What each of these members holds through its groups, in two queries for them all."""
    roles: dict[int, set[str]] = {membership_id: set() for membership_id in membership_ids}
    levels: dict[int, dict[int, ServerAccess]] = {membership_id: {} for membership_id in membership_ids}
    if membership_ids:
        for membership_id, role in session.execute(
            select(GroupMember.membership_id, Group.role)
            .join(Group, Group.id == GroupMember.group_id)
            .where(GroupMember.membership_id.in_(membership_ids), Group.role.is_not(None))
        ):
            roles[membership_id].add(role)
        for membership_id, server_id, level in session.execute(
            select(GroupMember.membership_id, GroupServerAccess.server_id, GroupServerAccess.level)
            .join(GroupServerAccess, GroupServerAccess.group_id == GroupMember.group_id)
            .where(GroupMember.membership_id.in_(membership_ids))
        ):
            held = levels[membership_id]
            held[server_id] = strongest(held.get(server_id, ServerAccess.NONE), ServerAccess(level))
    return {
        membership_id: (
            frozenset(roles[membership_id]),
            {server_id: level.value for server_id, level in levels[membership_id].items()},
        )
        for membership_id in membership_ids
    }


def touch_groups_of(session: Session, membership_id: int) -> None:
    """A member leaves the account: their groups change, and so do those groups' versions."""
    groups = select(GroupMember.group_id).where(GroupMember.membership_id == membership_id)
    session.execute(update(Group).where(Group.id.in_(groups)).values(version=Group.version + 1, updated_at=utcnow()))


@dataclass(frozen=True)
class GroupGrant:
    """A group with what it grants, as the team API shows it."""

    group: Group
    member_count: int
    servers: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupPage:
    total: int
    groups: list[GroupGrant]


class GroupService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    def list_groups(self, account_id: int, *, count: int, offset: int) -> GroupPage:
        require(self.actor, Permission.SCIM_MANAGE, account_id=account_id)
        check_page(count, offset, Reason.TEAM_QUERY_INVALID)
        total = self.session.scalar(select(func.count()).select_from(Group).where(Group.account_id == account_id))
        groups = list(
            self.session.scalars(
                select(Group)
                .where(Group.account_id == account_id)
                .order_by(Group.display_name_key, Group.id)
                .limit(count)
                .offset(offset)
            )
        )
        return GroupPage(total or 0, [self._with_grants(group) for group in groups])

    def get_group(self, account_id: int, group_id: int) -> GroupGrant:
        require(self.actor, Permission.SCIM_MANAGE, account_id=account_id)
        return self._with_grants(self._group(account_id, group_id))

    def set_access(
        self, account_id: int, group_id: int, *, role: Role | None, servers: dict[int, ServerAccess]
    ) -> GroupGrant:
        """Replaces what the group grants: ``role`` (None: no role) and a level per server."""
        require(self.actor, Permission.SCIM_MANAGE, account_id=account_id)
        group = self._group(account_id, group_id, for_update=True)
        if role is not None and role not in GROUP_ROLES:
            raise InvalidRequest(
                Reason.GROUP_FIELD_INVALID,
                f"A group cannot make its members {role.value}: ownership passes only by transfer.",
            )
        wanted = {server_id: level.value for server_id, level in servers.items() if level is not ServerAccess.NONE}
        known = set(
            self.session.scalars(select(Server.id).where(Server.account_id == account_id, Server.id.in_(list(wanted))))
        )
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise InvalidRequest(Reason.GROUP_FIELD_INVALID, f"Server {unknown[0]} is not a server of this account.")
        before = self._with_grants(group)
        after_role = role.value if role is not None else None
        if before.servers == wanted and group.role == after_role:
            return before
        self.session.execute(delete(GroupServerAccess).where(GroupServerAccess.group_id == group.id))
        for server_id, level in sorted(wanted.items()):
            self.session.add(GroupServerAccess(group_id=group.id, server_id=server_id, level=level))
        changes = audit.changed_fields(
            {"role": group.role, "server_access": _wire(before.servers)},
            {"role": after_role, "server_access": _wire(wanted)},
        )
        # The mapping is no part of the group as SCIM shows it: its version stays.
        group.role = after_role
        audit.record(
            self.session,
            self.actor,
            AuditAction.GROUP_ACCESS_UPDATED,
            account_id=account_id,
            target_type="group",
            target_id=group.id,
            target_label=group.display_name,
            changes=changes,
        )
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))
        return GroupGrant(group, before.member_count, wanted)

    def _group(self, account_id: int, group_id: int, *, for_update: bool = False) -> Group:
        """The group; ``for_update`` holds its row, so that two mappings of it are made one
        after the other rather than racing on its rows of server access."""
        query = select(Group).where(Group.id == group_id)
        group = self.session.scalar(query.with_for_update() if for_update else query)
        if group is None or group.account_id != account_id:
            raise NotFound(Reason.GROUP_NOT_FOUND, f"Group {group_id} was not found.")
        return group

    def _with_grants(self, group: Group) -> GroupGrant:
        members = self.session.scalar(
            select(func.count()).select_from(GroupMember).where(GroupMember.group_id == group.id)
        )
        servers: dict[int, str] = dict(
            self.session.execute(
                select(GroupServerAccess.server_id, GroupServerAccess.level).where(
                    GroupServerAccess.group_id == group.id
                )
            )
            .tuples()
            .all()
        )
        return GroupGrant(group, members or 0, servers)


def _wire(access: dict[int, str]) -> dict[str, str]:
    return {str(server_id): level for server_id, level in sorted(access.items())}
