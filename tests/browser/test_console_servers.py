"""The owner's servers in a real browser: pinning one to the top, opening its page, revealing
its tokens after typing the password again, and changing a setting."""

from __future__ import annotations

from datetime import timedelta

import httpx
from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from postwarden.accounts.service import NewAccount
from postwarden.db import utcnow
from postwarden.runtime import Runtime
from postwarden.tokens.service import TokenService
from postwarden.users.models import User, UserSession
from tests.browser.conftest import Shoot
from tests.browser.test_console_sign_in import expect_csrf_in_every_form, expect_path, fill_sign_in
from tests.surfaces.team.helpers import create_server


def age_password_confirmation(runtime: Runtime, email: str) -> None:
    """As if the password was last typed 16 minutes ago: the next sensitive step asks again."""
    with runtime.db.session_scope() as session:
        user_id = session.scalar(select(User.id).where(User.email == email))
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == user_id)
            .values(password_confirmed_at=utcnow() - timedelta(minutes=16))
        )


def test_the_owner_pins_a_server_reveals_its_tokens_and_changes_a_setting(
    page: Page, shoot: Shoot, http: httpx.Client, runtime: Runtime, account: NewAccount
) -> None:
    for name in ("Alpha", "Beta"):
        create_server(http, account, name)
    zulu = create_server(http, account, "Zulu")
    with runtime.db.session_scope(write=False) as session:
        secret = TokenService(session, runtime).server_tokens(zulu)[0]

    page.goto("/console/sign-in")
    fill_sign_in(page, account.owner_email, account.owner_password)
    expect_path(page, "/console/servers")
    servers = page.get_by_role("list").filter(has=page.get_by_role("link", name="Alpha")).get_by_role("listitem")
    expect(servers.first).to_contain_text("Alpha")

    pin = page.get_by_role("button", name="Pin Zulu")
    expect(pin).to_have_attribute("aria-pressed", "false")
    pin.click()
    expect(page.get_by_role("status")).to_have_text("Zulu is pinned to the top of your list.")
    expect(servers.first).to_contain_text("Zulu")
    expect(servers.nth(1)).to_contain_text("Alpha")
    expect(page.get_by_role("button", name="Pin Zulu")).to_have_attribute("aria-pressed", "true")
    expect_csrf_in_every_form(page)
    shoot(page, "servers-pinned")

    page.get_by_role("link", name="Zulu").click()
    expect_path(page, f"/console/servers/{zulu}")
    expect(page.get_by_role("heading", name="Zulu")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="outbound")).to_contain_text("Default Transactional Stream")
    expect(page.get_by_text(secret)).to_have_count(0)
    expect_csrf_in_every_form(page)

    age_password_confirmation(runtime, account.owner_email)
    page.get_by_role("button", name="Reveal tokens").click()
    expect(page.get_by_role("heading", name="Confirm your password")).to_be_visible()
    page.get_by_label("Your password").fill(account.owner_password)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("list", name="API tokens of Zulu")).to_contain_text(secret)

    page.get_by_label("Track opens").check()
    page.get_by_label("Track links").select_option(label="In HTML only")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    expect(page.get_by_label("Track opens")).to_be_checked()
    expect(page.get_by_label("Track links")).to_have_value("HtmlOnly")
    expect(page.get_by_text(secret)).to_have_count(0)  # hidden again once the page is left
    shoot(page, "server")

    page.get_by_role("link", name="← Servers").click()
    expect_path(page, "/console/servers")
