"""The Templates API over HTTP: every field, rule and ErrorCode, layouts, validation,
pushing between servers, who may do what, and the audit trail."""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.identity import Actor
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.surfaces.postmark.template_schemas import TemplateListItem, TemplateResponse, TemplateSavedResponse
from postwarden.templates.service import TEMPLATE_LIMIT, TemplateFields, TemplateService
from tests.conftest import LiveServer, create_account
from tests.surfaces.postmark.test_servers import assert_error
from tests.surfaces.team.helpers import add_member, sign_in

TEMPLATE_FIELDS = list(TemplateResponse.model_fields)
SAVED_FIELDS = list(TemplateSavedResponse.model_fields)
ITEM_FIELDS = list(TemplateListItem.model_fields)
ID_NOT_FOUND = "The 'TemplateId' associated with this request is not valid or was not found."
ALIAS_NOT_FOUND = "The Template's 'Alias' associated with this request is not valid or was not found."
LAYOUT = {"Name": "Main layout", "TemplateType": "Layout", "HtmlBody": "<main>{{{ @content }}}</main>"}


@dataclass
class Server:
    """A server, and headers that reach it: its token, or the account token with server_id."""

    id: int
    token_headers: dict[str, str]
    account_headers: dict[str, str]

    def path(self, path: str) -> str:
        return f"{path}{'&' if '?' in path else '?'}server_id={self.id}"


def make_server(client: TestClient, account: NewAccount, name: str = "Production") -> Server:
    headers = {"X-Postmark-Account-Token": account.account_token}
    created = client.post("/servers", json={"Name": name}, headers=headers)
    assert created.status_code == 200, created.text
    body = created.json()
    return Server(body["ID"], {"X-Postmark-Server-Token": body["ApiTokens"][0]}, headers)


@pytest.fixture
def server(client: TestClient, account: NewAccount) -> Server:
    return make_server(client, account)


def create(client: TestClient, server: Server, **body: Any) -> dict[str, Any]:
    fields = {"Name": "Welcome", "Subject": "Hi {{name}}", "HtmlBody": "<p>Hi {{name}}</p>", **body}
    answer = client.post("/templates", json=fields, headers=server.token_headers)
    assert answer.status_code == 200, answer.text
    created: dict[str, Any] = answer.json()
    return created


