"""SCIM Users: the account's members as its identity provider sees and changes them.

A SCIM User is a membership (``id`` is the user's id, as on ``/users``). ``userName`` is
unique in the account without regard to case; the member signs in with it when it is an
email address, else with their primary email. ``active: false`` suspends the member: kept,
shown, but every session and personal token ends and none works until ``active: true``.
The Owner is shown and never changed or removed. PATCH is applied to the resource in
memory and written as a whole, so a request changes all or nothing.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any, Final

from scim2_models import EnterpriseUser, Name, PatchOp
from sqlalchemy import ColumnElement, bindparam, delete, exists, func, select, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.accounts.models import Account
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import Conflict, InvalidRequest, NotFound, PermissionDenied, Reason
from postwarden.groups.models import Group, GroupMember
from postwarden.groups.service import touch_groups_of
from postwarden.identity import Actor
from postwarden.policy import Permission, Role, require
from postwarden.runtime import Runtime
from postwarden.scim.filters import Column, FilterTranslator, Kind, Values, parse_id
from postwarden.scim.listing import Page, Query, Searcher, page_bounds
from postwarden.scim.schemas import (
    ENTERPRISE_SCHEMA_ID,
    GROUP_ID_PREFIX,
    USER_SCHEMA_ID,
    UserResource,
)
from postwarden.scim.wire import Wire, check_version, meta, patched, without_empty
from postwarden.users.models import MemberEmail, Membership, User
from postwarden.users.passwords import hash_password
from postwarden.users.service import EMAIL_PATTERN, lock_account, revoke_credentials

#: Stands in for the password of a provisioned member: the hash of a secret nobody keeps, so
#: no password signs them in until they set one.
_NO_PASSWORD: Final = hash_password(secrets.token_urlsafe(32))
_EMAIL_RE: Final = re.compile(EMAIL_PATTERN)
TEXT_MAX_LENGTH: Final = 255
USER_NAME_MAX_LENGTH: Final = 320

#: (column, the scim2-models field, the attribute on the wire) of each part of ``name``
_NAME_PARTS: Final = (
    ("formatted_name", "formatted", "formatted"),
    ("family_name", "family_name", "familyName"),
    ("given_name", "given_name", "givenName"),
    ("middle_name", "middle_name", "middleName"),
    ("honorific_prefix", "honorific_prefix", "honorificPrefix"),
    ("honorific_suffix", "honorific_suffix", "honorificSuffix"),
)
_NAME_ATTRIBUTES: Final = tuple((column, attribute) for column, _field, attribute in _NAME_PARTS)
#: (column and scim2-models field, the attribute on the wire) of the enterprise extension
_ENTERPRISE_ATTRIBUTES: Final = (
    ("employee_number", "employeeNumber"),
    ("cost_center", "costCenter"),
    ("organization", "organization"),
    ("division", "division"),
    ("department", "department"),
)
#: Member columns written from the SCIM representation: (column, where it lives in the resource).
PROFILE: Final[tuple[tuple[str, str], ...]] = (
    ("external_id", "externalId"),
    ("display_name", "displayName"),
    *((column, f"name.{attribute}") for column, attribute in _NAME_ATTRIBUTES),
    *_ENTERPRISE_ATTRIBUTES,
)


def _emails(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(MemberEmail.membership_id == Membership.id, condition)


def _groups(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(GroupMember.membership_id == Membership.id, Group.id == GroupMember.group_id, condition)


_CORE_COLUMNS: Final[dict[str, Column | Values]] = {
    "id": Column(Membership.user_id, Kind.ID),
    "username": Column(Membership.user_name_key, lowered=True),
    "externalid": Column(Membership.external_id, case_insensitive=False),
    "displayname": Column(Membership.display_name),
    "name.formatted": Column(Membership.formatted_name),
    "name.familyname": Column(Membership.family_name),
    "name.givenname": Column(Membership.given_name),
    "name.middlename": Column(Membership.middle_name),
    "name.honorificprefix": Column(Membership.honorific_prefix),
    "name.honorificsuffix": Column(Membership.honorific_suffix),
    "active": Column(Membership.suspended_at.is_(None), Kind.FLAG),
    "meta.created": Column(Membership.created_at, Kind.DATETIME),
    "meta.lastmodified": Column(Membership.updated_at, Kind.DATETIME),
    "emails": Values(
        _emails,
        {
            "value": Column(MemberEmail.value_key, lowered=True),
            "type": Column(MemberEmail.type),
            "primary": Column(MemberEmail.primary, Kind.BOOLEAN),
        },
    ),
    "groups": Values(
        _groups,
        {
            "value": Column(Group.id, Kind.ID, id_prefix=GROUP_ID_PREFIX),
            "display": Column(Group.display_name_key, lowered=True),
        },
    ),
}
_ENTERPRISE_COLUMNS: Final[dict[str, Column | Values]] = {
    "employeenumber": Column(Membership.employee_number, case_insensitive=False),
    "costcenter": Column(Membership.cost_center),
    "organization": Column(Membership.organization),
    "division": Column(Membership.division),
    "department": Column(Membership.department),
}
USER_FILTERS: Final = FilterTranslator(
    {**_CORE_COLUMNS, **_ENTERPRISE_COLUMNS},
    {
        USER_SCHEMA_ID.lower(): frozenset(_CORE_COLUMNS),
        ENTERPRISE_SCHEMA_ID.lower(): frozenset(_ENTERPRISE_COLUMNS),
    },
)


# What a page of users shows beside their own row, read once for the whole page; built once.
_EMAILS_OF: Final = (
    select(MemberEmail.membership_id, MemberEmail.value, MemberEmail.type, MemberEmail.primary)
    .where(MemberEmail.membership_id.in_(bindparam("ids", expanding=True)))
    .order_by(MemberEmail.id)
)
_GROUPS_OF: Final = (
    select(GroupMember.membership_id, Group.id, Group.display_name)
    .join(Group, Group.id == GroupMember.group_id)
    .where(GroupMember.membership_id.in_(bindparam("ids", expanding=True)))
    .order_by(Group.id)
)
#: Plain rows, not ORM objects: a list only reads.
USER_SEARCH: Final = Searcher(
    USER_FILTERS, lambda: select(*Membership.__table__.columns), Membership.account_id, Membership.id
)


def login_address(resource: UserResource) -> str | None:
    """The address the member signs in with: ``userName`` if it is one, else the primary email."""
    user_name = (resource.user_name or "").strip()
    if _EMAIL_RE.match(user_name) and len(user_name) <= USER_NAME_MAX_LENGTH:
        return user_name.lower()
    emails = [e for e in resource.emails or [] if e.value]
    emails.sort(key=lambda e: not e.primary)
    return str(emails[0].value).lower() if emails else None


class ScimUserService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime, base_url: str) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime
        #: ``.../scim/v2``: where ``meta.location`` and member references point.
        self.base_url = base_url
        self.account_id = actor.account_id or 0

    # reading

    def search(self, query: Query) -> Page:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        total, rows = USER_SEARCH.search(self.session, self.account_id, query)
        return Page(total, page_bounds(query)[0] + 1, self._resources(rows))

    def read(self, user_id: str) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        member, _user = self._member(user_id)
        return self._resources([member])[0]

    # changing

    def create(self, resource: UserResource) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        user_name = _user_name(resource)
        after = _profile(resource)
        emails = _email_rows(resource)
        self._check_user_name_free(user_name, None)
        address = login_address(resource)
        user = self.session.scalar(select(User).where(User.email == address)) if address else None
        if user is not None and self.session.scalar(
            select(Membership.id).where(Membership.account_id == self.account_id, Membership.user_id == user.id)
        ):
            raise Conflict(
                Reason.SCIM_UNIQUENESS, f"A member of this account already signs in as {address}: find them by email."
            )
        if user is None:
            # Without an address the member exists, but can neither sign in nor receive mail
            # until their identity provider sends one.
            email = address or f"scim-{secrets.token_hex(8)}@users.invalid"
            user = User(email=email, name=resource.display_name or "", password_hash=_NO_PASSWORD)
            self.session.add(user)
            self.session.flush()  # assigns user.id
            audit.record(
                self.session,
                self.actor,
                AuditAction.USER_CREATED,
                account_id=self.account_id,
                target_type="user",
                target_id=user.id,
                target_label=email,
                changes={"email": {"before": None, "after": email}},
            )
        member = Membership(
            account_id=self.account_id,
            user_id=user.id,
            role=Role.MEMBER.value,
            user_name=user_name,
            user_name_key=user_name.lower(),
            suspended_at=None if resource.active is not False else utcnow(),
        )
        for column, value in after.items():
            setattr(member, column, value)
        self.session.add(member)
        self.session.execute(
            update(Account).where(Account.id == self.account_id).values(member_count=Account.member_count + 1)
        )
        self.session.flush()  # assigns member.id for the email rows
        for row in emails:
            row.membership_id = member.id
            self.session.add(row)
        audit.record(
            self.session,
            self.actor,
            AuditAction.MEMBERSHIP_CREATED,
            account_id=self.account_id,
            target_type="user",
            target_id=user.id,
            target_label=user_name,
            changes={
                "role": {"before": None, "after": Role.MEMBER.value},
                "user_name": {"before": None, "after": user_name},
                "active": {"before": None, "after": member.suspended_at is None},
                "emails": {"before": None, "after": [e.value for e in emails]},
                **{name: {"before": None, "after": value} for name, value in after.items() if value is not None},
            },
        )
        return self._resources([member])[0]

    def replace(self, user_id: str, resource: UserResource, *, if_match: str | None = None) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        member, user = self._member(user_id)
        check_version(member.version, if_match)
        self._write(member, user, resource)
        return self._resources([member])[0]

    def patch(self, user_id: str, patch: PatchOp[Any], *, if_match: str | None = None) -> Wire:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        member, user = self._member(user_id)
        check_version(member.version, if_match)
        self._write(member, user, patched(UserResource, self._resources([member])[0], patch))
        return self._resources([member])[0]

    def delete(self, user_id: str, *, if_match: str | None = None) -> None:
        require(self.actor, Permission.SCIM_PROVISION, account_id=self.account_id)
        lock_account(self.session, self.account_id)
        member, user = self._member(user_id)
        check_version(member.version, if_match)
        self._guard_owner(member)
        tokens, sessions = revoke_credentials(self.session, self.account_id, user.id)
        touch_groups_of(self.session, member.id)
        self.session.delete(member)
        self.session.execute(
            update(Account).where(Account.id == self.account_id).values(member_count=Account.member_count - 1)
        )
        audit.record(
            self.session,
            self.actor,
            AuditAction.MEMBERSHIP_DELETED,
            account_id=self.account_id,
            target_type="user",
            target_id=user.id,
            target_label=member.user_name,
            changes={
                "role": {"before": member.role, "after": None},
                "personal_tokens_revoked": tokens,
                "sessions_revoked": sessions,
            },
        )
        self._invalidate()

    # helpers

    def _write(self, member: Membership, user: User, resource: UserResource) -> None:
        """Makes the member what ``resource`` describes, and records what changed."""
        user_name = _user_name(resource)
        before = {column: getattr(member, column) for column, _ in PROFILE}
        after = _profile(resource)
        changes = audit.changed_fields(before, after)
        if user_name != member.user_name:
            changes["user_name"] = {"before": member.user_name, "after": user_name}
        old_emails = [tuple(row[1:]) for row in self.session.connection().execute(_EMAILS_OF, {"ids": [member.id]})]
        new_emails = _email_rows(resource)
        if old_emails != [(e.value, e.type, e.primary) for e in new_emails]:
            changes["emails"] = {"before": [row[0] for row in old_emails], "after": [e.value for e in new_emails]}
        active = resource.active is not False
        was_active = member.suspended_at is None
        if not changes and active == was_active:
            return
        self._guard_owner(member)
        if user_name.lower() != member.user_name_key:
            self._check_user_name_free(user_name, member.id)
        member.user_name, member.user_name_key = user_name, user_name.lower()
        for column, value in after.items():
            setattr(member, column, value)
        if "emails" in changes:
            self.session.execute(delete(MemberEmail).where(MemberEmail.membership_id == member.id))
            for email in new_emails:
                email.membership_id = member.id
                self.session.add(email)
        member.version += 1
        member.updated_at = utcnow()
        if changes:
            self._record(AuditAction.MEMBERSHIP_UPDATED, user, member, changes)
        if active != was_active:
            self._set_active(member, user, active)
        self._follow_login_address(member, user, login_address(resource))
        self._invalidate()

    def _set_active(self, member: Membership, user: User, active: bool) -> None:
        if active:
            member.suspended_at = None
            self._record(AuditAction.MEMBERSHIP_RESTORED, user, member, {"active": {"before": False, "after": True}})
            return
        member.suspended_at = utcnow()
        tokens, sessions = revoke_credentials(self.session, self.account_id, user.id)
        self._record(
            AuditAction.MEMBERSHIP_SUSPENDED,
            user,
            member,
            {
                "active": {"before": True, "after": False},
                "personal_tokens_revoked": tokens,
                "sessions_revoked": sessions,
            },
        )

    def _follow_login_address(self, member: Membership, user: User, address: str | None) -> None:
        """The sign-in address follows the identity provider, as long as no other account
        knows the user (their login is theirs, not one account's) and nobody else has it."""
        if address is None or address == user.email:
            return
        other_accounts = self.session.scalar(
            select(func.count()).select_from(Membership).where(Membership.user_id == user.id)
        )
        taken = self.session.scalar(select(User.id).where(User.email == address))
        if (other_accounts or 0) > 1 or taken is not None:
            return
        self._record(AuditAction.USER_EMAIL_CHANGED, user, member, {"email": {"before": user.email, "after": address}})
        user.email = address

    def _guard_owner(self, member: Membership) -> None:
        if member.role == Role.OWNER.value:
            raise PermissionDenied(
                Reason.OWNER_PROTECTED,
                "SCIM never changes or removes the account's Owner; the Owner manages their own profile.",
            )

    def _check_user_name_free(self, user_name: str, membership_id: int | None) -> None:
        holder = self.session.scalar(
            select(Membership.id).where(
                Membership.account_id == self.account_id, Membership.user_name_key == user_name.lower()
            )
        )
        if holder is not None and holder != membership_id:
            raise Conflict(Reason.SCIM_UNIQUENESS, f"The userName {user_name!r} is already taken in this account.")

    def _member(self, user_id: str) -> tuple[Membership, User]:
        number = parse_id(user_id)
        row = None
        if number is not None:
            row = self.session.execute(
                select(Membership, User)
                .join(User, User.id == Membership.user_id)
                .where(Membership.account_id == self.account_id, Membership.user_id == number)
            ).one_or_none()
        if row is None:
            raise NotFound(Reason.SCIM_RESOURCE_NOT_FOUND, f"User {user_id} not found.")
        return row[0], row[1]

    def _resources(self, members: Sequence[Any]) -> list[Wire]:
        """The members (``Membership`` objects or rows of its columns) as SCIM Users, with
        their emails and groups read in one query for the whole page."""
        self.session.flush()  # what this request changed, read back below on the connection
        emails: dict[int, list[tuple[str, str | None, bool | None]]] = {member.id: [] for member in members}
        groups: dict[int, list[tuple[int, str]]] = {member.id: [] for member in members}
        if members:
            ids = {"ids": list(emails)}
            connection = self.session.connection()
            for membership_id, value, kind, primary in connection.execute(_EMAILS_OF, ids):
                emails[membership_id].append((value, kind, primary))
            for membership_id, group_id, name in connection.execute(_GROUPS_OF, ids):
                groups[membership_id].append((group_id, name))
        return [self._resource(member, emails[member.id], groups[member.id]) for member in members]

    def _resource(
        self, member: Any, emails: list[tuple[str, str | None, bool | None]], groups: list[tuple[int, str]]
    ) -> Wire:
        resource: Wire = {
            "schemas": [USER_SCHEMA_ID],
            "id": str(member.user_id),
            "externalId": member.external_id,
            "userName": member.user_name,
            "name": {attribute: getattr(member, column) for column, attribute in _NAME_ATTRIBUTES},
            "displayName": member.display_name,
            "active": member.suspended_at is None,
            "emails": [{"value": value, "type": kind, "primary": primary} for value, kind, primary in emails],
            "groups": [
                {
                    "value": f"{GROUP_ID_PREFIX}{group_id}",
                    "$ref": f"{self.base_url}/Groups/{GROUP_ID_PREFIX}{group_id}",
                    "display": name,
                    "type": "direct",
                }
                for group_id, name in groups
            ],
            "meta": meta("User", member, f"{self.base_url}/Users/{member.user_id}"),
        }
        enterprise = {attribute: getattr(member, column) for column, attribute in _ENTERPRISE_ATTRIBUTES}
        if any(value is not None for value in enterprise.values()):
            resource["schemas"].append(ENTERPRISE_SCHEMA_ID)
            resource[ENTERPRISE_SCHEMA_ID] = enterprise
        return without_empty(resource)

    def _record(self, action: AuditAction, user: User, member: Membership, changes: dict[str, Any]) -> None:
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=self.account_id,
            target_type="user",
            target_id=user.id,
            target_label=member.user_name,
            changes=changes,
        )

    def _invalidate(self) -> None:
        account_id = self.account_id
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))


