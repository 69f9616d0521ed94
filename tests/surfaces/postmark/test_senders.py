"""The Sender Signatures API over HTTP; confirmation links go through the real queue to a
real SMTP server (aiosmtpd) and back."""

from __future__ import annotations

import re
from datetime import timedelta
from email.message import Message
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.domains.models import Domain
from postwarden.mail.models import OutboxMessage
from postwarden.runtime import Runtime
from postwarden.senders.models import ConfirmationToken
from postwarden.tasks import TaskQueue
from tests.conftest import create_account
from tests.dns_server import DnsTestServer, dns_server
from tests.services.test_mail import Inbox, smtp
from tests.surfaces.postmark.test_servers import assert_error

__all__ = ["dns_server", "smtp"]  # fixtures found by pytest through these imports

SENDER_FIELDS = [
    "ID", "Domain", "EmailAddress", "ReplyToEmailAddress", "Name", "Confirmed", "SPFVerified", "SPFHost",
    "SPFTextValue", "DKIMVerified", "WeakDKIM", "DKIMHost", "DKIMTextValue", "DKIMPendingHost",
    "DKIMPendingTextValue", "DKIMRevokedHost", "DKIMRevokedTextValue", "SafeToRemoveRevokedKeyFromDNS",
    "DKIMUpdateStatus", "ReturnPathDomain", "ReturnPathDomainVerified", "ReturnPathDomainCNAMEValue",
    "ConfirmationPersonalNote",
]  # fmt: skip
LINK = re.compile(r"http://postwarden\.test/senders/confirm/([0-9a-f]{64})")


@pytest.fixture(autouse=True)
def dns_for_tests(runtime: Runtime, dns_server: DnsTestServer) -> None:
    runtime.settings.dns_nameservers = [dns_server.nameserver]
    runtime.settings.dns_timeout_seconds = 0.5


def create(client: TestClient, headers: dict[str, str], email: str = "Jane@Example.com", **body: Any) -> Any:
    response = client.post("/senders", json={"FromEmail": email, "Name": "Jane", **body}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def outbox(runtime: Runtime) -> list[OutboxMessage]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def text_of(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def deliver_all(runtime: Runtime) -> None:
    queue = TaskQueue(runtime)
    while (task := queue.huey.dequeue()) is not None:
        queue.huey.execute(task)


def test_create_returns_every_field_and_shares_dkim_with_the_domain(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    sender = create(client, account_headers, ReplyToEmail="help@example.com", ConfirmationPersonalNote="Hi Jane")
    assert list(sender) == SENDER_FIELDS
    assert (sender["EmailAddress"], sender["Domain"], sender["Name"]) == ("jane@example.com", "example.com", "Jane")
    assert sender["ReplyToEmailAddress"] == "help@example.com" and sender["Confirmed"] is False
    assert sender["ConfirmationPersonalNote"] == "Hi Jane" and sender["ReturnPathDomain"] == ""
    assert sender["DKIMUpdateStatus"] == "Pending" and sender["DKIMPendingHost"].endswith("._domainkey.example.com")
    assert client.get(f"/senders/{sender['ID']}", headers=account_headers).json() == sender

    (domain,) = client.get("/domains?count=10&offset=0", headers=account_headers).json()["Domains"]
    shown = client.get(f"/domains/{domain['ID']}", headers=account_headers).json()
    assert shown["DKIMPendingTextValue"] == sender["DKIMPendingTextValue"]
    second = create(client, account_headers, "news@example.com")
    assert second["DKIMPendingHost"] == sender["DKIMPendingHost"]  # one key per domain, not per address
    with runtime.db.session_scope(write=False) as session:
        assert len(session.scalars(select(Domain)).all()) == 1

    listing = client.get("/senders?count=1&offset=0", headers=account_headers).json()
    assert listing == {
        "TotalCount": 2,
        "SenderSignatures": [
            {
                "ID": sender["ID"],
                "Domain": "example.com",
                "EmailAddress": "jane@example.com",
                "ReplyToEmailAddress": "help@example.com",
                "Name": "Jane",
                "Confirmed": False,
            }
        ],
    }


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 520),
        ({"FromEmail": "jane@example.com"}, 520),
        ({"Name": "Jane"}, 520),
        ({"FromEmail": "jane@example.com", "Name": "  "}, 520),
        ({"FromEmail": "jane@example.com", "Name": "x" * 256}, 521),
        ({"FromEmail": "jane@example.com", "Name": "J", "ConfirmationPersonalNote": "n" * 401}, 521),
        ({"FromEmail": "not an address", "Name": "J"}, 522),
        ({"FromEmail": "jane@example", "Name": "J"}, 522),
        ({"FromEmail": "jane@example.com", "Name": "J", "ReplyToEmail": "nope"}, 522),
        ({"FromEmail": "jane@example.com", "Name": "J", "ReturnPathDomain": "bounces.other.com"}, 522),
        ({"FromEmail": "jane@Gmail.com", "Name": "J"}, 503),
        ({"FromEmail": "jane@yahoo.com", "Name": "J"}, 503),
        ({"FromEmail": "jane@gmx.de", "Name": "J"}, 503),
        ({"FromEmail": "jane@hotmail.co.uk", "Name": "J"}, 503),
        ({"FromEmail": "jane@icloud.com", "Name": "J"}, 503),
    ],
)
def test_create_errors(client: TestClient, account_headers: dict[str, str], body: dict[str, str], code: int) -> None:
    assert_error(client.post("/senders", json=body, headers=account_headers), 422, code)


