"""``postwarden users``: the operator manages an account's people from the command line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.identity import Actor
from postwarden.invitations.models import Invitation
from postwarden.mail.models import OutboxMessage
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerFields, ServerService
from postwarden.users.models import Membership
from postwarden.users.service import UserService
from tests.surfaces.cli.test_cli import assert_clean_failure, cli_env, ok, run

__all__ = ["cli_env"]  # the fixture is found by pytest through this import

OWNER = "owner@acme.example"


def add_member(
    runtime: Runtime,
    account_id: int,
    email: str,
    role: Role = Role.MEMBER,
    *,
    name: str = "",
    server_access: dict[int, ServerAccess] | None = None,
) -> int:
    with runtime.db.session_scope() as session:
        service = UserService(session, Actor.system("tests"), runtime)
        user = service.create_user(email, "a long enough password", name=name)
        service.add_membership(account_id, user, role, server_access=server_access)
        return user.id


def add_server(runtime: Runtime, account_id: int, name: str = "Production") -> int:
    with runtime.db.session_scope() as session:
        server = ServerService(session, Actor.system("tests"), runtime).create_server(
            account_id, ServerFields(name=name, color="blue")
        )
        return server.id


def role_of(runtime: Runtime, account_id: int, user_id: int) -> str | None:
    with runtime.db.session_scope(write=False) as session:
        return session.scalar(
            select(Membership.role).where(Membership.account_id == account_id, Membership.user_id == user_id)
        )


def owner_id(runtime: Runtime, account_id: int) -> int:
    with runtime.db.session_scope(write=False) as session:
        found = session.scalar(
            select(Membership.user_id).where(Membership.account_id == account_id, Membership.role == Role.OWNER.value)
        )
    assert found is not None
    return found


def cli_audit(runtime: Runtime) -> list[tuple[str, str]]:
    """What the commands under test recorded (the fixtures' own setup is left out)."""
    with runtime.db.session_scope(write=False) as session:
        return [
            (event.action, event.actor_label)
            for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if event.via == "cli" and event.actor_label.startswith("cli: ")
        ]


def test_list_shows_the_owner(cli_env: dict[str, str], runtime: Runtime, account: NewAccount) -> None:
    account_id = account.account.id
    result = ok(cli_env, "users", "list", "--account", str(account_id))
    header, *lines = result.stdout.strip().splitlines()
    assert header.split() == ["ID", "EMAIL", "NAME", "ROLE", "2FA", "SERVERS"]
    assert len(lines) == 1
    assert lines[0].split() == [str(owner_id(runtime, account_id)), OWNER, "-", "Owner", "no", "-"]


def test_list_shows_roles_names_and_server_grants_and_filters(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    account_id = account.account.id
    server_id = add_server(runtime, account_id)
    member_id = add_member(
        runtime, account_id, "member@acme.example", name="Mia", server_access={server_id: ServerAccess.VIEW}
    )
    add_member(runtime, account_id, "admin@acme.example", Role.ADMIN)

    rows = json.loads(ok(cli_env, "users", "list", "--account", str(account_id), "--json").stdout)
    assert [row["Email"] for row in rows] == [OWNER, "member@acme.example", "admin@acme.example"]  # as they joined
    member = rows[1]
    assert member == {
        "ID": member_id,
        "Email": "member@acme.example",
        "Name": "Mia",
        "Role": "Member",
        "ServersLimited": False,
        "TwoFactor": False,
        "ServerAccess": {str(server_id): "ViewOnly"},
    }

    table = ok(cli_env, "users", "list", "--account", str(account_id), "--role", "member").stdout
    lines = table.strip().splitlines()[1:]
    assert len(lines) == 1
    assert lines[0].split() == [str(member_id), "member@acme.example", "Mia", "Member", "no", f"{server_id}:ViewOnly"]

    by_email = json.loads(
        ok(cli_env, "users", "list", "--account", str(account_id), "--email", "ADMIN@", "--json").stdout
    )
    assert [row["Email"] for row in by_email] == ["admin@acme.example"]
    assert (
        ok(cli_env, "users", "list", "--account", str(account_id), "--email", "nobody").stdout == "no members match\n"
    )


def test_list_refuses_an_unknown_account_and_role(cli_env: dict[str, str], account: NewAccount) -> None:
    assert "Account 999 was not found." in assert_clean_failure(run(cli_env, "users", "list", "--account", "999"))
    stderr = assert_clean_failure(run(cli_env, "users", "list", "--account", str(account.account.id), "--role", "Boss"))
    assert "Unknown role 'Boss'" in stderr


def test_invite_creates_a_pending_invitation_and_queues_its_mail(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    account_id = account.account.id
    server_id = add_server(runtime, account_id)
    result = ok(
        cli_env,
        "users",
        "invite",
        "--account",
        str(account_id),
        "--role",
        "technical",
        "--server",
        f"{server_id}:ViewOnly",
        "--limited",
        "New@Acme.example",
        "second@acme.example",
    )

    with runtime.db.session_scope(write=False) as session:
        invitations = list(session.scalars(select(Invitation).order_by(Invitation.id)))
        messages = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        pending = [
            (i.id, i.email, i.role, i.server_access, i.servers_limited, i.accepted_at, i.invited_by)
            for i in invitations
        ]
        queued = [(m.to_address, m.status, m.account_id) for m in messages]
    assert result.stdout.splitlines() == [
        f"invitation {pending[0][0]}: new@acme.example",
        f"invitation {pending[1][0]}: second@acme.example",
    ]
    assert [row[1:] for row in pending] == [
        ("new@acme.example", "Technical", {str(server_id): "ViewOnly"}, True, None, "cli: users invite"),
        ("second@acme.example", "Technical", {str(server_id): "ViewOnly"}, True, None, "cli: users invite"),
    ]
    assert queued == [
        ("new@acme.example", "queued", account_id),
        ("second@acme.example", "queued", account_id),
    ]
    outbox = json.loads(ok(cli_env, "outbox", "list", "--json").stdout)
    assert {row["To"] for row in outbox} == {"new@acme.example", "second@acme.example"}
    assert cli_audit(runtime) == [("invitation.created", "cli: users invite")] * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "Owner", "x@acme.example"], "Nobody is made Owner by a role change"),
        (["--role", "Member", "not-an-address"], "'not-an-address' is not a valid email address."),
        (["--role", "Member", OWNER], f"{OWNER} is already a member of this account."),
        (["--role", "Admin", "--server", "1:ViewOnly", "x@acme.example"], "per-server access applies"),
        (["--role", "Member", "--server", "1:Everything", "x@acme.example"], "Unknown server access"),
    ],
)
def test_invite_refuses_bad_input_and_sends_nothing(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount, args: list[str], message: str
) -> None:
    stderr = assert_clean_failure(run(cli_env, "users", "invite", "--account", str(account.account.id), *args))
    assert message in stderr
    with runtime.db.session_scope(write=False) as session:
        assert session.scalars(select(Invitation)).all() == []
        assert session.scalars(select(OutboxMessage)).all() == []


