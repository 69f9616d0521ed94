"""The permission tables: each credential's ceiling and each role's grants, as a reviewer reads them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from postwarden.errors import InvalidRequest, PermissionDenied, Reason
from postwarden.identity import Actor, Credential, Via
from postwarden.policy import (
    ACCOUNT_TOKEN_ROLE,
    CREDENTIAL_CEILING,
    GRANTS,
    GROUP_ROLES,
    SCIM_TOKEN_GRANTS,
    Permission,
    Role,
    ServerAccess,
    allows,
    check_removal,
    check_role_change,
    check_server_list,
    check_transfer,
    require,
    sees_every_member,
    server_access,
    uniform_server_access,
    visible_servers,
)


def account_token(account_id: int = 1, *, can_delete: bool = False) -> Actor:
    grants = frozenset({Permission.SERVERS_DELETE.value}) if can_delete else frozenset[str]()
    return Actor(
        credential=Credential.ACCOUNT_TOKEN,
        label="account token",
        via=Via.API,
        account_id=account_id,
        role=ACCOUNT_TOKEN_ROLE.value,
        token_grants=grants,
    )


def server_token(server_id: int = 7, account_id: int = 1) -> Actor:
    return Actor(
        credential=Credential.SERVER_TOKEN,
        label="server token",
        via=Via.API,
        account_id=account_id,
        server_id=server_id,
    )


def member(role: Role, account_id: int = 1) -> Actor:
    return Actor(
        credential=Credential.SESSION, label="someone", via=Via.CONSOLE, account_id=account_id, role=role.value
    )


def test_every_credential_and_role_has_a_row() -> None:
    assert set(CREDENTIAL_CEILING) == set(Credential)
    assert set(GRANTS) == set(Role)


def test_owner_may_do_everything_in_the_account_but_nothing_installation_wide() -> None:
    owner = member(Role.OWNER)
    assert allows(owner, Permission.SERVERS_DELETE, account_id=1)
    assert not allows(owner, Permission.ACCOUNTS_MANAGE)


def test_admin_cannot_delete_servers() -> None:
    assert not allows(member(Role.ADMIN), Permission.SERVERS_DELETE, account_id=1)
    assert allows(member(Role.ADMIN), Permission.SERVERS_CREATE, account_id=1)


@pytest.mark.parametrize("role", [Role.BILLING, Role.MEMBER])
def test_billing_and_members_have_no_server_rights_by_role(role: Role) -> None:
    for permission in (Permission.SERVERS_CREATE, Permission.SERVERS_UPDATE, Permission.SERVER_TOKENS_READ):
        assert not allows(member(role), permission, account_id=1)


def test_account_token_acts_as_admin_and_deletes_servers_only_when_enabled() -> None:
    assert allows(account_token(), Permission.SERVERS_CREATE, account_id=1)
    assert not allows(account_token(), Permission.SERVERS_DELETE, account_id=1)
    assert allows(account_token(can_delete=True), Permission.SERVERS_DELETE, account_id=1)
    with pytest.raises(PermissionDenied) as refused:
        require(account_token(), Permission.SERVERS_DELETE, account_id=1, server_id=3)
    assert refused.value.reason is Reason.SERVER_DELETION_DISABLED


def test_no_credential_reaches_another_account() -> None:
    for actor in (account_token(account_id=1), server_token(account_id=1), member(Role.OWNER, account_id=1)):
        assert not allows(actor, Permission.SERVERS_READ, account_id=2, server_id=7)


def test_server_token_reaches_only_its_own_server_and_only_server_scoped_permissions() -> None:
    token = server_token(server_id=7)
    assert allows(token, Permission.SERVERS_READ, account_id=1, server_id=7)
    assert allows(token, Permission.SERVERS_UPDATE, account_id=1, server_id=7)
    assert not allows(token, Permission.SERVERS_READ, account_id=1, server_id=8)
    assert allows(token, Permission.SERVERS_READ, account_id=1)  # "on some server": its own
    assert not allows(token, Permission.SERVERS_CREATE, account_id=1, server_id=7)
    assert not allows(token, Permission.SERVERS_DELETE, account_id=1, server_id=7)


def test_scim_token_provisions_its_own_account_and_reaches_nothing_else() -> None:
    scim = Actor(
        credential=Credential.SCIM_TOKEN,
        label="okta",
        via=Via.SCIM,
        account_id=1,
        role=Role.OWNER.value,  # even a role would not widen it
        token_grants=SCIM_TOKEN_GRANTS,
    )
    reached = {permission for permission in Permission if allows(scim, permission, account_id=1, server_id=1)}
    assert reached == {Permission.SCIM_PROVISION}
    assert not allows(scim, Permission.SCIM_PROVISION, account_id=2)
    assert not any(allows(member(role), Permission.SCIM_PROVISION, account_id=1) for role in Role)
    assert not allows(account_token(), Permission.SCIM_PROVISION, account_id=1)
    assert allows(account_token(), Permission.SCIM_MANAGE, account_id=1)


def test_scim_groups_add_their_roles_and_server_access_to_a_members_own() -> None:
    viewer = replace(
        person(Role.MEMBER, access={1: ServerAccess.VIEW}), group_server_access={1: "FullAccess", 2: "ViewOnly"}
    )
    assert server_access(viewer, 1) is ServerAccess.FULL  # the stronger of own and group
    assert server_access(viewer, 2) is ServerAccess.VIEW
    assert server_access(viewer, 3) is ServerAccess.NONE
    assert visible_servers(viewer) == frozenset({1, 2})
    assert uniform_server_access(viewer) is None
    assert allows(viewer, Permission.WEBHOOKS_MANAGE, account_id=1, server_id=1)
    assert not allows(viewer, Permission.WEBHOOKS_MANAGE, account_id=1, server_id=2)

    billing_in_technical_group = replace(person(Role.BILLING), group_roles=frozenset({Role.TECHNICAL.value}))
    assert server_access(billing_in_technical_group, 9) is ServerAccess.FULL
    assert visible_servers(billing_in_technical_group) is None
    assert uniform_server_access(billing_in_technical_group) is ServerAccess.FULL
    assert allows(billing_in_technical_group, Permission.BILLING_MANAGE, account_id=1)  # their own role still counts
    assert allows(billing_in_technical_group, Permission.SERVERS_CREATE, account_id=1)  # and the group's
    assert not allows(billing_in_technical_group, Permission.USERS_MANAGE, account_id=1)

    in_admin_group = replace(person(Role.MEMBER), group_roles=frozenset({Role.ADMIN.value}))
    assert sees_every_member(in_admin_group)
    assert allows(in_admin_group, Permission.USERS_MANAGE, account_id=1)
    assert not allows(in_admin_group, Permission.OWNERSHIP_TRANSFER, account_id=1)
    assert Role.OWNER not in GROUP_ROLES


def test_operator_reaches_everything() -> None:
    operator = Actor.system("cli")
    assert all(allows(operator, permission, account_id=5, server_id=9) for permission in Permission)
    assert allows(operator, Permission.ACCOUNTS_MANAGE)


def person(
    role: Role,
    *,
    access: dict[int, ServerAccess] | None = None,
    limited: bool = False,
    scopes: frozenset[str] | None = None,
    token_servers: frozenset[int] | None = None,
    two_factor_missing: bool = False,
) -> Actor:
    return Actor(
        credential=Credential.PERSONAL_TOKEN,
        label="someone",
        via=Via.API,
        account_id=1,
        user_id=5,
        role=role.value,
        server_access={server: level.value for server, level in (access or {}).items()},
        servers_limited=limited,
        scopes=scopes,
        token_servers=token_servers,
        two_factor_missing=two_factor_missing,
    )


def test_view_only_reads_a_server_but_neither_changes_it_nor_sees_its_tokens() -> None:
    viewer = person(Role.MEMBER, access={7: ServerAccess.VIEW})
    assert allows(viewer, Permission.SERVERS_READ, account_id=1, server_id=7)
    assert not allows(viewer, Permission.SERVERS_UPDATE, account_id=1, server_id=7)
    assert not allows(viewer, Permission.SERVER_TOKENS_READ, account_id=1, server_id=7)
    assert not allows(viewer, Permission.SERVERS_READ, account_id=1, server_id=8)
    assert visible_servers(viewer) == frozenset({7})


def test_billing_sees_no_server_and_a_limited_technical_only_its_own() -> None:
    assert visible_servers(person(Role.BILLING)) == frozenset()
    assert not allows(person(Role.BILLING), Permission.SERVERS_READ, account_id=1)
    limited = person(Role.TECHNICAL, access={1: ServerAccess.FULL, 2: ServerAccess.FULL}, limited=True)
    assert visible_servers(limited) == frozenset({1, 2})
    assert server_access(limited, 3) is ServerAccess.NONE
    assert server_access(person(Role.TECHNICAL), 3) is ServerAccess.FULL
    # Grants listed for roles that reach servers by role alone change nothing.
    assert server_access(person(Role.BILLING, access={3: ServerAccess.FULL}), 3) is ServerAccess.NONE


def test_a_personal_token_is_narrowed_by_its_scopes_and_servers() -> None:
    narrow = person(Role.OWNER, scopes=frozenset({"servers:read"}), token_servers=frozenset({7}))
    assert allows(narrow, Permission.SERVERS_READ, account_id=1, server_id=7)
    assert not allows(narrow, Permission.SERVERS_READ, account_id=1, server_id=8)
    assert not allows(narrow, Permission.USERS_MANAGE, account_id=1)
    assert visible_servers(narrow) == frozenset({7})


def test_without_required_two_factor_only_enrolment_and_signing_out_are_allowed() -> None:
    blocked = person(Role.OWNER, two_factor_missing=True)
    still = {Permission.TWO_FACTOR_ENROL, Permission.SESSIONS_END}
    assert all(allows(blocked, p, account_id=1) for p in still)
    assert not any(allows(blocked, p, account_id=1, server_id=1) for p in Permission if p not in still)
    with pytest.raises(PermissionDenied) as refused:
        require(blocked, Permission.SERVERS_READ, account_id=1, server_id=1)
    assert refused.value.reason is Reason.TWO_FACTOR_REQUIRED


def test_who_sees_every_member() -> None:
    assert sees_every_member(account_token())
    assert sees_every_member(person(Role.ADMIN))
    assert not sees_every_member(person(Role.TECHNICAL))


@pytest.mark.parametrize("new", [Role.ADMIN, Role.MEMBER, Role.BILLING])
def test_nobody_demotes_the_owner(new: Role) -> None:
    with pytest.raises(PermissionDenied) as refused:
        check_role_change(Role.OWNER, new)
    assert refused.value.reason is Reason.OWNER_PROTECTED


def test_nobody_becomes_owner_but_by_transfer_and_only_an_admin_receives_it() -> None:
    with pytest.raises(InvalidRequest):
        check_role_change(Role.ADMIN, Role.OWNER)
    with pytest.raises(PermissionDenied):
        check_removal(Role.OWNER)
    check_removal(Role.ADMIN)
    owner = person(Role.OWNER)
    check_transfer(owner, actor_role=Role.OWNER, target_role=Role.ADMIN)
    with pytest.raises(InvalidRequest):
        check_transfer(owner, actor_role=Role.OWNER, target_role=Role.TECHNICAL)
    with pytest.raises(PermissionDenied):  # a stale credential that says Owner while the row says Admin
        check_transfer(owner, actor_role=Role.ADMIN, target_role=Role.ADMIN)
    with pytest.raises(PermissionDenied):  # the account token is no person
        check_transfer(account_token(), actor_role=None, target_role=Role.ADMIN)
    check_transfer(Actor.system("cli"), actor_role=Role.OWNER, target_role=Role.ADMIN)


def test_per_server_access_applies_only_where_the_role_takes_it() -> None:
    check_server_list(Role.MEMBER, limited=False)
    check_server_list(Role.TECHNICAL, limited=True)
    for role in (Role.OWNER, Role.ADMIN, Role.BILLING):
        with pytest.raises(InvalidRequest):
            check_server_list(role, limited=False)
    with pytest.raises(InvalidRequest):
        check_server_list(Role.MEMBER, limited=True)


def test_uniform_server_access_is_known_only_when_it_is_the_same_everywhere() -> None:
    assert uniform_server_access(account_token()) is ServerAccess.FULL
    assert uniform_server_access(person(Role.TECHNICAL)) is ServerAccess.FULL
    assert uniform_server_access(person(Role.BILLING)) is ServerAccess.NONE
    assert uniform_server_access(person(Role.MEMBER, access={1: ServerAccess.VIEW})) is None
    assert uniform_server_access(person(Role.TECHNICAL, limited=True)) is None
    assert uniform_server_access(person(Role.OWNER, token_servers=frozenset({1}))) is None
    assert uniform_server_access(server_token()) is None


SERVER_RESOURCES = ("message_streams", "suppressions", "templates", "webhooks")


@pytest.mark.parametrize("resource", SERVER_RESOURCES)
def test_view_only_reads_a_servers_resources_and_full_access_changes_them(resource: str) -> None:
    read, manage = Permission(f"{resource}:read"), Permission(f"{resource}:manage")
    viewer = replace(member(Role.MEMBER), server_access={7: ServerAccess.VIEW.value})
    editor = replace(member(Role.MEMBER), server_access={7: ServerAccess.FULL.value})
    assert allows(viewer, read, account_id=1, server_id=7)
    assert not allows(viewer, manage, account_id=1, server_id=7)
    assert allows(editor, manage, account_id=1, server_id=7)
    for outsider in (viewer, editor):  # nothing on a server they were not given
        assert not allows(outsider, read, account_id=1, server_id=8)
    assert allows(server_token(7), manage, account_id=1, server_id=7)
    assert not allows(server_token(7), read, account_id=1, server_id=8)
    assert allows(account_token(), manage, account_id=1, server_id=8)
    assert not allows(member(Role.BILLING), read, account_id=1, server_id=7)
