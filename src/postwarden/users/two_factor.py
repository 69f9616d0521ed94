"""TOTP (RFC 6238) second factor and single-use recovery codes.

A code is accepted once: the time step it belongs to is remembered, and a code of that
step or an earlier one is refused, so a code seen over a shoulder cannot be replayed.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Final

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.users.models import RecoveryCode, User
from postwarden.users.passwords import verify_password

ISSUER: Final = "postwarden"
RECOVERY_CODE_COUNT: Final = 10
#: Codes of the previous and next 30-second step are accepted too (clock drift).
VALID_WINDOW: Final = 1


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    #: The otpauth URI as a QR code: an SVG ``data:`` URI an ``<img>`` can show.
    qr_data_uri: str


def new_recovery_code() -> str:
    raw = secrets.token_hex(5)
    return f"{raw[:5]}-{raw[5:]}"


def accepted_step(secret: str, code: str, last_step: int | None, *, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to, if it is valid and newer than ``last_step``."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // totp.interval)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step if last_step is None or step > last_step else None
    return None


class TwoFactorService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    def start_enrolment(self, account_id: int, *, reuse_pending: bool = False) -> Enrolment:
        """A new secret, in force only once a code from it is confirmed. ``reuse_pending`` keeps
        a secret started earlier and not confirmed yet (a page reloaded after scanning it)."""
        require(self.actor, Permission.TWO_FACTOR_ENROL, account_id=account_id)
        user = self._user()
        if user.totp_enabled_at is not None:
            raise InvalidRequest(
                Reason.TWO_FACTOR_ALREADY_ENABLED, "Two-factor authentication is already set up for this user."
            )
        if reuse_pending and user.totp_secret_encrypted is not None:
            secret = self.runtime.keyring.decrypt(user.totp_secret_encrypted)
        else:
            secret = pyotp.random_base32()
            user.totp_secret_encrypted = self.runtime.keyring.encrypt(secret)
            user.totp_last_step = None  # steps used with an earlier secret say nothing of this one
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
        return Enrolment(secret, uri, segno.make(uri, error="m").svg_data_uri(scale=4))

    def confirm_enrolment(self, account_id: int, code: str) -> list[str]:
        """Turns the second factor on; returns the recovery codes, shown this once."""
        require(self.actor, Permission.TWO_FACTOR_ENROL, account_id=account_id)
        user = self._user()
        if user.totp_enabled_at is not None:
            raise InvalidRequest(
                Reason.TWO_FACTOR_ALREADY_ENABLED, "Two-factor authentication is already set up for this user."
            )
        if user.totp_secret_encrypted is None:
            raise InvalidRequest(
                Reason.TWO_FACTOR_NOT_STARTED, "Start enrolment first (POST /me/two-factor), then confirm a code."
            )
        step = accepted_step(self.runtime.keyring.decrypt(user.totp_secret_encrypted), code, user.totp_last_step)
        if step is None:
            raise InvalidRequest(
                Reason.TWO_FACTOR_CODE_INVALID, "That code is not valid. Enter the current 6-digit code from your app."
            )
        user.totp_last_step = step
        user.totp_enabled_at = utcnow()
        codes = self._replace_recovery_codes(user)
        audit.record(
            self.session,
            self.actor,
            AuditAction.USER_TWO_FACTOR_ENABLED,
            account_id=account_id,
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            changes={"two_factor": {"before": False, "after": True}, "recovery_codes": "issued"},
        )
        user_id = user.id
        on_commit(self.session, lambda: self.runtime.cache.invalidate_user(user_id))
        return codes

    def disable(self, account_id: int, password: str) -> None:
        """Turns the second factor off (a lost phone: sign in with a recovery code, turn it
        off, enrol the new one). The password is asked again."""
        require(self.actor, Permission.TWO_FACTOR_ENROL, account_id=account_id)
        user = self._user()
        if user.totp_enabled_at is None:
            raise InvalidRequest(Reason.TWO_FACTOR_NOT_STARTED, "Two-factor authentication is not set up.")
        if not verify_password(password, user.password_hash):
            raise InvalidRequest(Reason.PASSWORD_WRONG, "The password is wrong; two-factor authentication stays on.")
        user.totp_secret_encrypted = None
        user.totp_enabled_at = None
        user.totp_last_step = None
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        audit.record(
            self.session,
            self.actor,
            AuditAction.USER_TWO_FACTOR_DISABLED,
            account_id=account_id,
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            changes={"two_factor": {"before": True, "after": False}, "recovery_codes": "deleted"},
        )
        user_id = user.id
        on_commit(self.session, lambda: self.runtime.cache.invalidate_user(user_id))

    def _replace_recovery_codes(self, user: User) -> list[str]:
        self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
        codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        for code in codes:
            self.session.add(RecoveryCode(user_id=user.id, code_digest=self.runtime.keyring.digest(code)))
        return codes

    def _user(self) -> User:
        user = self.session.get(User, self.actor.user_id) if self.actor.user_id is not None else None
        if user is None:
            raise NotFound(Reason.USER_NOT_FOUND, "The signed-in user no longer exists.")
        return user


def use_recovery_code(session: Session, runtime: Runtime, user: User, code: str) -> bool:
    """Spends one recovery code of ``user``; False when it is unknown or already spent."""
    digest = runtime.keyring.digest(code.strip())
    row = session.scalar(
        select(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_digest == digest, RecoveryCode.used_at.is_(None))
        .with_for_update()
    )
    if row is None:
        return False
    row.used_at = utcnow()
    return True
