"""Security events that are no change: a credential used from a new address, server tokens
shown, sign-ins that fail, recovery codes used."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.app import create_app
from postwarden.audit import AuditEvent
from postwarden.config import Settings
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from tests.surfaces.team.helpers import add_member, create_server, sign_in


def recorded(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def client_from(settings: Settings, runtime: Runtime, ip: str) -> TestClient:
    return TestClient(create_app(settings, runtime=runtime), client=(ip, 50000))


def test_a_token_used_from_a_new_address_is_recorded_once_per_address(
    settings: Settings, runtime: Runtime, account: NewAccount, tmp_path: Path
) -> None:
    headers = {"X-Postmark-Account-Token": account.account_token}
    with client_from(settings, runtime, "198.51.100.7") as office:
        for _ in range(3):
            assert office.get("/servers?count=1&offset=0", headers=headers).status_code == 200
    # Another process, which has not seen the pair yet, finds it recorded and adds nothing.
    with client_from(settings, runtime, "198.51.100.7") as same_office:
        assert same_office.get("/servers?count=1&offset=0", headers=headers).status_code == 200
    with client_from(settings, runtime, "203.0.113.99") as elsewhere:
        assert elsewhere.get("/account", headers=headers).status_code == 200
    sightings = recorded(runtime, "credential.used_from_new_ip")
    assert [(e.ip, e.changes["ip"]["after"], e.changes["first_use"]) for e in sightings] == [
        ("198.51.100.7", "198.51.100.7", True),
        ("203.0.113.99", "203.0.113.99", False),
    ]
    assert {(e.target_type, e.account_id, e.actor_credential) for e in sightings} == {
        ("account_token", account.account.id, "account_token")
    }


def test_a_session_used_where_it_was_opened_is_no_event_but_elsewhere_it_is(
    settings: Settings, runtime: Runtime, account: NewAccount
) -> None:
    with client_from(settings, runtime, "198.51.100.7") as home:
        session = sign_in(home, account.owner_email, account.owner_password)
        assert home.get("/me", headers=session).status_code == 200
        assert recorded(runtime, "credential.used_from_new_ip") == []
    with client_from(settings, runtime, "192.0.2.66") as stranger:
        assert stranger.get("/me", headers=session).status_code == 200
    [event] = recorded(runtime, "credential.used_from_new_ip")
    assert (event.target_type, event.ip, event.actor_label) == ("session", "192.0.2.66", account.owner_email)


def test_showing_a_servers_tokens_is_recorded_but_not_on_every_poll(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    headers = {"X-Postmark-Account-Token": account.account_token}
    server_a, server_b = create_server(client, account, "A"), create_server(client, account, "B")
    assert recorded(runtime, "server_token.viewed") == []  # creating shows the token to its creator: no view
    for _ in range(3):  # an integration polling its server
        assert client.get(f"/servers/{server_a}", headers=headers).json()["ApiTokens"]
    assert [e.target_id for e in recorded(runtime, "server_token.viewed")] == [str(server_a)]
    assert client.get("/servers?count=10&offset=0", headers=headers).status_code == 200
    views = recorded(runtime, "server_token.viewed")
    assert sorted(e.target_id for e in views) == sorted([str(server_a), str(server_b)])
    assert {(e.target_label, e.actor_credential) for e in views} == {("A", "account_token"), ("B", "account_token")}


def test_a_view_only_member_sees_no_tokens_and_so_no_view_is_recorded(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Watched")
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={server_id: ServerAccess.VIEW})
    viewer = sign_in(client, "viewer@example.org")
    assert client.get(f"/servers/{server_id}", headers=viewer).json()["ApiTokens"] == []
    assert recorded(runtime, "server_token.viewed") == []
    add_member(runtime, account, "full@example.org", Role.MEMBER, access={server_id: ServerAccess.FULL})
    full = sign_in(client, "full@example.org")
    assert client.get(f"/servers/{server_id}", headers=full).json()["ApiTokens"]
    [view] = recorded(runtime, "server_token.viewed")
    assert (view.actor_label, view.actor_credential) == ("full@example.org", "session")


def test_failed_sign_ins_are_recorded_in_the_installations_chain(client: TestClient, runtime: Runtime) -> None:
    answer = client.post("/sessions", json={"Email": "nobody@example.org", "Password": "guess"})
    assert answer.status_code == 401
    [failure] = recorded(runtime, "user.login_failed")
    assert (failure.account_id, failure.chain, failure.target_label) == (None, 0, "nobody@example.org")
    assert failure.seq >= 1 and len(failure.chain_hash) == 64