def test_invite_refuses_a_malformed_server_grant(cli_env: dict[str, str], account: NewAccount) -> None:
    args = ["--account", str(account.account.id), "--role", "Member", "--server", "one:ViewOnly", "x@acme.example"]
    stderr = assert_clean_failure(run(cli_env, "users", "invite", *args), code=2)
    assert "'one:ViewOnly' is not ID:LEVEL" in stderr


def test_set_role_changes_a_members_role(cli_env: dict[str, str], runtime: Runtime, account: NewAccount) -> None:
    account_id = account.account.id
    member_id = add_member(runtime, account_id, "member@acme.example")

    result = ok(cli_env, "users", "set-role", "--account", str(account_id), str(member_id), "admin")
    assert result.stdout == f"user {member_id} (member@acme.example): Admin\n"
    assert role_of(runtime, account_id, member_id) == "Admin"

    result = ok(cli_env, "users", "set-role", "--account", str(account_id), "--limited", str(member_id), "Technical")
    assert result.stdout == f"user {member_id} (member@acme.example): Technical, limited to listed servers\n"
    with runtime.db.session_scope(write=False) as session:
        limited = session.scalar(
            select(Membership.servers_limited).where(
                Membership.account_id == account_id, Membership.user_id == member_id
            )
        )
    assert limited is True
    assert cli_audit(runtime) == [("membership.updated", "cli: users set-role")] * 2