def get(client: TestClient, server: Server, ref: object) -> dict[str, Any]:
    answer = client.get(f"/templates/{ref}", headers=server.token_headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def listing(client: TestClient, server: Server, query: str = "count=100&offset=0") -> dict[str, Any]:
    answer = client.get(f"/templates?{query}", headers=server.token_headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# create, get, list


def test_create_answers_the_saved_shape_and_get_shows_every_field(client: TestClient, server: Server) -> None:
    created = create(client, server, Alias="welcome", TextBody="Hi {{name}}")
    assert list(created) == SAVED_FIELDS
    assert created == {
        "TemplateId": created["TemplateId"],
        "Name": "Welcome",
        "Active": True,
        "Alias": "welcome",
        "TemplateType": "Standard",
        "LayoutTemplate": None,
    }
    shown = get(client, server, created["TemplateId"])
    assert list(shown) == TEMPLATE_FIELDS
    assert shown == {
        "TemplateId": created["TemplateId"],
        "Name": "Welcome",
        "Subject": "Hi {{name}}",
        "HtmlBody": "<p>Hi {{name}}</p>",
        "TextBody": "Hi {{name}}",
        "AssociatedServerId": server.id,
        "Active": True,
        "Alias": "welcome",
        "TemplateType": "Standard",
        "LayoutTemplate": None,
    }
    assert get(client, server, "WELCOME") == shown  # an alias in any case


def test_a_template_without_alias_or_text_body_shows_them_as_null(client: TestClient, server: Server) -> None:
    created = create(client, server)
    shown = get(client, server, created["TemplateId"])
    assert (shown["Alias"], shown["TextBody"], created["Alias"]) == (None, None, None)


def test_unknown_templates_are_1101_with_postmarks_wire_texts(client: TestClient, server: Server) -> None:
    for ref in ("999999", "99999999999", "0"):
        assert assert_error(client.get(f"/templates/{ref}", headers=server.token_headers), 422, 1101) == ID_NOT_FOUND
    message = assert_error(client.get("/templates/no-such-alias", headers=server.token_headers), 422, 1101)
    assert message == ALIAS_NOT_FOUND


def test_templates_of_another_server_are_not_found(client: TestClient, account: NewAccount, server: Server) -> None:
    other = make_server(client, account, "Staging")
    theirs = create(client, other, Alias="theirs")
    assert_error(client.get(f"/templates/{theirs['TemplateId']}", headers=server.token_headers), 422, 1101)
    assert_error(client.get("/templates/theirs", headers=server.token_headers), 422, 1101)
    assert_error(client.delete(f"/templates/{theirs['TemplateId']}", headers=server.token_headers), 422, 1101)


def test_listing_pages_in_either_case_and_shows_active_templates_only(client: TestClient, server: Server) -> None:
    ids = [create(client, server, Name=f"T{n}", Alias=f"t{n}")["TemplateId"] for n in range(4)]
    client.delete(f"/templates/{ids[1]}", headers=server.token_headers)
    page = listing(client, server, "Count=2&Offset=1")
    assert page["TotalCount"] == 3
    assert [t["TemplateId"] for t in page["Templates"]] == [ids[2], ids[3]]
    assert list(page["Templates"][0]) == ITEM_FIELDS
    assert page["Templates"][0] == {
        "Active": True,
        "TemplateId": ids[2],
        "Name": "T2",
        "Alias": "t2",
        "TemplateType": "Standard",
        "LayoutTemplate": None,
    }
    assert listing(client, server, "count=500&offset=0")["TotalCount"] == 3


@pytest.mark.parametrize(
    "query",
    ["", "count=10", "offset=0", "count=0&offset=0", "count=501&offset=0", "count=x&offset=0", "count=1&offset=-1",
     "count=10&offset=0&TemplateType=Partial", "count=10&offset=0&TemplateType="],
)  # fmt: skip
def test_listing_refuses_bad_paging_and_filters_with_1100(client: TestClient, server: Server, query: str) -> None:
    assert_error(client.get(f"/templates?{query}", headers=server.token_headers), 422, 1100)


def test_listing_filters_by_type_and_by_layout(client: TestClient, server: Server) -> None:
    layout = create(client, server, **LAYOUT, Subject=None)
    other = create(client, server, **{**LAYOUT, "Name": "Other layout"}, Subject=None)
    inside = create(client, server, Name="Inside", LayoutTemplate=layout["Alias"])
    create(client, server, Name="Alone")
    create(client, server, Name="Elsewhere", LayoutTemplate=other["Alias"])

    def names(query: str) -> list[str]:
        return [t["Name"] for t in listing(client, server, f"count=10&offset=0&{query}")["Templates"]]

    assert names("TemplateType=Layout") == ["Main layout", "Other layout"]
    assert names("templateType=standard") == ["Inside", "Alone", "Elsewhere"]  # as postmark-python sends it
    assert names("TemplateType=All") == ["Main layout", "Other layout", "Inside", "Alone", "Elsewhere"]
    assert names("LayoutTemplate=MAIN-LAYOUT") == ["Inside"]
    assert names("layoutTemplate=main-layout&templateType=Layout") == []
    assert names("LayoutTemplate=nothing-here") == []
    assert listing(client, server, "count=10&offset=0&LayoutTemplate=main-layout")["Templates"][0] == {
        "Active": True,
        "TemplateId": inside["TemplateId"],
        "Name": "Inside",
        "Alias": None,
        "TemplateType": "Standard",
        "LayoutTemplate": "main-layout",
    }


# the rules of create


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"Name": None}, 1120, "A Name is required"),
        ({"Name": "   "}, 1120, "A Name is required"),
        ({"Subject": None}, 1120, "A Subject is required for a standard template"),
        ({"Subject": " "}, 1120, "The Subject of a standard template cannot be blank"),
        ({"HtmlBody": None}, 1120, "An HtmlBody or a TextBody is required"),
        ({"HtmlBody": "", "TextBody": ""}, 1120, "An HtmlBody or a TextBody is required"),
        ({"Name": "n" * 256}, 1121, "The Name must be at most 255 characters"),
        ({"Subject": "s" * 2001}, 1121, "The Subject must be at most 2000 characters"),
        ({"Alias": "a" * 256}, 1121, "The Alias must be at most 255 characters"),
        ({"Alias": "1st"}, 1122, "The Alias '1st' is invalid"),
        ({"Alias": "has space"}, 1122, "The Alias 'has space' is invalid"),
        ({"Alias": ""}, 1122, "The Alias '' is invalid"),
        ({"TemplateType": "Partial"}, 1122, "The TemplateType 'Partial' is invalid: use one of Standard, Layout"),
        ({"HtmlBody": "<p>{{#items}}</p>"}, 1122, "The HtmlBody is not a valid template: The section 'items' is never "
         "closed with '{{/items}}' (line 1, character 4)."),
        ({"Subject": "Hi\n{{ name"}, 1122, "The Subject is not a valid template: '{{' is never closed with '}}' "
         "(line 2, character 1)."),
        ({"LayoutTemplate": "missing"}, 1101, "The 'LayoutTemplate' associated with this request is not valid"),
        ({"TemplateType": "Layout", "LayoutTemplate": "x", "Subject": None, "HtmlBody": "{{{@content}}}"}, 1123,
         "A layout has no Subject and no LayoutTemplate of its own"),
        ({"TemplateType": "Layout", "HtmlBody": "{{{@content}}}"}, 1123, "A layout has no Subject"),
        ({"TemplateType": "Layout", "Subject": None, "HtmlBody": "<p>no placeholder</p>"}, 1131,
         "In the HtmlBody: A layout must contain {{{ @content }}} exactly once; it is missing."),
        ({"TemplateType": "layout", "Subject": None, "HtmlBody": "{{{@content}}}", "TextBody": "{{{ @content }}}\n"
          "{{{@content}}}"}, 1131, "In the TextBody: A layout must contain {{{ @content }}} exactly once; this is "
         "another one."),
        ({"Name": 5}, 402, "Invalid value for 'Name'"),
    ],
)  # fmt: skip
def test_create_refuses_what_breaks_a_rule(
    client: TestClient, server: Server, body: dict[str, Any], code: int, text: str
) -> None:
    fields = {"Name": "Welcome", "Subject": "Hi", "HtmlBody": "<p>Hi</p>", **body}
    message = assert_error(client.post("/templates", json=fields, headers=server.token_headers), 422, code)
    assert message.startswith(text), message
    assert listing(client, server)["TotalCount"] == 0


