"""Postmark wire shapes for templates (§3.4 and §2.4 of the API reference)."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr, WithJsonSchema
from pydantic.config import JsonDict, JsonValue

from postwarden.surfaces.routing import MAX_ID
from postwarden.surfaces.wire import PostmarkModel, any_case
from postwarden.templates.models import Template
from postwarden.templates.service import (
    ALIAS_MAX_LENGTH,
    ALIAS_SYNTAX,
    BODY_MAX_LENGTH,
    NAME_MAX_LENGTH,
    SUBJECT_MAX_LENGTH,
    TEMPLATE_TYPES,
    Draft,
    PartCheck,
    PushedTemplate,
    TemplateFields,
    Validation,
)

NAME_SCHEMA: Final[JsonDict] = {"pattern": r"\S", "maxLength": NAME_MAX_LENGTH}
ALIAS_SCHEMA: Final[JsonDict] = {
    "description": "Starts with a letter; letters, digits, '.', '-' and '_'. Unique on the server, in any case "
    "(ErrorCode 1122 when taken)",
    "pattern": f"^{ALIAS_SYNTAX}$",
    "maxLength": ALIAS_MAX_LENGTH,
}
SUBJECT_SCHEMA: Final[JsonDict] = {"pattern": r"\S", "maxLength": SUBJECT_MAX_LENGTH}
BODY_SCHEMA: Final[JsonDict] = {
    "description": "Template content; it must parse (ErrorCode 1122 otherwise), and a layout's must hold "
    "{{{ @content }}} exactly once (ErrorCode 1131)",
    "maxLength": BODY_MAX_LENGTH,
}
LAYOUT_SCHEMA: Final[JsonDict] = {
    "description": 'The alias of a layout of this server (ErrorCode 1101 otherwise), or "" for none',
    "pattern": f"^$|^{ALIAS_SYNTAX}$",
    "maxLength": ALIAS_MAX_LENGTH,
}
TYPE_SCHEMA: Final[JsonDict] = {"description": "Any case; Standard when not given", **any_case(*TEMPLATE_TYPES)}
#: A standard template needs a Subject; a layout has none and sits in no layout.
STANDARD_OR_LAYOUT: Final[list[JsonValue]] = [
    {
        "properties": {
            "TemplateType": {"enum": ["Standard", "standard", None]},
            "Subject": {"type": "string", **SUBJECT_SCHEMA},
        },
        "required": ["Subject"],
    },
    {
        "properties": {
            "TemplateType": {"enum": ["Layout", "layout"]},
            "Subject": {"type": "null"},
            "LayoutTemplate": {"enum": ["", None]},
        },
        "required": ["TemplateType"],
    },
]


def _given(*names: str, min_length: int) -> list[JsonValue]:
    """At least one of ``names`` as a string (null counts as absent)."""
    return [{"required": [name], "properties": {name: {"type": "string", "minLength": min_length}}} for name in names]


def _create_rules(schema: JsonDict) -> None:
    properties = schema["properties"]
    assert isinstance(properties, dict)
    properties["Name"] = {"type": "string", **NAME_SCHEMA}
    schema["required"] = ["Name"]
    schema["oneOf"] = list(STANDARD_OR_LAYOUT)
    schema["anyOf"] = _given("HtmlBody", "TextBody", min_length=1)  # "" is no body


class TemplateContent(PostmarkModel):
    Name: StrictStr | None = Field(default=None, json_schema_extra=NAME_SCHEMA)
    Alias: StrictStr | None = Field(default=None, json_schema_extra=ALIAS_SCHEMA)
    Subject: StrictStr | None = Field(
        default=None, description="Standard templates only", json_schema_extra=SUBJECT_SCHEMA
    )
    HtmlBody: StrictStr | None = Field(default=None, json_schema_extra=BODY_SCHEMA)
    TextBody: StrictStr | None = Field(default=None, json_schema_extra=BODY_SCHEMA)
    TemplateType: StrictStr | None = Field(default=None, json_schema_extra=TYPE_SCHEMA)
    LayoutTemplate: StrictStr | None = Field(default=None, json_schema_extra=LAYOUT_SCHEMA)

    def to_fields(self) -> TemplateFields:
        return TemplateFields(
            name=self.Name,
            alias=self.Alias,
            subject=self.Subject,
            html_body=self.HtmlBody,
            text_body=self.TextBody,
            template_type=self.TemplateType,
            layout_template=self.LayoutTemplate,
        )


class CreateTemplateRequest(TemplateContent):
    model_config = ConfigDict(json_schema_extra=_create_rules)


class EditTemplateRequest(TemplateContent):
    """Partial: a field absent or null keeps its value; ``""`` removes a body or the layout.
    ``TemplateType`` cannot change (ErrorCode 1123)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # ErrorCode 1109 otherwise


class ValidateTemplateRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra={"anyOf": _given("Subject", "HtmlBody", "TextBody", min_length=0)})

    Subject: StrictStr | None = None
    HtmlBody: StrictStr | None = None
    TextBody: StrictStr | None = None
    TestRenderModel: dict[str, Any] | None = Field(default=None, description="The values to render with")
    InlineCssForHtmlTestRender: StrictBool | None = Field(
        default=None, description="Accepted for compatibility; test renders keep <style> blocks as they are"
    )
    TemplateType: StrictStr | None = Field(default=None, json_schema_extra=TYPE_SCHEMA)
    LayoutTemplate: StrictStr | None = Field(default=None, json_schema_extra=LAYOUT_SCHEMA)

    def to_draft(self) -> Draft:
        return Draft(
            subject=self.Subject,
            html_body=self.HtmlBody,
            text_body=self.TextBody,
            test_model=self.TestRenderModel,
            template_type=self.TemplateType,
            layout_template=self.LayoutTemplate,
        )


