"""The whole people journey in a real browser, as the console promises it: the Owner signs in
with two-factor, invites two people as View only on one server, one of them accepts through the
link mailed over real SMTP and sees only that server, gets Full access through "apply to all";
the Owner hands ownership to an Admin (and loses Make Owner), the account starts requiring
two-factor (the new member is sent to set it up), a user is deleted after the password prompt,
and the audit log shows every step."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from postwarden.accounts.service import NewAccount
from postwarden.policy import Role
from postwarden.runtime import Runtime
from tests.browser.conftest import VIEWPORTS, Shoot
from tests.browser.test_console_sign_in import enable_two_factor, expect_path, fill_sign_in
from tests.conftest import LiveServer
from tests.services.test_mail import Inbox, smtp, wait_for
from tests.surfaces.postmark.test_senders import deliver_all
from tests.surfaces.team.helpers import add_member, create_server, next_code

__all__ = ["smtp"]  # a fixture, found by pytest through this import

LINK = re.compile(r"http://postwarden\.test(/console/invitations/accept/[0-9a-f]+)")


def deliver_mail(runtime: Runtime) -> None:
    """Runs the mail queue on a thread of its own: delivery uses asyncio, and Playwright's loop
    owns this one."""
    worker = threading.Thread(target=deliver_all, args=(runtime,))
    worker.start()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the mail queue did not finish in 30 s"


def link_mailed_to(inbox: Inbox, address: str) -> str:
    for message in inbox.messages:
        if message["To"] == address:
            body = message.get_payload(decode=True)
            assert isinstance(body, bytes)
            found = LINK.search(body.decode())
            assert found is not None, body
            return found.group(1)
    raise AssertionError(f"no mail to {address}: {[m['To'] for m in inbox.messages]}")


def open_member(page: Page, email: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    page.get_by_role("main").get_by_role("link", name=email, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(email)


@pytest.fixture
def invitee_page(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A second person's browser: a profile of its own."""
    context = browser.new_context(base_url=live_server.base_url, viewport=VIEWPORTS[1280])
    yield context.new_page()
    context.close()


def test_the_people_journey(
    page: Page,
    invitee_page: Page,
    *,
    shoot: Shoot,
    http: httpx.Client,
    runtime: Runtime,
    account: NewAccount,
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    runtime.settings.smtp_host, runtime.settings.smtp_port = "127.0.0.1", port
    create_server(http, account, "Production")
    create_server(http, account, "Staging")
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    add_member(runtime, account, "leaver@example.org", Role.MEMBER)
    secret, spent = enable_two_factor(http, account)

    # The Owner signs in with her second factor.
    page.goto("/console/sign-in")
    fill_sign_in(page, account.owner_email, account.owner_password)
    page.get_by_label("Code", exact=True).fill(next_code(secret, spent))
    page.get_by_role("button", name="Verify").click()
    expect_path(page, "/console/servers")

    # She invites two people as View only on Production.
    page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    page.get_by_text("Invite people").click()
    page.get_by_label("Emails").fill("ann@example.org, bob@example.org")
    page.get_by_label("Role").select_option(Role.MEMBER.value)
    page.get_by_label("Production").select_option(label="View only")
    shoot(page, "users-invite")
    page.get_by_role("button", name="Invite", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Invitations sent: 2.")

    # Ann accepts through the link mailed to her, and sees Production only.
    deliver_mail(runtime)
    wait_for(lambda: len(inbox.messages) >= 2)
    invitee_page.goto(link_mailed_to(inbox, "ann@example.org"))
    expect(invitee_page.get_by_role("heading", name="Join Acme")).to_be_visible()
    shoot(invitee_page, "invitation")
    invitee_page.get_by_label("Your name").fill("Ann")
    invitee_page.get_by_label("Choose a password").fill("ann's long password")
    invitee_page.get_by_role("button", name="Accept the invitation").click()
    expect_path(invitee_page, "/console/servers")
    expect(invitee_page.locator(".servers li")).to_have_count(1)
    expect(invitee_page.locator(".servers")).to_contain_text("Production")
    expect(invitee_page.locator(".servers")).not_to_contain_text("Staging")

    # The Owner gives her Full access on every server with "apply to all".
    open_member(page, "ann@example.org")
    shoot(page, "member")
    page.get_by_label("Apply access to all servers").select_option(label="Full access")
    page.get_by_role("button", name="Apply to all").click()
    expect(page.get_by_role("status")).to_have_text("Server access saved.")
    for server in ("Production", "Staging"):
        expect(page.get_by_label(server)).to_have_value("FullAccess")
    invitee_page.reload()
    expect(invitee_page.locator(".servers li")).to_have_count(2)

    # She makes the Admin the Owner, confirming it, and has no Make Owner button any more.
    open_member(page, "admin@example.org")
    page.get_by_role("link", name="Make Owner").click()
    shoot(page, "make-owner")
    page.get_by_role("button", name="Make Owner").click()
    expect(page.get_by_role("status")).to_contain_text("admin@example.org is now the Owner.")
    expect(page.get_by_role("link", name="Make Owner")).to_have_count(0)
    open_member(page, account.owner_email)
    expect(page.get_by_role("link", name="Make Owner")).to_have_count(0)

    # She requires two-factor authentication; Ann, without it, is sent to set it up.
    page.get_by_role("navigation").get_by_role("link", name="Account", exact=True).click()
    page.get_by_label("Require two-factor authentication").check()
    page.get_by_role("button", name="Save two-factor setting").click()
    expect(page.get_by_role("status")).to_have_text("Two-factor authentication is required of every member.")
    invitee_page.get_by_role("navigation").get_by_role("link", name="Users", exact=True).click()
    expect_path(invitee_page, "/console/two-factor")
    expect(invitee_page.get_by_role("alert")).to_contain_text("requires two-factor authentication")
    shoot(invitee_page, "two-factor-setup")

    # She deletes a user, after typing her password again.
    open_member(page, "leaver@example.org")
    page.get_by_role("button", name="Delete user").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    shoot(page, "confirm-password")
    page.get_by_label("Your password").fill(account.owner_password)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_have_text("User deleted from this account.")
    expect(page.get_by_role("link", name="leaver@example.org")).to_have_count(0)

    # The audit log shows each step, done through the console.
    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Through").select_option("console")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"via=console"))
    rows = page.locator("table tbody tr")
    for action, about in [
        ("session.created", account.owner_email),
        ("invitation.created", "ann@example.org"),
        ("invitation.created", "bob@example.org"),
        ("invitation.accepted", "ann@example.org"),
        ("server_access.updated", "ann@example.org"),
        ("account.ownership_transferred", "admin@example.org"),
        ("account.updated", "Acme"),
        ("session.password_confirmed", account.owner_email),
        ("membership.deleted", "leaver@example.org"),
    ]:
        did = page.locator("td:nth-child(3)", has_text=re.compile(f"^{re.escape(action)}$"))
        row = rows.filter(has=did).filter(has=page.locator("td:nth-child(4)", has_text=about)).first
        expect(row).to_be_visible()
        expect(row.locator("td:nth-child(2)")).to_contain_text("console")
    shoot(page, "audit-log-journey")