def test_aliases_are_unique_per_server_in_any_case_while_active(
    client: TestClient, account: NewAccount, server: Server
) -> None:
    first = create(client, server, Alias="Welcome")
    taken = client.post(
        "/templates",
        json={"Name": "Again", "Subject": "S", "TextBody": "T", "Alias": "WELCOME"},
        headers=server.token_headers,
    )
    assert assert_error(taken, 422, 1122) == "The Alias 'WELCOME' is already used by another template here."
    create(client, make_server(client, account, "Staging"), Alias="Welcome")  # another server: free
    client.delete(f"/templates/{first['TemplateId']}", headers=server.token_headers)
    again = create(client, server, Alias="welcome")  # a deleted template gives its alias up
    assert get(client, server, "Welcome")["TemplateId"] == again["TemplateId"]
    assert get(client, server, first["TemplateId"])["Alias"] == "Welcome"  # and still shows it


def test_a_server_holds_at_most_100_active_templates(client: TestClient, server: Server) -> None:
    ids = [create(client, server, Name=f"T{n}")["TemplateId"] for n in range(TEMPLATE_LIMIT)]
    refused = client.post(
        "/templates", json={"Name": "One more", "Subject": "S", "TextBody": "T"}, headers=server.token_headers
    )
    assert "already has 100 templates" in assert_error(refused, 422, 1105)
    client.delete(f"/templates/{ids[0]}", headers=server.token_headers)
    create(client, server, Name="Now it fits")
    assert listing(client, server, "count=500&offset=0")["TotalCount"] == TEMPLATE_LIMIT


def concurrent_creates(live_server: LiveServer, server: Server, bodies: list[dict[str, Any]]) -> list[int]:
    """Each body posted at the same moment, on its own connection; the ErrorCodes (0 for success)."""
    start = threading.Barrier(len(bodies))

    def post(body: dict[str, Any]) -> int:
        with httpx.Client(base_url=live_server.base_url, timeout=30) as api:
            start.wait()
            answer = api.post("/templates", json=body, headers=server.token_headers)
            return 0 if answer.status_code == 200 else int(answer.json()["ErrorCode"])

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_the_limit_and_aliases_hold_under_concurrent_creates(
    live_server: LiveServer, client: TestClient, server: Server, runtime: Runtime
) -> None:
    same_alias = [{"Name": f"Racer {n}", "Subject": "S", "TextBody": "T", "Alias": "race"} for n in range(6)]
    assert sorted(concurrent_creates(live_server, server, same_alias)) == [0, 1122, 1122, 1122, 1122, 1122]
    with runtime.db.session_scope() as session:
        templates = TemplateService(session, Actor.system("tests"))
        for n in range(TEMPLATE_LIMIT - 2):
            templates.create_template(server.id, TemplateFields(name=f"T{n}", subject="S", text_body="T"))
    last_places = [{"Name": f"Late {n}", "Subject": "S", "TextBody": "T"} for n in range(6)]
    assert sorted(concurrent_creates(live_server, server, last_places)) == [0, 1105, 1105, 1105, 1105, 1105]
    assert listing(client, server, "count=500&offset=0")["TotalCount"] == TEMPLATE_LIMIT


