"""Issuing, showing, rotating and resolving account and server tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.cache import Principal
from postwarden.db import on_commit, utcnow
from postwarden.errors import NotFound, Reason
from postwarden.identity import Actor, Credential
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.tokens.models import AccountToken, PersonalToken, ScimToken, ServerToken
from postwarden.tokens.personal import PREFIX as PERSONAL_PREFIX
from postwarden.tokens.scim import PREFIX as SCIM_PREFIX
from postwarden.tokens.secrets import new_api_token
from postwarden.users.models import User, UserSession
from postwarden.users.service import member_grants
from postwarden.users.sign_in import SESSION_PREFIX


class TokenService:
    def __init__(self, session: Session, runtime: Runtime) -> None:
        self.session = session
        self.keyring = runtime.keyring
        self.cache = runtime.cache

    def issue_account_token(
        self, account_id: int, name: str, *, can_delete_servers: bool = False
    ) -> tuple[AccountToken, str]:
        plaintext = new_api_token()
        token = AccountToken(
            account_id=account_id,
            name=name,
            secret_encrypted=self.keyring.encrypt(plaintext),
            secret_digest=self.keyring.digest(plaintext),
            can_delete_servers=can_delete_servers,
        )
        self.session.add(token)
        self.session.flush()  # assigns token.id for the audit row
        return token, plaintext

    def issue_server_token(self, server_id: int) -> str:
        plaintext = new_api_token()
        self.session.add(
            ServerToken(
                server_id=server_id,
                secret_encrypted=self.keyring.encrypt(plaintext),
                secret_digest=self.keyring.digest(plaintext),
            )
        )
        return plaintext

    def server_tokens(self, server_id: int) -> list[str]:
        rows = self.session.scalars(
            select(ServerToken)
            .where(ServerToken.server_id == server_id, ServerToken.revoked_at.is_(None))
            .order_by(ServerToken.id)
        )
        return [self.keyring.decrypt(row.secret_encrypted) for row in rows]

    def server_tokens_by_server(self, server_ids: list[int]) -> dict[int, list[str]]:
        tokens: dict[int, list[str]] = {server_id: [] for server_id in server_ids}
        if not server_ids:
            return tokens
        rows = self.session.execute(
            select(ServerToken.server_id, ServerToken.secret_encrypted)
            .where(ServerToken.server_id.in_(server_ids), ServerToken.revoked_at.is_(None))
            .order_by(ServerToken.id)
        )
        for server_id, encrypted in rows:
            tokens[server_id].append(self.keyring.decrypt(encrypted))
        return tokens

    def account_tokens(self, actor: Actor, account_id: int) -> list[AccountToken]:
        """The account's live tokens, for those who manage them (no secret: see ``reveal_account_token``)."""
        require(actor, Permission.ACCOUNT_TOKENS_MANAGE, account_id=account_id)
        return list(
            self.session.scalars(
                select(AccountToken)
                .where(AccountToken.account_id == account_id, AccountToken.revoked_at.is_(None))
                .order_by(AccountToken.id)
            )
        )

    def get_account_token(self, token_id: int) -> AccountToken:
        token = self.session.get(AccountToken, token_id)
        if token is None or token.revoked_at is not None:
            raise NotFound(Reason.ACCOUNT_TOKEN_NOT_FOUND, f"Account token {token_id} was not found.")
        return token

    def set_server_deletion(self, actor: Actor, token: AccountToken, *, enabled: bool) -> None:
        """Only someone who may delete servers can hand that power to a token."""
        require(actor, Permission.ACCOUNT_TOKENS_MANAGE, account_id=token.account_id)
        require(actor, Permission.SERVERS_DELETE, account_id=token.account_id)
        if token.can_delete_servers == enabled:
            return
        token.can_delete_servers = enabled
        audit.record(
            self.session,
            actor,
            AuditAction.ACCOUNT_TOKEN_UPDATED,
            account_id=token.account_id,
            target_type="account_token",
            target_id=token.id,
            target_label=token.name,
            changes={"can_delete_servers": {"before": not enabled, "after": enabled}},
        )
        on_commit(self.session, lambda: self.cache.invalidate_account(token.account_id))

    def reveal(self, token: AccountToken | ServerToken) -> str:
        return self.keyring.decrypt(token.secret_encrypted)

    def reveal_account_token(self, actor: Actor, token: AccountToken) -> str:
        """An account token in plain text; showing it is a security event."""
        require(actor, Permission.ACCOUNT_TOKENS_MANAGE, account_id=token.account_id)
        audit.record(
            self.session,
            actor,
            AuditAction.ACCOUNT_TOKEN_VIEWED,
            account_id=token.account_id,
            target_type="account_token",
            target_id=token.id,
            target_label=token.name,
        )
        return self.reveal(token)

    def rotate_server_tokens(self, actor: Actor, server_id: int, account_id: int, label: str) -> str:
        """Revoke every token of the server and issue one new one."""
        require(actor, Permission.SERVER_TOKENS_ROTATE, account_id=account_id, server_id=server_id)
        for row in self.session.scalars(
            select(ServerToken).where(ServerToken.server_id == server_id, ServerToken.revoked_at.is_(None))
        ):
            row.revoked_at = utcnow()
        plaintext = self.issue_server_token(server_id)
        audit.record(
            self.session,
            actor,
            AuditAction.SERVER_TOKEN_ROTATED,
            account_id=account_id,
            target_type="server",
            target_id=server_id,
            target_label=label,
        )
        on_commit(self.session, lambda: self.cache.invalidate_server(server_id))
        return plaintext

    def rotate_account_token(self, actor: Actor, token: AccountToken) -> str:
        require(actor, Permission.ACCOUNT_TOKENS_MANAGE, account_id=token.account_id)
        token.revoked_at = utcnow()
        _, plaintext = self.issue_account_token(
            token.account_id, token.name, can_delete_servers=token.can_delete_servers
        )
        audit.record(
            self.session,
            actor,
            AuditAction.ACCOUNT_TOKEN_ROTATED,
            account_id=token.account_id,
            target_type="account_token",
            target_id=token.id,
            target_label=token.name,
        )
        on_commit(self.session, lambda: self.cache.invalidate_account(token.account_id))
        return plaintext

    def find_principal(self, presented: str) -> Principal | None:
        """Resolve a presented token of any kind; None when unknown, revoked, expired or
        (for a person's credential) no longer a member."""
        digest = self.keyring.digest(presented)
        if presented.startswith(PERSONAL_PREFIX):
            return self._personal_principal(digest)
        if presented.startswith(SESSION_PREFIX):
            return self._session_principal(digest)
        if presented.startswith(SCIM_PREFIX):
            return self._scim_principal(digest)
        account_row = self.session.execute(
            select(AccountToken.id, AccountToken.account_id, AccountToken.can_delete_servers, AccountToken.name).where(
                AccountToken.secret_digest == digest, AccountToken.revoked_at.is_(None)
            )
        ).first()
        if account_row is not None:
            return Principal(
                kind=Credential.ACCOUNT_TOKEN.value,
                token_id=account_row.id,
                account_id=account_row.account_id,
                server_id=None,
                can_delete_servers=account_row.can_delete_servers,
                label=f"account token '{account_row.name}'",
            )
        server_row = self.session.execute(
            select(ServerToken.id, ServerToken.server_id, Server.account_id, Server.name)
            .join(Server, Server.id == ServerToken.server_id)
            .where(ServerToken.secret_digest == digest, ServerToken.revoked_at.is_(None))
        ).first()
        if server_row is not None:
            return Principal(
                kind=Credential.SERVER_TOKEN.value,
                token_id=server_row.id,
                account_id=server_row.account_id,
                server_id=server_row.server_id,
                can_delete_servers=False,
                label=f"server token of '{server_row.name}'",
            )
        return None

    def _personal_principal(self, digest: str) -> Principal | None:
        row = self.session.execute(
            select(PersonalToken, User.email)
            .join(User, User.id == PersonalToken.user_id)
            .where(PersonalToken.secret_digest == digest, PersonalToken.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        token, email = row
        return self._person_principal(
            Credential.PERSONAL_TOKEN,
            token.id,
            token.account_id,
            token.user_id,
            label=f"{email} (personal token '{token.name}')",
            expires_at=token.expires_at,
            scopes=frozenset(token.scopes) if token.scopes is not None else None,
            token_servers=frozenset(token.server_ids) if token.server_ids is not None else None,
        )

    def _scim_principal(self, digest: str) -> Principal | None:
        row = self.session.execute(
            select(ScimToken.id, ScimToken.account_id, ScimToken.name).where(
                ScimToken.secret_digest == digest, ScimToken.revoked_at.is_(None)
            )
        ).first()
        if row is None:
            return None
        return Principal(
            kind=Credential.SCIM_TOKEN.value,
            token_id=row.id,
            account_id=row.account_id,
            server_id=None,
            can_delete_servers=False,
            label=f"SCIM token '{row.name}'",
        )

    def _session_principal(self, digest: str) -> Principal | None:
        row = self.session.execute(
            select(UserSession, User.email)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.secret_digest == digest, UserSession.revoked_at.is_(None))
        ).first()
        if row is None:
            return None
        user_session, email = row
        return self._person_principal(
            Credential.SESSION,
            user_session.id,
            user_session.account_id,
            user_session.user_id,
            label=email,
            expires_at=user_session.expires_at,
        )

    def _person_principal(
        self,
        kind: Credential,
        token_id: int,
        account_id: int,
        user_id: int,
        *,
        label: str,
        expires_at: datetime | None,
        scopes: frozenset[str] | None = None,
        token_servers: frozenset[int] | None = None,
    ) -> Principal | None:
        """A person's credential carries the member's grants; none once expired or no member."""
        if expires_at is not None and expires_at <= utcnow():
            return None
        grants = member_grants(self.session, account_id, user_id)
        if grants is None:
            return None
        return Principal(
            kind=kind.value,
            token_id=token_id,
            account_id=account_id,
            server_id=None,
            can_delete_servers=False,
            label=label,
            user_id=user_id,
            role=grants.role,
            servers_limited=grants.servers_limited,
            server_access=grants.server_access,
            group_roles=grants.group_roles,
            group_server_access=grants.group_server_access,
            scopes=scopes,
            token_servers=token_servers,
            two_factor_missing=grants.two_factor_missing,
            expires_at=expires_at.timestamp() if expires_at else None,
        )
