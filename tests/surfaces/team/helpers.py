"""Shared steps of the team API tests: members made directly through the services, and
signing in over HTTP as a person would."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pyotp
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.identity import Actor
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.users.service import UserService

PASSWORD = "correct horse battery"
#: In-process (TestClient) or over a real socket (httpx against a live server).
HttpClient = TestClient | httpx.Client


def add_member(
    runtime: Runtime,
    account: NewAccount,
    email: str,
    role: Role,
    *,
    access: dict[int, ServerAccess] | None = None,
    limited: bool = False,
) -> int:
    """A user who joined ``account`` with ``role``; returns the user id."""
    with runtime.db.session_scope() as session:
        users = UserService(session, Actor.system("tests"), runtime)
        user = users.find_user_by_email(email) or users.create_user(email, PASSWORD)
        users.add_membership(account.account.id, user, role, servers_limited=limited, server_access=access)
        return user.id


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: HttpClient, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, str]:
    answer = client.post("/sessions", json={"Email": email, "Password": password, **extra})
    assert answer.status_code == 200, answer.text
    return bearer(answer.json()["SessionToken"])


def owner_headers(client: HttpClient, account: NewAccount) -> dict[str, str]:
    return sign_in(client, account.owner_email, account.owner_password)


def create_server(client: HttpClient, account: NewAccount, name: str) -> int:
    answer = client.post("/servers", json={"Name": name}, headers={"X-Postmark-Account-Token": account.account_token})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["ID"])


def next_code(secret: str, after: str | None = None) -> str:
    """A valid TOTP code for ``secret`` that differs from ``after`` (codes are single use):
    the next step's code, which the server accepts within its drift window."""
    totp = pyotp.TOTP(secret)
    step = int(time.time() // totp.interval)
    for candidate in (totp.generate_otp(step), totp.generate_otp(step + 1)):
        if candidate != after:
            return candidate
    raise AssertionError("no fresh code")


#: A mailed invitation link opens the console's page; the group is the API's path for the same token.
LINK = re.compile(r"http://postwarden\.test/console(/invitations/accept/[0-9a-f]+)")