def test_a_layout_without_alias_gets_one_from_its_name(client: TestClient, server: Server) -> None:
    first = create(client, server, **LAYOUT, Subject=None)
    second = create(client, server, **LAYOUT, Subject=None)
    odd = create(client, server, **{**LAYOUT, "Name": "2024 — ünïcode!"}, Subject=None)
    assert (first["Alias"], second["Alias"], odd["Alias"]) == ("main-layout", "main-layout-2", "layout-2024-n-code")
    assert create(client, server, Name="Uses it", LayoutTemplate="main-layout-2")["LayoutTemplate"] == "main-layout-2"


def test_a_layout_has_no_subject_and_keeps_its_placeholder_in_each_body(client: TestClient, server: Server) -> None:
    layout = create(client, server, **LAYOUT, Subject=None, TextBody="Hello\n{{{@content}}}\nBye", Alias="base")
    shown = get(client, server, "base")
    assert (shown["TemplateType"], shown["Subject"], shown["LayoutTemplate"]) == ("Layout", None, None)
    assert shown["TemplateId"] == layout["TemplateId"]
    nested = {"Name": "Nested", "TemplateType": "Layout", "HtmlBody": "{{{@content}}}", "LayoutTemplate": "base"}
    refused = client.post("/templates", json=nested, headers=server.token_headers)
    assert_error(refused, 422, 1123)
    standard_as_layout = create(client, server, Name="Plain", Alias="plain")
    assert standard_as_layout["TemplateType"] == "Standard"
    in_a_standard = {"Name": "N", "Subject": "S", "TextBody": "T", "LayoutTemplate": "plain"}
    not_a_layout = client.post("/templates", json=in_a_standard, headers=server.token_headers)
    assert_error(not_a_layout, 422, 1101)


# edit


def test_edit_is_partial_and_null_means_unchanged(client: TestClient, server: Server) -> None:
    created = create(client, server, Alias="welcome", TextBody="Text {{name}}")
    # postmarker sends every field, the unset ones as null
    body = {"Name": "Renamed", "Subject": None, "HtmlBody": None, "TextBody": None, "Alias": None}
    answer = client.put(f"/templates/{created['TemplateId']}", json=body, headers=server.token_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**created, "Name": "Renamed"}
    shown = get(client, server, "welcome")
    assert (shown["Subject"], shown["HtmlBody"], shown["TextBody"]) == (
        "Hi {{name}}",
        "<p>Hi {{name}}</p>",
        "Text {{name}}",
    )
    edited = client.put("/templates/welcome", json={"Alias": "hello", "TextBody": ""}, headers=server.token_headers)
    assert edited.json()["Alias"] == "hello"
    assert get(client, server, "hello")["TextBody"] is None  # "" removes a body
    assert_error(client.get("/templates/welcome", headers=server.token_headers), 422, 1101)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 1109),
        ({"Name": None, "Subject": None}, 1109),
        ({"Name": ""}, 1120),
        ({"Subject": "  "}, 1120),
        ({"HtmlBody": ""}, 1120),  # it has no other body
        ({"TemplateType": "Layout"}, 1123),
        ({"TemplateType": "Nope"}, 1122),
        ({"Alias": "9lives"}, 1122),
        ({"HtmlBody": "{{/x}}"}, 1122),
        ({"LayoutTemplate": "nowhere"}, 1101),
        ({"Subject": 3}, 402),
    ],
)
def test_edit_refuses_what_breaks_a_rule(client: TestClient, server: Server, body: dict[str, Any], code: int) -> None:
    created = create(client, server, Alias="welcome")
    before = get(client, server, "welcome")
    assert_error(client.put(f"/templates/{created['TemplateId']}", json=body, headers=server.token_headers), 422, code)
    assert get(client, server, "welcome") == before


def test_edit_keeps_a_layout_a_layout_and_moves_templates_between_layouts(client: TestClient, server: Server) -> None:
    create(client, server, **LAYOUT, Subject=None, Alias="base")
    create(client, server, **{**LAYOUT, "Name": "Other"}, Subject=None, Alias="other")
    template = create(client, server, LayoutTemplate="base", Alias="welcome")
    for body in ({"Subject": "A subject"}, {"LayoutTemplate": "other"}, {"HtmlBody": "no placeholder"}):
        assert_error(
            client.put("/templates/base", json=body, headers=server.token_headers),
            422,
            1131 if "HtmlBody" in body else 1123,
        )
    same_type = client.put("/templates/base", json={"TemplateType": "layout"}, headers=server.token_headers)
    assert same_type.status_code == 200
    moved = client.put("/templates/welcome", json={"LayoutTemplate": "OTHER"}, headers=server.token_headers)
    assert moved.json()["LayoutTemplate"] == "other"
    by_id = f"/templates/{template['TemplateId']}"
    cleared = client.put(by_id, json={"LayoutTemplate": ""}, headers=server.token_headers)
    assert cleared.json()["LayoutTemplate"] is None
    client.put("/templates/welcome", json={"LayoutTemplate": "base"}, headers=server.token_headers)
    renamed = client.put("/templates/base", json={"Alias": "frame"}, headers=server.token_headers)
    assert renamed.json()["Alias"] == "frame"
    assert get(client, server, "welcome")["LayoutTemplate"] == "frame"  # the link follows the layout


