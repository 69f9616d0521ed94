"""Sample events, shaped exactly as Postmark posts each record type (API reference §3.11),
for the test deliveries a webhook's owner sends to check their receiver."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

#: Postmark's largest sample ids exceed 2**53; JavaScript receivers would read them rounded.
JS_SAFE_INTEGER: Final = 2**53 - 1
RECIPIENT: Final = "john@example.com"
METADATA: Final[Mapping[str, str]] = {"a_key": "a_value", "b_key": "b_value"}
_CLIENT: Final = {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"}
_OS: Final = {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X 10"}
_USER_AGENT: Final = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/35.0.1916.153 Safari/537.36"
)
_GEO: Final = {
    "CountryISOCode": "RS",
    "Country": "Serbia",
    "RegionISOCode": "VO",
    "Region": "Autonomna Pokrajina Vojvodina",
    "City": "Novi Sad",
    "Zip": "21000",
    "Coords": "45.2517,19.8369",
    "IP": "188.2.95.4",
}


@dataclass(frozen=True)
class EventSource:
    """What a sample takes from the webhook it is sent to."""

    server_id: int
    message_stream: str
    #: ``Triggers`` as stored: ``{"Bounce": {"Enabled": ..., "IncludeContent": ...}, ...}``.
    triggers: Mapping[str, Mapping[str, bool]]


def postmark_time(moment: datetime) -> str:
    """ISO 8601 in UTC with seven fraction digits, as Postmark writes webhook times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _delivery(source: EventSource, now: str) -> dict[str, Any]:
    return {
        "RecordType": "Delivery",
        "MessageStream": source.message_stream,
        "ServerID": source.server_id,
        "MessageID": str(uuid.uuid4()),
        "Recipient": RECIPIENT,
        "Tag": "welcome-email",
        "DeliveredAt": now,
        "Details": "Test delivery webhook details",
        "Metadata": dict(METADATA),
    }


def _bounce_like(source: EventSource, now: str, kind: str) -> dict[str, Any]:
    bounce = kind == "Bounce"
    payload: dict[str, Any] = {
        "RecordType": kind,
        "MessageStream": source.message_stream,
        "ID": secrets.randbelow(JS_SAFE_INTEGER) + 1,
        "Type": "HardBounce" if bounce else "SpamComplaint",
        "TypeCode": 1 if bounce else 100001,
        "Name": "Hard bounce" if bounce else "Spam complaint",
        "Tag": "Test",
        "MessageID": str(uuid.uuid4()),
        "Metadata": dict(METADATA),
        "ServerID": source.server_id,
        "Description": (
            "The server was unable to deliver your message (ex: unknown user, mailbox not found)."
            if bounce
            else "The subscriber explicitly marked this email as spam."
        ),
        "Details": "Test bounce details" if bounce else "Test spam complaint details",
        "Email": RECIPIENT,
        "From": "sender@example.com",
        "BouncedAt": now,
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": bounce,
        "Subject": "Test subject",
    }
    if source.triggers.get(kind, {}).get("IncludeContent"):
        payload["Content"] = "<Full dump of bounce>" if bounce else "<Full dump of spam complaint>"
    return payload


def _open(source: EventSource, now: str) -> dict[str, Any]:
    return {
        "RecordType": "Open",
        "MessageStream": source.message_stream,
        "FirstOpen": True,
        "Client": dict(_CLIENT),
        "OS": dict(_OS),
        "Platform": "WebMail",
        "UserAgent": _USER_AGENT,
        "ReadSeconds": 5,
        "Geo": dict(_GEO),
        "MessageID": str(uuid.uuid4()),
        "Metadata": dict(METADATA),
        "ReceivedAt": now,
        "Tag": "welcome-email",
        "Recipient": RECIPIENT,
    }


def _click(source: EventSource, now: str) -> dict[str, Any]:
    return {
        "RecordType": "Click",
        "MessageStream": source.message_stream,
        "ClickLocation": "HTML",
        "Client": dict(_CLIENT),
        "OS": dict(_OS),
        "Platform": "Desktop",
        "UserAgent": _USER_AGENT,
        "OriginalLink": "https://example.com",
        "Geo": dict(_GEO),
        "MessageID": str(uuid.uuid4()),
        "Metadata": dict(METADATA),
        "ReceivedAt": now,
        "Tag": "welcome-email",
        "Recipient": RECIPIENT,
    }


def _subscription_change(source: EventSource, now: str) -> dict[str, Any]:
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": str(uuid.uuid4()),
        "ServerID": source.server_id,
        "MessageStream": source.message_stream,
        "ChangedAt": now,
        "Recipient": RECIPIENT,
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "HardBounce",
        "Tag": "my-tag",
        "Metadata": dict(METADATA),
    }


_SAMPLES: Final[dict[str, Callable[[EventSource, str], dict[str, Any]]]] = {
    "Delivery": _delivery,
    "Bounce": lambda source, now: _bounce_like(source, now, "Bounce"),
    "SpamComplaint": lambda source, now: _bounce_like(source, now, "SpamComplaint"),
    "Open": _open,
    "Click": _click,
    "SubscriptionChange": _subscription_change,
}
RECORD_TYPES: Final = tuple(_SAMPLES)


def sample_event(record_type: str, source: EventSource, now: datetime) -> str:
    """The JSON body of a sample ``record_type`` event: the exact text every attempt posts."""
    return json.dumps(_SAMPLES[record_type](source, postmark_time(now)), separators=(",", ":"))
