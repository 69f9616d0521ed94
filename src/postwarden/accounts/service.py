"""Accounts: creation with their Owner and first account token; settings and billing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.accounts.models import Account
from postwarden.audit import AuditAction
from postwarden.db import on_commit
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, Role, require
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.tokens.service import TokenService
from postwarden.users.models import User
from postwarden.users.passwords import generate_password
from postwarden.users.service import UserService, normalize_email

#: Plan name -> the server cap it sets (None: unlimited). New accounts start on Platform.
PLANS: Final[dict[str, int | None]] = {"Basic": 10, "Pro": 50, "Platform": None}
MAX_RECIPIENTS: Final = 10
BILL_TO_MAX_LENGTH: Final = 1000


@dataclass(frozen=True)
class AccountSettings:
    """``PUT /account``: None means "not given"."""

    name: str | None = None
    require_two_factor: bool | None = None


@dataclass(frozen=True)
class BillingSettings:
    """``PUT /account/billing``: None means "not given"."""

    plan: str | None = None
    receipt_recipients: list[str] | None = None
    billing_error_recipients: list[str] | None = None
    bill_to: str | None = None


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
        users = UserService(self.session, self.actor, self.runtime)
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

    # settings, as the account's own people see and change them

    def get_settings(self, account_id: int) -> Account:
        require(self.actor, Permission.ACCOUNT_READ, account_id=account_id)
        return self._account(account_id)

    def update_settings(self, account_id: int, given: AccountSettings) -> Account:
        require(self.actor, Permission.ACCOUNT_UPDATE, account_id=account_id)
        account = self._account(account_id)
        after: dict[str, object] = {}
        if given.name is not None:
            name = given.name.strip()
            if not name or len(name) > 255:
                raise InvalidRequest(Reason.ACCOUNT_NAME_INVALID, "The account name must be 1 to 255 characters.")
            after["name"] = name
        if given.require_two_factor is not None:
            if given.require_two_factor and not account.require_two_factor and self.actor.user_id is not None:
                caller = self.session.get(User, self.actor.user_id)
                if caller is None or caller.totp_enabled_at is None:
                    raise InvalidRequest(
                        Reason.ACCOUNT_FIELD_INVALID,
                        "Set up two-factor authentication for yourself (POST /me/two-factor) "
                        "before requiring it of everyone.",
                    )
            after["require_two_factor"] = given.require_two_factor
        self._change_and_record(account, after, AuditAction.ACCOUNT_UPDATED)
        return account

    def set_sending_paused(self, account_id: int, *, paused: bool) -> Account:
        """The operator stops (or resumes) all mail of one account, invitations included."""
        self._require_operator()
        account = self.get_account(account_id)
        self._change_and_record(account, {"sending_paused": paused}, AuditAction.ACCOUNT_UPDATED)
        return account

    def get_billing(self, account_id: int) -> Account:
        require(self.actor, Permission.BILLING_READ, account_id=account_id)
        return self._account(account_id)

    def update_billing(self, account_id: int, given: BillingSettings) -> Account:
        require(self.actor, Permission.BILLING_MANAGE, account_id=account_id)
        account = self._account(account_id)
        after: dict[str, object] = {}
        if given.plan is not None:
            plan = next((name for name in PLANS if name.lower() == given.plan.strip().lower()), None)
            if plan is None:
                raise InvalidRequest(
                    Reason.ACCOUNT_FIELD_INVALID, f"Unknown plan '{given.plan}'. Use one of: {', '.join(PLANS)}."
                )
            after["plan"] = plan
            after["server_limit"] = PLANS[plan]
        for field, value in (
            ("receipt_recipients", given.receipt_recipients),
            ("billing_error_recipients", given.billing_error_recipients),
        ):
            if value is not None:
                after[field] = _recipients(field, value)
        if given.bill_to is not None:
            if len(given.bill_to) > BILL_TO_MAX_LENGTH:
                raise InvalidRequest(
                    Reason.ACCOUNT_FIELD_INVALID, f"BillTo must be at most {BILL_TO_MAX_LENGTH} characters."
                )
            after["bill_to"] = given.bill_to.strip()
        self._change_and_record(account, after, AuditAction.BILLING_UPDATED)
        return account

    def _account(self, account_id: int) -> Account:
        account = self.session.get(Account, account_id)
        if account is None:
            raise NotFound(Reason.ACCOUNT_NOT_FOUND, f"Account {account_id} was not found.")
        return account

    def _change_and_record(self, account: Account, after: dict[str, object], action: AuditAction) -> None:
        before = {field: getattr(account, field) for field in after}
        changes = audit.changed_fields(before, after)
        if not changes:
            return
        for field in changes:
            setattr(account, field, after[field])
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=account.id,
            target_type="account",
            target_id=account.id,
            target_label=account.name,
            changes=changes,
        )
        account_id = account.id
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))

    def has_accounts(self) -> bool:
        return self.session.scalar(select(Account.id).limit(1)) is not None

    def _require_operator(self) -> None:
        require(self.actor, Permission.ACCOUNTS_MANAGE)


def _recipients(field: str, addresses: list[str]) -> list[str]:
    if len(addresses) > MAX_RECIPIENTS:
        raise InvalidRequest(Reason.ACCOUNT_FIELD_INVALID, f"At most {MAX_RECIPIENTS} addresses in {field}.")
    normalized: list[str] = []
    for address in addresses:
        email = normalize_email(address)
        if email not in normalized:
            normalized.append(email)
    return normalized
