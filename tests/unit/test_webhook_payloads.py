"""Sample events as Postmark shapes them (API reference §3.11), and the rules of one attempt:
what a status means, which addresses are private, the headers and their signature."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from postwarden.webhook_deliveries.payloads import JS_SAFE_INTEGER, RECORD_TYPES, EventSource, sample_event
from postwarden.webhook_deliveries.sender import Outcome, Outgoing, is_public, outcome_of, request_headers, sign

NOW = datetime(2026, 12, 4, 20, 30, 7, 905910, tzinfo=UTC)
NO_CONTENT = EventSource(
    server_id=23,
    message_stream="outbound",
    triggers={"Bounce": {"Enabled": True, "IncludeContent": False}, "SpamComplaint": {"IncludeContent": False}},
)
WITH_CONTENT = EventSource(
    server_id=23,
    message_stream="outbound",
    triggers={"Bounce": {"IncludeContent": True}, "SpamComplaint": {"IncludeContent": True}},
)
BOUNCE_FIELDS = {
    "RecordType", "MessageStream", "ID", "Type", "TypeCode", "Name", "Tag", "MessageID", "Metadata", "ServerID",
    "Description", "Details", "Email", "From", "BouncedAt", "DumpAvailable", "Inactive", "CanActivate", "Subject",
}  # fmt: skip
OPEN_AND_CLICK = {"Client", "OS", "Platform", "UserAgent", "Geo", "MessageID", "ReceivedAt", "Tag", "Recipient"}
FIELDS = {
    "Delivery": {
        "RecordType", "MessageStream", "ServerID", "MessageID", "Recipient", "Tag", "DeliveredAt", "Details",
        "Metadata",
    },
    "Bounce": BOUNCE_FIELDS,
    "SpamComplaint": BOUNCE_FIELDS,
    "Open": OPEN_AND_CLICK | {"RecordType", "MessageStream", "FirstOpen", "ReadSeconds", "Metadata"},
    "Click": OPEN_AND_CLICK | {"RecordType", "MessageStream", "ClickLocation", "OriginalLink", "Metadata"},
    "SubscriptionChange": {
        "RecordType", "MessageID", "ServerID", "MessageStream", "ChangedAt", "Recipient", "Origin",
        "SuppressSending", "SuppressionReason", "Tag", "Metadata",
    },
}  # fmt: skip
TIME_FIELDS = {"DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt"}


def event(kind: str, source: EventSource = NO_CONTENT) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(sample_event(kind, source, NOW))
    return parsed


@pytest.mark.parametrize("kind", RECORD_TYPES)
def test_each_sample_has_exactly_postmarks_fields(kind: str) -> None:
    payload = event(kind)
    assert set(payload) == FIELDS[kind]
    assert payload["RecordType"] == kind
    assert payload["MessageStream"] == "outbound"
    if "ServerID" in payload:
        assert payload["ServerID"] == 23
    assert uuid.UUID(str(payload["MessageID"])).version == 4
    for name in TIME_FIELDS & set(payload):
        assert payload[name] == "2026-12-04T20:30:07.9059100Z"


def test_every_sample_names_a_message_of_its_own() -> None:
    assert event("Delivery")["MessageID"] != event("Delivery")["MessageID"]


@pytest.mark.parametrize("kind", ["Bounce", "SpamComplaint"])
def test_bounce_ids_survive_javascript_number_parsing(kind: str) -> None:
    ids = {event(kind)["ID"] for _ in range(50)}
    assert all(isinstance(i, int) and 0 < i <= JS_SAFE_INTEGER for i in ids)
    assert len(ids) > 1


@pytest.mark.parametrize("kind", ["Bounce", "SpamComplaint"])
def test_content_only_when_the_trigger_includes_it(kind: str) -> None:
    assert "Content" not in event(kind, NO_CONTENT)
    assert event(kind, WITH_CONTENT)["Content"]


def test_bounce_and_spam_complaint_differ_as_postmark_says() -> None:
    bounce, complaint = event("Bounce"), event("SpamComplaint")
    assert (bounce["Type"], bounce["TypeCode"], bounce["CanActivate"]) == ("HardBounce", 1, True)
    assert (complaint["Type"], complaint["TypeCode"], complaint["CanActivate"]) == ("SpamComplaint", 100001, False)
    assert bounce["Inactive"] is complaint["Inactive"] is True


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.DELIVERED),
        (204, Outcome.DELIVERED),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (408, Outcome.RETRY),
        (429, Outcome.RETRY),
        (400, Outcome.DROPPED),
        (403, Outcome.DROPPED),
        (404, Outcome.DROPPED),
        (410, Outcome.DROPPED),
        (301, Outcome.DROPPED),
    ],
)
def test_what_a_status_means(status: int, outcome: Outcome) -> None:
    assert outcome_of(status) is outcome


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104 - an address to classify, not to bind
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
    ],
)
def test_private_loopback_and_link_local_addresses_are_not_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def outgoing(**fields: object) -> Outgoing:
    values: dict[str, object] = {
        "delivery_id": 1,
        "url": "https://hooks.example.com/pm",
        "body": b'{"RecordType":"Delivery"}',
        "custom_headers": [],
        "username": "",
        "password": "",
        "signing_secret": "whsec_test",
        "retries_remaining": 10,
    }
    values.update(fields)
    return Outgoing(**values)  # type: ignore[arg-type]


def test_the_signature_is_an_hmac_of_the_timestamp_and_the_exact_body() -> None:
    body = b'{"RecordType":"Delivery"}'
    expected = hmac.new(b"whsec_test", b"1796416207." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_test", body, 1796416207) == f"t=1796416207,v1={expected}"
    assert sign("whsec_test", body + b" ", 1796416207) != sign("whsec_test", body, 1796416207)


def test_custom_headers_cannot_replace_the_deliverys_own() -> None:
    headers = dict(
        request_headers(
            outgoing(
                custom_headers=[
                    ("X-Team", "mail"),
                    ("content-type", "text/plain"),
                    ("X-PM-Retries-Remaining", "99"),
                    ("X-Postwarden-Signature", "forged"),
                    ("User-Agent", "custom/1"),
                ]
            ),
            "hooks.example.com",
            None,
        )
    )
    assert headers["X-Team"] == "mail"
    assert headers["User-Agent"] == "custom/1"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-PM-Retries-Remaining"] == "10"
    assert re.fullmatch(r"t=\d+,v1=[0-9a-f]{64}", headers["X-Postwarden-Signature"])
    assert headers["Host"] == "hooks.example.com"
    assert "content-type" not in headers and "Authorization" not in headers


def test_http_auth_wins_over_credentials_in_the_url() -> None:
    given = dict(request_headers(outgoing(username="a", password="b"), "h", ("url-user", "url-pass")))
    from_url = dict(request_headers(outgoing(), "h", ("url-user", "url-pass")))
    assert given["Authorization"] == "Basic YTpi"  # a:b
    assert from_url["Authorization"] == "Basic dXJsLXVzZXI6dXJsLXBhc3M="  # url-user:url-pass
