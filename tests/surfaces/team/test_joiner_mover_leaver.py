"""A person's whole life in an account, only through the API and a real mailbox: invited,
accepts the mailed link, enrols TOTP, changes role, loses servers, is removed; afterwards
nothing they held works."""

from __future__ import annotations

import httpx
import pyotp

from postwarden.accounts.service import NewAccount
from postwarden.tasks import TaskQueue
from tests.conftest import LiveServer
from tests.services.test_mail import Inbox, smtp
from tests.surfaces.team.helpers import LINK, bearer, next_code

__all__ = ["smtp"]  # the fixture is found by pytest through this import


def deliver_mail(live_server: LiveServer) -> None:
    queue = TaskQueue(live_server.runtime)
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)


def test_joiner_mover_leaver(live_server: LiveServer, account: NewAccount, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    live_server.runtime.settings.smtp_host, live_server.runtime.settings.smtp_port = "127.0.0.1", port
    api = httpx.Client(base_url=live_server.base_url)
    admin = {"X-Postmark-Account-Token": account.account_token}
    staging = api.post("/servers", json={"Name": "Staging"}, headers=admin).json()["ID"]
    production = api.post("/servers", json={"Name": "Production"}, headers=admin).json()["ID"]

    # Joiner: invited as View only on staging, accepts through the mailed link.
    invited = api.post(
        "/invitations",
        json={
            "Emails": ["Dana@Example.com"],
            "Role": "Member",
            "Servers": [{"ServerID": staging, "Access": "ViewOnly"}],
        },
        headers=admin,
    )
    assert invited.status_code == 200, invited.text
    assert invited.json()["Invitations"][0]["Email"] == "dana@example.com"
    deliver_mail(live_server)
    (mail,) = [m for m in inbox.messages if m["To"] == "dana@example.com"]
    assert "Acme" in mail["Subject"]
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    link = LINK.search(body.decode())
    assert link is not None
    page = api.get(f"/console{link.group(1)}")  # the page the mail opens
    assert page.status_code == 200 and "dana@example.com" in page.text
    accepted = api.post(link.group(1), json={"Name": "Dana", "Password": "a long enough secret"})
    assert accepted.status_code == 200, accepted.text
    dana_id = accepted.json()["UserID"]
    session = bearer(accepted.json()["SessionToken"])
    assert api.post(link.group(1), json={"Password": "a long enough secret"}).json()["ErrorCode"] == 9024  # single use

    me = api.get("/me", headers=session).json()
    assert me["Role"] == "Member"
    assert me["Servers"] == [{"ServerID": staging, "Name": "Staging", "Access": "ViewOnly"}]
    listed = api.get("/servers?count=10&offset=0", headers=session).json()
    assert [s["Name"] for s in listed["Servers"]] == ["Staging"]
    assert listed["Servers"][0]["ApiTokens"] == []  # View only sees no tokens

    # She enrols TOTP; from then on signing in needs a code, and a code works once.
    enrolment = api.post("/me/two-factor", headers=session).json()
    assert enrolment["QrCode"].startswith("data:image/svg+xml")
    code = pyotp.TOTP(enrolment["Secret"]).now()
    confirmed = api.post("/me/two-factor/confirm", json={"Code": code}, headers=session).json()
    assert len(confirmed["RecoveryCodes"]) == 10
    no_code = api.post("/sessions", json={"Email": "dana@example.com", "Password": "a long enough secret"})
    assert no_code.json()["ErrorCode"] == 9029
    replayed = api.post(
        "/sessions", json={"Email": "dana@example.com", "Password": "a long enough secret", "Code": code}
    )
    assert replayed.json()["ErrorCode"] == 9027
    fresh = api.post(
        "/sessions",
        json={
            "Email": "dana@example.com",
            "Password": "a long enough secret",
            "Code": next_code(enrolment["Secret"], code),
        },
    )
    assert fresh.status_code == 200, fresh.text
    second_session = bearer(fresh.json()["SessionToken"])
    personal = api.post("/me/tokens", json={"Name": "laptop"}, headers=second_session).json()
    token = bearer(personal["Token"])
    assert api.get("/me", headers=token).json()["Email"] == "dana@example.com"

    # Mover: made Technical limited to production, then a Member again with full access everywhere.
    moved = api.put(f"/users/{dana_id}", json={"Role": "Technical", "ServersLimited": True}, headers=admin)
    assert moved.status_code == 200, moved.text
    api.put(
        f"/users/{dana_id}/servers",
        json={
            "Servers": [{"ServerID": production, "Access": "FullAccess"}, {"ServerID": staging, "Access": "NoAccess"}]
        },
        headers=admin,
    )
    assert [s["Name"] for s in api.get("/servers?count=10&offset=0", headers=token).json()["Servers"]] == ["Production"]
    api.put(f"/users/{dana_id}", json={"Role": "Member"}, headers=admin)
    everywhere = api.put(f"/users/{dana_id}/servers", json={"ApplyToAllServers": "FullAccess"}, headers=admin).json()
    assert {s["Access"] for s in everywhere["Servers"]} == {"FullAccess"}
    production_view = api.get(f"/servers/{production}", headers=token).json()
    assert production_view["ApiTokens"]  # Full access sees the tokens

    # Leaver: removed; every session and token she held stops working at once.
    removed = api.delete(f"/users/{dana_id}", headers=admin)
    assert removed.status_code == 200, removed.text
    for credential in (session, second_session, token):
        refused = api.get("/me", headers=credential)
        assert refused.status_code == 401 and refused.json()["ErrorCode"] == 10
        assert api.get("/servers?count=10&offset=0", headers=credential).status_code == 401
    assert api.get(f"/users/{dana_id}", headers=admin).json()["ErrorCode"] == 9014
