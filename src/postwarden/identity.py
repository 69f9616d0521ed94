"""Who is calling: the ``Actor`` every service method receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Credential(StrEnum):
    """How the caller proved who it is; ``policy.CREDENTIAL_CEILING`` caps each one."""

    ACCOUNT_TOKEN = "account_token"
    SERVER_TOKEN = "server_token"
    PERSONAL_TOKEN = "personal_token"
    SCIM_TOKEN = "scim_token"
    SESSION = "session"
    SYSTEM = "system"


class Via(StrEnum):
    """The surface a change came through, as the audit log shows it."""

    API = "api"
    CONSOLE = "console"
    SCIM = "scim"
    CLI = "cli"
    #: Background work the operator configured, such as pruning by the retention setting.
    WORKER = "worker"


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str = ""
    ip: str = ""
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class Actor:
    credential: Credential
    label: str
    via: Via
    account_id: int | None = None
    server_id: int | None = None
    user_id: int | None = None
    token_id: int | None = None
    #: Role name within ``account_id`` (see ``policy.Role``); None for credentials without one.
    role: str | None = None
    #: Grants a credential carries beyond its role, e.g. server deletion on an account token.
    token_grants: frozenset[str] = field(default_factory=frozenset)
    #: Server id -> access level (``policy.ServerAccess`` value) granted to this member one by one.
    server_access: Mapping[int, str] = field(default_factory=dict)
    #: A Technical member limited to the servers of ``server_access``.
    servers_limited: bool = False
    #: What the member's SCIM groups add: account roles, and server id -> access level.
    group_roles: frozenset[str] = field(default_factory=frozenset)
    group_server_access: Mapping[int, str] = field(default_factory=dict)
    #: A personal token narrowed to these permissions and servers; None: not narrowed.
    scopes: frozenset[str] | None = None
    token_servers: frozenset[int] | None = None
    #: The account requires two-factor authentication and this user has not set it up.
    two_factor_missing: bool = False
    context: RequestContext = field(default_factory=RequestContext)

    @classmethod
    def system(cls, label: str, *, via: Via = Via.CLI) -> Actor:
        """The operator at the command line: above every account."""
        return cls(credential=Credential.SYSTEM, label=label, via=via)

    @classmethod
    def invitee(cls, email: str, context: RequestContext, *, via: Via = Via.API) -> Actor:
        """Someone holding an invitation link: the link is their only credential."""
        return cls(credential=Credential.SESSION, label=email, via=via, context=context)