def test_deleted_templates_cannot_be_edited_or_deleted_again(client: TestClient, server: Server) -> None:
    created = create(client, server)
    path = f"/templates/{created['TemplateId']}"
    assert client.delete(path, headers=server.token_headers).json() == {
        "ErrorCode": 0,
        "Message": f"Template {created['TemplateId']} removed.",
    }
    shown = get(client, server, created["TemplateId"])
    assert shown["Active"] is False and shown["Name"] == "Welcome"
    assert assert_error(client.put(path, json={"Name": "x"}, headers=server.token_headers), 422, 1101) == ID_NOT_FOUND
    assert_error(client.delete(path, headers=server.token_headers), 422, 1101)


def test_a_layout_in_use_cannot_be_deleted(client: TestClient, server: Server) -> None:
    create(client, server, **LAYOUT, Subject=None, Alias="base")
    users = [create(client, server, Name=f"U{n}", LayoutTemplate="base")["TemplateId"] for n in range(2)]
    message = assert_error(client.delete("/templates/base", headers=server.token_headers), 422, 1130)
    assert message.startswith("The layout template cannot be deleted because it has dependent templates (2)")
    client.delete(f"/templates/{users[0]}", headers=server.token_headers)
    client.put(f"/templates/{users[1]}", json={"LayoutTemplate": ""}, headers=server.token_headers)
    assert client.delete("/templates/base", headers=server.token_headers).json()["ErrorCode"] == 0


# validate


def test_validate_renders_each_part_with_the_test_model(client: TestClient, server: Server) -> None:
    body = {
        "Subject": "Hello {{name}}",
        "HtmlBody": "<p>{{name}} {{{raw}}}</p>{{#each items}}<li>{{title}}</li>{{/each}}",
        "TextBody": "{{name}}: {{company.address}}{{^vip}} (regular){{/vip}}",
        "TestRenderModel": {"name": "<Ann>", "raw": "<b>x</b>", "items": [{"title": "A&B"}]},
        "InlineCssForHtmlTestRender": True,
    }
    answer = client.post("/templates/validate", json=body, headers=server.token_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "AllContentIsValid": True,
        "HtmlBody": {
            "ContentIsValid": True,
            "ValidationErrors": [],
            "RenderedContent": "<p>&lt;Ann&gt; <b>x</b></p><li>A&amp;B</li>",
        },
        "TextBody": {"ContentIsValid": True, "ValidationErrors": [], "RenderedContent": "<Ann>:  (regular)"},
        "Subject": {"ContentIsValid": True, "ValidationErrors": [], "RenderedContent": "Hello <Ann>"},
        "SuggestedTemplateModel": {
            "name": "name_Value",
            "raw": "raw_Value",
            "items": [{"title": "title_Value"}] * 3,
            "company": {"address": "address_Value"},
            "vip": "vip_Value",
        },
    }


def test_validate_reports_mistakes_with_their_position_and_parts_not_given_as_null(
    client: TestClient, server: Server
) -> None:
    body = {"TextBody": "fine {{ok}}", "HtmlBody": "<p>\n  {{#list}}\n</p>"}  # postmarker sends Subject: null
    answer = client.post("/templates/validate", json={**body, "Subject": None}, headers=server.token_headers).json()
    assert answer["AllContentIsValid"] is False and answer["Subject"] is None
    assert answer["HtmlBody"] == {
        "ContentIsValid": False,
        "ValidationErrors": [
            {"Message": "The section 'list' is never closed with '{{/list}}'", "Line": 2, "CharacterPosition": 3}
        ],
        "RenderedContent": None,
    }
    assert answer["TextBody"]["RenderedContent"] == "fine "
    assert answer["SuggestedTemplateModel"] == {"ok": "ok_Value"}