def _server_number(value: Any) -> Any:
    # postmark-python sends the server ids as strings; JSON's 5.0 is the integer 5.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


SERVER_NUMBER_SCHEMA: Final[JsonDict] = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        {"type": "string", "pattern": "^[0-9]{1,10}$"},
    ],
    "description": "A server of this account (ErrorCode 601 otherwise), as a number or a string of digits",
}
ServerNumber = Annotated[
    StrictInt,
    BeforeValidator(_server_number),
    WithJsonSchema(SERVER_NUMBER_SCHEMA),
]


def _push_required(schema: JsonDict) -> None:
    # Each one missing or null is ErrorCode 1120; the document says so up front.
    properties = schema["properties"]
    assert isinstance(properties, dict)
    for name in ("SourceServerID", "DestinationServerID"):
        properties[name] = SERVER_NUMBER_SCHEMA
    properties["PerformChanges"] = {"type": "boolean", "description": "false: a dry run that changes nothing"}
    schema["required"] = ["SourceServerID", "DestinationServerID", "PerformChanges"]


class PushTemplatesRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra=_push_required)

    SourceServerID: ServerNumber | None = None
    DestinationServerID: ServerNumber | None = None
    PerformChanges: StrictBool | None = None


class TemplateListItem(PostmarkModel):
    Active: bool
    TemplateId: int
    Name: str
    Alias: str | None
    TemplateType: str
    LayoutTemplate: str | None


class TemplateListResponse(PostmarkModel):
    TotalCount: int
    Templates: list[TemplateListItem]


class TemplateSavedResponse(PostmarkModel):
    """What create and edit answer."""

    TemplateId: int
    Name: str
    Active: bool
    Alias: str | None
    TemplateType: str
    LayoutTemplate: str | None


class TemplateResponse(PostmarkModel):
    TemplateId: int
    Name: str
    Subject: str | None
    HtmlBody: str | None
    TextBody: str | None
    AssociatedServerId: int
    Active: bool
    Alias: str | None
    TemplateType: str
    LayoutTemplate: str | None


class ValidationErrorItem(PostmarkModel):
    Message: str
    Line: int | None
    CharacterPosition: int | None


class ValidatedPart(PostmarkModel):
    ContentIsValid: bool
    ValidationErrors: list[ValidationErrorItem]
    RenderedContent: str | None


class ValidationResponse(PostmarkModel):
    AllContentIsValid: bool
    HtmlBody: ValidatedPart | None
    TextBody: ValidatedPart | None
    Subject: ValidatedPart | None
    SuggestedTemplateModel: dict[str, Any]


class PushedTemplateItem(PostmarkModel):
    Action: str
    TemplateId: int | None
    Alias: str
    Name: str
    TemplateType: str


class PushTemplatesResponse(PostmarkModel):
    TotalCount: int
    Templates: list[PushedTemplateItem]


def render_template_item(template: Template) -> dict[str, Any]:
    return {
        "Active": template.active,
        "TemplateId": template.id,
        "Name": template.name,
        "Alias": template.alias,
        "TemplateType": template.template_type,
        "LayoutTemplate": template.layout_alias,
    }


def render_saved(template: Template) -> dict[str, Any]:
    return {
        "TemplateId": template.id,
        "Name": template.name,
        "Active": template.active,
        "Alias": template.alias,
        "TemplateType": template.template_type,
        "LayoutTemplate": template.layout_alias,
    }


def render_template(template: Template) -> dict[str, Any]:
    return {
        "TemplateId": template.id,
        "Name": template.name,
        "Subject": template.subject,
        "HtmlBody": template.html_body,
        "TextBody": template.text_body,
        "AssociatedServerId": template.server_id,
        "Active": template.active,
        "Alias": template.alias,
        "TemplateType": template.template_type,
        "LayoutTemplate": template.layout_alias,
    }


def _render_part(part: PartCheck | None) -> dict[str, Any] | None:
    if part is None:
        return None
    return {
        "ContentIsValid": not part.problems,
        "ValidationErrors": [
            {"Message": p.message, "Line": p.line, "CharacterPosition": p.character} for p in part.problems
        ],
        "RenderedContent": part.rendered,
    }


def render_validation(validation: Validation) -> dict[str, Any]:
    return {
        "AllContentIsValid": validation.all_valid,
        "HtmlBody": _render_part(validation.html_body),
        "TextBody": _render_part(validation.text_body),
        "Subject": _render_part(validation.subject),
        "SuggestedTemplateModel": validation.suggested_model,
    }


def render_pushed(pushed: list[PushedTemplate]) -> dict[str, Any]:
    return {
        "TotalCount": len(pushed),
        "Templates": [
            {
                "Action": item.action,
                "TemplateId": item.template_id,
                "Alias": item.alias,
                "Name": item.name,
                "TemplateType": item.template_type,
            }
            for item in pushed
        ],
    }
