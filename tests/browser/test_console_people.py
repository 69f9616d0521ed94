"""The owner's pages in a real browser: servers, users with their access, inviting several
people at once, the access review and the audit log that shows each step."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from postwarden.accounts.service import NewAccount
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from tests.browser.conftest import Shoot
from tests.browser.test_console_sign_in import expect_path, fill_sign_in
from tests.surfaces.team.helpers import add_member, create_server


def test_the_owner_invites_two_people_and_the_audit_log_shows_it(
    page: Page, shoot: Shoot, http: httpx.Client, runtime: Runtime, account: NewAccount
) -> None:
    production = create_server(http, account, "Production")
    create_server(http, account, "Staging")
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={production: ServerAccess.VIEW})

    page.goto("/console/sign-in")
    fill_sign_in(page, account.owner_email, account.owner_password)
    expect_path(page, "/console/servers")
    expect(page.get_by_text("Production")).to_be_visible()
    shoot(page, "servers-with-servers")

    page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    expect_path(page, "/console/users")
    viewer = page.get_by_role("row").filter(has_text="viewer@example.org")
    expect(viewer).to_contain_text("View only")
    expect(page.get_by_role("row").filter(has_text=account.owner_email)).to_contain_text("Owner")
    shoot(page, "users")

    page.get_by_text("Invite people").click()
    page.get_by_label("Emails").fill("ann@example.org\nbob@example.org")
    page.get_by_label("Role").select_option("Technical")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status")).to_have_text("Invitations sent: 2.")

    page.get_by_role("link", name="Access review").click()
    expect_path(page, "/console/access-review")
    expect(page.get_by_role("row").filter(has_text="viewer@example.org")).to_contain_text("NeverLoggedIn")
    shoot(page, "access-review")

    page.get_by_role("link", name="Audit log").click()
    expect_path(page, "/console/audit-log")
    page.get_by_label("Action").select_option("invitation.created")
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("row").filter(has_text="invitation.created")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="ann@example.org")).to_contain_text(account.owner_email)
    shoot(page, "audit-log")
