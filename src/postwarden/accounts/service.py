"""Accounts: creation with their Owner and first account token."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.accounts.models import Account
from postwarden.audit import AuditAction
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, Role, require
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.tokens.service import TokenService
from postwarden.users.passwords import generate_password
from postwarden.users.service import UserService


@dataclass(frozen=True)
class NewAccount:
    account: Account
    owner_email: str
    owner_password: str
    account_token: str


@dataclass(frozen=True)
class AccountSummary:
    account: Account
    server_count: int


class AccountService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    def create_account(
        self,
        name: str,
        *,
        owner_email: str,
        owner_password: str | None = None,
        server_limit: int | None = None,
    ) -> NewAccount:
        """A new account with its Owner (a new user) and one account token."""
        self._require_operator()
        name = name.strip()
        if not name or len(name) > 255:
            raise InvalidRequest(Reason.ACCOUNT_NAME_INVALID, "The account name must be 1 to 255 characters.")
        if server_limit is not None and server_limit < 0:
            raise InvalidRequest(Reason.INVALID_FIELD, "The server limit must be 0 or more.")
        password = owner_password or generate_password()
        users = UserService(self.session, self.actor)
        owner = users.create_user(owner_email, password)
        account = Account(name=name, server_limit=server_limit)
        self.session.add(account)
        self.session.flush()  # assigns account.id for the membership and token
        audit.record(
            self.session,
            self.actor,
            AuditAction.ACCOUNT_CREATED,
            account_id=account.id,
            target_type="account",
            target_id=account.id,
            target_label=name,
            changes={"name": {"before": None, "after": name}, "server_limit": {"before": None, "after": server_limit}},
        )
        users.add_membership(account.id, owner, Role.OWNER)
        token_row, token = TokenService(self.session, self.runtime).issue_account_token(account.id, "Default")
        audit.record(
            self.session,
            self.actor,
            AuditAction.ACCOUNT_TOKEN_CREATED,
            account_id=account.id,
            target_type="account_token",
            target_id=token_row.id,
            target_label=token_row.name,
        )
        return NewAccount(account, owner.email, password, token)

    def set_server_limit(self, account_id: int, server_limit: int | None) -> Account:
        """The plan's cap on servers (None: unlimited). Existing servers above it are kept;
        only new ones are refused."""
        self._require_operator()
        if server_limit is not None and server_limit < 0:
            raise InvalidRequest(Reason.INVALID_FIELD, "The server limit must be 0 or more.")
        account = self.get_account(account_id)
        if account.server_limit == server_limit:
            return account
        before, account.server_limit = account.server_limit, server_limit
        audit.record(
            self.session,
            self.actor,
            AuditAction.ACCOUNT_UPDATED,
            account_id=account.id,
            target_type="account",
            target_id=account.id,
            target_label=account.name,
            changes={"server_limit": {"before": before, "after": server_limit}},
        )
        return account

    def list_accounts(self) -> list[AccountSummary]:
        self._require_operator()
        rows = self.session.execute(
            select(Account, func.count(Server.id))
            .outerjoin(Server, Server.account_id == Account.id)
            .group_by(Account.id)
            .order_by(Account.id)
        )
        return [AccountSummary(account, count) for account, count in rows]

    def get_account(self, account_id: int) -> Account:
        self._require_operator()
        account = self.session.get(Account, account_id)
        if account is None:
            raise NotFound(Reason.ACCOUNT_NOT_FOUND, f"Account {account_id} was not found.")
        return account

    def has_accounts(self) -> bool:
        return self.session.scalar(select(Account.id).limit(1)) is not None

    def _require_operator(self) -> None:
        require(self.actor, Permission.ACCOUNTS_MANAGE)