def test_duplicates_unknown_ids_paging_and_other_accounts(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    sender = create(client, account_headers)
    assert_error(
        client.post("/senders", json={"FromEmail": "JANE@example.com", "Name": "J"}, headers=account_headers), 422, 504
    )
    for path in ("/senders/99999", "/senders/abc", "/senders/0", "/senders/99999999999999"):
        assert_error(client.get(path, headers=account_headers), 422, 501)
    assert_error(client.post("/senders/99999/resend", headers=account_headers), 422, 501)
    assert_error(client.get("/senders?count=0&offset=0", headers=account_headers), 422, 500)
    assert_error(client.get("/senders?count=501&offset=0", headers=account_headers), 422, 500)
    assert_error(client.get("/senders", headers=account_headers), 422, 500)
    other = create_account(runtime, "Other")
    other_headers = {"X-Postmark-Account-Token": other.account_token}
    assert_error(client.get(f"/senders/{sender['ID']}", headers=other_headers), 422, 501)
    assert_error(client.delete(f"/senders/{sender['ID']}", headers=other_headers), 422, 501)
    assert create(client, other_headers)["EmailAddress"] == "jane@example.com"


def test_edit_keeps_absent_fields(client: TestClient, account_headers: dict[str, str]) -> None:
    sender = create(client, account_headers, ReplyToEmail="help@example.com")
    base = f"/senders/{sender['ID']}"
    edited = client.put(
        base, json={"Name": "Jane Doe", "ReturnPathDomain": "pm-bounces.example.com"}, headers=account_headers
    ).json()
    assert list(edited) == SENDER_FIELDS
    assert (edited["Name"], edited["ReplyToEmailAddress"]) == ("Jane Doe", "help@example.com")
    assert edited["ReturnPathDomain"] == "pm-bounces.example.com"
    cleared = client.put(base, json={"ReplyToEmail": ""}, headers=account_headers).json()
    assert (cleared["Name"], cleared["ReplyToEmailAddress"]) == ("Jane Doe", "")
    assert_error(client.put(base, json={"Name": " "}, headers=account_headers), 422, 520)
    assert_error(client.put(base, json={"Name": "x" * 256}, headers=account_headers), 422, 521)
    assert_error(client.put(base, json={"ReturnPathDomain": "rp.other.org"}, headers=account_headers), 422, 522)
    assert_error(client.put(base, json={"ReplyToEmail": "@"}, headers=account_headers), 422, 522)
    assert_error(client.put("/senders/424242", json={"Name": "J"}, headers=account_headers), 422, 501)


def test_delete_and_audit_trail(client: TestClient, account_headers: dict[str, str], runtime: Runtime) -> None:
    sender = create(client, account_headers)
    client.put(f"/senders/{sender['ID']}", json={"Name": "Jane Doe"}, headers=account_headers)
    response = client.delete(f"/senders/{sender['ID']}", headers=account_headers)
    assert response.json() == {"ErrorCode": 0, "Message": "Signature jane@example.com removed."}
    assert_error(client.get(f"/senders/{sender['ID']}", headers=account_headers), 422, 501)
    with runtime.db.session_scope(write=False) as session:
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "sender").order_by(AuditEvent.id))
        )
        assert session.scalars(select(ConfirmationToken)).all() == []
    assert actions == ["sender.created", "sender.confirmation_sent", "sender.updated", "sender.deleted"]


