"""The console without a browser: sign-in in one or two steps, CSRF, cookies, the pages'
content, and that each sign-in is audited as coming through the console."""

from __future__ import annotations

import re

import pyotp
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from tests.surfaces.team.helpers import PASSWORD, add_member, create_server, next_code, sign_in


def csrf(client: TestClient, path: str = "/console/sign-in") -> str:
    page = client.get(path)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def console_sign_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    answer = client.post(
        "/console/sign-in",
        data={"csrf_token": csrf(client), "email": email, "password": password},
        follow_redirects=False,
    )
    assert (answer.status_code, answer.headers["location"]) == (303, "/console/servers"), answer.text


def test_signing_in_sets_a_strict_session_cookie_and_is_audited_as_the_console(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    assert client.get("/console/servers", follow_redirects=False).headers["location"] == "/console/sign-in"
    token = csrf(client)
    answer = client.post(
        "/console/sign-in",
        data={"csrf_token": token, "email": account.owner_email, "password": account.owner_password},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"]
    assert "pw_session=pws_" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
    page = client.get("/console/servers")
    assert page.status_code == 200 and "<h1>Servers</h1>" in page.text and "Sign out" in page.text
    with runtime.db.session_scope(write=False) as session:
        created = session.scalars(select(AuditEvent).where(AuditEvent.action == "session.created")).all()
    assert [(event.via, event.actor_label) for event in created] == [("console", account.owner_email)]
    client.post("/console/sign-out", data={"csrf_token": token})
    assert client.get("/console/servers", follow_redirects=False).headers["location"] == "/console/sign-in"
    with runtime.db.session_scope(write=False) as session:
        ended = session.scalars(select(AuditEvent.via).where(AuditEvent.action == "session.revoked")).all()
    assert ended == ["console"]


def test_a_form_without_its_csrf_token_is_refused(client: TestClient, account: NewAccount) -> None:
    csrf(client)  # the cookie is set, but a forged form cannot read it
    forged = client.post("/console/sign-in", data={"email": account.owner_email, "password": account.owner_password})
    assert forged.status_code == 403 and "Form expired" in forged.text
    console_sign_in(client, account.owner_email, account.owner_password)
    assert client.post("/console/sign-out", data={"csrf_token": "guess"}).status_code == 403
    assert client.get("/console/servers").status_code == 200  # still signed in


def test_a_wrong_password_says_so_without_telling_which_part_was_wrong(client: TestClient, account: NewAccount) -> None:
    answer = client.post(
        "/console/sign-in", data={"csrf_token": csrf(client), "email": account.owner_email, "password": "nope"}
    )
    assert answer.status_code == 401
    assert "Sign-in failed: wrong email, password or code." in answer.text
    assert f'value="{account.owner_email}"' in answer.text  # the address is kept, the password is not


def test_two_factor_users_give_their_code_on_a_second_page(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, "totp@example.org", Role.ADMIN)
    api = sign_in(client, "totp@example.org")
    secret = client.post("/me/two-factor", headers=api).json()["Secret"]
    first = pyotp.TOTP(secret).now()
    assert client.post("/me/two-factor/confirm", json={"Code": first}, headers=api).status_code == 200

    answer = client.post(
        "/console/sign-in",
        data={"csrf_token": csrf(client), "email": "totp@example.org", "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/console/sign-in/two-factor"
    assert client.get("/console/servers", follow_redirects=False).status_code == 303  # not signed in yet
    token = csrf(client, "/console/sign-in/two-factor")
    wrong = client.post("/console/sign-in/two-factor", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 401 and "Sign-in failed" in wrong.text
    right = client.post(
        "/console/sign-in/two-factor",
        data={"csrf_token": token, "code": next_code(secret, after=first)},
        follow_redirects=False,
    )
    assert right.headers["location"] == "/console/servers"
    assert client.get("/console/servers").status_code == 200


def test_the_two_factor_page_needs_a_fresh_password_step(client: TestClient) -> None:
    assert client.get("/console/sign-in/two-factor", follow_redirects=False).headers["location"] == "/console/sign-in"
    client.cookies.set("pw_pending", "1.99999999999.forged", path="/console")
    assert client.get("/console/sign-in/two-factor", follow_redirects=False).headers["location"] == "/console/sign-in"


def test_servers_are_listed_alphabetically_and_searched(client: TestClient, account: NewAccount) -> None:
    for name in ("zeta", "Alpha", "beta"):
        create_server(client, account, name)
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/servers").text
    assert page.index("Alpha") < page.index("beta") < page.index("zeta")
    found = client.get("/console/servers?q=ET").text
    assert "beta" in found and "zeta" in found and "Alpha" not in found


def test_the_users_page_shows_badges_and_each_members_access_per_server(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_id = create_server(client, account, "Production")
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={server_id: ServerAccess.VIEW})
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/users").text
    assert '<span class="badge owner">Owner</span>' in page and '<span class="badge">Admin</span>' in page
    viewer_row = page[page.index("viewer@example.org") :].split("</tr>")[0]
    assert "View only" in viewer_row
    assert "3 members" in page


def test_a_member_sees_only_whom_policy_lets_them_see(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server_a, server_b = create_server(client, account, "A"), create_server(client, account, "B")
    add_member(runtime, account, "on-a@example.org", Role.MEMBER, access={server_a: ServerAccess.VIEW})
    add_member(runtime, account, "on-b@example.org", Role.MEMBER, access={server_b: ServerAccess.VIEW})
    console_sign_in(client, "on-a@example.org")
    page = client.get("/console/users")
    assert "on-a@example.org" in page.text and "on-b@example.org" not in page.text
    servers = client.get("/console/servers").text
    assert ">A<" in servers and ">B<" not in servers


def test_the_audit_log_page_filters_and_exports_and_only_owner_and_admins_see_it(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    create_server(client, account, "Audited")
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/audit-log?action=server.created")
    assert page.status_code == 200 and "1 event<" in page.text and "Audited" in page.text
    assert 'href="/console/audit-log"' in client.get("/console/servers").text
    exported = client.get("/console/audit-log/export?format=csv&action=server.created")
    assert exported.headers["content-type"].startswith("text/csv")
    assert len(exported.text.strip().splitlines()) == 2 and "server.created" in exported.text
    bad = client.get("/console/audit-log?action=server.exploded")
    assert bad.status_code == 422 and "not an audit action" in bad.text

    add_member(runtime, account, "tech@example.org", Role.TECHNICAL)
    other = TestClient(client.app)
    console_sign_in(other, "tech@example.org")
    assert 'href="/console/audit-log"' not in other.get("/console/servers").text  # not shown...
    refused = other.get("/console/audit-log")  # ...and refused when asked for anyway
    assert refused.status_code == 403 and "Audited" not in refused.text
    assert other.get("/console/audit-log/export").status_code == 403


def test_the_owner_invites_several_people_at_once_with_one_role(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/users").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None and 'action="/console/users/invite"' in page
    answer = client.post(
        "/console/users/invite",
        data={
            "csrf_token": token.group(1),
            "emails": "ann@example.org, bob@example.org\ncid@example.org",
            "role": "Technical",
        },
    )
    assert answer.status_code == 200 and "Invitations sent: 3." in answer.text
    with runtime.db.session_scope(write=False) as session:
        invited = session.scalars(
            select(AuditEvent.target_label).where(
                AuditEvent.action == "invitation.created", AuditEvent.via == "console"
            )
        ).all()
    assert sorted(invited) == ["ann@example.org", "bob@example.org", "cid@example.org"]
    listed = client.get("/invitations?count=10&offset=0", headers={"X-Postmark-Account-Token": account.account_token})
    assert {i["Role"] for i in listed.json()["Invitations"]} == {"Technical"}
    owner = client.post(
        "/console/users/invite", data={"csrf_token": token.group(1), "emails": "x@example.org", "role": "Owner"}
    )
    assert owner.status_code == 422 and "Owner" in owner.text  # the service's own message


def test_members_who_may_not_invite_see_no_form_and_a_crafted_post_is_refused(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, "tech@example.org", Role.TECHNICAL)
    console_sign_in(client, "tech@example.org")
    page = client.get("/console/users").text
    assert "/console/users/invite" not in page and "Access review" not in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    refused = client.post(
        "/console/users/invite", data={"csrf_token": token.group(1), "emails": "z@example.org", "role": "Member"}
    )
    assert refused.status_code == 403
    assert client.get("/console/access-review").status_code == 403


def test_the_access_review_page_flags_members(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, "idle@example.org", Role.MEMBER)
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/access-review").text
    idle_row = page[page.index("idle@example.org") :].split("</tr>")[0]
    assert "NeverLoggedIn" in idle_row and "NoTwoFactor" in idle_row and "never" in idle_row


def test_pending_invitations_are_listed_resent_and_revoked(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    headers = {"X-Postmark-Account-Token": account.account_token}
    client.post(
        "/invitations", json={"Emails": ["keep@example.org", "drop@example.org"], "Role": "Member"}, headers=headers
    )
    ids = {
        i["Email"]: i["ID"] for i in client.get("/invitations?count=10&offset=0", headers=headers).json()["Invitations"]
    }
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get("/console/users").text
    assert "Pending invitations" in page and "keep@example.org" in page and "drop@example.org" in page
    token = csrf(client, "/console/users")
    resent = client.post(f"/console/invitations/{ids['keep@example.org']}/resend", data={"csrf_token": token})
    assert "Invitation to keep@example.org sent again with a new link." in resent.text
    revoked = client.post(f"/console/invitations/{ids['drop@example.org']}/revoke", data={"csrf_token": token})
    assert "Invitation to drop@example.org revoked." in revoked.text
    assert "drop@example.org</td>" not in revoked.text
    gone = client.post(f"/console/invitations/{ids['drop@example.org']}/revoke", data={"csrf_token": token})
    assert gone.status_code == 404  # the service's own "no such invitation"
    assert (
        client.post(f"/console/invitations/{ids['keep@example.org']}/explode", data={"csrf_token": token}).status_code
        == 404
    )
    with runtime.db.session_scope(write=False) as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.via == "console", AuditEvent.target_type == "invitation")
        ).all()
    assert sorted(actions) == ["invitation.resent", "invitation.revoked"]


def test_the_users_page_is_paged_by_fifty(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    for n in range(55):
        add_member(runtime, account, f"m{n:02d}@example.org", Role.MEMBER)
    console_sign_in(client, account.owner_email, account.owner_password)
    first = client.get("/console/users").text
    assert "Page 1 of 2" in first and 'href="/console/users?page=2" rel="next"' in first
    assert "m00@example.org" in first and "m54@example.org" not in first
    second = client.get("/console/users?page=2").text
    assert "m54@example.org" in second and 'rel="prev"' in second and "m00@example.org" not in second
