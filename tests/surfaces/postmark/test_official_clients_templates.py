"""The official clients through the templates scenario: layouts, templates inside them,
listing with filters, validation, pushing to another server, deleting; errors mapped to
each client's own exception types."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from postmark import InvalidAPIKeyException, ValidationException, sync
from postmark.models.templates import (
    PushTemplatesResponse,
    Template,
    TemplateAction,
    TemplateType,
    TemplateTypeFilter,
    UpsertTemplateResponse,
    ValidateTemplateResponse,
)
from postmarker.core import PostmarkClient
from postmarker.exceptions import ClientError
from postmarker.models.templates import Template as PostmarkerTemplate

from postwarden.accounts.service import NewAccount
from postwarden.runtime import Runtime
from tests.conftest import LiveServer, create_account
from tests.surfaces.postmark.test_official_clients import assert_js_error, create_server, run_node


def list_names(live_server: LiveServer, token: str) -> list[str]:
    answer = httpx.get(
        f"{live_server.base_url}/templates?count=100&offset=0", headers={"X-Postmark-Server-Token": token}
    )
    return [template["Name"] for template in answer.json()["Templates"]]


def test_postmark_js_template_scenario(live_server: LiveServer, account: NewAccount, runtime: Runtime) -> None:
    source, destination = create_server(live_server, account), create_server(live_server, account, Name="Staging")
    foreign = create_server(live_server, create_account(runtime, "Other"), Name="Theirs")
    result = run_node(
        "server_templates.mjs",
        live_server,
        PW_SERVER_TOKEN=source["ApiTokens"][0],
        PW_ACCOUNT_TOKEN=account.account_token,
        PW_SOURCE_ID=str(source["ID"]),
        PW_DESTINATION_ID=str(destination["ID"]),
        PW_OTHER_ACCOUNT_SERVER_ID=str(foreign["ID"]),
        PW_TRACE="1",
    )
    layout, template = result["create_layout"], result["create_template"]
    assert layout == {
        "TemplateId": layout["TemplateId"],
        "Name": "Node layout",
        "Active": True,
        "Alias": "node-layout",
        "TemplateType": "Layout",
        "LayoutTemplate": None,
    }
    assert (template["TemplateType"], template["LayoutTemplate"]) == ("Standard", "node-layout")
    assert_js_error(result["create_duplicate_alias"], 422, 1122, "ApiInputError")
    assert_js_error(result["create_layout_without_placeholder"], 422, 1131, "ApiInputError")
    assert result["edit_template"] == {**template, "Name": "Node welcome, edited"}
    assert_js_error(result["edit_nothing"], 422, 1109, "ApiInputError")

    assert result["get_templates"]["TotalCount"] == 2
    assert [t["Alias"] for t in result["get_layouts"]["Templates"]] == ["node-layout"]
    assert [t["Alias"] for t in result["get_in_layout"]["Templates"]] == ["node-welcome"]
    lists = [sent["url"] for sent in result["trace"] if sent["method"] == "GET"][:3]
    assert lists[0].endswith("/templates?count=100&offset=0")
    assert lists[1].endswith("/templates?count=10&offset=0&templateType=Layout")
    assert lists[2].endswith("/templates?count=10&offset=0&layoutTemplate=node-layout")

    shown = result["get_template"]
    assert shown == result["get_by_alias"]
    assert (shown["Name"], shown["Subject"], shown["HtmlBody"]) == (
        "Node welcome, edited",
        "Welcome {{name}}",
        "<p>Hello {{name}}</p>",
    )
    assert (shown["AssociatedServerId"], shown["Active"]) == (source["ID"], True)
    assert_js_error(result["get_unknown"], 422, 1101, "ApiInputError")

    validated = result["validate"]
    assert validated["AllContentIsValid"] is False
    assert validated["Subject"]["RenderedContent"] == "Hi <Ann>"
    assert validated["HtmlBody"]["RenderedContent"] == "<header></header><p>&lt;Ann&gt;</p><i>one</i>"
    assert validated["TextBody"]["ValidationErrors"] == [
        {"Message": "The section 'broken' is never closed with '{{/broken}}'", "Line": 1, "CharacterPosition": 1}
    ]
    assert validated["SuggestedTemplateModel"] == {
        "name": "name_Value",
        "items": [{"title": "title_Value"}] * 3,
        "brand": "brand_Value",
    }

    dry_run = result["push_dry_run"]
    assert [(t["Action"], t["Alias"], t["TemplateId"]) for t in dry_run["Templates"]] == [
        ("Create", "node-layout", None),
        ("Create", "node-welcome", None),
    ]
    pushed = result["push"]
    assert pushed["TotalCount"] == 2 and all(t["TemplateId"] for t in pushed["Templates"])
    assert list_names(live_server, destination["ApiTokens"][0]) == ["Node layout", "Node welcome, edited"]
    assert_js_error(result["push_to_another_account"], 422, 601, "ApiInputError")
    assert_js_error(result["push_with_server_token"], 401, 10, "InvalidAPIKeyError")

    assert_js_error(result["delete_layout_in_use"], 422, 1130, "ApiInputError")
    assert result["delete_template"] == {"ErrorCode": 0, "Message": f"Template {template['TemplateId']} removed."}
    assert result["get_deleted"]["Active"] is False
    assert result["delete_layout"] == {"ErrorCode": 0, "Message": f"Template {layout['TemplateId']} removed."}
    assert list_names(live_server, source["ApiTokens"][0]) == []


def test_postmarker_templates(live_server: LiveServer, account: NewAccount) -> None:
    server = create_server(live_server, account)
    client = PostmarkClient(server_token=server["ApiTokens"][0], root_api_url=live_server.base_url + "/")
    created = client.templates.create(
        Name="Receipt", Subject="Receipt {{number}}", HtmlBody="<b>{{total}}</b>", Alias="receipt"
    )
    assert isinstance(created, PostmarkerTemplate) and created.Alias == "receipt"
    for n in range(3):
        client.templates.create(Name=f"Other {n}", Subject="S", TextBody="T")
    assert client.templates.get(created.TemplateId).HtmlBody == "<b>{{total}}</b>"
    # edit sends every field, the ones not given as null: they keep their value
    assert client.templates.edit(created.TemplateId, Name="Receipt v2")["Name"] == "Receipt v2"
    fetched = client.templates.get(created.TemplateId)
    assert (fetched.Name, fetched.Subject, fetched.Alias) == ("Receipt v2", "Receipt {{number}}", "receipt")

    assert [t.Name for t in client.templates.all()] == ["Receipt v2", "Other 0", "Other 1", "Other 2"]
    assert [t.Name for t in client.templates.all(Count=2, Offset=1)] == ["Other 0", "Other 1"]

    checked: dict[str, Any] = client.templates.validate(
        Subject="Test {{x}}", TextBody="Test", TestRenderModel={"x": "one"}
    )
    assert checked == {
        "AllContentIsValid": True,
        "HtmlBody": None,
        "TextBody": {"ContentIsValid": True, "ValidationErrors": [], "RenderedContent": "Test"},
        "Subject": {"ContentIsValid": True, "ValidationErrors": [], "RenderedContent": "Test one"},
        "SuggestedTemplateModel": {"x": "x_Value"},
    }
    assert client.templates.delete(created.TemplateId) == f"Template {created.TemplateId} removed."
    assert client.templates.get(created.TemplateId).Active is False
    with pytest.raises(ClientError) as gone:
        client.templates.get("receipt")
    assert gone.value.error_code == 1101
    with pytest.raises(ClientError) as invalid:
        client.templates.create(Name="Broken", Subject="{{#open}}", TextBody="T")
    assert invalid.value.error_code == 1122


def test_postmark_python_templates(live_server: LiveServer, account: NewAccount) -> None:
    source, destination = create_server(live_server, account), create_server(live_server, account, Name="Staging")
    with sync.ServerClient(source["ApiTokens"][0], base_url=live_server.base_url, retries=0) as client:
        layout = client.templates.create(
            {"Name": "Frame", "TemplateType": "Layout", "HtmlBody": "<div>{{{ @content }}}</div>"}
        )
        assert isinstance(layout, UpsertTemplateResponse)
        assert (layout.template_type, layout.alias) == (TemplateType.LAYOUT, "frame")
        created = client.templates.create(
            {
                "Name": "Hello",
                "Alias": "hello",
                "Subject": "Hi",
                "HtmlBody": "<p>{{who}}</p>",
                "LayoutTemplate": "frame",
            }
        )
        assert created.layout_template == "frame"
        edited = client.templates.edit("hello", {"Subject": "Hi {{who}}", "LayoutTemplate": ""})
        assert (edited.name, edited.layout_template) == ("Hello", None)
        fetched = client.templates.get(created.template_id)
        assert isinstance(fetched, Template)
        assert (fetched.subject, fetched.text_body, fetched.associated_server_id) == ("Hi {{who}}", None, source["ID"])

        page = client.templates.list(count=10, offset=0, template_type=TemplateTypeFilter.STANDARD)
        assert (page.total, [t.alias for t in page.items]) == (1, ["hello"])
        assert client.templates.list().total == 2

        draft = {"HtmlBody": "<p>{{who}}</p>", "TestRenderModel": {"who": "Py"}, "LayoutTemplate": "frame"}
        checked = client.templates.validate(draft)
        assert isinstance(checked, ValidateTemplateResponse)
        assert checked.html_body is not None and checked.html_body.rendered_content == "<div><p>Py</p></div>"
        assert (checked.subject, checked.suggested_template_model) == (None, {"who": "who_Value"})

        with pytest.raises(ValidationException) as missing:
            client.templates.get("nothing-here")
        assert (missing.value.http_status, missing.value.error_code) == (422, 1101)

    with sync.AccountClient(account.account_token, base_url=live_server.base_url, retries=0) as account_client:
        request = {"SourceServerID": str(source["ID"]), "DestinationServerID": str(destination["ID"])}
        preview = account_client.templates.push({**request, "PerformChanges": False})
        assert isinstance(preview, PushTemplatesResponse)
        assert [(t.action, t.template_type, t.template_id) for t in preview.templates] == [
            (TemplateAction.CREATE, TemplateType.LAYOUT, None),
            (TemplateAction.CREATE, TemplateType.STANDARD, None),
        ]
        done = account_client.templates.push({**request, "PerformChanges": True})
        assert done.total_count == 2 and all(t.template_id for t in done.templates)
    assert list_names(live_server, destination["ApiTokens"][0]) == ["Frame", "Hello"]

    with sync.ServerClient(source["ApiTokens"][0], base_url=live_server.base_url, retries=0) as client:
        deleted = client.templates.delete("hello")
        assert (deleted.error_code, deleted.message) == (0, f"Template {created.template_id} removed.")
    unknown = "00000000-0000-0000-0000-000000000000"
    with (
        sync.ServerClient(unknown, base_url=live_server.base_url, retries=0) as bad,
        pytest.raises(InvalidAPIKeyException),
    ):
        bad.templates.list()
