"""A forgotten password in a real browser: from the sign-in page to a mailed link (through the
real queue and a real SMTP server) and back to signing in with the new password."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlparse

from playwright.sync_api import Page, expect

from postwarden.accounts.service import NewAccount
from postwarden.runtime import Runtime
from tests.browser.conftest import Shoot
from tests.browser.test_console_sign_in import (
    SIGN_IN,
    expect_csrf_in_every_form,
    expect_path,
    expect_servers_page,
    fill_sign_in,
)
from tests.services.test_mail import Inbox, smtp
from tests.surfaces.postmark.test_senders import deliver_all, text_of

__all__ = ["smtp"]  # the fixture, found by pytest through this import

LINK = re.compile(r"http://postwarden\.test/console/reset-password/[0-9a-f]{64}")
NEW_PASSWORD = "a brand new passphrase"


def deliver_in_a_thread(runtime: Runtime) -> None:
    """Delivery runs asyncio, which this thread (Playwright's) must not."""
    thread = threading.Thread(target=deliver_all, args=(runtime,))
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "mail delivery hung"


def test_a_forgotten_password_is_replaced_through_a_mailed_link(
    page: Page, shoot: Shoot, runtime: Runtime, account: NewAccount, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    runtime.settings.smtp_host, runtime.settings.smtp_port = "127.0.0.1", port

    page.goto(SIGN_IN)
    page.get_by_role("link", name="Forgot your password?").click()
    expect_path(page, "/console/forgot-password")
    page.get_by_label("Email").fill(account.owner_email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account uses that address, we sent a link")
    expect_csrf_in_every_form(page)
    shoot(page, "forgot-password")

    deliver_in_a_thread(runtime)
    (mail,) = inbox.messages
    link = LINK.search(text_of(mail))
    assert link is not None and mail["To"] == account.owner_email
    page.goto(urlparse(link.group(0)).path)  # the mailed address, on this test's server
    expect(page.get_by_text(account.owner_email)).to_be_visible()
    expect_csrf_in_every_form(page)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD + "?")
    page.get_by_role("button", name="Set the new password").click()
    expect(page.get_by_role("alert")).to_contain_text("The two passwords differ")
    shoot(page, "reset-password")

    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the new password").click()
    expect_path(page, SIGN_IN)
    expect(page.get_by_role("status")).to_contain_text("Your password was changed")

    fill_sign_in(page, account.owner_email, account.owner_password)
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    fill_sign_in(page, account.owner_email, NEW_PASSWORD)
    expect_servers_page(page)
