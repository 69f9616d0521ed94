"""The official clients through the domain scenario Postmark's guides describe: create,
publish the DNS records, verify, rotate, delete; against a real DNS server on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from postmarker.core import PostmarkClient
from postmarker.exceptions import ClientError

from postwarden.accounts.service import NewAccount
from tests.conftest import LiveServer
from tests.dns_server import DnsTestServer, dns_server
from tests.surfaces.postmark.test_official_clients import assert_js_error, run_node

__all__ = ["dns_server"]  # the fixture is found by pytest through this import


@pytest.fixture(autouse=True)
def dns_for_tests(live_server: LiveServer, dns_server: DnsTestServer) -> None:
    live_server.runtime.settings.dns_nameservers = [dns_server.nameserver]
    live_server.runtime.settings.dns_timeout_seconds = 0.5


def publish(dns_server: DnsTestServer, domain: dict[str, Any]) -> None:
    dns_server.add_txt(domain["DKIMPendingHost"], domain["DKIMPendingTextValue"])
    dns_server.add_txt(domain["Name"], "v=spf1 a mx include:spf.postwarden.localhost ~all")
    dns_server.add_cname(domain["ReturnPathDomain"], "pm.postwarden.localhost")


def test_postmark_js_domain_scenario(live_server: LiveServer, account: NewAccount, dns_server: DnsTestServer) -> None:
    env = {"PW_ACCOUNT_TOKEN": account.account_token, "PW_DOMAIN": "node.example.com"}
    created = run_node("account_domains.mjs", live_server, PW_PHASE="create", **env)
    domain = created["create_domain"]
    assert domain["Name"] == "node.example.com" and domain["DKIMUpdateStatus"] == "Pending"
    assert_js_error(created["create_duplicate"], 422, 512, "ApiInputError")

    publish(dns_server, domain)
    steps = run_node("account_domains.mjs", live_server, PW_PHASE="verify", PW_DOMAIN_ID=str(domain["ID"]), **env)
    assert steps["verify_dkim"]["DKIMVerified"] is True
    assert steps["verify_dkim"]["DKIMHost"] == domain["DKIMPendingHost"]
    assert steps["verify_return_path"]["ReturnPathDomainVerified"] is True
    assert steps["verify_spf"] == {
        "SPFHost": "node.example.com",
        "SPFVerified": True,
        "SPFTextValue": "v=spf1 a mx include:spf.postwarden.localhost ~all",
    }
    assert steps["rotate_dkim"]["DKIMUpdateStatus"] == "Pending"
    assert_js_error(steps["rotate_dkim_again"], 422, 505, "ApiInputError")
    assert steps["get_domains"]["TotalCount"] == 1
    assert steps["get_domain"]["DKIMPendingHost"] == steps["rotate_dkim"]["DKIMPendingHost"]
    assert steps["delete_domain"] == {"ErrorCode": 0, "Message": "Domain node.example.com removed."}
    assert_js_error(steps["get_deleted_domain"], 422, 510, "ApiInputError")


def test_postmarker_domain_scenario(live_server: LiveServer, account: NewAccount, dns_server: DnsTestServer) -> None:
    client = PostmarkClient(
        server_token="unused-here", account_token=account.account_token, root_api_url=live_server.base_url + "/"
    )
    domain = client.domains.create(Name="py.example.com", ReturnPathDomain="pm-bounces.py.example.com")
    assert domain.DKIMUpdateStatus == "Pending"
    publish(dns_server, domain.as_dict())
    assert client.domains.verifydkim(domain.ID)["DKIMVerified"] is True
    assert client.domains.verifyreturnpath(domain.ID)["ReturnPathDomainVerified"] is True
    assert client.domains.verifyspf(domain.ID)["SPFVerified"] is True
    assert [d.Name for d in client.domains.all()] == ["py.example.com"]
    assert client.domains.rotatedkim(domain.ID)["DKIMUpdateStatus"] == "Pending"
    with pytest.raises(ClientError) as pending:
        client.domains.rotatedkim(domain.ID)
    assert pending.value.error_code == 505
    assert client.domains.delete(domain.ID) == "Domain py.example.com removed."
    with pytest.raises(ClientError) as gone:
        client.domains.get(domain.ID)
    assert gone.value.error_code == 510
