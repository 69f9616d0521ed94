from __future__ import annotations

import pytest
from sqlalchemy import select

from postwarden.accounts.service import AccountService
from postwarden.audit import AuditEvent
from postwarden.errors import Conflict, InvalidRequest, PermissionDenied
from postwarden.identity import Actor, Credential, Via
from postwarden.runtime import Runtime
from postwarden.users.models import Membership, User
from postwarden.users.passwords import verify_password


def test_create_account_makes_owner_token_and_audit_trail(runtime: Runtime) -> None:
    with runtime.db.session_scope() as session:
        created = AccountService(session, Actor.system("tests"), runtime).create_account(
            " Acme ", owner_email="Boss@Acme.Example", owner_password="correct horse battery"
        )
    with runtime.db.session_scope(write=False) as session:
        user = session.scalars(select(User)).one()
        membership = session.scalars(select(Membership)).one()
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        changes = [e.changes for e in session.scalars(select(AuditEvent))]
    assert created.account.name == "Acme"
    assert user.email == "boss@acme.example" == created.owner_email
    assert verify_password("correct horse battery", user.password_hash)
    assert "correct horse" not in user.password_hash
    assert membership.role == "Owner" and membership.account_id == created.account.id
    assert actions == ["user.created", "account.created", "membership.created", "account_token.created"]
    assert "correct horse battery" not in str(changes)


def test_generated_owner_password_is_long_and_returned_once(runtime: Runtime) -> None:
    with runtime.db.session_scope() as session:
        created = AccountService(session, Actor.system("tests"), runtime).create_account("A", owner_email="a@a.example")
    assert len(created.owner_password) >= 16


@pytest.mark.parametrize(
    ("name", "email", "password", "error"),
    [
        ("", "a@a.example", None, InvalidRequest),
        ("A", "not-an-email", None, InvalidRequest),
        ("A", "a@a.example", "short", InvalidRequest),
    ],
)
def test_create_account_refuses_bad_input(
    runtime: Runtime, name: str, email: str, password: str | None, error: type[Exception]
) -> None:
    with pytest.raises(error), runtime.db.session_scope() as session:
        AccountService(session, Actor.system("tests"), runtime).create_account(
            name, owner_email=email, owner_password=password
        )


def test_owner_email_must_be_new(runtime: Runtime) -> None:
    with runtime.db.session_scope() as session:
        AccountService(session, Actor.system("tests"), runtime).create_account("A", owner_email="a@a.example")
    with pytest.raises(Conflict), runtime.db.session_scope() as session:
        AccountService(session, Actor.system("tests"), runtime).create_account("B", owner_email="A@A.example")


def test_only_the_operator_manages_accounts(runtime: Runtime) -> None:
    token_actor = Actor(credential=Credential.ACCOUNT_TOKEN, label="t", via=Via.API, account_id=1, role="Admin")
    with pytest.raises(PermissionDenied), runtime.db.session_scope() as session:
        AccountService(session, token_actor, runtime).create_account("X", owner_email="x@x.example")
    with pytest.raises(PermissionDenied), runtime.db.session_scope(write=False) as session:
        AccountService(session, token_actor, runtime).list_accounts()
