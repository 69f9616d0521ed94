"""Forgotten passwords: a single-use link, valid for an hour, mailed to the login's address.

Asking for a link answers the same whether or not the address has a login, and does the
same work in both cases (an audit event on the chain of no account), so neither the answer
nor its timing tells who has one. The requests are counted from those events: beyond a few
per address, or more per IP, in ``THROTTLE_WINDOW``, nothing more is mailed, still without
saying so. The link proves only that its holder reads the mailbox: following it sets a new
password and ends every session of the user, and opens none. Signing in afterwards still
asks for the second factor of a user who has one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, cast

from sqlalchemy import CursorResult, delete, func, select, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction, AuditEvent
from postwarden.db import on_commit, utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor, Credential, RequestContext, Via
from postwarden.mail.service import MailService
from postwarden.runtime import Runtime
from postwarden.users.models import PasswordReset, User, UserSession
from postwarden.users.passwords import hash_password
from postwarden.users.service import check_password, normalize_email

LINK_LIFETIME: Final = timedelta(hours=1)
THROTTLE_WINDOW: Final = timedelta(minutes=15)
MAX_REQUESTS_PER_ADDRESS: Final = 3
MAX_REQUESTS_PER_IP: Final = 10
#: Where the console shows the form a link opens, under ``Settings.public_url``.
LINK_PATH: Final = "/console/reset-password/"


def _link_invalid() -> NotFound:
    return NotFound(
        Reason.PASSWORD_RESET_LINK_INVALID,
        "This link is not valid: it was already used, or a newer one was sent since. Ask for a new one.",
    )


class PasswordResetService:
    """For someone who holds nothing but an address, then a mailed link: no actor is given,
    the service records the events as the person the address or link names."""

    def __init__(
        self,
        session: Session,
        runtime: Runtime,
        context: RequestContext,
        enqueue_mail: Callable[[int], None],
        *,
        via: Via = Via.API,
    ) -> None:
        self.session = session
        self.runtime = runtime
        self.context = context
        self.enqueue_mail = enqueue_mail
        self.via = via

    def request(self, email: str) -> None:
        """Mails a new link when ``email`` is a login's address; otherwise does as much work
        and mails nothing. Returns nothing either way: the caller cannot tell the cases apart."""
        try:
            address = normalize_email(email)
        except InvalidRequest:
            return  # no login has such an address, and whoever typed it knows it is none
        if self._throttled(address):
            return
        user = self.session.scalar(select(User).where(User.email == address))
        if user is not None:
            # One live link per person: an earlier one stops working when a new one is sent.
            self.session.execute(
                delete(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
            )
            plaintext = secrets.token_hex(32)
            self.session.add(
                PasswordReset(
                    user_id=user.id,
                    token_digest=self.runtime.keyring.digest(plaintext),
                    requested_ip=self.context.ip[:64],
                    expires_at=utcnow() + LINK_LIFETIME,
                )
            )
            self._mail(user, plaintext)
        # Unknown addresses are recorded too (target id empty, as for failed sign-ins): the
        # same write in both cases, and the throttle counts what one IP tries.
        audit.record(
            self.session,
            self._actor(user, address),
            AuditAction.USER_PASSWORD_RESET_REQUESTED,
            account_id=None,
            target_type="user",
            target_id=user.id if user else "",
            target_label=address,
        )

    def check(self, token: str) -> str:
        """The address of the login a link resets, for the form it opens; refuses links that
        are unknown, used, replaced or expired."""
        _, user = self._find(token)
        return user.email

    def reset(self, token: str, new_password: str) -> User:
        """Sets the password and ends every session of the user; opens none (signing in with
        the new password still asks for the second factor, if any)."""
        link, user = self._find(token, lock=True)
        check_password(new_password)
        now = utcnow()
        user.password_hash = hash_password(new_password)
        link.used_at = now
        self.session.execute(
            delete(PasswordReset).where(
                PasswordReset.user_id == user.id, PasswordReset.id != link.id, PasswordReset.used_at.is_(None)
            )
        )
        ended = self.session.execute(
            update(UserSession)
            .where(UserSession.user_id == user.id, UserSession.revoked_at.is_(None), UserSession.expires_at > now)
            .values(revoked_at=now)
        )
        user_id = user.id
        on_commit(self.session, lambda: self.runtime.cache.invalidate_user(user_id))
        audit.record(
            self.session,
            self._actor(user, user.email),
            AuditAction.USER_PASSWORD_RESET,
            account_id=None,
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            changes={"sessions_ended": cast(CursorResult[Any], ended).rowcount},
        )
        return user

    # helpers

    def _find(self, token: str, *, lock: bool = False) -> tuple[PasswordReset, User]:
        query = select(PasswordReset).where(PasswordReset.token_digest == self.runtime.keyring.digest(token))
        # Locked while resetting: of two uses at once, the second finds the link used.
        link = self.session.scalar(query.with_for_update() if lock else query)
        if link is None or link.used_at is not None:
            raise _link_invalid()
        if link.expires_at <= utcnow():
            raise InvalidRequest(
                Reason.PASSWORD_RESET_LINK_EXPIRED,
                f"This link has expired: links work for {_lifetime()}. Ask for a new one.",
            )
        user = self.session.get(User, link.user_id)
        if user is None:  # pragma: no cover - links are deleted with their user
            raise _link_invalid()
        return link, user

    def _throttled(self, address: str) -> bool:
        since = utcnow() - THROTTLE_WINDOW
        recent = select(func.count()).where(
            AuditEvent.action == AuditAction.USER_PASSWORD_RESET_REQUESTED.value, AuditEvent.occurred_at > since
        )
        if (self.session.scalar(recent.where(AuditEvent.target_label == address)) or 0) >= MAX_REQUESTS_PER_ADDRESS:
            return True
        if not self.context.ip:
            return False
        return (self.session.scalar(recent.where(AuditEvent.ip == self.context.ip)) or 0) >= MAX_REQUESTS_PER_IP

    def _mail(self, user: User, plaintext: str) -> None:
        # The login belongs to no one account, so the message is the installation's own (no
        # account id): an account's paused sending does not lock its members out of their login.
        link = f"{self.runtime.settings.public_url.rstrip('/')}{LINK_PATH}{plaintext}"
        body = (
            f"Someone asked to reset the password of the postwarden login {user.email}.\n\n"
            f"To choose a new password, open this link within {_lifetime()}:\n\n{link}\n\n"
            "The link works once. Setting a new password signs you out everywhere; "
            "sign in again with it (and your two-factor code, if you use one).\n\n"
            "If you did not ask for this, ignore this message: your password stays as it is.\n"
        )
        MailService(self.session, self.runtime.settings, self.enqueue_mail).queue(
            to_address=user.email, subject="Reset your postwarden password", text_body=body
        )

    def _actor(self, user: User | None, address: str) -> Actor:
        """The person the address or link names, proven by nothing more (like an invitee)."""
        return Actor(
            credential=Credential.SESSION,
            label=user.email if user else address,
            via=self.via,
            user_id=user.id if user else None,
            context=self.context,
        )


def _lifetime() -> str:
    hours = int(LINK_LIFETIME.total_seconds() // 3600)
    return "1 hour" if hours == 1 else f"{hours} hours"
