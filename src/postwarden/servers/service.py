"""Servers: the only code that creates, changes or deletes them."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.accounts.models import Account
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import Conflict, InvalidRequest, NotFound, PermissionDenied, Reason
from postwarden.identity import Actor
from postwarden.paging import check_page
from postwarden.policy import Permission, ServerAccess, allows, require, uniform_server_access, visible_servers
from postwarden.runtime import Runtime
from postwarden.servers.models import MessageStream, Server, ServerPin
from postwarden.tokens.service import TokenService
from postwarden.urls import outbound_url_problem
from postwarden.users.models import Membership, ServerAccessGrant, User

#: Accepted colors (any case) and the value stored; ``turqoise`` is the old API's spelling.
COLORS: Final[dict[str, str]] = {
    name: name for name in ("purple", "blue", "turquoise", "green", "red", "yellow", "grey", "orange")
} | {"turqoise": "turquoise", "gray": "grey"}
TRACK_LINKS: Final = ("None", "HtmlAndText", "HtmlOnly", "TextOnly")
DELIVERY_TYPES: Final = ("Live", "Sandbox")
HOOK_FIELDS: Final = (
    "inbound_hook_url",
    "bounce_hook_url",
    "open_hook_url",
    "delivery_hook_url",
    "click_hook_url",
)
NAME_MAX_LENGTH: Final = 255
DEFAULT_STREAMS: Final = (
    ("outbound", "Default Transactional Stream", "Transactional", "None"),
    ("inbound", "Default Inbound Stream", "Inbound", "None"),
    ("broadcast", "Default Broadcast Stream", "Broadcasts", "Postmark"),
)
_DOMAIN_RE: Final = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def reach_server(session: Session, actor: Actor, server_id: int, permission: Permission) -> Server:
    """The server a Server API call acts on, once policy allows ``permission`` on it: the
    one check every service of a server's resources (streams, webhooks, templates,
    suppressions) starts with."""
    account_id = actor.account_id  # None for the operator, who reaches every account
    require(actor, permission, account_id=account_id or 0, server_id=server_id)
    server = session.get(Server, server_id)
    if server is None or (account_id is not None and server.account_id != account_id):
        raise NotFound(Reason.SERVER_NOT_FOUND, f"Server {server_id} was not found.")
    return server


@dataclass(frozen=True)
class ServerFields:
    """Settings given by a caller; None means "not given" (keep the current value)."""

    name: str | None = None
    color: str | None = None
    smtp_api_activated: bool | None = None
    raw_email_enabled: bool | None = None
    delivery_type: str | None = None
    inbound_hook_url: str | None = None
    bounce_hook_url: str | None = None
    open_hook_url: str | None = None
    delivery_hook_url: str | None = None
    click_hook_url: str | None = None
    post_first_open_only: bool | None = None
    inbound_domain: str | None = None
    inbound_spam_threshold: int | None = None
    track_opens: bool | None = None
    track_links: str | None = None
    include_bounce_content_in_hook: bool | None = None
    enable_smtp_api_error_hooks: bool | None = None

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class ServerPage:
    """One page of a listing: the ids in order, and how many servers match in all."""

    total: int
    server_ids: list[int]


@dataclass(frozen=True)
class ServerWithTokens:
    server: Server
    api_tokens: list[str]


class ServerService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime
        self.tokens = TokenService(session, runtime)
        self._tokens_everywhere: dict[int, bool] = {}

    # reading

    def find_server(self, server_id: int) -> Server | None:
        return self.session.get(Server, server_id)

    def get_server(self, account_id: int, server_id: int) -> Server:
        require(self.actor, Permission.SERVERS_READ, account_id=account_id, server_id=server_id)
        server = self.find_server(server_id)
        if server is None or server.account_id != account_id:
            raise NotFound(Reason.SERVER_NOT_FOUND, f"Server {server_id} was not found.")
        return server

    def list_servers(self, account_id: int, *, count: int, offset: int, name: str | None = None) -> ServerPage:
        require(self.actor, Permission.SERVERS_READ, account_id=account_id)
        check_page(count, offset, Reason.SERVER_QUERY_INVALID)
        query = select(Server.id).where(Server.account_id == account_id)
        reachable = visible_servers(self.actor)
        if reachable is not None:
            query = query.where(Server.id.in_(reachable))
        if name:
            query = query.where(Server.name_key.contains(name.lower(), autoescape=True))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ids = list(self.session.scalars(query.order_by(Server.name_key, Server.id).limit(count).offset(offset)))
        return ServerPage(total, ids)

    def load_servers(
        self, account_id: int, server_ids: list[int], *, with_tokens: bool = True
    ) -> list[ServerWithTokens]:
        """The account's servers among ``server_ids`` that the caller reaches, in that order,
        with their API tokens where the caller may see them (View only may not) and wants them."""
        require(self.actor, Permission.SERVERS_READ, account_id=account_id)
        found = {
            server.id: server
            for server in self.session.scalars(
                select(Server).where(Server.account_id == account_id, Server.id.in_(server_ids))
            )
            if allows(self.actor, Permission.SERVERS_READ, account_id=account_id, server_id=server.id)
        }
        shown = [i for i in found if with_tokens and self.may_see_tokens(account_id, i)]
        tokens = self.tokens.server_tokens_by_server(shown)
        return [ServerWithTokens(found[i], tokens.get(i, [])) for i in server_ids if i in found]

    def may_see_tokens(self, account_id: int, server_id: int) -> bool:
        if account_id not in self._tokens_everywhere:  # decided once per account, for listings of many servers
            self._tokens_everywhere[account_id] = uniform_server_access(self.actor) is ServerAccess.FULL and allows(
                self.actor, Permission.SERVER_TOKENS_READ, account_id=account_id
            )
        if self._tokens_everywhere[account_id]:
            return True
        return allows(self.actor, Permission.SERVER_TOKENS_READ, account_id=account_id, server_id=server_id)

    def api_tokens(self, server: Server) -> list[str]:
        """The server's tokens; an empty list for callers who may read the server but not its tokens."""
        require(self.actor, Permission.SERVERS_READ, account_id=server.account_id, server_id=server.id)
        if not self.may_see_tokens(server.account_id, server.id):
            return []
        return self.tokens.server_tokens(server.id)

    # changing

    def create_server(self, account_id: int, given: ServerFields) -> Server:
        require(self.actor, Permission.SERVERS_CREATE, account_id=account_id)
        if given.name is None or not given.name.strip():
            raise InvalidRequest(Reason.SERVER_NAME_INVALID, "The server 'Name' is required.")
        values = self._validated(given, creating=True)
        account = self._lock_account(account_id)
        self._check_server_limit(account)
        self._check_unique(account_id, values)
        server = Server(account_id=account_id, inbound_hash=secrets.token_hex(16), **values)
        self.session.add(server)
        self._flush_unique()  # assigns server.id for its tokens and streams
        self.tokens.issue_server_token(server.id)
        for stream_id, stream_name, stream_type, unsubscribe in DEFAULT_STREAMS:
            self.session.add(
                MessageStream(
                    server_id=server.id,
                    stream_id=stream_id,
                    name=stream_name,
                    stream_type=stream_type,
                    unsubscribe_handling=unsubscribe,
                )
            )
        audit.record(
            self.session,
            self.actor,
            AuditAction.SERVER_CREATED,
            account_id=account_id,
            target_type="server",
            target_id=server.id,
            target_label=server.name,
            changes={name: {"before": None, "after": value} for name, value in self._snapshot(server).items()},
        )
        self._grant_to_creator(account_id, server)
        return server

    def _grant_to_creator(self, account_id: int, server: Server) -> None:
        """Whoever creates a server reaches it: a Technical member limited to a list of
        servers gets Full access on the one they just created."""
        if self.actor.user_id is None or allows(
            self.actor, Permission.SERVERS_READ, account_id=account_id, server_id=server.id
        ):
            return
        member = self.session.execute(
            select(Membership.id, User.email)
            .join(User, User.id == Membership.user_id)
            .where(Membership.account_id == account_id, Membership.user_id == self.actor.user_id)
        ).one_or_none()
        if member is None:
            return
        membership_id, email = member
        self.session.add(
            ServerAccessGrant(membership_id=membership_id, server_id=server.id, level=ServerAccess.FULL.value)
        )
        audit.record(
            self.session,
            self.actor,
            AuditAction.SERVER_ACCESS_UPDATED,
            account_id=account_id,
            target_type="user",
            target_id=self.actor.user_id,
            target_label=email,
            changes={"server_access": {"before": None, "after": {str(server.id): ServerAccess.FULL.value}}},
        )
        self.actor = replace(self.actor, server_access={**self.actor.server_access, server.id: ServerAccess.FULL.value})
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))

    def update_server(self, account_id: int, server_id: int, given: ServerFields) -> Server:
        require(self.actor, Permission.SERVERS_UPDATE, account_id=account_id, server_id=server_id)
        server = self.get_server(account_id, server_id)
        values = self._validated(given, creating=False)
        if not values and given.delivery_type is None:
            raise InvalidRequest(Reason.SERVER_NO_CHANGES, "No updated Server data received.")
        before = self._snapshot(server)
        self._check_unique(account_id, values, excluding=server.id)
        for name, value in values.items():
            setattr(server, name, value)
        self._flush_unique()  # surfaces a concurrent duplicate name as 603, not a 500
        changes = audit.changed_fields(before, self._snapshot(server))
        if changes:
            audit.record(
                self.session,
                self.actor,
                AuditAction.SERVER_UPDATED,
                account_id=account_id,
                target_type="server",
                target_id=server.id,
                target_label=server.name,
                changes=changes,
            )
            on_commit(self.session, lambda: self.runtime.cache.invalidate_server(server_id))
        return server

    def delete_server(self, account_id: int, server_id: int) -> str:
        """Delete the server with its tokens and streams; returns its name."""
        server = self.get_server(account_id, server_id)
        require(self.actor, Permission.SERVERS_DELETE, account_id=account_id, server_id=server_id)
        name = server.name
        self.session.delete(server)
        audit.record(
            self.session,
            self.actor,
            AuditAction.SERVER_DELETED,
            account_id=account_id,
            target_type="server",
            target_id=server_id,
            target_label=name,
            changes={"name": {"before": name, "after": None}},
        )
        on_commit(self.session, lambda: self.runtime.cache.invalidate_server(server_id))
        return name

    def record_token_views(self, account_id: int, server_ids: list[int]) -> None:
        """Revealing a server's tokens is a security event: one per server shown."""
        for server in self.session.scalars(
            select(Server).where(Server.account_id == account_id, Server.id.in_(server_ids)).order_by(Server.id)
        ):
            require(self.actor, Permission.SERVER_TOKENS_READ, account_id=account_id, server_id=server.id)
            audit.record(
                self.session,
                self.actor,
                AuditAction.SERVER_TOKEN_VIEWED,
                account_id=account_id,
                target_type="server",
                target_id=server.id,
                target_label=server.name,
            )

    # pins: each person's own order of the list

    def pinned_ids(self, account_id: int) -> set[int]:
        """The servers of the account that the caller pinned; none for a credential that is no person."""
        require(self.actor, Permission.SERVERS_READ, account_id=account_id)
        if self.actor.user_id is None:
            return set()
        return set(
            self.session.scalars(
                select(ServerPin.server_id)
                .join(Server, Server.id == ServerPin.server_id)
                .where(ServerPin.user_id == self.actor.user_id, Server.account_id == account_id)
            )
        )

    def pin(self, account_id: int, server_id: int) -> bool:
        """Keeps a server the caller sees at the top of their own list. False, and nothing
        recorded, when it was pinned already (two tabs racing included)."""
        user_id = self._person()
        server = self.get_server(account_id, server_id)
        dialect = postgresql if self.session.get_bind().dialect.name == "postgresql" else sqlite
        inserted = self.session.execute(
            dialect.insert(ServerPin)
            .values(user_id=user_id, server_id=server.id, pinned_at=utcnow())
            .on_conflict_do_nothing(index_elements=["user_id", "server_id"])
            .returning(ServerPin.server_id)
        ).first()
        if inserted is None:
            return False
        audit.record(
            self.session,
            self.actor,
            AuditAction.SERVER_PINNED,
            account_id=account_id,
            target_type="server",
            target_id=server.id,
            target_label=server.name,
            changes={"pinned": {"before": False, "after": True}},
        )
        return True

    def unpin(self, account_id: int, server_id: int) -> bool:
        """Puts a pinned server back in alphabetical order; False, and nothing recorded, when it was not pinned."""
        user_id = self._person()
        server = self.get_server(account_id, server_id)
        removed = self.session.execute(
            delete(ServerPin)
            .where(ServerPin.user_id == user_id, ServerPin.server_id == server.id)
            .returning(ServerPin.server_id)
        ).first()
        if removed is None:
            return False
        audit.record(
            self.session,
            self.actor,
            AuditAction.SERVER_UNPINNED,
            account_id=account_id,
            target_type="server",
            target_id=server.id,
            target_label=server.name,
            changes={"pinned": {"before": True, "after": False}},
        )
        return True

    def _person(self) -> int:
        if self.actor.user_id is None:
            raise PermissionDenied(
                Reason.PERSONAL_CREDENTIAL_NEEDED,
                "Pins belong to a person: sign in to the console or use a personal token "
                "(Authorization: Bearer pw_...), not an account or server token.",
            )
        return self.actor.user_id

    # rules

    def _validated(self, given: ServerFields, *, creating: bool) -> dict[str, Any]:
        values = given.given()
        if "name" in values:
            name = values["name"].strip()
            if not name or len(name) > NAME_MAX_LENGTH:
                raise InvalidRequest(
                    Reason.SERVER_NAME_INVALID,
                    f"The server 'Name' must be between 1 and {NAME_MAX_LENGTH} characters.",
                )
            values["name"] = name
            values["name_key"] = name.lower()
        if "color" in values:
            color = COLORS.get(values["color"].strip().lower())
            if color is None:
                raise InvalidRequest(
                    Reason.SERVER_COLOR_INVALID,
                    "Invalid server color. Use one of: Purple, Blue, Turquoise, Green, Red, Yellow, Grey, Orange.",
                )
            values["color"] = color
        if "track_links" in values:
            track = {t.lower(): t for t in TRACK_LINKS}.get(values["track_links"].strip().lower())
            if track is None:
                raise InvalidRequest(
                    Reason.SERVER_TRACK_LINKS_INVALID,
                    "The supplied TrackLinks option is not valid. Use one of: " + ", ".join(TRACK_LINKS) + ".",
                )
            values["track_links"] = track
        if "delivery_type" in values:
            delivery = {t.lower(): t for t in DELIVERY_TYPES}.get(values["delivery_type"].strip().lower())
            if delivery is None:
                raise InvalidRequest(
                    Reason.SERVER_DELIVERY_TYPE_INVALID,
                    "The supplied DeliveryType option is not valid. Use Live or Sandbox.",
                )
            if creating:
                values["delivery_type"] = delivery
            else:
                del values["delivery_type"]  # fixed at creation, as in Postmark
        if "inbound_spam_threshold" in values and not 0 <= values["inbound_spam_threshold"] <= 30:
            raise InvalidRequest(Reason.SERVER_SPAM_THRESHOLD_INVALID, "InboundSpamThreshold must be between 0 and 30.")
        for hook in HOOK_FIELDS:
            url = values.get(hook)
            if url:
                problem = outbound_url_problem(url, allow_private=self.runtime.settings.allow_private_urls)
                if problem is not None:
                    raise InvalidRequest(
                        Reason.SERVER_HOOK_URL_INVALID, f"Invalid webhook URL for {_wire_name(hook)}: {problem}."
                    )
        if values.get("inbound_domain"):
            domain = values["inbound_domain"].strip().lower().rstrip(".")
            if not _DOMAIN_RE.match(domain) or domain.endswith("postmarkapp.com"):
                raise InvalidRequest(Reason.SERVER_INBOUND_DOMAIN_INVALID, "The InboundDomain is not a valid domain.")
            values["inbound_domain"] = domain
        return values

    def _lock_account(self, account_id: int) -> Account:
        # Serialises concurrent creates in one account, so the plan limit holds under races
        # (PostgreSQL row lock; SQLite writers already hold the database lock from BEGIN).
        account = self.session.scalar(select(Account).where(Account.id == account_id).with_for_update())
        if account is None:
            raise NotFound(Reason.ACCOUNT_NOT_FOUND, f"Account {account_id} was not found.")
        return account

    def _check_server_limit(self, account: Account) -> None:
        if account.server_limit is None:
            return
        count = self.session.scalar(select(func.count()).where(Server.account_id == account.id)) or 0
        if count >= account.server_limit:
            raise Conflict(
                Reason.SERVER_LIMIT_REACHED,
                f"Your plan allows {account.server_limit} servers and this account has {count}. "
                "Delete a server or change the plan to add more.",
            )

    def _check_unique(self, account_id: int, values: dict[str, Any], excluding: int | None = None) -> None:
        if "name_key" in values:
            query = select(Server.id).where(Server.account_id == account_id, Server.name_key == values["name_key"])
            if excluding is not None:
                query = query.where(Server.id != excluding)
            if self.session.scalar(query) is not None:
                raise Conflict(Reason.SERVER_NAME_TAKEN, "Server name already exists.")
        if values.get("inbound_domain"):
            query = select(Server.id).where(Server.inbound_domain == values["inbound_domain"])
            if excluding is not None:
                query = query.where(Server.id != excluding)
            if self.session.scalar(query) is not None:
                raise Conflict(Reason.SERVER_INBOUND_DOMAIN_TAKEN, "Duplicate Inbound Domain.")

    def _flush_unique(self) -> None:
        try:
            self.session.flush()
        except IntegrityError as exc:
            raise Conflict(Reason.SERVER_NAME_TAKEN, "Server name already exists.") from exc

    @staticmethod
    def _snapshot(server: Server) -> dict[str, Any]:
        return {f.name: getattr(server, f.name) for f in fields(ServerFields)}


def _wire_name(field_name: str) -> str:
    return "".join(part.capitalize() for part in field_name.split("_"))
