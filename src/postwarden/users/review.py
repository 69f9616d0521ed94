"""The access review: every member of an account with what they reach, and the signs that
their access outlived its use (no second factor, no recent sign-in, personal tokens left
idle). Owners and Admins run it for periodic user access reviews; it only reads, so it
records no audit event.

Effective access is ``Member.access_on``, the same computation ``/users`` shows, so the
review and the people page can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from postwarden.db import utcnow
from postwarden.errors import InvalidRequest, Reason
from postwarden.identity import Actor
from postwarden.paging import check_page
from postwarden.policy import Permission, ServerAccess, require, visible_servers
from postwarden.servers.models import Server
from postwarden.tokens.models import PersonalToken
from postwarden.users.models import Membership, User
from postwarden.users.service import Member, members_with_access

DEFAULT_DAYS: Final = 90
#: A century: any longer window flags nobody, and ``timedelta`` arithmetic stays in range.
MAX_DAYS: Final = 36500


class Flag(StrEnum):
    """Why a member deserves a second look, in the order the review lists them."""

    NO_TWO_FACTOR = "NoTwoFactor"
    NEVER_LOGGED_IN = "NeverLoggedIn"
    #: Signed in once, but not within ``inactive_days`` (a member who never did is NeverLoggedIn).
    INACTIVE = "Inactive"
    #: Holds live personal tokens and used none within ``unused_days``; a token never used
    #: counts from its creation, so a token made yesterday is not idle yet.
    TOKENS_UNUSED = "TokensUnused"


@dataclass(frozen=True)
class ReviewCriteria:
    """The windows of the review, and the moment they are measured from: one moment for a
    whole export, whichever batch a member falls in."""

    inactive_days: int = DEFAULT_DAYS
    unused_days: int = DEFAULT_DAYS
    as_of: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class ReviewedMember:
    member: Member
    #: (server id, name, effective access) of each server the member reaches, by name.
    servers: list[tuple[int, str, ServerAccess]]
    #: The latest use of any of the member's personal tokens in the account, revoked ones included.
    last_token_use_at: datetime | None
    #: Personal tokens that still work: neither revoked nor expired.
    personal_tokens: int
    flags: list[Flag]


@dataclass(frozen=True)
class ReviewPage:
    total: int
    members: list[ReviewedMember]


@dataclass
class _TokenUse:
    live: int = 0
    last_used_at: datetime | None = None
    #: A live token used (or, never used, created) within the unused window.
    recently_used: bool = False


def check_criteria(criteria: ReviewCriteria) -> None:
    for name, days in (("inactivedays", criteria.inactive_days), ("unuseddays", criteria.unused_days)):
        if not 1 <= days <= MAX_DAYS:
            raise InvalidRequest(
                Reason.TEAM_QUERY_INVALID,
                f"The '{name}' query parameter must be a whole number of days from 1 to {MAX_DAYS}.",
            )


class AccessReviewService:
    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    def review(self, account_id: int, criteria: ReviewCriteria, *, count: int, offset: int) -> ReviewPage:
        """A page of every member of the account, suspended ones included, by email."""
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)
        check_criteria(criteria)
        check_page(count, offset, Reason.TEAM_QUERY_INVALID)
        total = self.session.scalar(
            select(func.count()).select_from(Membership).where(Membership.account_id == account_id)
        )
        rows = self.session.execute(self._members(account_id).limit(count).offset(offset)).tuples().all()
        return ReviewPage(total or 0, self._reviewed(account_id, list(rows), criteria))

    def review_after(
        self, account_id: int, criteria: ReviewCriteria, *, after_email: str | None, limit: int
    ) -> list[ReviewedMember]:
        """The next ``limit`` members after ``after_email``: an export reads the review batch by
        batch, never holding a transaction open while its client downloads."""
        require(self.actor, Permission.AUDIT_READ, account_id=account_id)
        check_criteria(criteria)
        query = self._members(account_id)
        if after_email is not None:
            query = query.where(User.email > after_email)
        rows = self.session.execute(query.limit(limit)).tuples().all()
        return self._reviewed(account_id, list(rows), criteria)

    def _members(self, account_id: int) -> Select[tuple[Membership, User]]:
        # Emails are unique: the order is total, and an export can resume after the last one.
        return (
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.account_id == account_id)
            .order_by(User.email)
        )

    def _reviewed(
        self, account_id: int, rows: list[tuple[Membership, User]], criteria: ReviewCriteria
    ) -> list[ReviewedMember]:
        members = members_with_access(self.session, rows)
        servers = self._servers(account_id)
        tokens = self._token_use(account_id, [member.user.id for member in members], criteria)
        reviewed = []
        for member in members:
            use = tokens.get(member.user.id, _TokenUse())
            reached: list[tuple[int, str, ServerAccess]] = [
                (server_id, name, level)
                for server_id, name in servers
                if (level := member.access_on(server_id)) is not ServerAccess.NONE
            ]
            reviewed.append(ReviewedMember(member, reached, use.last_used_at, use.live, _flags(member, use, criteria)))
        return reviewed

    def _servers(self, account_id: int) -> list[tuple[int, str]]:
        """(id, name) of the servers the caller reaches, as ``/users/{id}`` lists them: a
        personal token narrowed to some servers reviews access to those only."""
        query = select(Server.id, Server.name).where(Server.account_id == account_id)
        reachable = visible_servers(self.actor)
        if reachable is not None:
            query = query.where(Server.id.in_(reachable))
        return [
            (server_id, name) for server_id, name in self.session.execute(query.order_by(Server.name_key, Server.id))
        ]

    def _token_use(self, account_id: int, user_ids: list[int], criteria: ReviewCriteria) -> dict[int, _TokenUse]:
        if not user_ids:
            return {}
        cutoff = criteria.as_of - timedelta(days=criteria.unused_days)
        uses: dict[int, _TokenUse] = {}
        for user_id, created_at, last_used_at, revoked_at, expires_at in self.session.execute(
            select(
                PersonalToken.user_id,
                PersonalToken.created_at,
                PersonalToken.last_used_at,
                PersonalToken.revoked_at,
                PersonalToken.expires_at,
            ).where(PersonalToken.account_id == account_id, PersonalToken.user_id.in_(user_ids))
        ):
            use = uses.setdefault(user_id, _TokenUse())
            if last_used_at is not None and (use.last_used_at is None or last_used_at > use.last_used_at):
                use.last_used_at = last_used_at
            if revoked_at is not None or (expires_at is not None and expires_at <= criteria.as_of):
                continue
            use.live += 1
            if (last_used_at or created_at) >= cutoff:
                use.recently_used = True
        return uses


def _flags(member: Member, tokens: _TokenUse, criteria: ReviewCriteria) -> list[Flag]:
    user = member.user
    flags = []
    if user.totp_enabled_at is None:
        flags.append(Flag.NO_TWO_FACTOR)
    if user.last_login_at is None:
        flags.append(Flag.NEVER_LOGGED_IN)
    elif user.last_login_at < criteria.as_of - timedelta(days=criteria.inactive_days):
        flags.append(Flag.INACTIVE)
    if tokens.live and not tokens.recently_used:
        flags.append(Flag.TOKENS_UNUSED)
    return flags
