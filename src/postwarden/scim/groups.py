"""SCIM Groups: the identity provider keeps who is in each group; what a group grants is
mapped by the account's Owner or an Admin (``groups.service``), so that a member's access
is the union of their own and their groups'. Groups hold users only."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from scim2_models import Group as GroupResource
from scim2_models import PatchOp
from sqlalchemy import ColumnElement, delete, exists, select, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.groups.models import Group, GroupMember
from postwarden.identity import Actor
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.scim.filters import Column, FilterTranslator, Kind, Values, parse_id
from postwarden.scim.listing import Page, Query, Searcher, page_bounds
from postwarden.scim.schemas import GROUP_ID_PREFIX, GROUP_SCHEMA_ID
from postwarden.scim.wire import Wire, check_version, meta, patched, without_empty
from postwarden.users.models import Membership
from postwarden.users.service import lock_account

NAME_MAX_LENGTH: Final = 255


def scim_group_id(group_id: int) -> str:
    return f"{GROUP_ID_PREFIX}{group_id}"


def _members(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(GroupMember.group_id == Group.id, Membership.id == GroupMember.membership_id, condition)


_COLUMNS: Final[dict[str, Column | Values]] = {
    "id": Column(Group.id, Kind.ID, id_prefix=GROUP_ID_PREFIX),
    "displayname": Column(Group.display_name_key, lowered=True),
    "externalid": Column(Group.external_id, case_insensitive=False),
    "meta.created": Column(Group.created_at, Kind.DATETIME),
    "meta.lastmodified": Column(Group.updated_at, Kind.DATETIME),
    "members": Values(_members, {"value": Column(Membership.user_id, Kind.ID)}),
}
GROUP_FILTERS: Final = FilterTranslator(_COLUMNS, {GROUP_SCHEMA_ID.lower(): frozenset(_COLUMNS)})
GROUP_SEARCH: Final = Searcher(GROUP_FILTERS, lambda: select(*Group.__table__.columns), Group.account_id, Group.id)


class ScimGroupService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime, base_url: str) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime
        self.base_url = base_url
        self.account_id = actor.account_id or 0

    def search(self, query: Query, *, with_members: bool = True) -> Page:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        total, rows = GROUP_SEARCH.search(self.session, self.account_id, query)
        return Page(total, page_bounds(query)[0] + 1, self._resources(rows, with_members=with_members))

    def read(self, group_id: str, *, with_members: bool = True) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        return self._resources([self._group(group_id)], with_members=with_members)[0]

    def create(self, resource: GroupResource) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        name = _display_name(resource)
        group = Group(
            account_id=self.account_id,
            display_name=name,
            display_name_key=name.lower(),
            external_id=_external_id(resource),
        )
        self.session.add(group)
        self.session.flush()  # assigns group.id for its members and the audit row
        members = self._membership_ids(resource)
        for membership_id in sorted(members.values()):
            self.session.add(GroupMember(group_id=group.id, membership_id=membership_id))
        _touch_members(self.session, members.values())
        self._record(
            AuditAction.GROUP_CREATED,
            group,
            {
                "display_name": {"before": None, "after": name},
                "external_id": {"before": None, "after": group.external_id},
                "members": {"before": None, "after": sorted(members)},
            },
        )
        return self._resources([group])[0]

    def replace(self, group_id: str, resource: GroupResource, *, if_match: str | None = None) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        group = self._group(group_id)
        check_version(group.version, if_match)
        self._write(group, resource)
        return self._resources([group])[0]

    def patch(self, group_id: str, patch: PatchOp[Any], *, if_match: str | None = None) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        group = self._group(group_id)
        check_version(group.version, if_match)
        self._write(group, patched(GroupResource, self._resources([group])[0], patch))
        return self._resources([group])[0]

    def delete(self, group_id: str, *, if_match: str | None = None) -> None:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        group = self._group(group_id)
        check_version(group.version, if_match)
        current = self._current_members(group.id)
        members = sorted(current)
        _touch_members(self.session, current.values())
        self.session.delete(group)
        self._record(AuditAction.GROUP_DELETED, group, {"members": {"before": members, "after": None}})

    # helpers

    def _write(self, group: Group, resource: GroupResource) -> None:
        name = _display_name(resource)
        wanted = self._membership_ids(resource)
        current = self._current_members(group.id)
        changes = audit.changed_fields(
            {"display_name": group.display_name, "external_id": group.external_id},
            {"display_name": name, "external_id": _external_id(resource)},
        )
        if set(wanted) != set(current):
            changes["members"] = {
                "added": sorted(set(wanted) - set(current)),
                "removed": sorted(set(current) - set(wanted)),
            }
        if not changes:
            return
        group.display_name, group.display_name_key = name, name.lower()
        group.external_id = _external_id(resource)
        for user_id in set(current) - set(wanted):
            self.session.execute(
                delete(GroupMember).where(
                    GroupMember.group_id == group.id, GroupMember.membership_id == current[user_id]
                )
            )
        for user_id in sorted(set(wanted) - set(current)):
            self.session.add(GroupMember(group_id=group.id, membership_id=wanted[user_id]))
        _touch_members(self.session, [current.get(u) or wanted[u] for u in set(wanted) ^ set(current)])
        group.version += 1
        group.updated_at = utcnow()
        self._record(AuditAction.GROUP_UPDATED, group, changes)

    def _membership_ids(self, resource: GroupResource) -> dict[int, int]:
        """user id -> membership id of the members named, all of this account."""
        wanted: set[int] = set()
        for member in resource.members or []:
            kind = str(member.type) if member.type else "User"
            if kind.lower() != "user":
                raise InvalidRequest(Reason.SCIM_VALUE_INVALID, "Groups hold users only, not other groups.")
            user_id = parse_id(member.value or "")
            if user_id is None:
                raise InvalidRequest(
                    Reason.SCIM_VALUE_INVALID, f"members: {member.value!r} is not a user of this account."
                )
            wanted.add(user_id)
        found: dict[int, int] = dict(
            self.session.execute(
                select(Membership.user_id, Membership.id).where(
                    Membership.account_id == self.account_id, Membership.user_id.in_(wanted)
                )
            )
            .tuples()
            .all()
        )
        missing = sorted(wanted - set(found))
        if missing:
            raise InvalidRequest(
                Reason.SCIM_VALUE_INVALID, f"members: user {missing[0]} is not a user of this account."
            )
        return found

    def _current_members(self, group_id: int) -> dict[int, int]:
        return dict(
            self.session.execute(
                select(Membership.user_id, Membership.id)
                .join(GroupMember, GroupMember.membership_id == Membership.id)
                .where(GroupMember.group_id == group_id)
            )
            .tuples()
            .all()
        )

    def _group(self, group_id: str) -> Group:
        number = parse_id(group_id, GROUP_ID_PREFIX)
        group = self.session.get(Group, number) if number is not None else None
        if group is None or group.account_id != self.account_id:
            raise NotFound(Reason.SCIM_RESOURCE_NOT_FOUND, f"Group {group_id} not found.")
        return group

    def _resources(self, groups: Sequence[Any], *, with_members: bool = True) -> list[Wire]:
        members: dict[int, list[int]] = {group.id: [] for group in groups}
        if groups and with_members:
            for group_id, user_id in self.session.execute(
                select(GroupMember.group_id, Membership.user_id)
                .join(Membership, Membership.id == GroupMember.membership_id)
                .where(GroupMember.group_id.in_(list(members)))
                .order_by(Membership.user_id)
            ):
                members[group_id].append(user_id)
        return [
            without_empty(
                {
                    "schemas": [GROUP_SCHEMA_ID],
                    "id": scim_group_id(group.id),
                    "externalId": group.external_id,
                    "displayName": group.display_name,
                    "members": [
                        {"value": str(user_id), "$ref": f"{self.base_url}/Users/{user_id}", "type": "User"}
                        for user_id in members[group.id]
                    ],
                    "meta": meta("Group", group, f"{self.base_url}/Groups/{scim_group_id(group.id)}"),
                }
            )
            for group in groups
        ]

    def _record(self, action: AuditAction, group: Group, changes: dict[str, Any]) -> None:
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=self.account_id,
            target_type="group",
            target_id=group.id,
            target_label=group.display_name,
            changes=changes,
        )
        account_id = self.account_id
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))


def _touch_members(session: Session, membership_ids: Iterable[int]) -> None:
    """Members who join or leave a group change as SCIM shows them (their ``groups``)."""
    ids = sorted(set(membership_ids))
    if ids:
        session.execute(
            update(Membership).where(Membership.id.in_(ids)).values(version=Membership.version + 1, updated_at=utcnow())
        )


def _display_name(resource: GroupResource) -> str:
    name = (resource.display_name or "").strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise InvalidRequest(Reason.SCIM_VALUE_INVALID, f"displayName must be 1 to {NAME_MAX_LENGTH} characters.")
    return name


def _external_id(resource: GroupResource) -> str | None:
    value = resource.external_id
    if value is not None and len(value) > NAME_MAX_LENGTH:
        raise InvalidRequest(Reason.SCIM_VALUE_INVALID, f"externalId is longer than {NAME_MAX_LENGTH} characters.")
    return value
