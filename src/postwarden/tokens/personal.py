"""Personal API tokens: a user's own credential in one account, optionally narrowed to
some permissions, some servers and an expiry. Shown once; only a keyed digest is kept."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import on_commit, utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.tokens.models import PersonalToken

PREFIX: Final = "pw_"
NAME_MAX_LENGTH: Final = 100
#: How long after the last write a token's ``last_used_at`` is written again.
LAST_USED_RESOLUTION_SECONDS: Final = 60


def new_personal_token() -> str:
    # Hex: the lookup digest ignores case, and hex loses nothing by it.
    return PREFIX + secrets.token_hex(32)


@dataclass(frozen=True)
class NewPersonalToken:
    name: str
    expires_at: datetime | None = None
    scopes: list[str] | None = None
    server_ids: list[int] | None = None


class PersonalTokenService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    def create_token(self, account_id: int, given: NewPersonalToken) -> tuple[PersonalToken, str]:
        require(self.actor, Permission.PROFILE_MANAGE, account_id=account_id)
        assert self.actor.user_id is not None  # the profile permissions reach only people's credentials
        name = given.name.strip()
        if not name or len(name) > NAME_MAX_LENGTH:
            raise InvalidRequest(
                Reason.PERSONAL_TOKEN_FIELD_INVALID, f"'Name' must be 1 to {NAME_MAX_LENGTH} characters."
            )
        if given.expires_at is not None and given.expires_at <= utcnow():
            raise InvalidRequest(Reason.PERSONAL_TOKEN_FIELD_INVALID, "'ExpiresAt' must be in the future.")
        scopes = self._scopes(given.scopes)
        server_ids = self._servers(account_id, given.server_ids)
        plaintext = new_personal_token()
        token = PersonalToken(
            user_id=self.actor.user_id,
            account_id=account_id,
            name=name,
            secret_digest=self.runtime.keyring.digest(plaintext),
            scopes=scopes,
            server_ids=server_ids,
            expires_at=given.expires_at,
        )
        self.session.add(token)
        self.session.flush()  # assigns token.id for the audit row
        audit.record(
            self.session,
            self.actor,
            AuditAction.PERSONAL_TOKEN_CREATED,
            account_id=account_id,
            target_type="personal_token",
            target_id=token.id,
            target_label=name,
            changes={
                "scopes": {"before": None, "after": scopes},
                "server_ids": {"before": None, "after": server_ids},
                "expires_at": {"before": None, "after": given.expires_at.isoformat() if given.expires_at else None},
            },
        )
        return token, plaintext

    def list_tokens(self, account_id: int) -> list[PersonalToken]:
        """The caller's own live tokens in this account."""
        require(self.actor, Permission.PROFILE_READ, account_id=account_id)
        return list(
            self.session.scalars(
                select(PersonalToken)
                .where(
                    PersonalToken.account_id == account_id,
                    PersonalToken.user_id == self.actor.user_id,
                    PersonalToken.revoked_at.is_(None),
                )
                .order_by(PersonalToken.id)
            )
        )

    def revoke_token(self, account_id: int, token_id: int) -> PersonalToken:
        require(self.actor, Permission.PROFILE_MANAGE, account_id=account_id)
        token = self.session.get(PersonalToken, token_id)
        if (
            token is None
            or token.revoked_at is not None
            or token.account_id != account_id
            or token.user_id != self.actor.user_id
        ):
            raise NotFound(Reason.PERSONAL_TOKEN_NOT_FOUND, f"Personal token {token_id} was not found.")
        token.revoked_at = utcnow()
        audit.record(
            self.session,
            self.actor,
            AuditAction.PERSONAL_TOKEN_REVOKED,
            account_id=account_id,
            target_type="personal_token",
            target_id=token.id,
            target_label=token.name,
        )
        on_commit(self.session, lambda: self.runtime.cache.invalidate_account(account_id))
        return token

    def _scopes(self, requested: list[str] | None) -> list[str] | None:
        """Known permission names, never wider than the credential creating the token."""
        if requested is None:
            if self.actor.scopes is not None:
                return sorted(self.actor.scopes)
            return None
        known = {permission.value for permission in Permission}
        scopes = sorted({scope.strip().lower() for scope in requested})
        for scope in scopes:
            if scope not in known:
                raise InvalidRequest(
                    Reason.PERSONAL_TOKEN_FIELD_INVALID,
                    f"Unknown scope '{scope}'. Scopes are permission names, as docs/permissions.md lists them.",
                )
            if self.actor.scopes is not None and scope not in self.actor.scopes:
                raise InvalidRequest(
                    Reason.PERSONAL_TOKEN_FIELD_INVALID,
                    f"The scope '{scope}' is wider than the token creating it.",
                )
        if not scopes:
            raise InvalidRequest(Reason.PERSONAL_TOKEN_FIELD_INVALID, "'Scopes', when given, must name at least one.")
        return scopes

    def _servers(self, account_id: int, requested: list[int] | None) -> list[int] | None:
        if requested is None:
            return sorted(self.actor.token_servers) if self.actor.token_servers is not None else None
        wanted = sorted(set(requested))
        if not wanted:
            raise InvalidRequest(
                Reason.PERSONAL_TOKEN_FIELD_INVALID, "'ServerIDs', when given, must name at least one server."
            )
        found = set(
            self.session.scalars(select(Server.id).where(Server.account_id == account_id, Server.id.in_(wanted)))
        )
        for server_id in wanted:
            if server_id not in found:
                raise InvalidRequest(
                    Reason.PERSONAL_TOKEN_FIELD_INVALID, f"Server {server_id} is not a server of this account."
                )
            if self.actor.token_servers is not None and server_id not in self.actor.token_servers:
                raise InvalidRequest(
                    Reason.PERSONAL_TOKEN_FIELD_INVALID, f"Server {server_id} is beyond the token creating it."
                )
        return wanted


def touch(session: Session, token_id: int, ip: str) -> None:
    """Bookkeeping, not a change anyone makes: when and from where a token was last used."""
    session.execute(
        update(PersonalToken).where(PersonalToken.id == token_id).values(last_used_at=utcnow(), last_used_ip=ip)
    )
