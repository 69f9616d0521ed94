"""The Domains API over HTTP, verified against a real DNS server on loopback."""

from __future__ import annotations

import importlib  # dkimpy's package is named like bench/dkim.py, see tests/unit/test_dkim.py
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.domains.dns import DnsChecker
from postwarden.domains.models import DkimKey
from postwarden.domains.service import DomainService
from postwarden.errors import NotFound
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from tests.conftest import create_account
from tests.dns_server import DnsTestServer, dns_server
from tests.surfaces.postmark.test_servers import assert_error

LONG_NAME = ".".join(["a" * 60] * 5) + ".com"  # valid labels, 308 characters in all
__all__ = ["dns_server"]  # the fixture is found by pytest through this import

DOMAIN_FIELDS = [
    "ID", "Name", "SPFVerified", "SPFHost", "SPFTextValue", "DKIMVerified", "WeakDKIM", "DKIMHost",
    "DKIMTextValue", "DKIMPendingHost", "DKIMPendingTextValue", "DKIMRevokedHost", "DKIMRevokedTextValue",
    "SafeToRemoveRevokedKeyFromDNS", "DKIMUpdateStatus", "ReturnPathDomain", "ReturnPathDomainVerified",
    "ReturnPathDomainCNAMEValue",
]  # fmt: skip


@pytest.fixture(autouse=True)
def dns_for_tests(runtime: Runtime, dns_server: DnsTestServer) -> None:
    runtime.settings.dns_nameservers = [dns_server.nameserver]
    runtime.settings.dns_timeout_seconds = 0.5
    runtime.settings.dkim_key_bits = 1024  # faster to generate; 2048 is covered below


