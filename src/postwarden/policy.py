"""Who may do what: the one module that names roles.

Three tables decide every request. ``GRANTS`` gives each account role its account-wide
permissions; ``SERVER_ACCESS_GRANTS`` gives each per-server access level its permissions on
that server (a role implies a level on every server, ``ROLE_SERVER_ACCESS``); and
``CREDENTIAL_CEILING`` caps what each kind of credential can ever reach, whatever the role
behind it. ``allows()`` reads them, plus the scope (account, server) of the actor. The rules
about people (one Owner, who may change whom) are the ``check_*`` functions below.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from postwarden.errors import InvalidRequest, PermissionDenied, Reason
from postwarden.identity import Actor, Credential


class Role(StrEnum):
    OWNER = "Owner"
    ADMIN = "Admin"
    TECHNICAL = "Technical"
    BILLING = "Billing"
    MEMBER = "Member"


class ServerAccess(StrEnum):
    """A member's access to one server, as Postmark's Users page offers it."""

    FULL = "FullAccess"
    VIEW = "ViewOnly"
    NONE = "NoAccess"


class Permission(StrEnum):
    """``<resource>:<action>``, alphabetical, a blank line between resources."""

    ACCOUNT_READ = "account:read"
    ACCOUNT_UPDATE = "account:update"

    ACCOUNT_SENDING_MANAGE = "account_sending:manage"

    ACCOUNT_TOKENS_MANAGE = "account_tokens:manage"

    ACCOUNTS_MANAGE = "accounts:manage"

    AUDIT_PRUNE = "audit:prune"
    AUDIT_READ = "audit:read"

    BILLING_MANAGE = "billing:manage"
    BILLING_READ = "billing:read"

    DOMAINS_MANAGE = "domains:manage"
    DOMAINS_READ = "domains:read"

    MESSAGE_STREAMS_MANAGE = "message_streams:manage"
    MESSAGE_STREAMS_READ = "message_streams:read"

    OWNERSHIP_TRANSFER = "ownership:transfer"

    PROFILE_MANAGE = "profile:manage"
    PROFILE_READ = "profile:read"

    SCIM_MANAGE = "scim:manage"
    SCIM_PROVISION = "scim:provision"

    SENDERS_MANAGE = "senders:manage"
    SENDERS_READ = "senders:read"

    SERVER_TOKENS_READ = "server_tokens:read"
    SERVER_TOKENS_ROTATE = "server_tokens:rotate"

    SERVERS_CREATE = "servers:create"
    SERVERS_DELETE = "servers:delete"
    SERVERS_READ = "servers:read"
    SERVERS_UPDATE = "servers:update"

    SESSIONS_END = "sessions:end"

    SUPPRESSIONS_MANAGE = "suppressions:manage"
    SUPPRESSIONS_READ = "suppressions:read"

    TEMPLATES_MANAGE = "templates:manage"
    TEMPLATES_READ = "templates:read"

    TWO_FACTOR_ENROL = "two_factor:enrol"

    USERS_MANAGE = "users:manage"
    USERS_READ = "users:read"

    WEBHOOKS_MANAGE = "webhooks:manage"
    WEBHOOKS_READ = "webhooks:read"


#: What View only grants on a server: looking at its settings, streams, webhooks, templates
#: and suppression list, changing none of them and never seeing its tokens.
SERVER_VIEWER: Final[frozenset[Permission]] = frozenset(
    {
        Permission.SERVERS_READ,
        Permission.MESSAGE_STREAMS_READ,
        Permission.SUPPRESSIONS_READ,
        Permission.TEMPLATES_READ,
        Permission.WEBHOOKS_READ,
    }
)
#: Permissions that act on one server: decided by the caller's access to that server.
SERVER_SCOPED: Final[frozenset[Permission]] = SERVER_VIEWER | {
    Permission.SERVERS_UPDATE,
    Permission.SERVER_TOKENS_READ,
    Permission.MESSAGE_STREAMS_MANAGE,
    Permission.SUPPRESSIONS_MANAGE,
    Permission.TEMPLATES_MANAGE,
    Permission.WEBHOOKS_MANAGE,
}

SERVER_ACCESS_GRANTS: Final[Mapping[ServerAccess, frozenset[Permission]]] = {
    ServerAccess.FULL: SERVER_SCOPED,
    ServerAccess.VIEW: SERVER_VIEWER,
    ServerAccess.NONE: frozenset(),
}

#: Permissions above any one account: only the operator (the CLI) holds them.
INSTALLATION_WIDE: Final[frozenset[Permission]] = frozenset(
    {Permission.ACCOUNTS_MANAGE, Permission.ACCOUNT_SENDING_MANAGE, Permission.AUDIT_PRUNE}
)

#: What only an identity provider does, with a SCIM token: no role holds it.
SCIM_ONLY: Final[frozenset[Permission]] = frozenset({Permission.SCIM_PROVISION})

#: What a user does for themselves: their profile, personal tokens and second factor.
SELF_SERVICE: Final[frozenset[Permission]] = frozenset(
    {Permission.PROFILE_READ, Permission.PROFILE_MANAGE, Permission.SESSIONS_END, Permission.TWO_FACTOR_ENROL}
)

#: All a member may do while the account requires two-factor authentication they lack.
ALLOWED_WITHOUT_TWO_FACTOR: Final[frozenset[Permission]] = frozenset(
    {Permission.TWO_FACTOR_ENROL, Permission.SESSIONS_END}
)

_EVERYTHING: Final[frozenset[Permission]] = frozenset(Permission)
_ACCOUNT_WIDE: Final[frozenset[Permission]] = _EVERYTHING - SERVER_SCOPED - INSTALLATION_WIDE - SCIM_ONLY
_EVERY_MEMBER: Final[frozenset[Permission]] = SELF_SERVICE | {Permission.ACCOUNT_READ, Permission.USERS_READ}

GRANTS: Final[Mapping[Role, frozenset[Permission]]] = {
    Role.OWNER: _ACCOUNT_WIDE,
    Role.ADMIN: _ACCOUNT_WIDE - {Permission.SERVERS_DELETE, Permission.OWNERSHIP_TRANSFER},
    Role.TECHNICAL: _EVERY_MEMBER
    | {
        Permission.DOMAINS_MANAGE,
        Permission.DOMAINS_READ,
        Permission.SENDERS_MANAGE,
        Permission.SENDERS_READ,
        Permission.SERVERS_CREATE,
    },
    Role.BILLING: _EVERY_MEMBER | {Permission.BILLING_READ, Permission.BILLING_MANAGE},
    Role.MEMBER: _EVERY_MEMBER,
}

#: The access each role has on every server of its account, before any per-server grant.
ROLE_SERVER_ACCESS: Final[Mapping[Role, ServerAccess]] = {
    Role.OWNER: ServerAccess.FULL,
    Role.ADMIN: ServerAccess.FULL,
    Role.TECHNICAL: ServerAccess.FULL,
    Role.BILLING: ServerAccess.NONE,
    Role.MEMBER: ServerAccess.NONE,
}

#: Roles whose access is given server by server (Technical only once limited to a list).
ROLES_WITH_SERVER_LIST: Final[frozenset[Role]] = frozenset({Role.TECHNICAL, Role.MEMBER})
#: Roles that can be limited to a list of servers instead of reaching all.
ROLES_WITH_SERVER_LIMIT: Final[frozenset[Role]] = frozenset({Role.TECHNICAL})

#: Who sees every member of the account; everyone else sees these roles and the members
#: who share at least one server with them.
SEES_EVERY_MEMBER: Final[frozenset[Role]] = frozenset({Role.OWNER, Role.ADMIN})
ALWAYS_VISIBLE: Final[frozenset[Role]] = frozenset({Role.OWNER, Role.ADMIN})

_USER_CREDENTIALS: Final = (Credential.PERSONAL_TOKEN, Credential.SESSION)

CREDENTIAL_CEILING: Final[Mapping[Credential, frozenset[Permission]]] = {
    # The account token acts at Admin level; server deletion only when the Owner enabled it.
    # It is no person: it has no profile, second factor or ownership to hand over.
    Credential.ACCOUNT_TOKEN: _EVERYTHING - SELF_SERVICE - {Permission.OWNERSHIP_TRANSFER},
    Credential.SERVER_TOKEN: SERVER_SCOPED,
    Credential.PERSONAL_TOKEN: _EVERYTHING,
    # Provisioning people and groups of one account, never more (and never the Owner).
    Credential.SCIM_TOKEN: SCIM_ONLY,
    Credential.SESSION: _EVERYTHING,
    Credential.SYSTEM: _EVERYTHING,
}

#: Roles a SCIM group may grant its members: ownership passes only by transfer.
GROUP_ROLES: Final[frozenset[Role]] = frozenset(Role) - {Role.OWNER}
#: What a SCIM token carries beyond its (absent) role.
SCIM_TOKEN_GRANTS: Final[frozenset[str]] = frozenset(p.value for p in SCIM_ONLY)

#: The role an account token acts with.
ACCOUNT_TOKEN_ROLE: Final = Role.ADMIN
#: What the Owner may switch on for one account token.
ACCOUNT_TOKEN_OPTIONAL_GRANTS: Final[frozenset[Permission]] = frozenset({Permission.SERVERS_DELETE})


def access_level(role: Role, *, limited: bool, listed: str | None) -> ServerAccess:
    """A member's access on one server: the role's, unless the role takes a per-server list.

    ``listed`` is the level granted on that server one by one, if any.
    """
    by_role = ServerAccess.NONE if limited else ROLE_SERVER_ACCESS[role]
    if by_role is ServerAccess.FULL or role not in ROLES_WITH_SERVER_LIST:
        return by_role
    return ServerAccess(listed) if listed is not None else by_role


_STRENGTH: Final[Mapping[ServerAccess, int]] = {ServerAccess.NONE: 0, ServerAccess.VIEW: 1, ServerAccess.FULL: 2}


def strongest(*levels: ServerAccess) -> ServerAccess:
    return max(levels, key=_STRENGTH.__getitem__, default=ServerAccess.NONE)


def _group_roles(actor: Actor) -> list[Role]:
    return [Role(role) for role in actor.group_roles]


def _groups_reach_every_server(actor: Actor) -> bool:
    return any(ROLE_SERVER_ACCESS[role] is ServerAccess.FULL for role in _group_roles(actor))


def server_access(actor: Actor, server_id: int) -> ServerAccess:
    """The actor's access level on one server of its account: the strongest of what its
    role, its own grants and its SCIM groups give."""
    if actor.credential is Credential.SYSTEM:
        return ServerAccess.FULL
    if actor.credential is Credential.SERVER_TOKEN:
        return ServerAccess.FULL if server_id == actor.server_id else ServerAccess.NONE
    if actor.token_servers is not None and server_id not in actor.token_servers:
        return ServerAccess.NONE
    role = Role(actor.role) if actor.role else Role.MEMBER
    direct = access_level(role, limited=actor.servers_limited, listed=actor.server_access.get(server_id))
    by_group = actor.group_server_access.get(server_id)
    return strongest(
        direct,
        *(ROLE_SERVER_ACCESS[group_role] for group_role in _group_roles(actor)),
        ServerAccess(by_group) if by_group is not None else ServerAccess.NONE,
    )


def uniform_server_access(actor: Actor) -> ServerAccess | None:
    """The actor's access if it is the same on every server of its account, else None:
    lets a listing of many servers decide once instead of per server."""
    if actor.credential is Credential.SYSTEM:
        return ServerAccess.FULL
    if actor.credential is Credential.SERVER_TOKEN or actor.token_servers is not None:
        return None
    if _groups_reach_every_server(actor):
        return ServerAccess.FULL
    if actor.servers_limited or actor.group_server_access:
        return None
    role = Role(actor.role) if actor.role else Role.MEMBER
    level = ROLE_SERVER_ACCESS[role]
    return level if level is ServerAccess.FULL or role not in ROLES_WITH_SERVER_LIST else None


def visible_servers(actor: Actor) -> frozenset[int] | None:
    """The ids of the servers the actor reaches in its account; None means all of them."""
    if actor.credential is Credential.SYSTEM:
        return None
    if actor.credential is Credential.SERVER_TOKEN:
        return frozenset({actor.server_id}) if actor.server_id is not None else frozenset()
    role = Role(actor.role) if actor.role else Role.MEMBER
    if (ROLE_SERVER_ACCESS[role] is not ServerAccess.NONE and not actor.servers_limited) or _groups_reach_every_server(
        actor
    ):
        return actor.token_servers
    listed = frozenset(
        server_id
        for server_id, level in actor.server_access.items()
        if level != ServerAccess.NONE.value and role in ROLES_WITH_SERVER_LIST
    ) | frozenset(
        server_id for server_id, level in actor.group_server_access.items() if level != ServerAccess.NONE.value
    )
    return listed if actor.token_servers is None else listed & actor.token_servers


def sees_every_member(actor: Actor) -> bool:
    if actor.credential in (Credential.SYSTEM, Credential.ACCOUNT_TOKEN):
        return True
    roles = [Role(actor.role)] if actor.role else []
    return any(role in SEES_EVERY_MEMBER for role in [*roles, *_group_roles(actor)])


def allows(
    actor: Actor, permission: Permission, *, account_id: int | None = None, server_id: int | None = None
) -> bool:
    """May ``actor`` do ``permission`` in this account (and on this server)?

    ``account_id`` None asks about the installation as a whole. A server-scoped permission
    asked without a server means "on at least one server".
    """
    if permission not in CREDENTIAL_CEILING[actor.credential]:
        return False
    if actor.credential is Credential.SYSTEM:
        return True
    if account_id is None or actor.account_id != account_id:
        return False
    if actor.two_factor_missing and permission not in ALLOWED_WITHOUT_TWO_FACTOR:
        return False
    if actor.scopes is not None and permission.value not in actor.scopes:
        return False
    if permission in SERVER_SCOPED:
        if server_id is not None:
            return permission in SERVER_ACCESS_GRANTS[server_access(actor, server_id)]
        reachable = visible_servers(actor)
        if reachable is None:
            return True
        return any(permission in SERVER_ACCESS_GRANTS[server_access(actor, s)] for s in reachable)
    granted = GRANTS[Role(actor.role)] if actor.role else frozenset()
    for group_role in _group_roles(actor):
        granted = granted | GRANTS[group_role]
    return permission in granted or permission.value in actor.token_grants


def require(
    actor: Actor, permission: Permission, *, account_id: int | None = None, server_id: int | None = None
) -> None:
    if allows(actor, permission, account_id=account_id, server_id=server_id):
        return
    if actor.two_factor_missing and account_id == actor.account_id and permission not in ALLOWED_WITHOUT_TWO_FACTOR:
        raise PermissionDenied(
            Reason.TWO_FACTOR_REQUIRED,
            "This account requires two-factor authentication. Set it up first: "
            "POST /me/two-factor, then POST /me/two-factor/confirm with a code from your app.",
        )
    if permission is Permission.SERVERS_DELETE and actor.credential is Credential.ACCOUNT_TOKEN:
        raise PermissionDenied(
            Reason.SERVER_DELETION_DISABLED,
            "You don't have permission to delete servers through the API. "
            "The account Owner can enable server deletion for this account token.",
        )
    if permission in SELF_SERVICE and actor.credential not in _USER_CREDENTIALS:
        raise PermissionDenied(
            Reason.PERSONAL_CREDENTIAL_NEEDED,
            "This endpoint acts for a person: use a personal token (Authorization: Bearer pw_...) "
            "or a console session, not an account or server token.",
        )
    raise PermissionDenied(Reason.NOT_ALLOWED, f"You are not allowed to do this ({permission.value}).")


# The rules about people that must never break (DESIGN §3).


def check_role_change(current: Role, new: Role) -> None:
    """Nobody demotes the Owner, and nobody becomes Owner but by transfer."""
    if current is Role.OWNER and new is not Role.OWNER:
        raise PermissionDenied(
            Reason.OWNER_PROTECTED,
            "The Owner's role cannot be changed. The Owner can transfer ownership to an Admin "
            "(POST /account/transfer-ownership) and becomes an Admin then.",
        )
    if new is Role.OWNER and current is not Role.OWNER:
        raise InvalidRequest(
            Reason.OWNER_BY_TRANSFER_ONLY,
            "Nobody is made Owner by a role change: the Owner transfers ownership to an Admin "
            "(POST /account/transfer-ownership).",
        )


def check_removal(current: Role) -> None:
    if current is Role.OWNER:
        raise PermissionDenied(
            Reason.OWNER_PROTECTED,
            "The Owner cannot be removed. Transfer ownership to an Admin first.",
        )


def check_transfer(actor: Actor, *, actor_role: Role | None, target_role: Role) -> None:
    """Only the Owner in person (or the operator) transfers ownership, and only to an Admin."""
    if actor.credential is not Credential.SYSTEM and (
        actor.credential not in _USER_CREDENTIALS or actor_role is not Role.OWNER
    ):
        raise PermissionDenied(Reason.NOT_ALLOWED, "Only the Owner, signed in as themselves, transfers ownership.")
    if target_role is not Role.ADMIN:
        raise InvalidRequest(
            Reason.TRANSFER_TARGET_NOT_ADMIN,
            f"Ownership can be transferred only to an Admin; this user is {target_role.value}. "
            "Make them an Admin first.",
        )


def check_server_list(role: Role, *, limited: bool) -> None:
    """Per-server access is given only where the role does not already reach every server."""
    if role not in ROLES_WITH_SERVER_LIST:
        reach = "full access to every server" if ROLE_SERVER_ACCESS[role] is ServerAccess.FULL else "no server access"
        raise InvalidRequest(
            Reason.SERVER_ACCESS_FIXED_BY_ROLE,
            f"{role.value} members have {reach}; per-server access applies to Technical and Member.",
        )
    if limited and role not in ROLES_WITH_SERVER_LIMIT:
        raise InvalidRequest(
            Reason.SERVER_ACCESS_FIXED_BY_ROLE, "Only Technical members can be limited to a list of servers."
        )