def test_spf_and_new_dkim(client: TestClient, account_headers: dict[str, str], dns_server: DnsTestServer) -> None:
    sender = create(client, account_headers)
    base = f"/senders/{sender['ID']}"
    assert_error(client.post(f"{base}/requestnewdkim", headers=account_headers), 422, 505)  # still pending
    missing = client.post(f"{base}/verifyspf", headers=account_headers).json()
    assert list(missing) == SENDER_FIELDS and missing["SPFVerified"] is False
    dns_server.add_txt("example.com", "v=spf1 a mx include:spf.postwarden.localhost ~all")
    assert client.post(f"{base}/verifySPF", headers=account_headers).json()["SPFVerified"] is True

    (domain,) = client.get("/domains?count=10&offset=0", headers=account_headers).json()["Domains"]
    dns_server.add_txt(sender["DKIMPendingHost"], sender["DKIMPendingTextValue"])
    assert client.put(f"/domains/{domain['ID']}/verifyDkim", headers=account_headers).json()["DKIMVerified"]
    verified = client.get(base, headers=account_headers).json()
    assert verified["DKIMVerified"] is True and verified["DKIMHost"] == sender["DKIMPendingHost"]

    rotated = client.post(f"{base}/requestNewDkim", headers=account_headers)
    assert rotated.status_code == 200 and rotated.json()["ErrorCode"] == 0
    after = client.get(base, headers=account_headers).json()
    assert after["DKIMUpdateStatus"] == "Pending" and after["DKIMPendingTextValue"] != verified["DKIMTextValue"]
    assert_error(client.post(f"{base}/requestnewdkim", headers=account_headers), 422, 505)


def test_confirmation_link_mailed_through_smtp_confirms_once(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    runtime.settings.smtp_host, runtime.settings.smtp_port = "127.0.0.1", port
    sender = create(client, account_headers, ConfirmationPersonalNote="From the Acme team")
    deliver_all(runtime)
    (mail,) = inbox.messages
    assert mail["To"] == "jane@example.com"
    body = text_of(mail)
    assert "From the Acme team" in body
    match = LINK.search(body)
    assert match is not None
    token = match.group(1)
    with runtime.db.session_scope(write=False) as session:
        stored = session.scalars(select(ConfirmationToken)).one()
        assert token not in stored.token_digest  # only the keyed digest is kept

    page = client.get(f"/senders/confirm/{token}")
    assert page.status_code == 200 and "Sender confirmed" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert client.get(f"/senders/{sender['ID']}", headers=account_headers).json()["Confirmed"] is True
    with runtime.db.session_scope(write=False) as session:
        event = session.scalars(select(AuditEvent).where(AuditEvent.action == "sender.confirmed")).one()
    assert (event.target_id, event.via, event.target_label) == (str(sender["ID"]), "api", "jane@example.com")

    reused = client.get(f"/senders/confirm/{token}")
    assert reused.status_code == 404 and "expired or was already used" in reused.text
    assert "Traceback" not in reused.text
    unknown = client.get("/senders/confirm/nonsense")
    assert unknown.status_code == 404 and "expired or was already used" in unknown.text

    assert_error(client.post(f"/senders/{sender['ID']}/resend", headers=account_headers), 422, 506)


def test_resend_and_expired_links(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    runtime.settings.smtp_host, runtime.settings.smtp_port = "127.0.0.1", port
    sender = create(client, account_headers, "ops@example.com")
    resent = client.post(f"/senders/{sender['ID']}/resend", headers=account_headers)
    assert resent.json() == {
        "ErrorCode": 0,
        "Message": "Confirmation email for Sender Signature ops@example.com was re-sent.",
    }
    deliver_all(runtime)
    assert len(inbox.messages) == 2
    first, second = (LINK.search(text_of(m)) for m in inbox.messages)
    assert first is not None and second is not None and first.group(1) != second.group(1)
    assert all(message.status == "sent" for message in outbox(runtime))

    with runtime.db.session_scope() as session:
        session.execute(update(ConfirmationToken).values(expires_at=utcnow() - timedelta(minutes=1)))
    expired = client.get(f"/senders/confirm/{first.group(1)}")
    assert expired.status_code == 410 and "expired or was already used" in expired.text
    assert client.get(f"/senders/{sender['ID']}", headers=account_headers).json()["Confirmed"] is False

    with runtime.db.session_scope() as session:
        session.execute(update(ConfirmationToken).values(expires_at=utcnow() + timedelta(hours=1)))
    assert client.get(f"/senders/confirm/{second.group(1)}").status_code == 200
    assert client.get(f"/senders/{sender['ID']}", headers=account_headers).json()["Confirmed"] is True
    assert client.get(f"/senders/confirm/{first.group(1)}").status_code == 200  # still unused, already confirmed


def test_server_tokens_cannot_reach_senders(client: TestClient, account_headers: dict[str, str]) -> None:
    server = client.post("/servers", json={"Name": "S"}, headers=account_headers).json()
    headers = {"X-Postmark-Server-Token": server["ApiTokens"][0]}
    assert_error(client.get("/senders?count=1&offset=0", headers=headers), 401, 10)