def create(client: TestClient, headers: dict[str, str], name: str = "example.com", **body: Any) -> Any:
    response = client.post("/domains/", json={"Name": name, **body}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_create_returns_every_field_with_a_pending_key(client: TestClient, account_headers: dict[str, str]) -> None:
    domain = create(client, account_headers, "Example.COM.")
    assert list(domain) == DOMAIN_FIELDS
    assert domain["Name"] == "example.com" and domain["SPFHost"] == "example.com"
    assert domain["SPFTextValue"] == "v=spf1 a mx include:spf.postwarden.localhost ~all"
    assert domain["DKIMUpdateStatus"] == "Pending" and domain["DKIMVerified"] is False
    assert domain["DKIMHost"] == "" and domain["DKIMTextValue"] == ""
    assert domain["DKIMPendingHost"].endswith("pm._domainkey.example.com")
    assert domain["DKIMPendingTextValue"].startswith("k=rsa; p=MIGfMA0")
    assert domain["ReturnPathDomainCNAMEValue"] == "pm.postwarden.localhost"
    assert client.get(f"/domains/{domain['ID']}", headers=account_headers).json() == domain
    listing = client.get("/domains?count=10&offset=0", headers=account_headers).json()
    assert listing == {
        "TotalCount": 1,
        "Domains": [
            {
                "ID": domain["ID"],
                "Name": "example.com",
                "SPFVerified": False,
                "DKIMVerified": False,
                "WeakDKIM": False,
                "ReturnPathDomainVerified": False,
            }
        ],
    }


def test_private_keys_are_encrypted_at_rest(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    runtime.settings.dkim_key_bits = 2048
    domain = create(client, account_headers)
    assert len(domain["DKIMPendingTextValue"]) > 300  # a 2048-bit key
    with runtime.db.session_scope(write=False) as session:
        key = session.scalars(select(DkimKey)).one()
    assert b"PRIVATE KEY" not in key.private_key_encrypted
    assert "BEGIN PRIVATE KEY" in runtime.keyring.decrypt(key.private_key_encrypted)


def test_dkim_verification_then_rotation(
    client: TestClient, account_headers: dict[str, str], dns_server: DnsTestServer
) -> None:
    domain = create(client, account_headers)
    base = f"/domains/{domain['ID']}"
    missing = client.put(f"{base}/verifyDkim", headers=account_headers).json()
    assert missing["DKIMVerified"] is False and missing["DKIMUpdateStatus"] == "Pending"

    dns_server.add_txt(domain["DKIMPendingHost"], domain["DKIMPendingTextValue"])
    verified = client.put(f"{base}/verifydkim", headers=account_headers).json()
    assert verified["DKIMVerified"] is True and verified["DKIMUpdateStatus"] == "Verified"
    assert (verified["DKIMHost"], verified["DKIMTextValue"]) == (
        domain["DKIMPendingHost"],
        domain["DKIMPendingTextValue"],
    )
    assert verified["DKIMPendingHost"] == ""

    rotation = client.post(f"{base}/rotatedkim", headers=account_headers)
    assert rotation.status_code == 200
    rotated = rotation.json()
    assert next(iter(rotated)) == "Name" and rotated["ID"] == domain["ID"]
    assert rotated["DKIMUpdateStatus"] == "Pending" and rotated["DKIMVerified"] is True
    assert rotated["DKIMPendingTextValue"] != verified["DKIMTextValue"]
    assert_error(client.post(f"{base}/rotateDKIM", headers=account_headers), 422, 505)

    dns_server.add_txt(rotated["DKIMPendingHost"], rotated["DKIMPendingTextValue"])
    after = client.put(f"{base}/verifyDkim", headers=account_headers).json()
    assert after["DKIMHost"] == rotated["DKIMPendingHost"]
    assert (after["DKIMRevokedHost"], after["DKIMRevokedTextValue"]) == (
        verified["DKIMHost"],
        verified["DKIMTextValue"],
    )
    assert after["SafeToRemoveRevokedKeyFromDNS"] is False  # mail signed with it may still be in transit


def test_a_failed_dns_lookup_changes_nothing_and_says_so(
    client: TestClient, account_headers: dict[str, str], dns_server: DnsTestServer
) -> None:
    domain = create(client, account_headers)
    dns_server.set_servfail(domain["DKIMPendingHost"])
    response = client.put(f"/domains/{domain['ID']}/verifyDkim", headers=account_headers)
    assert response.status_code == 200
    body = response.json()
    assert "DNS could not be checked" in body["Message"]
    assert body["DKIMUpdateStatus"] == "Pending"
    dns_server.set_timeout("example.com")
    spf = client.post(f"/domains/{domain['ID']}/verifyspf", headers=account_headers).json()
    assert spf["SPFVerified"] is False and "timed out" in spf["Message"]


def test_spf_verification_short_response(
    client: TestClient, account_headers: dict[str, str], dns_server: DnsTestServer
) -> None:
    domain = create(client, account_headers)
    dns_server.add_txt("example.com", "v=spf1 a mx include:spf.postwarden.localhost ~all")
    spf = client.post(f"/domains/{domain['ID']}/verifySPF", headers=account_headers).json()
    assert spf == {
        "SPFHost": "example.com",
        "SPFVerified": True,
        "SPFTextValue": "v=spf1 a mx include:spf.postwarden.localhost ~all",
    }
    assert client.get(f"/domains/{domain['ID']}", headers=account_headers).json()["SPFVerified"] is True


def test_return_path_edit_and_verification(
    client: TestClient, account_headers: dict[str, str], dns_server: DnsTestServer
) -> None:
    domain = create(client, account_headers, ReturnPathDomain="pm-bounces.example.com")
    base = f"/domains/{domain['ID']}"
    assert domain["ReturnPathDomain"] == "pm-bounces.example.com"
    assert_error(client.put(f"{base}/verifyReturnPath", headers=account_headers), 422, 523)
    dns_server.add_cname("pm-bounces.example.com", "elsewhere.example.net")
    assert_error(client.put(f"{base}/verifyReturnPath", headers=account_headers), 422, 523)
    dns_server.clear()
    dns_server.add_cname("pm-bounces.example.com", "pm.postwarden.localhost")
    verified = client.put(f"{base}/verifyReturnPath", headers=account_headers).json()
    assert verified["ReturnPathDomainVerified"] is True

    moved = client.put(base, json={"ReturnPathDomain": "rp.example.com"}, headers=account_headers).json()
    assert (moved["ReturnPathDomain"], moved["ReturnPathDomainVerified"]) == ("rp.example.com", False)
    cleared = client.put(base, json={"ReturnPathDomain": ""}, headers=account_headers).json()
    assert cleared["ReturnPathDomain"] == ""
    assert_error(client.put(base, json={"ReturnPathDomain": "other.org"}, headers=account_headers), 422, 511)


@pytest.mark.parametrize(
    ("body", "code"),
    [({}, 514), ({"Name": "  "}, 514), ({"Name": LONG_NAME}, 515), ({"Name": "not a domain"}, 516),
     ({"Name": "example.com", "ReturnPathDomain": "bounces.other.com"}, 511)],
)  # fmt: skip
def test_create_errors(client: TestClient, account_headers: dict[str, str], body: dict[str, str], code: int) -> None:
    assert_error(client.post("/domains", json=body, headers=account_headers), 422, code)


def test_duplicates_unknown_ids_and_paging(
    client: TestClient, account_headers: dict[str, str], runtime: Runtime
) -> None:
    domain = create(client, account_headers)
    assert_error(client.post("/domains", json={"Name": "EXAMPLE.com"}, headers=account_headers), 422, 512)
    for path in ("/domains/99999", "/domains/abc", "/domains/99999999999999"):
        assert_error(client.get(path, headers=account_headers), 422, 510)
    assert client.put(f"/domains/{domain['ID']}/verifyDkim/", headers=account_headers).status_code == 200
    assert_error(client.get("/domains?count=0&offset=0", headers=account_headers), 422, 500)
    assert_error(client.get("/domains", headers=account_headers), 422, 500)
    other = create_account(runtime, "Other")
    other_headers = {"X-Postmark-Account-Token": other.account_token}
    assert_error(client.get(f"/domains/{domain['ID']}", headers=other_headers), 422, 510)
    assert create(client, other_headers)["Name"] == "example.com"  # each account proves its own


def test_delete_and_audit_trail(client: TestClient, account_headers: dict[str, str], runtime: Runtime) -> None:
    domain = create(client, account_headers)
    client.post(f"/domains/{domain['ID']}/rotatedkim", headers=account_headers)  # 505: pending already
    response = client.delete(f"/domains/{domain['ID']}", headers=account_headers)
    assert response.json() == {"ErrorCode": 0, "Message": "Domain example.com removed."}
    assert_error(client.get(f"/domains/{domain['ID']}", headers=account_headers), 422, 510)
    with runtime.db.session_scope(write=False) as session:
        actions = list(
            session.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "domain").order_by(AuditEvent.id))
        )
        assert session.scalars(select(DkimKey)).all() == []
    assert actions == ["domain.created", "domain.deleted"]


