"""DNS lookups and verification rules, against a real DNS server on loopback."""

from __future__ import annotations

import base64

import dns.message
import dns.query
import dns.rdtypes.ANY.TXT
import pytest

from postwarden.domains.dns import CheckOutcome, DnsChecker, LookupStatus, parse_nameserver
from tests.dns_server import DnsTestServer, dns_server

__all__ = ["dns_server"]  # the fixture is found by pytest through this import

#: Shaped like a 2048-bit RSA key: 392 base64 characters with padding, so the record needs two character-strings.
LONG_KEY = base64.b64encode(bytes(i % 251 for i in range(293))).decode()
SHORT_KEY = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC1"
DKIM_HOST = "20240101000000pm._domainkey.example.com"
SHORT_TIMEOUT = 0.5


@pytest.fixture
def checker(dns_server: DnsTestServer) -> DnsChecker:
    return DnsChecker([dns_server.nameserver], timeout=SHORT_TIMEOUT)


# --- TXT and CNAME lookups ---------------------------------------------------------------


def test_txt_found(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt("example.com", "v=spf1 -all")
    dns_server.add_txt("example.com", "google-site-verification=abc")

    lookup = checker.txt_records("example.com")

    assert lookup.status is LookupStatus.FOUND and lookup.found
    assert sorted(lookup.value) == ["google-site-verification=abc", "v=spf1 -all"]


def test_txt_character_strings_are_joined_per_record(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt("long.example.com", "k=rsa; p=" + LONG_KEY)
    dns_server.add_txt("chunks.example.com", ["part one, ", "part two"])

    assert checker.txt_records("long.example.com").value == ["k=rsa; p=" + LONG_KEY]
    assert checker.txt_records("chunks.example.com").value == ["part one, part two"]


def test_server_splits_long_txt_on_the_wire_and_answers_over_tcp(dns_server: DnsTestServer) -> None:
    dns_server.add_txt("long.example.com", "k=rsa; p=" + LONG_KEY)
    query = dns.message.make_query("long.example.com", "TXT")

    for response in (
        dns.query.udp(query, "127.0.0.1", port=dns_server.port, timeout=2),
        dns.query.tcp(query, "127.0.0.1", port=dns_server.port, timeout=2),
    ):
        [rdata] = response.answer[0]
        assert isinstance(rdata, dns.rdtypes.ANY.TXT.TXT)
        assert [len(chunk) for chunk in rdata.strings] == [255, len("k=rsa; p=" + LONG_KEY) - 255]


def test_txt_nxdomain_is_not_found(checker: DnsChecker) -> None:
    lookup = checker.txt_records("nothing.example.com")

    assert lookup.status is LookupStatus.NOT_FOUND
    assert lookup.value == []
    assert "NXDOMAIN" in lookup.detail


def test_txt_without_answer_is_not_found(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_cname("alias.example.com", "elsewhere.example.net")

    lookup = checker.txt_records("alias.example.com")

    assert lookup.status is LookupStatus.NOT_FOUND
    assert "no TXT record" in lookup.detail


def test_txt_servfail_is_failed(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.set_servfail("broken.example.com")

    lookup = checker.txt_records("broken.example.com")

    assert lookup.status is LookupStatus.FAILED
    assert "SERVFAIL" in lookup.detail and "broken.example.com" in lookup.detail


def test_txt_timeout_is_failed(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.set_timeout("slow.example.com")

    lookup = checker.txt_records("slow.example.com")

    assert lookup.status is LookupStatus.FAILED
    assert lookup.detail == "DNS lookup for slow.example.com timed out after 0.5 s"


def test_cname_found_without_trailing_dot(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_cname("pm-bounces.example.com", "pm.mtasv.net.")

    lookup = checker.cname("pm-bounces.example.com")

    assert lookup.status is LookupStatus.FOUND
    assert lookup.value == "pm.mtasv.net"


def test_cname_not_found(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt("txt-only.example.com", "hello")

    assert checker.cname("txt-only.example.com").status is LookupStatus.NOT_FOUND
    assert checker.cname("absent.example.com").status is LookupStatus.NOT_FOUND
    assert checker.cname("absent.example.com").value is None


def test_cname_servfail_and_timeout_are_failed(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.set_servfail("broken.example.com")
    dns_server.set_timeout("slow.example.com")

    assert checker.cname("broken.example.com").status is LookupStatus.FAILED
    assert checker.cname("slow.example.com").status is LookupStatus.FAILED


def test_clear_forgets_records(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt("example.com", "hello")
    dns_server.clear()

    assert checker.txt_records("example.com").status is LookupStatus.NOT_FOUND


# --- DKIM --------------------------------------------------------------------------------


def test_dkim_matches_the_same_key(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt(DKIM_HOST, "k=rsa; p=" + SHORT_KEY)

    check = checker.dkim_matches(DKIM_HOST, "k=rsa; p=" + SHORT_KEY)

    assert check.outcome is CheckOutcome.VERIFIED and check.verified


def test_dkim_matches_a_long_key_split_into_character_strings(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    record = "k=rsa; p=" + LONG_KEY
    dns_server.add_txt(DKIM_HOST, [record[:255], record[255:]])

    assert checker.dkim_matches(DKIM_HOST, record).outcome is CheckOutcome.VERIFIED


def test_dkim_ignores_whitespace_and_tag_order(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    folded = " ".join(LONG_KEY[i : i + 64] for i in range(0, len(LONG_KEY), 64))
    dns_server.add_txt(DKIM_HOST, f"v=DKIM1;  p = {folded} ;k=rsa")

    assert checker.dkim_matches(DKIM_HOST, "k=rsa; p=" + LONG_KEY).outcome is CheckOutcome.VERIFIED


def test_dkim_wrong_key(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt(DKIM_HOST, "k=rsa; p=" + SHORT_KEY)

    check = checker.dkim_matches(DKIM_HOST, "k=rsa; p=" + LONG_KEY)

    assert check.outcome is CheckOutcome.WRONG
    assert f"found p={SHORT_KEY}" in check.detail and "expected p=" in check.detail


def test_dkim_record_without_key_is_wrong(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt(DKIM_HOST, "something else")

    check = checker.dkim_matches(DKIM_HOST, "k=rsa; p=" + SHORT_KEY)

    assert check.outcome is CheckOutcome.WRONG
    assert "no DKIM public key" in check.detail


def test_dkim_missing(checker: DnsChecker) -> None:
    check = checker.dkim_matches(DKIM_HOST, "k=rsa; p=" + SHORT_KEY)

    assert check.outcome is CheckOutcome.MISSING
    assert DKIM_HOST in check.detail


def test_dkim_lookup_failures_are_unknown(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.set_servfail(DKIM_HOST)
    dns_server.set_timeout("slow._domainkey.example.com")

    servfail = checker.dkim_matches(DKIM_HOST, "p=" + SHORT_KEY)
    timeout = checker.dkim_matches("slow._domainkey.example.com", "p=" + SHORT_KEY)

    assert servfail.outcome is CheckOutcome.UNKNOWN and "SERVFAIL" in servfail.detail
    assert timeout.outcome is CheckOutcome.UNKNOWN and "timed out" in timeout.detail


def test_dkim_expected_value_needs_a_key(checker: DnsChecker) -> None:
    with pytest.raises(ValueError, match="p="):
        checker.dkim_matches(DKIM_HOST, "k=rsa")


# --- SPF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    ["v=spf1 a mx include:spf.mtasv.net ~all", "V=SPF1 +include:SPF.MTASV.NET. -all"],
)
def test_spf_with_include(dns_server: DnsTestServer, checker: DnsChecker, record: str) -> None:
    dns_server.add_txt("example.com", "google-site-verification=abc")
    dns_server.add_txt("example.com", record)

    assert checker.spf_includes("example.com").outcome is CheckOutcome.VERIFIED


def test_spf_without_include_is_wrong(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt("example.com", "v=spf1 include:_spf.google.com ~all")

    check = checker.spf_includes("example.com")

    assert check.outcome is CheckOutcome.WRONG
    assert "include:_spf.google.com" in check.detail and "include:spf.mtasv.net" in check.detail


def test_spf_two_records_are_wrong(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt("example.com", "v=spf1 include:spf.mtasv.net ~all")
    dns_server.add_txt("example.com", "v=spf1 mx ~all")

    assert checker.spf_includes("example.com").outcome is CheckOutcome.WRONG


def test_spf_absent_is_missing(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_txt("example.com", "google-site-verification=abc")

    assert checker.spf_includes("example.com").outcome is CheckOutcome.MISSING
    assert checker.spf_includes("unknown.example.com").outcome is CheckOutcome.MISSING


def test_spf_lookup_failure_is_unknown(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.set_servfail("example.com")

    check = checker.spf_includes("example.com")

    assert check.outcome is CheckOutcome.UNKNOWN and "SERVFAIL" in check.detail


# --- Return-Path CNAME -------------------------------------------------------------------


def test_cname_points_to_the_target(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_cname("pm-bounces.example.com", "PM.MTASV.NET.")

    assert checker.cname_points_to("pm-bounces.example.com", "pm.mtasv.net").outcome is CheckOutcome.VERIFIED
    assert checker.cname_points_to("pm-bounces.example.com.", "pm.mtasv.net.").outcome is CheckOutcome.VERIFIED


def test_cname_to_elsewhere_is_wrong(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.add_cname("pm-bounces.example.com", "bounces.other.example")

    check = checker.cname_points_to("pm-bounces.example.com", "pm.mtasv.net")

    assert check.outcome is CheckOutcome.WRONG
    assert "bounces.other.example" in check.detail and "expected pm.mtasv.net" in check.detail


def test_cname_missing(checker: DnsChecker) -> None:
    check = checker.cname_points_to("pm-bounces.example.com", "pm.mtasv.net")

    assert check.outcome is CheckOutcome.MISSING
    assert "pm.mtasv.net" in check.detail


def test_cname_lookup_failure_is_unknown(dns_server: DnsTestServer, checker: DnsChecker) -> None:
    dns_server.set_timeout("pm-bounces.example.com")

    check = checker.cname_points_to("pm-bounces.example.com", "pm.mtasv.net")

    assert check.outcome is CheckOutcome.UNKNOWN
    assert "timed out after 0.5 s" in check.detail


# --- Nameserver settings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        (" 127.0.0.1:5353 ", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
    ],
)
def test_nameserver_strings(value: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "dns.example.com", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:dns", "[::1", "[127.0.0.1]:53"],
)
def test_bad_nameserver_strings_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="DNS nameserver"):
        DnsChecker([value])


def test_no_nameservers_means_the_system_resolver() -> None:
    DnsChecker([])