def _user_name(resource: UserResource) -> str:
    user_name = (resource.user_name or "").strip()
    if not user_name:
        raise InvalidRequest(Reason.SCIM_VALUE_INVALID, "userName is required.")
    if len(user_name) > USER_NAME_MAX_LENGTH:
        raise InvalidRequest(Reason.SCIM_VALUE_INVALID, f"userName is longer than {USER_NAME_MAX_LENGTH} characters.")
    return user_name


def _profile(resource: UserResource) -> dict[str, str | None]:
    name = resource.name or Name()
    enterprise = resource[EnterpriseUser]
    values: dict[str, Any] = {
        "external_id": resource.external_id,
        "display_name": resource.display_name,
        **{column: getattr(name, field) for column, field, _attribute in _NAME_PARTS},
        **{column: getattr(enterprise, column, None) for column, _attribute in _ENTERPRISE_ATTRIBUTES},
    }
    for column, attribute in PROFILE:
        value = values[column]
        if value is not None and len(str(value)) > TEXT_MAX_LENGTH:
            raise InvalidRequest(Reason.SCIM_VALUE_INVALID, f"{attribute} is longer than {TEXT_MAX_LENGTH} characters.")
    return {column: (str(value) if value is not None else None) for column, value in values.items()}


def _email_rows(resource: UserResource) -> list[MemberEmail]:
    rows = []
    for email in resource.emails or []:
        if not email.value:
            continue
        value = str(email.value)
        if len(value) > USER_NAME_MAX_LENGTH:
            raise InvalidRequest(Reason.SCIM_VALUE_INVALID, "An email is longer than 320 characters.")
        kind = str(email.type.value if hasattr(email.type, "value") else email.type) if email.type else None
        rows.append(MemberEmail(value=value, value_key=value.lower(), type=kind, primary=email.primary))
    return rows
