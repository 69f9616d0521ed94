"""Who may do what: the one module that names roles.

Two tables decide every request. ``GRANTS`` gives each account role its permissions;
``CREDENTIAL_CEILING`` caps what each kind of credential can ever reach, whatever the
role behind it. ``allows()`` reads both, plus the scope (account, server) of the actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from postwarden.errors import PermissionDenied, Reason
from postwarden.identity import Actor, Credential


class Role(StrEnum):
    OWNER = "Owner"
    ADMIN = "Admin"
    TECHNICAL = "Technical"
    BILLING = "Billing"
    MEMBER = "Member"


class Permission(StrEnum):
    """``<resource>:<action>``, alphabetical, a blank line between resources."""

    ACCOUNT_READ = "account:read"

    ACCOUNT_TOKENS_MANAGE = "account_tokens:manage"

    ACCOUNTS_MANAGE = "accounts:manage"

    AUDIT_READ = "audit:read"

    DOMAINS_MANAGE = "domains:manage"
    DOMAINS_READ = "domains:read"

    SENDERS_MANAGE = "senders:manage"
    SENDERS_READ = "senders:read"

    SERVER_TOKENS_READ = "server_tokens:read"
    SERVER_TOKENS_ROTATE = "server_tokens:rotate"

    SERVERS_CREATE = "servers:create"
    SERVERS_DELETE = "servers:delete"
    SERVERS_READ = "servers:read"
    SERVERS_UPDATE = "servers:update"


#: Permissions that act on one server; a server token reaches them for its own server only.
SERVER_SCOPED: Final[frozenset[Permission]] = frozenset(
    {Permission.SERVERS_READ, Permission.SERVERS_UPDATE, Permission.SERVER_TOKENS_READ}
)

#: Permissions above any one account: only the operator (the CLI) holds them.
INSTALLATION_WIDE: Final[frozenset[Permission]] = frozenset({Permission.ACCOUNTS_MANAGE})

_EVERYTHING: Final[frozenset[Permission]] = frozenset(Permission)

GRANTS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.OWNER: _EVERYTHING - INSTALLATION_WIDE,
    Role.ADMIN: _EVERYTHING - INSTALLATION_WIDE - {Permission.SERVERS_DELETE},
    Role.TECHNICAL: frozenset(
        {
            Permission.ACCOUNT_READ,
            Permission.DOMAINS_MANAGE,
            Permission.DOMAINS_READ,
            Permission.SENDERS_MANAGE,
            Permission.SENDERS_READ,
            Permission.SERVER_TOKENS_READ,
            Permission.SERVERS_CREATE,
            Permission.SERVERS_READ,
            Permission.SERVERS_UPDATE,
        }
    ),
    Role.BILLING: frozenset({Permission.ACCOUNT_READ}),
    Role.MEMBER: frozenset({Permission.ACCOUNT_READ}),
}

CREDENTIAL_CEILING: Final[Mapping[Credential, frozenset[Permission]]] = {
    # The account token acts at Admin level; server deletion only when the Owner enabled it.
    Credential.ACCOUNT_TOKEN: _EVERYTHING,
    Credential.SERVER_TOKEN: SERVER_SCOPED,
    Credential.PERSONAL_TOKEN: _EVERYTHING,
    Credential.SCIM_TOKEN: frozenset(),
    Credential.SESSION: _EVERYTHING,
    Credential.SYSTEM: _EVERYTHING,
}

#: The role an account token acts with.
ACCOUNT_TOKEN_ROLE: Final = Role.ADMIN
#: What the Owner may switch on for one account token.
ACCOUNT_TOKEN_OPTIONAL_GRANTS: Final[frozenset[Permission]] = frozenset({Permission.SERVERS_DELETE})


def allows(
    actor: Actor, permission: Permission, *, account_id: int | None = None, server_id: int | None = None
) -> bool:
    """May ``actor`` do ``permission`` in this account (and on this server)?

    ``account_id`` None asks about the installation as a whole.
    """
    if permission not in CREDENTIAL_CEILING[actor.credential]:
        return False
    if actor.credential is Credential.SYSTEM:
        return True
    if account_id is None or actor.account_id != account_id:
        return False
    if actor.credential is Credential.SERVER_TOKEN:
        return server_id is not None and server_id == actor.server_id
    granted = GRANTS[Role(actor.role)] if actor.role else frozenset()
    return permission in granted or permission in actor.token_grants


def require(
    actor: Actor, permission: Permission, *, account_id: int | None = None, server_id: int | None = None
) -> None:
    if not allows(actor, permission, account_id=account_id, server_id=server_id):
        if permission is Permission.SERVERS_DELETE and actor.credential is Credential.ACCOUNT_TOKEN:
            raise PermissionDenied(
                Reason.SERVER_DELETION_DISABLED,
                "You don't have permission to delete servers through the API. "
                "The account Owner can enable server deletion for this account token.",
            )
        raise PermissionDenied(Reason.NOT_ALLOWED, f"You are not allowed to do this ({permission.value}).")