def test_the_owners_role_cannot_be_set(cli_env: dict[str, str], runtime: Runtime, account: NewAccount) -> None:
    account_id = account.account.id
    owner = owner_id(runtime, account_id)
    stderr = assert_clean_failure(run(cli_env, "users", "set-role", "--account", str(account_id), str(owner), "Admin"))
    assert "The Owner's role cannot be changed." in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert role_of(runtime, account_id, owner) == "Owner"
    assert cli_audit(runtime) == []


def test_set_role_refuses_a_non_member_and_making_an_owner(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    account_id = account.account.id
    member_id = add_member(runtime, account_id, "member@acme.example")
    assert "User 999 is not a member of this account." in assert_clean_failure(
        run(cli_env, "users", "set-role", "--account", str(account_id), "999", "Admin")
    )
    assert "Nobody is made Owner by a role change" in assert_clean_failure(
        run(cli_env, "users", "set-role", "--account", str(account_id), str(member_id), "Owner")
    )
    assert role_of(runtime, account_id, member_id) == "Member"


def test_remove_removes_a_member(cli_env: dict[str, str], runtime: Runtime, account: NewAccount) -> None:
    account_id = account.account.id
    member_id = add_member(runtime, account_id, "member@acme.example")

    result = ok(cli_env, "users", "remove", "--account", str(account_id), str(member_id))
    assert result.stdout == f"user {member_id} (member@acme.example) removed from account {account_id}\n"
    assert role_of(runtime, account_id, member_id) is None
    rows = json.loads(ok(cli_env, "users", "list", "--account", str(account_id), "--json").stdout)
    assert [row["Email"] for row in rows] == [OWNER]
    assert cli_audit(runtime) == [("membership.deleted", "cli: users remove")]

    assert "is not a member of this account" in assert_clean_failure(
        run(cli_env, "users", "remove", "--account", str(account_id), str(member_id))
    )


def test_the_owner_cannot_be_removed(cli_env: dict[str, str], runtime: Runtime, account: NewAccount) -> None:
    account_id = account.account.id
    owner = owner_id(runtime, account_id)
    stderr = assert_clean_failure(run(cli_env, "users", "remove", "--account", str(account_id), str(owner)))
    assert "The Owner cannot be removed." in stderr
    assert role_of(runtime, account_id, owner) == "Owner"


def test_the_operator_transfers_ownership_to_an_admin_only(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    account_id = account.account.id
    previous = owner_id(runtime, account_id)
    technical = add_member(runtime, account_id, "tech@acme.example", Role.TECHNICAL)
    admin = add_member(runtime, account_id, "admin@acme.example", Role.ADMIN)

    refused = assert_clean_failure(run(cli_env, "accounts", "transfer-ownership", str(account_id), str(technical)))
    assert "only to an Admin" in refused
    assert role_of(runtime, account_id, previous) == "Owner"

    result = ok(cli_env, "accounts", "transfer-ownership", str(account_id), str(admin))
    assert result.stdout == f"account {account_id}: admin@acme.example is now the Owner\n"
    assert role_of(runtime, account_id, admin) == "Owner"
    assert role_of(runtime, account_id, previous) == "Admin"


def test_paused_sending_refuses_invitations_until_resumed(cli_env: dict[str, str], account: NewAccount) -> None:
    account_id = str(account.account.id)
    assert ok(cli_env, "accounts", "pause-sending", account_id).stdout == f"account {account_id}: sending paused\n"
    refused = assert_clean_failure(
        run(cli_env, "users", "invite", "--account", account_id, "--role", "Member", "x@acme.example")
    )
    assert "sending is paused" in refused
    ok(cli_env, "accounts", "pause-sending", account_id, "--resume")
    ok(cli_env, "users", "invite", "--account", account_id, "--role", "Member", "x@acme.example")
