"""Invitations: several people asked at once to join with one role and one server access
set, each by an expiring, single-use link sent by mail."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.accounts.models import Account
from postwarden.audit import AuditAction
from postwarden.db import utcnow
from postwarden.errors import InvalidRequest, NotAuthenticated, NotFound, PostwardenError, Reason
from postwarden.identity import Actor, RequestContext, Via
from postwarden.invitations.models import Invitation
from postwarden.mail.service import MailService
from postwarden.paging import check_page
from postwarden.policy import Permission, Role, ServerAccess, check_role_change, check_server_list, require
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.users.models import Membership, User, UserSession
from postwarden.users.passwords import verify_password
from postwarden.users.service import UserService, check_password, normalize_email
from postwarden.users.sign_in import open_session

MAX_EMAILS_PER_REQUEST: Final = 50
NAME_MAX_LENGTH: Final = 255


@dataclass(frozen=True)
class NewInvitations:
    emails: list[str]
    role: Role
    server_access: dict[int, ServerAccess] = field(default_factory=dict)
    servers_limited: bool = False


@dataclass(frozen=True)
class InvitationPage:
    total: int
    invitations: list[Invitation]


@dataclass(frozen=True)
class Acceptance:
    """A new member, signed in: the session token is shown this once."""

    user: User
    account_id: int
    session: UserSession
    session_token: str


@dataclass(frozen=True)
class InvitationPreview:
    invitation: Invitation
    account_name: str
    has_login: bool


def _link_invalid() -> NotFound:
    return NotFound(
        Reason.INVITATION_LINK_INVALID,
        "This invitation link is not valid: it was already used, replaced by a newer one, or revoked.",
    )


class InvitationService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime, enqueue: Callable[[int], None]) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime
        self.enqueue = enqueue

    # for the account's Owner and Admins

    def invite(self, account_id: int, given: NewInvitations) -> list[Invitation]:
        require(self.actor, Permission.USERS_MANAGE, account_id=account_id)
        account = self._sending_account(account_id)
        check_role_change(Role.MEMBER, given.role)  # nobody is invited as Owner
        if given.server_access or given.servers_limited:
            check_server_list(given.role, limited=given.servers_limited)
        self._check_servers(account_id, given.server_access)
        if not given.emails:
            raise InvalidRequest(Reason.INVITATION_FIELD_INVALID, "'Emails' must list at least one address.")
        if len(given.emails) > MAX_EMAILS_PER_REQUEST:
            raise InvalidRequest(
                Reason.INVITATION_FIELD_INVALID, f"At most {MAX_EMAILS_PER_REQUEST} addresses per request."
            )
        addresses = list(dict.fromkeys(normalize_email(email) for email in given.emails))
        members = set(
            self.session.scalars(
                select(User.email)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.account_id == account_id, User.email.in_(addresses))
            )
        )
        if members:
            raise InvalidRequest(
                Reason.INVITATION_ALREADY_MEMBER, f"{sorted(members)[0]} is already a member of this account."
            )
        # A new invitation replaces a pending one for the same address: one live link per person.
        self.session.execute(
            delete(Invitation).where(
                Invitation.account_id == account_id,
                Invitation.email.in_(addresses),
                Invitation.accepted_at.is_(None),
            )
        )
        access = {str(server_id): level.value for server_id, level in given.server_access.items()}
        invitations = []
        for address in addresses:
            invitation = Invitation(
                account_id=account_id,
                email=address,
                role=given.role.value,
                server_access={k: v for k, v in access.items() if v != ServerAccess.NONE.value},
                servers_limited=given.servers_limited,
                token_digest="",
                invited_by=self.actor.label,
                expires_at=utcnow(),
            )
            self.session.add(invitation)
            self.session.flush()  # assigns invitation.id for the audit row
            self._send(account, invitation)
            audit.record(
                self.session,
                self.actor,
                AuditAction.INVITATION_CREATED,
                account_id=account_id,
                target_type="invitation",
                target_id=invitation.id,
                target_label=address,
                changes={
                    "role": {"before": None, "after": invitation.role},
                    "server_access": {"before": None, "after": invitation.server_access},
                    "servers_limited": {"before": None, "after": invitation.servers_limited},
                },
            )
            invitations.append(invitation)
        return invitations

    def list_invitations(self, account_id: int, *, count: int, offset: int) -> InvitationPage:
        """Pending invitations (not yet accepted), expired ones included so they can be resent."""
        require(self.actor, Permission.USERS_MANAGE, account_id=account_id)
        check_page(count, offset, Reason.TEAM_QUERY_INVALID)
        query = select(Invitation).where(Invitation.account_id == account_id, Invitation.accepted_at.is_(None))
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = self.session.scalars(query.order_by(Invitation.email, Invitation.id).limit(count).offset(offset))
        return InvitationPage(total, list(rows))

    def resend(self, account_id: int, invitation_id: int) -> Invitation:
        """A new link (the old one stops working) and a fresh expiry."""
        require(self.actor, Permission.USERS_MANAGE, account_id=account_id)
        account = self._sending_account(account_id)
        invitation = self._pending(account_id, invitation_id)
        self._send(account, invitation)
        audit.record(
            self.session,
            self.actor,
            AuditAction.INVITATION_RESENT,
            account_id=account_id,
            target_type="invitation",
            target_id=invitation.id,
            target_label=invitation.email,
        )
        return invitation

    def revoke(self, account_id: int, invitation_id: int) -> Invitation:
        require(self.actor, Permission.USERS_MANAGE, account_id=account_id)
        invitation = self._pending(account_id, invitation_id)
        self.session.delete(invitation)
        audit.record(
            self.session,
            self.actor,
            AuditAction.INVITATION_REVOKED,
            account_id=account_id,
            target_type="invitation",
            target_id=invitation.id,
            target_label=invitation.email,
        )
        return invitation

    # for the invitee, who holds the link and nothing else

    def find_by_link(self, token: str) -> Invitation:
        """The invitation behind a link; refuses used, replaced, revoked and expired ones."""
        invitation = self.session.scalar(
            select(Invitation).where(
                Invitation.token_digest == self.runtime.keyring.digest(token), Invitation.accepted_at.is_(None)
            )
        )
        if invitation is None:
            raise _link_invalid()
        if invitation.expires_at <= utcnow():
            raise PostwardenError(
                Reason.INVITATION_LINK_EXPIRED,
                "This invitation has expired. Ask the person who invited you to send it again.",
            )
        return invitation

    def preview(self, token: str) -> InvitationPreview:
        """What the link's page shows: the invitation, its account's name, and whether the
        address already has a login (which then joins with its own password)."""
        invitation = self.find_by_link(token)
        account = self.session.get(Account, invitation.account_id)
        has_login = self.session.scalar(select(User.id).where(User.email == invitation.email)) is not None
        return InvitationPreview(invitation, account.name if account else "", has_login)

    def accept(
        self, token: str, *, password: str, name: str | None = None, context: RequestContext, via: Via = Via.API
    ) -> Acceptance:
        """Join with a new login (name and password) or an existing one (its password).

        The link is the credential, so the actor is the invitee; the membership grant was
        authorised by whoever sent the invitation.
        """
        invitation = self.find_by_link(token)
        existing = self.session.scalar(select(User).where(User.email == invitation.email))
        invitee = Actor.invitee(invitation.email, context, via=via)
        users = UserService(self.session, invitee, self.runtime)
        if existing is not None:
            if not verify_password(password, existing.password_hash):
                raise NotAuthenticated(
                    Reason.LOGIN_FAILED,
                    f"{invitation.email} already has a login: enter its password to join this account.",
                )
            user = existing
            joined = self.session.scalar(
                select(Membership.id).where(
                    Membership.account_id == invitation.account_id, Membership.user_id == existing.id
                )
            )
            if joined is not None:
                raise InvalidRequest(
                    Reason.INVITATION_ALREADY_MEMBER, f"{invitation.email} is already a member of this account."
                )
        else:
            check_password(password)
            clean_name = (name or "").strip()
            if len(clean_name) > NAME_MAX_LENGTH:
                raise InvalidRequest(
                    Reason.INVITATION_FIELD_INVALID, f"'Name' must be at most {NAME_MAX_LENGTH} characters."
                )
            user = users.create_user(invitation.email, password, name=clean_name)
        server_ids = set(self.session.scalars(select(Server.id).where(Server.account_id == invitation.account_id)))
        users.add_membership(
            invitation.account_id,
            user,
            Role(invitation.role),
            servers_limited=invitation.servers_limited,
            server_access={
                int(server_id): ServerAccess(level)
                for server_id, level in invitation.server_access.items()
                if int(server_id) in server_ids  # servers deleted since the invitation are skipped
            },
        )
        invitation.accepted_at = utcnow()
        invitation.accepted_user_id = user.id
        audit.record(
            self.session,
            invitee,
            AuditAction.INVITATION_ACCEPTED,
            account_id=invitation.account_id,
            target_type="invitation",
            target_id=invitation.id,
            target_label=invitation.email,
        )
        row, session_token = open_session(self.session, self.runtime, user, invitation.account_id, context, via=via)
        return Acceptance(user, invitation.account_id, row, session_token)

    # helpers

    def _sending_account(self, account_id: int) -> Account:
        account = self.session.get(Account, account_id)
        if account is None:
            raise NotFound(Reason.ACCOUNT_NOT_FOUND, f"Account {account_id} was not found.")
        if account.sending_paused:
            raise InvalidRequest(
                Reason.SENDING_PAUSED,
                "This account's sending is paused, so no invitation can be mailed. "
                "Nothing was sent; ask the operator to resume sending, then invite again.",
            )
        return account

    def _check_servers(self, account_id: int, access: dict[int, ServerAccess]) -> None:
        if not access:
            return
        found = set(
            self.session.scalars(select(Server.id).where(Server.account_id == account_id, Server.id.in_(list(access))))
        )
        for server_id in sorted(access):
            if server_id not in found:
                raise InvalidRequest(
                    Reason.SERVER_ACCESS_INVALID, f"Server {server_id} is not a server of this account."
                )

    def _pending(self, account_id: int, invitation_id: int) -> Invitation:
        invitation = self.session.get(Invitation, invitation_id)
        if invitation is None or invitation.account_id != account_id or invitation.accepted_at is not None:
            raise NotFound(Reason.INVITATION_NOT_FOUND, f"Invitation {invitation_id} was not found.")
        return invitation

    def _send(self, account: Account, invitation: Invitation) -> None:
        """A new link for ``invitation`` (replacing any earlier one), mailed now."""
        lifetime = timedelta(days=self.runtime.settings.invitation_lifetime_days)
        plaintext = secrets.token_hex(32)
        invitation.token_digest = self.runtime.keyring.digest(plaintext)
        invitation.sent_at = utcnow()
        invitation.expires_at = utcnow() + lifetime
        link = f"{self.runtime.settings.public_url.rstrip('/')}/console/invitations/accept/{plaintext}"
        body = (
            f'{invitation.invited_by} invites you to join the account "{account.name}" on postwarden '
            f"as {invitation.role}.\n\n"
            f"Open this link within {lifetime.days} days to accept, choosing a name and password "
            f"(or with the password of the login you already have):\n\n{link}\n\n"
            "If you did not expect this invitation, you can ignore this message.\n"
        )
        MailService(self.session, self.runtime.settings, self.enqueue).queue(
            to_address=invitation.email,
            subject=f"You are invited to join {account.name} on postwarden",
            text_body=body,
            account_id=account.id,
        )
