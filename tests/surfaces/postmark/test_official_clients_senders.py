"""The official clients through the sender signature scenario: create, confirm through the
link mailed over real SMTP, edit, renew DKIM, delete."""

from __future__ import annotations

import re

import httpx
import pytest
from postmarker.core import PostmarkClient
from postmarker.exceptions import ClientError

from postwarden.accounts.service import NewAccount
from postwarden.tasks import TaskQueue
from tests.conftest import LiveServer
from tests.services.test_mail import Inbox, smtp
from tests.surfaces.postmark.test_official_clients import assert_js_error, run_node

__all__ = ["smtp"]  # the fixture is found by pytest through this import

LINK = re.compile(r"http://postwarden\.test(/senders/confirm/[0-9a-f]+)")


@pytest.fixture(autouse=True)
def mail_relay(live_server: LiveServer, smtp: tuple[Inbox, int]) -> None:
    live_server.runtime.settings.smtp_host, live_server.runtime.settings.smtp_port = "127.0.0.1", smtp[1]


def follow_latest_link(live_server: LiveServer, inbox: Inbox) -> httpx.Response:
    queue = TaskQueue(live_server.runtime)
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)
    payload = inbox.messages[-1].get_payload(decode=True)
    assert isinstance(payload, bytes)
    match = LINK.search(payload.decode())
    assert match is not None
    return httpx.get(live_server.base_url + match.group(1))


def test_postmark_js_sender_scenario(live_server: LiveServer, account: NewAccount, smtp: tuple[Inbox, int]) -> None:
    inbox, _port = smtp
    env = {"PW_ACCOUNT_TOKEN": account.account_token, "PW_EMAIL": "node@senders.example.com"}
    created = run_node("account_senders.mjs", live_server, PW_PHASE="create", **env)
    signature = created["create_signature"]
    assert (signature["EmailAddress"], signature["Confirmed"]) == ("node@senders.example.com", False)
    assert signature["DKIMPendingHost"].endswith("pm._domainkey.senders.example.com")
    assert_js_error(created["create_duplicate"], 422, 504, "ApiInputError")
    assert_js_error(created["create_public"], 422, 503, "ApiInputError")
    assert created["get_signatures"]["TotalCount"] == 1
    assert created["resend"] == {
        "ErrorCode": 0,
        "Message": "Confirmation email for Sender Signature node@senders.example.com was re-sent.",
    }

    assert follow_latest_link(live_server, inbox).status_code == 200
    after = run_node("account_senders.mjs", live_server, PW_PHASE="after", PW_SENDER_ID=str(signature["ID"]), **env)
    assert after["get_signature"]["Confirmed"] is True
    assert_js_error(after["resend_confirmed"], 422, 506, "ApiInputError")
    assert after["edit_signature"]["Name"] == "Renamed"
    assert_js_error(after["new_dkim"], 422, 505, "ApiInputError")  # the first key still waits for DNS
    assert after["delete_signature"] == {"ErrorCode": 0, "Message": "Signature node@senders.example.com removed."}
    assert_js_error(after["get_deleted"], 422, 501, "ApiInputError")


def test_postmarker_sender_scenario(live_server: LiveServer, account: NewAccount, smtp: tuple[Inbox, int]) -> None:
    inbox, _port = smtp
    client = PostmarkClient(
        server_token="unused-here", account_token=account.account_token, root_api_url=live_server.base_url + "/"
    )
    sender = client.senders.create(FromEmail="py@senders.example.com", Name="Py Sender")
    assert sender.Confirmed is False
    assert [s.EmailAddress for s in client.senders.all()] == ["py@senders.example.com"]
    assert follow_latest_link(live_server, inbox).status_code == 200
    assert client.senders.get(sender.ID).Confirmed is True
    with pytest.raises(ClientError) as confirmed:
        client.senders.resend(sender.ID)
    assert confirmed.value.error_code == 506
    assert client.senders.edit(sender.ID, Name="Renamed")["Name"] == "Renamed"
    assert client.senders.delete(sender.ID) == "Signature py@senders.example.com removed."
    with pytest.raises(ClientError) as gone:
        client.senders.get(sender.ID)
    assert gone.value.error_code == 501
