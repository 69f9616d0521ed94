"""The official clients through the message streams and suppressions scenario: postmark.js
(every stream method, createSuppressions, getSuppressions, deleteSuppressions), and
postmark-python's stream and suppressions managers, whose pydantic models are strict
about every field and type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from postmark import InvalidAPIKeyException, ValidationException, sync
from postmark.models.streams import MessageStream, MessageStreamType, UnsubscribeHandlingType
from postmark.models.suppressions import SuppressionOrigin, SuppressionReason

from postwarden.accounts.service import NewAccount
from tests.conftest import LiveServer
from tests.surfaces.postmark.test_message_streams import STREAM_FIELDS
from tests.surfaces.postmark.test_official_clients import UNKNOWN_TOKEN, assert_js_error, run_node

DEFAULT_IDS = ["outbound", "inbound", "broadcast"]


@pytest.fixture
def server(live_server: LiveServer, account: NewAccount) -> dict[str, Any]:
    created = httpx.post(
        f"{live_server.base_url}/servers",
        json={"Name": "Streams"},
        headers={"X-Postmark-Account-Token": account.account_token},
    )
    assert created.status_code == 200, created.text
    server: dict[str, Any] = created.json()
    return server


def ids(listing: dict[str, Any]) -> list[str]:
    assert listing["TotalCount"] == len(listing["MessageStreams"])
    return [stream["ID"] for stream in listing["MessageStreams"]]


def test_postmark_js_stream_and_suppression_scenario(live_server: LiveServer, server: dict[str, Any]) -> None:
    today = datetime.now(UTC).date().isoformat()
    result = run_node("server_streams.mjs", live_server, PW_SERVER_TOKEN=server["ApiTokens"][0], PW_TODAY=today)

    assert ids(result["get_streams"]) == DEFAULT_IDS
    created = result["create_stream"]
    assert list(created) == STREAM_FIELDS
    assert (created["ID"], created["ServerID"], created["MessageStreamType"]) == (
        "node-news",
        server["ID"],
        "Broadcasts",
    )
    assert (created["Name"], created["Description"]) == ("Node News", "From postmark.js")
    assert created["SubscriptionManagementConfiguration"] == {"UnsubscribeHandlingType": "Postmark"}
    assert result["get_stream"] == created
    edited = result["edit_stream"]
    assert (edited["Name"], edited["Description"]) == ("Node Newsletter", "Edited")
    assert edited["UpdatedAt"] is not None
    assert ids(result["get_transactional"]) == ["outbound"]
    archived = result["archive_stream"]
    assert list(archived) == ["ID", "ServerID", "ExpectedPurgeDate"] and archived["ID"] == "node-news"
    assert ids(result["get_without_archived"]) == DEFAULT_IDS
    assert ids(result["get_broadcasts_with_archived"]) == ["broadcast", "node-news"]
    assert (
        result["get_broadcasts_with_archived"]["MessageStreams"][1]["ExpectedPurgeDate"]
        == archived["ExpectedPurgeDate"]
    )
    assert result["unarchive_stream"] == {**edited, "ArchivedAt": None, "ExpectedPurgeDate": None}
    for step, code in (
        ("create_inbound", 1228),
        ("get_unknown", 1226),
        ("edit_unsupported", 1239),
        ("get_bad_type", 1221),
        ("archive_default", 1229),
        ("unarchive_unknown", 1226),
    ):
        assert_js_error(result[step], 422, code, "ApiInputError")

    assert result["create_suppressions"] == {
        "Suppressions": [
            {"EmailAddress": "Reader@Example.com", "Status": "Suppressed", "Message": None},
            {"EmailAddress": "other@example.com", "Status": "Suppressed", "Message": None},
            {"EmailAddress": "not-an-address", "Status": "Failed", "Message": "An invalid email address was provided."},
        ]
    }
    everyone = result["get_suppressions"]["Suppressions"]
    assert sorted((e["EmailAddress"], e["SuppressionReason"], e["Origin"]) for e in everyone) == [
        ("Reader@Example.com", "ManualSuppression", "Customer"),
        ("other@example.com", "ManualSuppression", "Customer"),
    ]
    reader = next(entry for entry in everyone if entry["EmailAddress"] == "Reader@Example.com")
    assert result["get_suppressions_filtered"] == {"Suppressions": [reader]}
    assert result["delete_suppressions"] == {
        "Suppressions": [
            {"EmailAddress": "reader@example.com", "Status": "Deleted", "Message": None},
            {"EmailAddress": "never@example.com", "Status": "Deleted", "Message": None},
        ]
    }
    assert [entry["EmailAddress"] for entry in result["get_after_delete"]["Suppressions"]] == ["other@example.com"]
    for step, code in (
        ("create_too_many", 1410),
        ("get_suppressions_bad_reason", 1404),
        ("delete_unknown_stream", 1226),
    ):
        assert_js_error(result[step], 422, code, "ApiInputError")


def test_postmark_python_stream_and_suppression_scenario(live_server: LiveServer, server: dict[str, Any]) -> None:
    with sync.ServerClient(server["ApiTokens"][0], base_url=live_server.base_url, retries=0) as client:
        defaults = client.stream.list()
        assert (defaults.total, [stream.id for stream in defaults.items]) == (3, DEFAULT_IDS)

        created = client.stream.create(
            id="py-receipts",
            name="Receipts",
            message_stream_type=MessageStreamType.TRANSACTIONAL,
            description="From postmark-python",
        )
        assert isinstance(created, MessageStream)
        assert (created.server_id, created.message_stream_type) == (server["ID"], MessageStreamType.TRANSACTIONAL)
        assert created.subscription_management_configuration.unsubscribe_handling_type is UnsubscribeHandlingType.NONE
        assert created.created_at.tzinfo is not None and created.updated_at is None
        assert client.stream.get("py-receipts") == created

        edited = client.stream.edit(
            "py-receipts", name="Receipts and invoices", unsubscribe_handling_type=UnsubscribeHandlingType.POSTMARK
        )
        assert edited.name == "Receipts and invoices" and edited.description == "From postmark-python"
        assert (
            edited.subscription_management_configuration.unsubscribe_handling_type is UnsubscribeHandlingType.POSTMARK
        )
        assert edited.updated_at is not None

        archived = client.stream.archive("py-receipts")
        assert (archived.id, archived.server_id) == ("py-receipts", server["ID"])
        assert archived.expected_purge_date is not None
        transactional = client.stream.list(message_stream_type=MessageStreamType.TRANSACTIONAL, include_archived=True)
        assert [stream.id for stream in transactional.items] == ["outbound", "py-receipts"]
        assert transactional.items[1].expected_purge_date == archived.expected_purge_date
        assert [stream.id for stream in client.stream.list(include_archived=False).items] == DEFAULT_IDS
        restored = client.stream.unarchive("py-receipts")
        assert restored == edited

        with pytest.raises(ValidationException) as inbound:
            client.stream.create(id="py-inbound", name="In", message_stream_type=MessageStreamType.INBOUND)
        assert (inbound.value.http_status, inbound.value.error_code) == (422, 1228)
        with pytest.raises(ValidationException) as unknown:
            client.stream.get("no-such-stream")
        assert (unknown.value.http_status, unknown.value.error_code) == (422, 1226)

        outcomes = client.suppressions.create("py-receipts", ["Buyer@Example.com", "nobody", "seller@example.com"])
        assert [(o.email_address, o.status, o.message) for o in outcomes] == [
            ("Buyer@Example.com", "Suppressed", None),
            ("nobody", "Failed", "An invalid email address was provided."),
            ("seller@example.com", "Suppressed", None),
        ]
        today = datetime.now(UTC).date()
        (entry,) = client.suppressions.dump(
            "py-receipts",
            suppression_reason=SuppressionReason.MANUAL_SUPPRESSION,
            origin=SuppressionOrigin.CUSTOMER,
            from_date=today,
            to_date=today,
            email_address="buyer@example.com",
        )
        assert (entry.email_address, entry.suppression_reason, entry.origin) == (
            "Buyer@Example.com",
            SuppressionReason.MANUAL_SUPPRESSION,
            SuppressionOrigin.CUSTOMER,
        )
        assert client.suppressions.dump("py-receipts", suppression_reason=SuppressionReason.HARD_BOUNCE) == []
        lifted = client.suppressions.delete("py-receipts", ["buyer@example.com"])
        assert [(o.email_address, o.status, o.message) for o in lifted] == [("buyer@example.com", "Deleted", None)]
        assert [entry.email_address for entry in client.suppressions.dump("py-receipts")] == ["seller@example.com"]
        with pytest.raises(ValidationException) as no_stream:
            client.suppressions.dump("no-such-stream")
        assert (no_stream.value.http_status, no_stream.value.error_code) == (422, 1226)

    with sync.ServerClient(UNKNOWN_TOKEN, base_url=live_server.base_url, retries=0) as stranger:
        with pytest.raises(InvalidAPIKeyException) as refused:
            stranger.stream.list()
        assert (refused.value.http_status, refused.value.error_code) == (401, 10)
