"""Users and their memberships; the team issue grows this into the full people API."""

from __future__ import annotations

import re
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.errors import Conflict, InvalidRequest, Reason
from postwarden.identity import Actor
from postwarden.policy import Role
from postwarden.users.models import Membership, User
from postwarden.users.passwords import MIN_PASSWORD_LENGTH, hash_password

_EMAIL_RE: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    address = email.strip().lower()
    if len(address) > 320 or not _EMAIL_RE.match(address):
        raise InvalidRequest(Reason.USER_EMAIL_INVALID, f"'{email}' is not a valid email address.")
    return address


class UserService:
    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    def find_user_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email.strip().lower()))

    def create_user(self, email: str, password: str, *, name: str = "") -> User:
        address = normalize_email(email)
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidRequest(
                Reason.PASSWORD_TOO_SHORT, f"The password must have at least {MIN_PASSWORD_LENGTH} characters."
            )
        if self.find_user_by_email(address) is not None:
            raise Conflict(Reason.USER_EMAIL_TAKEN, f"A user with the email {address} already exists.")
        user = User(email=address, name=name, password_hash=hash_password(password))
        self.session.add(user)
        self.session.flush()  # assigns user.id for the audit row
        audit.record(
            self.session,
            self.actor,
            AuditAction.USER_CREATED,
            account_id=None,
            target_type="user",
            target_id=user.id,
            target_label=address,
            changes={"email": {"before": None, "after": address}, "password": "set"},
        )
        return user

    def add_membership(self, account_id: int, user: User, role: Role) -> Membership:
        membership = Membership(account_id=account_id, user_id=user.id, role=role.value)
        self.session.add(membership)
        self.session.flush()  # assigns membership.id for the audit row
        audit.record(
            self.session,
            self.actor,
            AuditAction.MEMBERSHIP_CREATED,
            account_id=account_id,
            target_type="user",
            target_id=user.id,
            target_label=user.email,
            changes={"role": {"before": None, "after": role.value}},
        )
        return membership