def test_server_tokens_cannot_reach_domains(client: TestClient, account_headers: dict[str, str]) -> None:
    server = client.post("/servers", json={"Name": "S"}, headers=account_headers).json()
    message = assert_error(
        client.get("/domains?count=1&offset=0", headers={"X-Postmark-Server-Token": server["ApiTokens"][0]}), 401, 10
    )
    assert "X-Postmark-Account-Token" in message


def test_mail_signed_with_the_stored_active_key_verifies_against_dns(
    client: TestClient,
    account: NewAccount,
    account_headers: dict[str, str],
    runtime: Runtime,
    dns_server: DnsTestServer,
) -> None:
    domain = create(client, account_headers, "signed.example.com")
    dns_server.add_txt(domain["DKIMPendingHost"], domain["DKIMPendingTextValue"])
    client.put(f"/domains/{domain['ID']}/verifyDkim", headers=account_headers)
    with runtime.db.session_scope(write=False) as session:
        signer = DomainService(session, Actor.system("tests"), runtime).signer(account.account.id, domain["ID"])
    message = (
        b"From: Jane <jane@signed.example.com>\r\nTo: you@example.org\r\nSubject: Hello\r\n"
        b"Date: Sun, 22 Nov 2026 08:00:00 +0000\r\nMessage-ID: <1@signed.example.com>\r\n\r\n" + b"Body line.\r\n" * 800
    )
    signed = signer.sign(message) + message
    resolver = DnsChecker([dns_server.nameserver], timeout=1)

    def published_txt(name: bytes, timeout: int = 5) -> bytes:
        return "".join(resolver.txt_records(name.decode().rstrip(".")).value).encode()

    assert importlib.import_module("dkim").verify(signed, dnsfunc=published_txt)
    assert not importlib.import_module("dkim").verify(
        signed.replace(b"Body line.", b"Body lime.", 1), dnsfunc=published_txt
    )


def test_no_signer_before_dns_shows_a_key(
    client: TestClient, account: NewAccount, account_headers: dict[str, str], runtime: Runtime
) -> None:
    domain = create(client, account_headers)
    with pytest.raises(NotFound), runtime.db.session_scope(write=False) as session:
        DomainService(session, Actor.system("tests"), runtime).signer(account.account.id, domain["ID"])
