"""The official clients through the webhooks scenario: postmark.js (createWebhook, getWebhooks
with and without a stream, getWebhook, editWebhook with one trigger, deleteWebhook) and
postmark-python's webhooks manager, whose pydantic models require every trigger field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from postmark import InvalidAPIKeyException, ValidationException, sync
from postmark.models.webhooks import Webhook

from postwarden.accounts.service import NewAccount
from tests.conftest import LiveServer
from tests.surfaces.postmark.test_official_clients import UNKNOWN_TOKEN, assert_js_error, run_node

HOOK_URL = "https://hooks.example.com/postmark"


@pytest.fixture
def server_token(live_server: LiveServer, account: NewAccount) -> str:
    created = httpx.post(
        f"{live_server.base_url}/servers",
        json={"Name": "Webhooks"},
        headers={"X-Postmark-Account-Token": account.account_token},
    )
    assert created.status_code == 200, created.text
    token: str = created.json()["ApiTokens"][0]
    return token


def test_postmark_js_webhook_scenario(live_server: LiveServer, server_token: str) -> None:
    result = run_node("server_webhooks.mjs", live_server, PW_SERVER_TOKEN=server_token, PW_HOOK_URL=HOOK_URL)
    created: dict[str, Any] = result["create_webhook"]
    assert (created["Url"], created["MessageStream"]) == (HOOK_URL, "outbound")
    assert created["HttpAuth"] == {"Username": "node", "Password": "node-secret"}
    assert created["HttpHeaders"] == [{"Name": "X-Source", "Value": "postmark.js"}]
    assert created["Triggers"]["Open"] == {"Enabled": True, "PostFirstOpenOnly": True}
    assert created["Triggers"]["Bounce"] == {"Enabled": True, "IncludeContent": False}
    assert created["Triggers"]["Click"] == {"Enabled": False}
    broadcast = result["create_broadcast_webhook"]
    assert broadcast["Triggers"]["SubscriptionChange"] == {"Enabled": True}

    assert result["get_webhooks"] == {"Webhooks": [created, broadcast]}
    assert result["get_webhooks_broadcast"] == {"Webhooks": [broadcast]}
    assert result["get_webhook"] == created
    edited = result["edit_webhook"]
    assert edited == {**created, "Triggers": {**created["Triggers"], "Click": {"Enabled": True}}}
    assert result["delete_webhook"] == {"ErrorCode": 0, "Message": f"Webhook {created['ID']} removed."}

    assert_js_error(result["get_deleted"], 422, 1352, "ApiInputError")
    assert_js_error(result["get_webhooks_unknown_stream"], 422, 1226, "ApiInputError")
    assert_js_error(result["create_private_url"], 422, 1354, "ApiInputError")
    assert_js_error(result["create_on_inbound"], 422, 1351, "ApiInputError")
    assert_js_error(result["edit_stream"], 422, 1357, "ApiInputError")
    assert_js_error(result["get_webhooks_bad_token"], 401, 10, "InvalidAPIKeyError")


def test_postmark_python_webhook_scenario(live_server: LiveServer, server_token: str) -> None:
    with sync.ServerClient(server_token, base_url=live_server.base_url, retries=0) as client:
        created = client.webhooks.create(
            url=HOOK_URL,
            http_auth={"Username": "py", "Password": "py-secret"},
            http_headers=[{"Name": "X-Source", "Value": "postmark-python"}],
            triggers={"Delivery": {"Enabled": True}, "SpamComplaint": {"Enabled": True, "IncludeContent": True}},
        )
        assert isinstance(created, Webhook)
        assert (created.url, created.message_stream) == (HOOK_URL, "outbound")
        assert created.http_auth is not None and created.http_auth.password == "py-secret"
        assert created.triggers.delivery.enabled and created.triggers.spam_complaint.include_content
        assert not created.triggers.open.enabled and not created.triggers.open.post_first_open_only

        broadcast = client.webhooks.create(url=f"{HOOK_URL}/b", message_stream="broadcast")
        assert [w.id for w in client.webhooks.list()] == [created.id, broadcast.id]
        assert client.webhooks.list(message_stream="broadcast") == [broadcast]
        assert client.webhooks.get(created.id) == created

        edited = client.webhooks.edit(created.id, triggers={"Open": {"Enabled": True}}, http_headers=[])
        assert edited.triggers.open.enabled and edited.triggers.delivery.enabled
        assert edited.http_headers == [] and edited.url == HOOK_URL
        assert edited.model_dump(exclude={"triggers", "http_headers"}) == created.model_dump(
            exclude={"triggers", "http_headers"}
        )

        removed = client.webhooks.delete(created.id)
        assert (removed.error_code, removed.message) == (0, f"Webhook {created.id} removed.")
        with pytest.raises(ValidationException) as gone:
            client.webhooks.get(created.id)
        assert (gone.value.http_status, gone.value.error_code) == (422, 1352)
        with pytest.raises(ValidationException) as unsupported:
            client.webhooks.edit(broadcast.id, triggers={"Bounce": {"Enabled": True}})
        assert (unsupported.value.http_status, unsupported.value.error_code) == (422, 1353)

    with sync.ServerClient(UNKNOWN_TOKEN, base_url=live_server.base_url, retries=0) as stranger:
        with pytest.raises(InvalidAPIKeyException) as refused:
            stranger.webhooks.list()
        assert (refused.value.http_status, refused.value.error_code) == (401, 10)
