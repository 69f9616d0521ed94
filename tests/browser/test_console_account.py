"""The account and personal tokens pages in a real browser, as the Owner: requiring
two-factor authentication, a SCIM token and what a SCIM group grants, an account token
revealed, a personal token created; each secret shown once on the page that made it."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from postwarden.accounts.service import NewAccount
from postwarden.runtime import Runtime
from tests.browser.conftest import Shoot
from tests.browser.test_console_sign_in import (
    enable_two_factor,
    expect_csrf_in_every_form,
    expect_path,
    expect_servers_page,
    fill_sign_in,
)
from tests.surfaces.scim.helpers import create_group, issue_token
from tests.surfaces.team.helpers import create_server, next_code

ACCOUNT = "/console/account"
TOKENS = "/console/tokens"


def test_the_owner_sets_up_the_account_and_creates_tokens(
    page: Page, shoot: Shoot, http: httpx.Client, runtime: Runtime, account: NewAccount
) -> None:
    create_server(http, account, "Production")
    create_server(http, account, "Staging")
    create_group(http, issue_token(runtime, account, "Entra ID").headers, "Support")
    secret, spent = enable_two_factor(http, account)  # requiring it needs one's own first

    page.goto("/console/sign-in")
    fill_sign_in(page, account.owner_email, account.owner_password)
    page.get_by_label("Code", exact=True).fill(next_code(secret, spent))
    page.get_by_role("button", name="Verify").click()
    expect_servers_page(page)

    page.get_by_role("navigation").get_by_role("link", name="Account", exact=True).click()
    expect_path(page, ACCOUNT)
    expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    expect(page.get_by_text("Mail for this account is sent.")).to_be_visible()
    expect_csrf_in_every_form(page)

    page.get_by_label("Require two-factor authentication").check()
    page.get_by_role("button", name="Save two-factor setting").click()
    expect(page.get_by_role("status")).to_have_text("Two-factor authentication is required of every member.")
    expect(page.get_by_label("Require two-factor authentication")).to_be_checked()

    page.get_by_role("button", name="Reveal the account token Default").click()
    expect(page.get_by_label("Token")).to_have_value(account.account_token)
    page.get_by_role("link", name="Back to the account").click()

    page.get_by_label("New SCIM token").fill("Okta")
    page.get_by_role("button", name="Create SCIM token").click()
    expect(page.get_by_role("heading", name="SCIM token “Okta” created")).to_be_visible()
    expect(page.get_by_text("Copy it now.")).to_be_visible()
    expect(page.get_by_label("Token")).to_have_value(re.compile(r"^pwscim_[0-9a-f]{64}$"))
    shoot(page, "token-shown")
    page.get_by_role("link", name="Back to the account").click()
    expect_path(page, ACCOUNT)
    expect(page.get_by_role("row").filter(has_text="Okta")).to_contain_text("never")

    page.get_by_text("Edit what “Support” grants").click()
    page.get_by_label("Role", exact=True).select_option("Technical")
    page.get_by_label("Production", exact=True).select_option("View only")
    page.get_by_role("button", name="Save “Support”").click()
    expect(page.get_by_role("status")).to_have_text("Saved what the group “Support” grants.")
    expect(page.get_by_role("listitem").filter(has_text="Support")).to_contain_text("Production (View only)")
    shoot(page, "account")

    page.get_by_role("navigation").get_by_role("link", name="Your tokens").click()
    expect_path(page, TOKENS)
    expect(page.get_by_text("You have no personal token in this account.")).to_be_visible()
    expect_csrf_in_every_form(page)
    page.get_by_label("Name", exact=True).fill("deploy script")
    page.get_by_label("Expires in (days)").fill("90")
    page.get_by_label("servers:read", exact=True).check()
    shoot(page, "tokens-create")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Personal token “deploy script” created")).to_be_visible()
    expect(page.get_by_label("Token")).to_have_value(re.compile(r"^pw_[0-9a-f]{64}$"))
    page.get_by_role("link", name="Back to your tokens").click()
    row = page.get_by_role("row").filter(has_text="deploy script")
    expect(row).to_contain_text("servers:read")
    expect(row).to_contain_text("All you reach")
    shoot(page, "tokens")
