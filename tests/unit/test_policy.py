"""The permission tables: each credential's ceiling and each role's grants, as a reviewer reads them."""

from __future__ import annotations

import pytest

from postwarden.errors import PermissionDenied, Reason
from postwarden.identity import Actor, Credential, Via
from postwarden.policy import (
    ACCOUNT_TOKEN_ROLE,
    CREDENTIAL_CEILING,
    GRANTS,
    Permission,
    Role,
    allows,
    require,
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


def test_scim_token_reaches_nothing_yet() -> None:
    scim = Actor(credential=Credential.SCIM_TOKEN, label="okta", via=Via.SCIM, account_id=1, role=Role.OWNER.value)
    assert not any(allows(scim, permission, account_id=1, server_id=1) for permission in Permission)


def test_operator_reaches_everything() -> None:
    operator = Actor.system("cli")
    assert all(allows(operator, permission, account_id=5, server_id=9) for permission in Permission)
    assert allows(operator, Permission.ACCOUNTS_MANAGE)
