"""The console's first journey: signing in (with and without a second factor), failing to, and
signing out, in a real browser, with the keyboard alone too."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import httpx
import pyotp
from playwright.sync_api import BrowserContext, Page, expect

from postwarden.accounts.service import NewAccount
from tests.browser.conftest import Shoot
from tests.surfaces.team.helpers import next_code, sign_in

SIGN_IN = "/console/sign-in"
SERVERS = "/console/servers"


def path_of(page: Page) -> str:
    return urlparse(page.url).path


def expect_path(page: Page, path: str) -> None:
    """The page has arrived at ``path`` (whatever the query string, such as a ``next``)."""
    page.wait_for_url(lambda url: urlparse(url).path == path)
    assert path_of(page) == path


def expect_csrf_in_every_form(page: Page) -> None:
    """Every form that posts carries a token (a GET form, such as a search, changes nothing and
    would only leak the token into URLs)."""
    forms = page.locator('form[method="post" i]')
    assert forms.count() > 0, f"no form that posts on {page.url}"
    for form in forms.all():
        token = form.locator('input[type="hidden"][name="csrf_token"]')
        expect(token).to_have_count(1)
        assert token.get_attribute("value"), f"an empty csrf_token in a form on {page.url}"


def fill_sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def expect_servers_page(page: Page) -> None:
    expect_path(page, SERVERS)
    expect(page.get_by_role("heading", name="Servers")).to_be_visible()
    navigation = page.get_by_role("navigation")
    for link in ("Servers", "Users", "Audit log"):
        expect(navigation.get_by_role("link", name=link, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def enable_two_factor(http: httpx.Client, account: NewAccount) -> tuple[str, str]:
    """Two-factor for the owner, set up through the API; returns the secret and the code spent on it."""
    headers = sign_in(http, account.owner_email, account.owner_password)
    started = http.post("/me/two-factor", headers=headers)
    assert started.status_code == 200, started.text
    secret = str(started.json()["Secret"])
    code = pyotp.TOTP(secret).now()
    confirmed = http.post("/me/two-factor/confirm", json={"Code": code}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    return secret, code


def test_the_owner_signs_in_and_out(page: Page, context: BrowserContext, account: NewAccount, shoot: Shoot) -> None:
    page.goto("/console")
    expect_path(page, SIGN_IN)
    expect(page.get_by_label("Email")).to_be_visible()
    expect(page.get_by_label("Password")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect_csrf_in_every_form(page)
    shoot(page, "sign-in")
    before = {cookie["name"] for cookie in context.cookies()}

    fill_sign_in(page, account.owner_email, account.owner_password)
    expect_servers_page(page)
    expect_csrf_in_every_form(page)
    shoot(page, "servers")

    cookies = context.cookies()
    assert {cookie["name"] for cookie in cookies} - before, "signed in without a session cookie"
    for cookie in cookies:
        assert cookie["httpOnly"], cookie["name"]
        assert cookie["sameSite"] == "Lax", cookie["name"]

    page.get_by_role("button", name="Sign out").click()
    expect_path(page, SIGN_IN)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(SERVERS)
    expect_path(page, SIGN_IN)


def test_a_wrong_password_stays_on_the_sign_in_page(page: Page, account: NewAccount) -> None:
    page.goto(SIGN_IN)
    fill_sign_in(page, account.owner_email, "not the password at all")
    expect(page.get_by_text(re.compile("Sign-in failed"))).to_be_visible()
    expect_path(page, SIGN_IN)
    expect(page.get_by_label("Password")).to_be_visible()
    expect_csrf_in_every_form(page)
    page.goto(SERVERS)
    expect_path(page, SIGN_IN)  # and no session came of it


def test_a_user_with_two_factor_is_asked_for_a_code(
    page: Page, account: NewAccount, http: httpx.Client, shoot: Shoot
) -> None:
    secret, spent = enable_two_factor(http, account)

    page.goto(SIGN_IN)
    fill_sign_in(page, account.owner_email, account.owner_password)
    code_input = page.get_by_label("Code", exact=True)  # not "Recovery code"
    expect(code_input).to_be_visible()
    expect(page.get_by_role("button", name="Verify")).to_be_visible()
    assert path_of(page) != SERVERS
    expect_csrf_in_every_form(page)
    shoot(page, "two-factor-code")

    code_input.fill(next_code(secret, spent))
    page.get_by_role("button", name="Verify").click()
    expect_servers_page(page)


def test_the_sign_in_form_works_with_the_keyboard_alone(page: Page, account: NewAccount) -> None:
    page.goto(SIGN_IN)
    email = page.get_by_label("Email")
    for _ in range(20):  # past a skip link or a header, whatever comes first
        if email.evaluate("element => element === document.activeElement"):
            break
        page.keyboard.press("Tab")
    expect(email).to_be_focused()
    page.keyboard.type(account.owner_email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(account.owner_password)
    page.keyboard.press("Enter")
    expect_servers_page(page)
