"""Signing in with email, password and (when set up) a second factor; sessions.

Failed attempts are audit events (``user.login_failed``), and the same events throttle:
too many recent failures for one address, or from one IP, refuse even a right password
until the window passes. Being rows in the database, the count holds across processes.
A failure must outlive the request it fails, so ``sign_in`` returns it instead of raising:
the edge commits, then answers with the refusal.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction, AuditEvent
from postwarden.db import on_commit, utcnow
from postwarden.errors import NotAuthenticated, PermissionDenied, PostwardenError, Reason
from postwarden.identity import Actor, Credential, RequestContext, Via
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.tokens.sightings import remember_address
from postwarden.users.models import Membership, User, UserSession
from postwarden.users.passwords import hash_password, verify_password
from postwarden.users.two_factor import accepted_step, use_recovery_code

SESSION_PREFIX: Final = "pws_"
THROTTLE_WINDOW: Final = timedelta(minutes=15)
MAX_FAILURES_PER_ADDRESS: Final = 5
MAX_FAILURES_PER_IP: Final = 20
#: Sensitive console actions ask for the password again when it was last typed longer ago.
PASSWORD_CONFIRMATION_LIFETIME: Final = timedelta(minutes=15)


@functools.cache
def _decoy_hash() -> str:
    """Verified when the address is unknown, so both cases take the time of one hash.
    Made on first need: hashing at import would cost every command a second and 64 MiB."""
    return hash_password("postwarden decoy password")


@dataclass(frozen=True)
class SignIn:
    """Either a new session (its token shown once) or the refusal to answer with."""

    session_token: str | None = None
    session: UserSession | None = None
    refusal: PostwardenError | None = None
    #: The user whose password was right and whose second factor is awaited (``finish_two_factor``).
    awaiting_second_factor: int | None = None


def open_session(
    session: Session, runtime: Runtime, user: User, account_id: int, context: RequestContext, *, via: Via = Via.API
) -> tuple[UserSession, str]:
    """A new session of ``user`` in one account (the caller checked the membership)."""
    plaintext = SESSION_PREFIX + secrets.token_hex(32)
    row = UserSession(
        user_id=user.id,
        account_id=account_id,
        secret_digest=runtime.keyring.digest(plaintext),
        ip=context.ip[:64],
        user_agent=context.user_agent[:512],
        expires_at=utcnow() + timedelta(hours=runtime.settings.session_lifetime_hours),
    )
    session.add(row)
    session.flush()  # assigns row.id for the audit row
    # The session is first used from where it was opened: no "new address" event for that.
    remember_address(session, Credential.SESSION, row.id, context.ip)
    user.last_login_at = utcnow()
    actor = Actor(
        credential=Credential.SESSION,
        label=user.email,
        via=via,
        account_id=account_id,
        user_id=user.id,
        token_id=row.id,
        context=context,
    )
    audit.record(
        session,
        actor,
        AuditAction.SESSION_CREATED,
        account_id=account_id,
        target_type="user",
        target_id=user.id,
        target_label=user.email,
        changes={"expires_at": {"before": None, "after": row.expires_at.isoformat()}},
    )
    return row, plaintext


def _throttled() -> SignIn:
    return SignIn(
        refusal=PostwardenError(
            Reason.LOGIN_THROTTLED,
            f"Too many failed sign-ins. Try again in {int(THROTTLE_WINDOW.total_seconds() // 60)} minutes.",
        )
    )


class SignInService:
    def __init__(self, session: Session, runtime: Runtime, context: RequestContext, *, via: Via = Via.API) -> None:
        self.session = session
        self.runtime = runtime
        self.context = context
        self.via = via

    def sign_in(
        self,
        email: str,
        password: str,
        *,
        code: str | None = None,
        recovery_code: str | None = None,
        account_id: int | None = None,
    ) -> SignIn:
        address = email.strip().lower()
        if self._throttled(address):
            return _throttled()
        user = self.session.scalar(select(User).where(User.email == address))
        if not verify_password(password, user.password_hash if user else _decoy_hash()) or user is None:
            return self._failed(address, None, "wrong email or password")
        if user.totp_enabled_at is not None:
            if not code and not recovery_code:
                return SignIn(
                    refusal=NotAuthenticated(
                        Reason.TWO_FACTOR_CODE_NEEDED,
                        "This user has two-factor authentication: send 'Code' from the authenticator app "
                        "(or a 'RecoveryCode').",
                    ),
                    awaiting_second_factor=user.id,
                )
            if not self._second_factor(user, code, recovery_code):
                return self._failed(address, user, "wrong two-factor code")
        return self._open(user, account_id)

    def finish_two_factor(
        self, user_id: int, *, code: str | None, recovery_code: str | None, account_id: int | None = None
    ) -> SignIn:
        """The second step of a sign-in in two requests (the console): the password was
        checked by ``sign_in``, whose caller kept the user's id in a signed, short-lived form."""
        user = self.session.get(User, user_id)
        if user is None or user.totp_enabled_at is None:
            return self._failed("", user, "no two-factor sign-in under way")
        if self._throttled(user.email):
            return _throttled()
        if not self._second_factor(user, code, recovery_code):
            return self._failed(user.email, user, "wrong two-factor code")
        return self._open(user, account_id)

    def confirm_password(self, actor: Actor, password: str) -> PostwardenError | None:
        """The signed-in person types their password again before a sensitive action.

        A wrong password is a failed sign-in (recorded, and counted by the throttle); the refusal
        is returned, not raised, so that the edge commits the record. A right one is recorded too."""
        require(actor, Permission.PROFILE_MANAGE, account_id=actor.account_id)
        user = self.session.get(User, actor.user_id) if actor.user_id is not None else None
        if actor.credential is not Credential.SESSION or actor.token_id is None or user is None:
            return PermissionDenied(Reason.NOT_ALLOWED, "Only a signed-in person can confirm their password.")
        if self._throttled(user.email):
            return _throttled().refusal
        if not verify_password(password, user.password_hash):
            self._failed(user.email, user, "wrong password when confirming it")
            return NotAuthenticated(Reason.LOGIN_FAILED, "That is not your password.")
        self.session.execute(
            update(UserSession).where(UserSession.id == actor.token_id).values(password_confirmed_at=utcnow())
        )
        audit.record(
            self.session,
            actor,
            AuditAction.SESSION_PASSWORD_CONFIRMED,
            account_id=actor.account_id,
            target_type="user",
            target_id=user.id,
            target_label=user.email,
        )
        return None

    def switch_account(self, actor: Actor, account_id: int) -> str:
        """A signed-in person moves to another of their accounts: a session there replaces
        this one (both recorded). Their second factor was checked when this one opened."""
        require(actor, Permission.SESSIONS_END, account_id=actor.account_id)
        user = self.session.get(User, actor.user_id) if actor.user_id is not None else None
        member = self.session.scalar(
            select(Membership.id).where(
                Membership.account_id == account_id,
                Membership.user_id == actor.user_id,
                Membership.suspended_at.is_(None),
            )
        )
        if actor.credential is not Credential.SESSION or user is None or member is None:
            raise PermissionDenied(Reason.NOT_ALLOWED, "You are not a member of that account.")
        sign_out(self.session, self.runtime, actor)
        _row, token = open_session(self.session, self.runtime, user, account_id, self.context, via=self.via)
        return token

    def _open(self, user: User, account_id: int | None) -> SignIn:
        memberships = {
            m.account_id: m
            for m in self.session.scalars(
                select(Membership).where(Membership.user_id == user.id, Membership.suspended_at.is_(None))
            )
        }
        chosen = account_id if account_id is not None else min(memberships, default=None)
        if chosen is None or chosen not in memberships:
            return self._failed(user.email, user, "not a member of the requested account")
        row, token = open_session(self.session, self.runtime, user, chosen, self.context, via=self.via)
        return SignIn(session_token=token, session=row)

    def _second_factor(self, user: User, code: str | None, recovery_code: str | None) -> bool:
        if code:
            assert user.totp_secret_encrypted is not None
            step = accepted_step(self.runtime.keyring.decrypt(user.totp_secret_encrypted), code, user.totp_last_step)
            if step is None:
                return False
            user.totp_last_step = step
            return True
        if recovery_code and use_recovery_code(self.session, self.runtime, user, recovery_code):
            audit.record(
                self.session,
                self._actor(user),
                AuditAction.USER_RECOVERY_CODE_USED,
                account_id=None,
                target_type="user",
                target_id=user.id,
                target_label=user.email,
            )
            return True
        return False

    def _throttled(self, address: str) -> bool:
        since = utcnow() - THROTTLE_WINDOW
        recent = select(func.count()).where(
            AuditEvent.action == AuditAction.USER_LOGIN_FAILED.value, AuditEvent.occurred_at > since
        )
        by_address = self.session.scalar(recent.where(AuditEvent.target_label == address)) or 0
        if by_address >= MAX_FAILURES_PER_ADDRESS:
            return True
        if not self.context.ip:
            return False
        return (self.session.scalar(recent.where(AuditEvent.ip == self.context.ip)) or 0) >= MAX_FAILURES_PER_IP

    def _failed(self, address: str, user: User | None, why: str) -> SignIn:
        audit.record(
            self.session,
            self._actor(user, address),
            AuditAction.USER_LOGIN_FAILED,
            account_id=None,
            target_type="user",
            target_id=user.id if user else "",
            target_label=address[:320],
            changes={"reason": why},
        )
        return SignIn(
            refusal=NotAuthenticated(
                Reason.LOGIN_FAILED,
                "Sign-in failed: wrong email, password or code, or no membership in that account.",
            )
        )

    def _actor(self, user: User | None, address: str = "") -> Actor:
        return Actor(
            credential=Credential.SESSION,
            label=user.email if user else address[:320],
            via=self.via,
            user_id=user.id if user else None,
            context=self.context,
        )


def sign_out(session: Session, runtime: Runtime, actor: Actor) -> None:
    """Ends the session the actor is signed in with."""
    require(actor, Permission.SESSIONS_END, account_id=actor.account_id)
    if actor.credential is not Credential.SESSION or actor.token_id is None:
        return
    session.execute(update(UserSession).where(UserSession.id == actor.token_id).values(revoked_at=utcnow()))
    audit.record(
        session,
        actor,
        AuditAction.SESSION_REVOKED,
        account_id=actor.account_id,
        target_type="user",
        target_id=actor.user_id or "",
        target_label=actor.label,
    )
    user_id = actor.user_id or 0
    on_commit(session, lambda: runtime.cache.invalidate_user(user_id))


def password_confirmed_lately(session: Session, actor: Actor) -> bool:
    """Whether the actor's session had its password typed within ``PASSWORD_CONFIRMATION_LIFETIME``."""
    if actor.credential is not Credential.SESSION or actor.token_id is None:
        return False
    confirmed = session.scalar(select(UserSession.password_confirmed_at).where(UserSession.id == actor.token_id))
    return confirmed is not None and confirmed > utcnow() - PASSWORD_CONFIRMATION_LIFETIME
