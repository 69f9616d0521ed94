"""A person's own pages in a real browser: setting up two-factor authentication from the console
(recovery codes shown once), moving between the accounts the login belongs to, a personal token
created and revoked after a confirmation, and the page a refusal shows."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect

from postwarden.accounts.service import NewAccount
from postwarden.policy import Role
from postwarden.runtime import Runtime
from tests.browser.conftest import Shoot
from tests.browser.test_console_sign_in import expect_path, fill_sign_in
from tests.conftest import create_account
from tests.surfaces.team.helpers import PASSWORD, add_member


def test_a_person_sets_up_two_factor_and_switches_accounts(
    page: Page, shoot: Shoot, runtime: Runtime, account: NewAccount
) -> None:
    other = create_account(runtime, "Globex")
    add_member(runtime, account, "both@example.org", Role.MEMBER)
    add_member(runtime, other, "both@example.org", Role.ADMIN)

    page.goto("/console/sign-in")
    fill_sign_in(page, "both@example.org", PASSWORD)
    expect_path(page, "/console/servers")
    expect(page.get_by_text("No servers you can reach yet.")).to_be_visible()

    page.get_by_role("link", name="Two-factor", exact=True).click()
    key = page.locator("code.secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]+", key), key
    page.get_by_label("Code from the app").fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    expect(page.locator(".codes li")).to_have_count(10)
    shoot(page, "recovery-codes")

    page.get_by_role("link", name="Switch account").click()
    expect_path(page, "/console/accounts")
    expect(page.get_by_text("Current")).to_be_visible()
    shoot(page, "accounts")
    page.get_by_role("button", name="Switch to Globex").click()
    expect_path(page, "/console/servers")
    # An Admin in Globex: the audit log is hers to read there.
    expect(page.get_by_role("navigation").get_by_role("link", name="Audit log")).to_be_visible()

    # A personal token, created and then revoked after the confirmation page.
    page.get_by_role("link", name="Your tokens").click()
    page.get_by_label("Name").fill("deploy script")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Personal token “deploy script” created")).to_be_visible()
    expect(page.get_by_label("Token")).to_have_value(re.compile(r"^pw_[0-9a-f]{64}$"))
    page.get_by_role("link", name="Back to your tokens").click()
    page.get_by_role("link", name="Revoke the personal token deploy script").click()
    shoot(page, "confirm-revoke")
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("deploy script")

    # A link that is no good says so on a page of its own.
    page.goto("/console/invitations/accept/" + "0" * 64)
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    shoot(page, "message")
