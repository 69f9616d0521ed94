"""Editing a member in the console: role, per-server access with "apply to all", Make Owner,
Delete after the password; what a role may not do is neither shown nor allowed."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.users.models import Membership, User, UserSession
from tests.surfaces.console.test_console import console_sign_in, csrf
from tests.surfaces.team.helpers import PASSWORD, add_member, create_server


def user_id(runtime: Runtime, email: str) -> int:
    with runtime.db.session_scope(write=False) as session:
        found = session.scalar(select(User.id).where(User.email == email))
    assert found is not None
    return found


def console_events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action, AuditEvent.via == "console")))


def api_access(client: TestClient, account: NewAccount, member: int) -> dict[str, str]:
    answer = client.get(f"/users/{member}", headers={"X-Postmark-Account-Token": account.account_token})
    return {str(entry["ServerID"]): entry["Access"] for entry in answer.json()["Servers"]}


def test_the_owner_invites_as_view_only_on_one_server(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    production = create_server(client, account, "Production")
    create_server(client, account, "Staging")
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/users").text
    assert f'name="server-{production}"' in page and "Server access" in page
    answer = client.post(
        "/console/users/invite",
        data={
            "csrf_token": csrf(client, "/console/users"),
            "emails": "ann@example.org bob@example.org",
            "role": Role.MEMBER.value,
            f"server-{production}": ServerAccess.VIEW.value,
        },
    )
    assert "Invitations sent: 2." in answer.text
    listed = client.get("/invitations?count=10&offset=0", headers={"X-Postmark-Account-Token": account.account_token})
    invitations = sorted(listed.json()["Invitations"], key=lambda i: i["Email"])
    assert [(i["Email"], i["Role"], i["Servers"]) for i in invitations] == [
        ("ann@example.org", "Member", [{"ServerID": production, "Access": "ViewOnly"}]),
        ("bob@example.org", "Member", [{"ServerID": production, "Access": "ViewOnly"}]),
    ]


def test_apply_to_all_and_per_server_dropdowns_change_access(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    production, staging = create_server(client, account, "Production"), create_server(client, account, "Staging")
    add_member(runtime, account, "ann@example.org", Role.MEMBER, access={production: ServerAccess.VIEW})
    ann = user_id(runtime, "ann@example.org")
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get(f"/console/users/{ann}").text
    assert "Apply access to all servers" in page and f'id="server-{staging}"' in page
    token = csrf(client, f"/console/users/{ann}")
    applied = client.post(f"/console/users/{ann}/servers", data={"csrf_token": token, "all_servers": "FullAccess"})
    assert applied.status_code == 200 and "Server access saved." in applied.text
    assert api_access(client, account, ann) == {str(production): "FullAccess", str(staging): "FullAccess"}
    one = client.post(
        f"/console/users/{ann}/servers",
        data={"csrf_token": token, f"server-{production}": "ViewOnly", f"server-{staging}": "NoAccess"},
    )
    assert "Server access saved." in one.text
    assert api_access(client, account, ann) == {str(production): "ViewOnly", str(staging): "NoAccess"}
    assert len(console_events(runtime, "server_access.updated")) == 2
    bad = client.post(f"/console/users/{ann}/servers", data={"csrf_token": token, f"server-{production}": "Godmode"})
    assert bad.status_code == 422 and "Unknown server access" in bad.text


def test_role_changes_and_owner_is_protected(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, "tech@example.org", Role.MEMBER)
    tech = user_id(runtime, "tech@example.org")
    owner = user_id(runtime, account.owner_email)
    console_sign_in(client, account.owner_email, account.owner_password)
    token = csrf(client, f"/console/users/{tech}")
    changed = client.post(f"/console/users/{tech}/role", data={"csrf_token": token, "role": Role.TECHNICAL.value})
    assert "Role saved." in changed.text
    assert [e.changes["role"] for e in console_events(runtime, "membership.updated")] == [
        {"before": "Member", "after": "Technical"}
    ]
    assert 'action="/console/users/' + str(owner) + '/role"' not in client.get(f"/console/users/{owner}").text
    crafted = client.post(f"/console/users/{owner}/role", data={"csrf_token": token, "role": Role.ADMIN.value})
    assert crafted.status_code == 403 and "role cannot be changed" in crafted.text


def test_make_owner_is_shown_only_to_the_owner_for_admins_and_asks_to_confirm(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    add_member(runtime, account, "member@example.org", Role.MEMBER)
    admin, member = user_id(runtime, "admin@example.org"), user_id(runtime, "member@example.org")
    console_sign_in(client, account.owner_email, account.owner_password)
    assert "Make Owner" in client.get(f"/console/users/{admin}").text
    assert "Make Owner" not in client.get(f"/console/users/{member}").text
    confirm = client.get(f"/console/users/{admin}/make-owner")
    assert "Make admin@example.org the Owner?" in confirm.text
    token = csrf(client, f"/console/users/{admin}/make-owner")
    refused = client.post(f"/console/users/{member}/make-owner", data={"csrf_token": token})
    assert refused.status_code == 422 and "only to an Admin" in refused.text
    done = client.post(f"/console/users/{admin}/make-owner", data={"csrf_token": token})
    assert "admin@example.org is now the Owner." in done.text
    assert [e.target_label for e in console_events(runtime, "account.ownership_transferred")] == ["admin@example.org"]
    # The former Owner is an Admin now: the button is gone, a crafted form is refused.
    assert "Make Owner" not in client.get(f"/console/users/{user_id(runtime, account.owner_email)}").text
    again = client.post(f"/console/users/{admin}/make-owner", data={"csrf_token": token})
    assert again.status_code == 403


def test_delete_asks_for_the_password_every_time(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, "leaver@example.org", Role.MEMBER)
    leaver = user_id(runtime, "leaver@example.org")
    console_sign_in(client, account.owner_email, account.owner_password)
    token = csrf(client, f"/console/users/{leaver}")
    asked = client.post(f"/console/users/{leaver}/delete", data={"csrf_token": token})
    assert asked.status_code == 200 and "To delete this user, type your password again." in asked.text
    wrong = client.post(f"/console/users/{leaver}/delete", data={"csrf_token": token, "current_password": "nope"})
    assert wrong.status_code == 401 and "That is not your password." in wrong.text
    assert not console_events(runtime, "membership.deleted")
    done = client.post(
        f"/console/users/{leaver}/delete", data={"csrf_token": token, "current_password": account.owner_password}
    )
    assert done.status_code == 200 and "User deleted from this account." in done.text
    assert [e.target_label for e in console_events(runtime, "membership.deleted")] == ["leaver@example.org"]
    assert len(console_events(runtime, "session.password_confirmed")) == 1
    failed = [e for e in console_events(runtime, "user.login_failed") if e.target_label == account.owner_email]
    assert len(failed) == 1  # a wrong password here counts towards the sign-in throttle
    with runtime.db.session_scope(write=False) as session:
        assert session.scalar(select(Membership).where(Membership.user_id == leaver)) is None


def test_sensitive_forms_ask_for_the_password_only_after_fifteen_minutes(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    admin = user_id(runtime, "admin@example.org")
    console_sign_in(client, account.owner_email, account.owner_password)
    with runtime.db.session_scope() as session:
        session.execute(update(UserSession).values(password_confirmed_at=utcnow() - timedelta(minutes=16)))
    token = csrf(client, f"/console/users/{admin}/make-owner")
    for path, fields, purpose in [
        ("role", {"role": Role.TECHNICAL.value}, "change this user&#39;s role"),
        ("servers", {"all_servers": "FullAccess"}, "change this user&#39;s access to servers"),
    ]:
        prompt = client.post(f"/console/users/{admin}/{path}", data={"csrf_token": token, **fields})
        assert f"To {purpose}, type your password again." in prompt.text
        assert f'name="{next(iter(fields))}" value="{next(iter(fields.values()))}"' in prompt.text  # posted again
    assert not console_events(runtime, "membership.updated")
    asked = client.post(f"/console/users/{admin}/make-owner", data={"csrf_token": token})
    assert "To make this user the Owner, type your password again." in asked.text
    assert not console_events(runtime, "account.ownership_transferred")
    # The prompt re-posts the same form with the password.
    assert f'action="/console/users/{admin}/make-owner"' in asked.text
    done = client.post(
        f"/console/users/{admin}/make-owner", data={"csrf_token": token, "current_password": account.owner_password}
    )
    assert "admin@example.org is now the Owner." in done.text


def test_members_without_the_right_see_no_forms_and_crafted_posts_are_refused(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server = create_server(client, account, "Production")
    add_member(runtime, account, "peer@example.org", Role.MEMBER, access={server: ServerAccess.VIEW})
    add_member(runtime, account, "me@example.org", Role.TECHNICAL)
    peer = user_id(runtime, "peer@example.org")
    console_sign_in(client, "me@example.org", PASSWORD)
    page = client.get(f"/console/users/{peer}").text
    assert "View only" in page
    assert "Save role" not in page and "Apply to all" not in page and "Delete user" not in page
    token = csrf(client, f"/console/users/{peer}")
    for path, fields in [
        ("role", {"role": Role.ADMIN.value}),
        ("servers", {"all_servers": "FullAccess"}),
        ("delete", {"current_password": PASSWORD}),
    ]:
        refused = client.post(f"/console/users/{peer}/{path}", data={"csrf_token": token, **fields})
        assert refused.status_code == 403, path
    assert api_access(client, account, peer) == {str(server): "ViewOnly"}
