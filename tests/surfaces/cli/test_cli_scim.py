"""``postwarden scim``: the operator creates, lists and revokes SCIM tokens and maps groups."""

from __future__ import annotations

import time

from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.groups.models import Group, GroupServerAccess
from postwarden.runtime import Runtime
from tests.surfaces.cli.test_cli import assert_clean_failure, cli_env, ok, run
from tests.surfaces.cli.test_cli_users import add_server

__all__ = ["cli_env"]  # the fixture is found by pytest through this import


def test_a_token_made_at_the_command_line_provisions_and_is_refused_once_revoked(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount, client: TestClient
) -> None:
    created = ok(cli_env, "scim", "create-token", "--account", str(account.account.id), "okta").stdout
    token = created.split(": ", 1)[1].split()[0]
    assert token.startswith("pwscim_")
    assert "/scim/v2" in created
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/scim/v2/Users?count=1", headers=headers).status_code == 200

    listed = ok(cli_env, "scim", "tokens", "--account", str(account.account.id)).stdout
    assert "okta" in listed and token not in listed
    token_id = listed.split()[0]
    ok(cli_env, "scim", "revoke-token", "--account", str(account.account.id), token_id)
    # The serving process hears of it at once with Redis, else once its cache entry expires.
    deadline = time.monotonic() + runtime.settings.cache_ttl_seconds + 3
    refused = client.get("/scim/v2/Users?count=1", headers=headers)
    while refused.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        refused = client.get("/scim/v2/Users?count=1", headers=headers)
    assert refused.status_code == 401 and refused.json()["status"] == "401"
    assert "no SCIM tokens" in ok(cli_env, "scim", "tokens", "--account", str(account.account.id)).stdout
    with runtime.db.session_scope(write=False) as session:
        actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.via == "cli")))
    assert "scim_token.created" in actions and "scim_token.revoked" in actions


def test_a_group_is_mapped_to_servers_and_never_to_owner(
    cli_env: dict[str, str], runtime: Runtime, account: NewAccount
) -> None:
    server_id = add_server(runtime, account.account.id)
    with runtime.db.session_scope() as session:
        group = Group(account_id=account.account.id, display_name="Support", display_name_key="support")
        session.add(group)
        session.flush()
        group_id = group.id
    mapped = ok(
        cli_env,
        "scim",
        "map-group",
        "--account",
        str(account.account.id),
        "--server",
        f"{server_id}:ViewOnly",
        str(group_id),
    ).stdout
    assert "Support" in mapped and f"{server_id}:ViewOnly" in mapped
    with runtime.db.session_scope(write=False) as session:
        levels = list(session.execute(select(GroupServerAccess.server_id, GroupServerAccess.level)).tuples())
    assert levels == [(server_id, "ViewOnly")]
    refused = run(cli_env, "scim", "map-group", "--account", str(account.account.id), "--role", "Owner", str(group_id))
    assert "ownership" in assert_clean_failure(refused)


def test_an_unknown_account_is_a_clean_error(cli_env: dict[str, str]) -> None:
    assert "was not found" in assert_clean_failure(run(cli_env, "scim", "create-token", "--account", "999", "okta"))
