"""The official clients, unchanged, against postwarden over real HTTP: postmark.js (npm
``postmark`` 5.1.0, through the scripts in tests/clients/node), postmarker 1.0 and
postmark-python. Each one parses every server object, sends its own edits and maps our
errors to its own exception types, so a field, a type or an ErrorCode out of place fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from postmark import InvalidAPIKeyException, ValidationException, sync
from postmark.models.servers import DeliveryType, Server, ServerColor, TrackLinks
from postmarker.core import PostmarkClient
from postmarker.exceptions import ClientError

from postwarden.accounts.service import NewAccount
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.surfaces.postmark.schemas import ServerResponse
from postwarden.tokens.service import TokenService
from tests.conftest import LiveServer

NODE_CLIENT = Path(__file__).resolve().parents[2] / "clients" / "node"
SERVER_FIELDS = list(ServerResponse.model_fields)
UNKNOWN_TOKEN = "00000000-0000-0000-0000-000000000000"


def run_node(script: str, live_server: LiveServer, **env: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "NODE.JS IS MISSING: the official postmark.js client was NOT checked. "
            "Install Node 18 or newer and run `npm ci --prefix tests/clients/node`."
        )
    if not (NODE_CLIENT / "node_modules" / "postmark").is_dir():
        pytest.skip(
            "POSTMARK.JS IS NOT INSTALLED: the official Node client was NOT checked. "
            "Run `npm ci --prefix tests/clients/node` (make test does)."
        )
    finished = subprocess.run(
        [node, str(NODE_CLIENT / script)],
        env={**os.environ, "PW_HOST": live_server.host_port, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, f"{script} exited with {finished.returncode}:\n{finished.stderr}{finished.stdout}"
    result: dict[str, Any] = json.loads(finished.stdout)
    assert result["meta"]["postmark_version"] == "5.1.0"
    assert "unexpected" not in result
    return result


def assert_js_error(step: dict[str, Any], status: int, code: int, name: str) -> None:
    assert "error" in step, step
    error = step["error"]
    assert (error["statusCode"], error["code"], error["name"]) == (status, code, name), error
    assert error["message"]


def except_fields(server: dict[str, Any], *names: str) -> dict[str, Any]:
    return {key: value for key, value in server.items() if key not in names}


def create_server(live_server: LiveServer, account: NewAccount, **body: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{live_server.base_url}/servers",
        json={"Name": "Production", **body},
        headers={"X-Postmark-Account-Token": account.account_token},
    )
    assert response.status_code == 200, response.text
    server: dict[str, Any] = response.json()
    return server


def enable_server_deletion(runtime: Runtime, account: NewAccount) -> None:
    with runtime.db.session_scope() as session:
        tokens = TokenService(session, runtime)
        token = tokens.account_tokens(Actor.system("tests"), account.account.id)[0]
        tokens.set_server_deletion(Actor.system("tests"), token, enabled=True)


def test_postmark_js_account_client_manages_servers(
    live_server: LiveServer, account: NewAccount, runtime: Runtime
) -> None:
    first = run_node(
        "account_servers.mjs",
        live_server,
        PW_ACCOUNT_TOKEN=account.account_token,
        PW_NAME="Node Production",
        PW_TRACE="1",
    )
    assert first["get_servers"] == {"TotalCount": 0, "Servers": []}

    created = first["create_server"]
    assert list(created) == SERVER_FIELDS
    assert first["meta"]["server_id"] == created["ID"]
    assert (created["Name"], created["Color"], created["TrackLinks"]) == ("Node Production", "green", "HtmlOnly")
    assert (created["DeliveryType"], created["TrackOpens"], created["InboundSpamThreshold"]) == ("Live", False, 0)
    assert len(created["ApiTokens"]) == 1
    assert first["get_server"] == created

    edited = first["edit_server"]
    assert edited["Color"] == "red"
    assert except_fields(edited, "Color") == except_fields(created, "Color")
    # the client sent only what it was given: the edit is partial on the wire too
    (edit_request,) = [sent for sent in first["trace"] if sent["method"] == "PUT"]
    assert edit_request["url"].endswith(f"/servers/{created['ID']}")
    assert json.loads(edit_request["body"]) == {"Color": "red"}

    assert first["get_servers_by_name"] == {"TotalCount": 1, "Servers": [edited]}
    assert_js_error(first["create_server_duplicate"], 422, 603, "ApiInputError")
    assert "create_server_duplicate_cleanup" not in first
    assert_js_error(first["delete_server"], 422, 604, "ApiInputError")
    assert_js_error(first["get_server_bad_token"], 401, 10, "InvalidAPIKeyError")

    enable_server_deletion(runtime, account)
    second = run_node(
        "account_servers.mjs", live_server, PW_ACCOUNT_TOKEN=account.account_token, PW_NAME="Node Staging"
    )
    assert [server["Name"] for server in second["get_servers"]["Servers"]] == ["Node Production"]
    assert second["create_server"]["Name"] == "Node Staging"
    assert second["delete_server"] == {"ErrorCode": 0, "Message": "Server Node Staging removed."}
    remaining = httpx.get(
        f"{live_server.base_url}/servers?count=10&offset=0",
        headers={"X-Postmark-Account-Token": account.account_token},
    ).json()
    assert [server["Name"] for server in remaining["Servers"]] == ["Node Production"]


def test_postmark_js_server_client_reads_and_edits_its_server(live_server: LiveServer, account: NewAccount) -> None:
    created = create_server(live_server, account, Color="Orange")
    result = run_node("server_token.mjs", live_server, PW_SERVER_TOKEN=created["ApiTokens"][0])
    assert result["get_server"] == created
    assert result["edit_server"] == {**created, "TrackOpens": True}
    assert result["get_server_after_edit"] == result["edit_server"]


def test_postmarker_reads_and_edits_the_server(live_server: LiveServer, account: NewAccount) -> None:
    created = create_server(live_server, account, InboundSpamThreshold=5)
    client = PostmarkClient(
        server_token=created["ApiTokens"][0],
        account_token=account.account_token,
        root_api_url=live_server.base_url + "/",
    )
    server = client.server.get()
    assert server.as_dict() == created

    assert client.server.edit(TrackOpens=True) == {**created, "TrackOpens": True}
    server.edit(Color="Blue", RawEmailEnabled=None)  # postmarker sends what it is given, nulls included
    assert (server.Color, server.TrackOpens, server.InboundSpamThreshold) == ("blue", True, 5)
    assert client.server.get().as_dict() == {**created, "TrackOpens": True, "Color": "blue"}

    stranger = PostmarkClient(server_token=UNKNOWN_TOKEN, root_api_url=live_server.base_url + "/")
    with pytest.raises(ClientError) as refused:
        stranger.server.get()
    assert refused.value.error_code == 10


def test_postmark_python_validates_every_server_it_gets(live_server: LiveServer, account: NewAccount) -> None:
    with sync.AccountClient(account.account_token, base_url=live_server.base_url, retries=0) as client:
        empty = client.server.list(count=10, offset=0)
        assert (empty.total, empty.items) == (0, [])

        created = client.server.create(
            name="Python Production",
            color=ServerColor.BLUE,
            delivery_type=DeliveryType.SANDBOX,
            track_links=TrackLinks.HTML_AND_TEXT,
            track_opens=True,
            inbound_spam_threshold=5,
            bounce_hook_url="https://hooks.example.com/bounce",
        )
        assert isinstance(created, Server)
        assert (created.name, created.color, created.delivery_type) == (
            "Python Production",
            ServerColor.BLUE,
            DeliveryType.SANDBOX,
        )
        assert (created.track_links, created.track_opens, created.inbound_spam_threshold) == (
            TrackLinks.HTML_AND_TEXT,
            True,
            5,
        )
        assert created.bounce_hook_url == "https://hooks.example.com/bounce"
        assert client.server.get(created.id) == created

        edited = client.server.edit(created.id, name="Python Renamed", color=ServerColor.RED)
        assert (edited.name, edited.color) == ("Python Renamed", ServerColor.RED)
        assert edited.model_dump(exclude={"name", "color"}) == created.model_dump(exclude={"name", "color"})

        other = client.server.create(name="Other")
        assert (other.color, other.delivery_type, other.track_links) == (
            ServerColor.PURPLE,
            DeliveryType.LIVE,
            TrackLinks.NONE,
        )
        everything = client.server.list(count=10, offset=0)
        assert everything.total == 2 and {server.id for server in everything.items} == {created.id, other.id}
        renamed = client.server.list(count=10, offset=0, name="renamed")
        assert (renamed.total, renamed.items) == (1, [edited])

        with pytest.raises(ValidationException) as duplicate:
            client.server.create(name="python renamed")
        assert (duplicate.value.http_status, duplicate.value.error_code) == (422, 603)
        with pytest.raises(ValidationException) as not_enabled:
            client.server.delete(created.id)
        assert (not_enabled.value.http_status, not_enabled.value.error_code) == (422, 604)

    with sync.ServerClient(created.api_tokens[0], base_url=live_server.base_url, retries=0) as server_client:
        assert server_client.server.get() == edited
        changed = server_client.server.edit(track_opens=False, color=ServerColor.ORANGE)
        assert (changed.track_opens, changed.color) == (False, ServerColor.ORANGE)
        assert changed.model_dump(exclude={"track_opens", "color"}) == edited.model_dump(
            exclude={"track_opens", "color"}
        )

    with sync.AccountClient(UNKNOWN_TOKEN, base_url=live_server.base_url, retries=0) as stranger:
        with pytest.raises(InvalidAPIKeyException) as refused:
            stranger.server.list()
        assert (refused.value.http_status, refused.value.error_code) == (401, 10)
