"""SCIM tokens: the bearer credential an identity provider holds for ``/scim/v2`` of one
account. Created and revoked by the Owner or an Admin; shown once; only a keyed digest is kept."""

from __future__ import annotations

import secrets
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.accounts.models import Account
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.tokens.models import ScimToken

PREFIX: Final = "pwscim_"
NAME_MAX_LENGTH: Final = 100


class ScimTokenService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    def create_token(self, account_id: int, name: str) -> tuple[ScimToken, str]:
        require(self.actor, Permission.SCIM_MANAGE, account_id=account_id)
        if self.session.get(Account, account_id) is None:
            raise NotFound(Reason.ACCOUNT_NOT_FOUND, f"Account {account_id} was not found.")
        name = name.strip()
        if not name or len(name) > NAME_MAX_LENGTH:
            raise InvalidRequest(Reason.SCIM_TOKEN_FIELD_INVALID, f"'Name' must be 1 to {NAME_MAX_LENGTH} characters.")
        # Hex: the lookup digest ignores case, and hex loses nothing by it.
        plaintext = PREFIX + secrets.token_hex(32)
        token = ScimToken(account_id=account_id, name=name, secret_digest=self.runtime.keyring.digest(plaintext))
        self.session.add(token)
        self.session.flush()  # assigns token.id for the audit row
        audit.record(
            self.session,
            self.actor,
            AuditAction.SCIM_TOKEN_CREATED,
            account_id=account_id,
            target_type="scim_token",
            target_id=token.id,
            target_label=name,
        )
        return token, plaintext

    def list_tokens(self, account_id: int) -> list[ScimToken]:
        require(self.actor, Permission.SCIM_MANAGE, account_id=account_id)
        return list(
            self.session.scalars(
                select(ScimToken)
                .where(ScimToken.account_id == account_id, ScimToken.revoked_at.is_(None))
                .order_by(ScimToken.id)
            )
        )

    def revoke_token(self, account_id: int, token_id: int) -> ScimToken:
        require(self.actor, Permission.SCIM_MANAGE, account_id=account_id)
        token = self.session.get(ScimToken, token_id)
        if token is None or token.revoked_at is not None or token.account_id != account_id:
            raise NotFound(Reason.SCIM_TOKEN_NOT_FOUND, f"SCIM token {token_id} was not found.")
        token.revoked_at = utcnow()
        audit.record(
            self.session,
            self.actor,
            AuditAction.SCIM_TOKEN_REVOKED,
            account_id=account_id,
            target_type="scim_token",
            target_id=token.id,
            target_label=token.name,
        )
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))
        return token


def touch(session: Session, token_id: int) -> None:
    """Bookkeeping, not a change anyone makes: when the identity provider last called."""
    session.execute(update(ScimToken).where(ScimToken.id == token_id).values(last_used_at=utcnow()))