def test_validate_renders_inside_a_layout_and_checks_layout_content(client: TestClient, server: Server) -> None:
    create(
        client,
        server,
        Name="Base",
        TemplateType="Layout",
        Subject=None,
        Alias="base",
        HtmlBody="<header>{{brand}}</header>{{{ @content }}}",
        TextBody="header {{{@content}}} footer",
    )
    body = {"Subject": "Subject", "TextBody": "Mr. {{name}}", "HtmlBody": "<p>{{name}}</p>", "LayoutTemplate": "base"}
    answer = client.post(
        "/templates/validate",
        json={**body, "TestRenderModel": {"name": "Jones", "brand": "A&B"}},
        headers=server.token_headers,
    ).json()
    assert answer["TextBody"]["RenderedContent"] == "header Mr. Jones footer"
    assert answer["HtmlBody"]["RenderedContent"] == "<header>A&amp;B</header><p>Jones</p>"
    assert answer["Subject"]["RenderedContent"] == "Subject"
    assert answer["SuggestedTemplateModel"] == {"name": "name_Value", "brand": "brand_Value"}

    as_layout = {"TemplateType": "Layout", "HtmlBody": "<p>none</p>", "TextBody": "{{{@content}}}{{{ @content }}}"}
    checked = client.post("/templates/validate", json=as_layout, headers=server.token_headers).json()
    assert checked["AllContentIsValid"] is False
    assert checked["HtmlBody"]["ValidationErrors"] == [
        {
            "Message": "A layout must contain {{{ @content }}} exactly once; it is missing.",
            "Line": None,
            "CharacterPosition": None,
        }
    ]
    assert checked["TextBody"]["ValidationErrors"][0]["CharacterPosition"] == 15
    assert checked["TextBody"]["RenderedContent"] == ""


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, 1120),
        ({"Subject": None, "TestRenderModel": {"a": 1}}, 1120),
        ({"TextBody": "x", "LayoutTemplate": "missing"}, 1101),
        ({"TextBody": "x", "TemplateType": "Layout", "LayoutTemplate": "base"}, 1123),
        ({"TextBody": "x", "TemplateType": "Other"}, 1122),
        ({"TextBody": "x", "TestRenderModel": [1, 2]}, 402),
    ],
)
def test_validate_refuses_requests_it_cannot_answer(
    client: TestClient, server: Server, body: dict[str, Any], code: int
) -> None:
    create(client, server, **LAYOUT, Subject=None, Alias="base")
    assert_error(client.post("/templates/validate", json=body, headers=server.token_headers), 422, code)


# push


def seed_source(client: TestClient, server: Server) -> dict[str, dict[str, Any]]:
    created = {
        "base": create(client, server, **LAYOUT, Subject=None, Alias="base"),
        "welcome": create(client, server, Name="Welcome", Alias="welcome", LayoutTemplate="base"),
        "receipt": create(client, server, Name="Receipt", Alias="receipt", TextBody="Paid {{amount}}"),
    }
    create(client, server, Name="No alias")  # not pushed
    return created


def pushed_item(action: str, template_id: int | None, alias: str, name: str, kind: str) -> dict[str, Any]:
    return {"Action": action, "TemplateId": template_id, "Alias": alias, "Name": name, "TemplateType": kind}


def push(client: TestClient, headers: dict[str, str], source: Server, destination: Server, perform: bool) -> Any:
    body = {"SourceServerID": source.id, "DestinationServerID": destination.id, "PerformChanges": perform}
    return client.put("/templates/push", json=body, headers=headers)


def test_a_dry_run_push_lists_what_would_change_and_changes_nothing(
    client: TestClient, account: NewAccount, server: Server, runtime: Runtime
) -> None:
    destination = make_server(client, account, "Staging")
    seed_source(client, server)
    create(client, destination, Name="Old receipt", Alias="Receipt", TextBody="old")
    answer = push(client, server.account_headers, server, destination, perform=False)
    assert answer.status_code == 200, answer.text
    receipt_id = get(client, destination, "receipt")["TemplateId"]
    assert answer.json() == {
        "TotalCount": 3,
        "Templates": [
            pushed_item("Create", None, "base", "Main layout", "Layout"),
            pushed_item("Create", None, "welcome", "Welcome", "Standard"),
            pushed_item("Edit", receipt_id, "receipt", "Receipt", "Standard"),
        ],
    }
    assert [t["Name"] for t in listing(client, destination)["Templates"]] == ["Old receipt"]
    assert events(runtime, "template.pushed") == []


