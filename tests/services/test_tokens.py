from __future__ import annotations

import pytest
from sqlalchemy import select

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.errors import NotFound, PermissionDenied
from postwarden.identity import Actor, Credential, Via
from postwarden.policy import Role
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerFields, ServerService
from postwarden.tokens.models import AccountToken, ServerToken
from postwarden.tokens.service import TokenService


def test_tokens_are_encrypted_at_rest_and_found_by_digest(runtime: Runtime, account: NewAccount) -> None:
    with runtime.db.session_scope(write=False) as session:
        row = session.scalars(select(AccountToken)).one()
        assert account.account_token.encode() not in row.secret_encrypted
        assert account.account_token not in row.secret_digest
        tokens = TokenService(session, runtime)
        assert tokens.reveal(row) == account.account_token
        principal = tokens.find_principal(account.account_token.upper())
        assert principal is not None and principal.account_id == account.account.id
        assert principal.kind == "account_token"
        assert tokens.find_principal("00000000-0000-0000-0000-000000000000") is None


def test_rotating_a_server_token_revokes_the_old_and_drops_the_cache(runtime: Runtime, account: NewAccount) -> None:
    operator = Actor.system("tests")
    with runtime.db.session_scope() as session:
        server = ServerService(session, operator, runtime).create_server(account.account.id, ServerFields(name="S"))
        old = TokenService(session, runtime).server_tokens(server.id)[0]
    with runtime.db.session_scope(write=False) as session:
        principal = TokenService(session, runtime).find_principal(old)
    assert principal is not None
    runtime.cache.put_principal(runtime.keyring.digest(old), principal)

    with runtime.db.session_scope() as session:
        new = TokenService(session, runtime).rotate_server_tokens(operator, server.id, account.account.id, "S")
    assert runtime.cache.get_principal(runtime.keyring.digest(old)) is None
    with runtime.db.session_scope(write=False) as session:
        tokens = TokenService(session, runtime)
        assert tokens.find_principal(old) is None
        found = tokens.find_principal(new)
        assert found is not None and found.server_id == server.id
        assert tokens.server_tokens(server.id) == [new]
        assert session.scalars(select(ServerToken).where(ServerToken.revoked_at.is_not(None))).one()
        assert session.scalars(select(AuditEvent.action).where(AuditEvent.action == "server_token.rotated")).one()


def test_rotating_an_account_token_keeps_its_name_and_grants(runtime: Runtime, account: NewAccount) -> None:
    operator = Actor.system("tests")
    with runtime.db.session_scope() as session:
        tokens = TokenService(session, runtime)
        token = tokens.account_tokens(operator, account.account.id)[0]
        tokens.set_server_deletion(operator, token, enabled=True)
        new = tokens.rotate_account_token(operator, token)
    with runtime.db.session_scope(write=False) as session:
        tokens = TokenService(session, runtime)
        assert tokens.find_principal(account.account_token) is None
        principal = tokens.find_principal(new)
        assert principal is not None and principal.can_delete_servers
        (current,) = tokens.account_tokens(operator, account.account.id)
        assert current.name == "Default"
        with pytest.raises(NotFound):
            tokens.get_account_token(token.id)


def test_only_those_who_manage_account_tokens_list_them(runtime: Runtime, account: NewAccount) -> None:
    member = Actor(
        credential=Credential.SESSION,
        label="member@example.org",
        via=Via.CONSOLE,
        account_id=account.account.id,
        user_id=999,
        role=Role.MEMBER.value,
    )
    with runtime.db.session_scope(write=False) as session, pytest.raises(PermissionDenied):
        TokenService(session, runtime).account_tokens(member, account.account.id)