def test_a_push_creates_and_edits_by_alias_layouts_first(
    client: TestClient, account: NewAccount, server: Server, runtime: Runtime
) -> None:
    destination = make_server(client, account, "Staging")
    source = seed_source(client, server)
    old = create(client, destination, Name="Old receipt", Alias="Receipt", TextBody="old")
    answer = push(client, server.account_headers, server, destination, perform=True).json()
    assert [(t["Action"], t["Alias"]) for t in answer["Templates"]] == [
        ("Create", "base"),
        ("Create", "welcome"),
        ("Edit", "receipt"),
    ]
    assert answer["Templates"][2]["TemplateId"] == old["TemplateId"]
    welcome = get(client, destination, "welcome")
    assert welcome["TemplateId"] == answer["Templates"][1]["TemplateId"] != source["welcome"]["TemplateId"]
    assert (welcome["AssociatedServerId"], welcome["LayoutTemplate"]) == (destination.id, "base")
    assert get(client, destination, "base")["TemplateId"] == answer["Templates"][0]["TemplateId"]
    receipt = get(client, destination, "receipt")
    assert (receipt["Name"], receipt["TextBody"], receipt["Alias"]) == ("Receipt", "Paid {{amount}}", "Receipt")
    assert listing(client, destination)["TotalCount"] == 3  # the template without alias stayed home

    pushed = events(runtime, "template.pushed")
    assert [(e.target_id, e.target_label) for e in pushed] == [
        (str(t["TemplateId"]), alias)
        for t, alias in zip(answer["Templates"], ["base", "welcome", "Receipt"], strict=True)
    ]
    assert pushed[2].changes["name"] == {"before": "Old receipt", "after": "Receipt"}
    assert pushed[2].changes["pushed_from"]["after"] == {
        "server_id": server.id,
        "template_id": source["receipt"]["TemplateId"],
    }
    again = push(client, server.account_headers, server, destination, perform=True).json()
    assert again == {"TotalCount": 0, "Templates": []}  # nothing differs any more


def test_push_refusals(client: TestClient, account: NewAccount, server: Server, runtime: Runtime) -> None:
    destination = make_server(client, account, "Staging")
    create(client, server, Name="No alias")
    assert "no templates with an alias" in assert_error(
        push(client, server.account_headers, server, destination, False), 422, 1124
    )
    create(client, server, **LAYOUT, Subject=None, Alias="shared")
    create(client, destination, Name="Standard here", Alias="SHARED")
    message = assert_error(push(client, server.account_headers, server, destination, True), 422, 1125)
    assert message.startswith("The template types don't match on the source and destination servers")

    foreign = make_server(client, create_account(runtime, "Other"), "Theirs")
    for source, target in ((server, foreign), (foreign, server)):
        assert_error(push(client, server.account_headers, source, target, False), 422, 601)
    body = {"SourceServerID": server.id, "DestinationServerID": 2**40, "PerformChanges": False}
    assert_error(client.put("/templates/push", json=body, headers=server.account_headers), 422, 601)
    assert_error(
        client.put("/templates/push", json={"SourceServerID": server.id}, headers=server.account_headers), 422, 1120
    )
    assert_error(push(client, server.token_headers, server, destination, False), 401, 10)  # an account endpoint


def test_push_respects_the_destination_limit(client: TestClient, account: NewAccount, server: Server) -> None:
    destination = make_server(client, account, "Staging")
    for n in range(TEMPLATE_LIMIT - 1):
        create(client, destination, Name=f"T{n}")
    create(client, server, Alias="one")
    create(client, server, Alias="two")
    assert_error(push(client, server.account_headers, server, destination, True), 422, 1105)
    assert listing(client, destination, "count=500&offset=0")["TotalCount"] == TEMPLATE_LIMIT - 1


def test_push_takes_server_ids_as_strings_as_postmark_python_sends_them(
    client: TestClient, account: NewAccount, server: Server
) -> None:
    destination = make_server(client, account, "Staging")
    create(client, server, Alias="one")
    body = {"sourceServerId": str(server.id), "DestinationServerID": str(destination.id), "PerformChanges": True}
    answer = client.put("/templates/push", json=body, headers=server.account_headers)
    assert answer.status_code == 200, answer.text
    assert get(client, destination, "one")["Name"] == "Welcome"


def test_push_needs_read_on_the_source_and_manage_on_the_destination(
    client: TestClient, account: NewAccount, runtime: Runtime, server: Server
) -> None:
    destination = make_server(client, account, "Staging")
    create(client, server, Alias="one")
    add_member(
        runtime,
        account,
        "viewer@example.org",
        Role.MEMBER,
        access={server.id: ServerAccess.VIEW, destination.id: ServerAccess.FULL},
    )
    person = sign_in(client, "viewer@example.org")
    assert push(client, person, server, destination, True).status_code == 200
    assert_error(push(client, person, destination, server, True), 403, 9001)  # View only where it would write
    add_member(runtime, account, "blind@example.org", Role.MEMBER, access={destination.id: ServerAccess.FULL})
    assert_error(push(client, sign_in(client, "blind@example.org"), server, destination, False), 403, 9001)


# who may do what


def test_view_only_reads_templates_but_changes_none(
    client: TestClient, account: NewAccount, runtime: Runtime, server: Server
) -> None:
    created = create(client, server, Alias="welcome")
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={server.id: ServerAccess.VIEW})
    viewer = sign_in(client, "viewer@example.org")
    assert client.get(server.path("/templates/welcome"), headers=viewer).json()["TemplateId"] == created["TemplateId"]
    assert client.get(server.path("/templates?count=5&offset=0"), headers=viewer).json()["TotalCount"] == 1
    validated = client.post(server.path("/templates/validate"), json={"TextBody": "{{a}}"}, headers=viewer)
    assert validated.json()["AllContentIsValid"] is True
    refused = [
        client.post(server.path("/templates"), json={"Name": "N", "Subject": "S", "TextBody": "T"}, headers=viewer),
        client.put(server.path("/templates/welcome"), json={"Name": "N"}, headers=viewer),
        client.delete(server.path("/templates/welcome"), headers=viewer),
    ]
    for answer in refused:
        assert "templates:manage" in assert_error(answer, 403, 9001)
    assert get(client, server, "welcome")["Name"] == "Welcome"


def test_account_level_credentials_name_the_server_with_server_id(
    client: TestClient, account: NewAccount, runtime: Runtime, server: Server
) -> None:
    created = client.post(
        server.path("/templates"), json={"Name": "N", "Subject": "S", "TextBody": "T"}, headers=server.account_headers
    )
    assert created.status_code == 200, created.text
    assert get(client, server, created.json()["TemplateId"])["AssociatedServerId"] == server.id
    assert_error(client.get("/templates?count=5&offset=0", headers=server.account_headers), 422, 9038)
    foreign = make_server(client, create_account(runtime, "Other"), "Theirs")
    assert_error(client.get(foreign.path("/templates?count=5&offset=0"), headers=server.account_headers), 404, 601)
    other = make_server(client, account, "Staging")
    assert_error(client.get(other.path("/templates?count=5&offset=0"), headers=server.token_headers), 404, 601)
    assert_error(client.get("/templates?count=5&offset=0"), 401, 10)


def test_paths_and_query_names_are_lenient(client: TestClient, server: Server) -> None:
    created = client.post(
        "/Templates/",
        json={"name": "N", "subject": "S", "textBody": "T", "alias": "Ab_c.d-e"},
        headers=server.token_headers,
    )
    assert created.status_code == 200, created.text
    assert client.get("/TEMPLATES/Ab_c.d-e/", headers=server.token_headers).json()["Name"] == "N"
    assert (
        client.get("/templates?COUNT=1&OFFSET=0&template_type=STANDARD", headers=server.token_headers).json()[
            "TotalCount"
        ]
        == 1
    )


# the audit trail


def test_every_change_writes_one_audit_event_with_what_changed(
    client: TestClient, account: NewAccount, runtime: Runtime, server: Server
) -> None:
    created = create(client, server, Alias="welcome")
    client.put("/templates/welcome", json={"Name": "Renamed", "HtmlBody": "<p>New</p>"}, headers=server.token_headers)
    client.put("/templates/welcome", json={"Name": "Renamed"}, headers=server.token_headers)  # no change, no event
    client.post("/templates/validate", json={"TextBody": "x"}, headers=server.token_headers)  # reads only
    client.delete("/templates/welcome", headers=server.token_headers)
    with runtime.db.session_scope(write=False) as session:
        found = list(session.scalars(select(AuditEvent).where(AuditEvent.target_type == "template")))
    assert [e.action for e in found] == ["template.created", "template.updated", "template.deleted"]
    assert {(e.target_id, e.target_label, e.account_id, e.actor_credential) for e in found} == {
        (str(created["TemplateId"]), "welcome", account.account.id, "server_token")
    }
    made, edited, deleted = (e.changes for e in found)
    assert made["name"] == {"before": None, "after": "Welcome"}
    assert made["template_type"] == {"before": None, "after": "Standard"}
    assert made["html_body"]["after"]["characters"] == len("<p>Hi {{name}}</p>")
    assert set(edited) == {"name", "html_body"}
    assert edited["name"] == {"before": "Welcome", "after": "Renamed"}
    # bodies by digest: the template keeps the content, the log what it was
    assert edited["html_body"]["after"] == {"sha256": hashlib.sha256(b"<p>New</p>").hexdigest(), "characters": 10}
    assert deleted == {"active": {"before": True, "after": False}}
