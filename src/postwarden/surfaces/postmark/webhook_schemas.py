"""Postmark wire shapes for webhooks (§3.3 of the API reference), plus ``SigningSecret``."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import ConfigDict, Field, StrictBool, StrictStr, WithJsonSchema, model_validator
from pydantic.config import JsonDict

from postwarden.surfaces.wire import PostmarkModel, WholeInt
from postwarden.webhooks.service import (
    HEADER_NAME_PATTERN,
    HEADER_VALUE_PATTERN,
    TRIGGERS,
    USERNAME_MAX_LENGTH,
    HttpHeader,
    TriggerChanges,
    WebhookFields,
    WebhookView,
)

#: Stream IDs as Postmark allows them (any other text names no stream: ErrorCode 1226).
STREAM_ID_SCHEMA: Final[JsonDict] = {"type": "string", "pattern": r"^[a-z][a-z0-9_-]{0,29}$"}
URL_SCHEMA: Final[JsonDict] = {
    "type": "string",
    "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f]+$",
    "description": "An http(s) URL of a public host (ErrorCode 1354 otherwise); private, loopback and "
    "link-local addresses only where the operator allows them",
}


class LenientObject(PostmarkModel):
    """A nested object of a request body: keys in any case, as at the top level (``read_body``)."""

    @model_validator(mode="before")
    @classmethod
    def _any_case(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = {(field.alias or name).lower(): field.alias or name for name, field in cls.model_fields.items()}
        return {names.get(key.lower(), key) if isinstance(key, str) else key: value for key, value in data.items()}


class TriggerFields(LenientObject):
    Enabled: StrictBool | None = None


class OpenTriggerFields(TriggerFields):
    PostFirstOpenOnly: StrictBool | None = None


class ContentTriggerFields(TriggerFields):
    IncludeContent: StrictBool | None = None


class TriggersFields(LenientObject):
    """Only the triggers, and the fields of each trigger, that a request sets; null means absent."""

    Open: OpenTriggerFields | None = None
    Click: TriggerFields | None = None
    Delivery: TriggerFields | None = None
    Bounce: ContentTriggerFields | None = Field(
        default=None, description="Transactional streams only (ErrorCode 1353 when enabled on a broadcast stream)"
    )
    SpamComplaint: ContentTriggerFields | None = Field(
        default=None, description="Transactional streams only (ErrorCode 1353 when enabled on a broadcast stream)"
    )
    SubscriptionChange: TriggerFields | None = None

    def changes(self) -> TriggerChanges:
        given = {
            trigger: fields.model_dump(exclude_none=True)
            for trigger in TRIGGERS
            if (fields := getattr(self, trigger)) is not None
        }
        return {trigger: fields for trigger, fields in given.items() if fields}


class HttpAuthFields(LenientObject):
    Username: StrictStr | None = Field(
        default=None,
        description="Without ':' (ErrorCode 1361); \"\" for none",
        json_schema_extra={"maxLength": USERNAME_MAX_LENGTH, "pattern": "^[^:]*$"},
    )
    Password: StrictStr | None = Field(default=None, description='"" for none')


class HttpHeaderFields(LenientObject):
    model_config = ConfigDict(json_schema_extra={"required": ["Name", "Value"]})

    # Optional here so that the service answers a missing one with its own ErrorCode (1358, 1361).
    Name: Annotated[
        StrictStr | None,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": HEADER_NAME_PATTERN,
                "description": "An HTTP field name other than Host, Content-Length, Transfer-Encoding and "
                "Connection (ErrorCode 1358 otherwise)",
            }
        ),
    ] = None
    Value: Annotated[
        StrictStr | None,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": HEADER_VALUE_PATTERN,
                "description": "Without line breaks or control characters (ErrorCode 1361 otherwise)",
            }
        ),
    ] = None


class WebhookRequestFields(PostmarkModel):
    """What a create or an edit may carry; ``null`` means absent."""

    Url: StrictStr | None = Field(default=None, json_schema_extra=URL_SCHEMA)
    HttpAuth: HttpAuthFields | None = Field(default=None, description="Basic authentication for every delivery")
    HttpHeaders: list[HttpHeaderFields] | None = Field(
        default=None, description="Sent with every delivery; an edit replaces the whole list ([] clears it)"
    )
    Triggers: TriggersFields | None = Field(
        default=None, description="Omitted triggers, and omitted fields of a trigger, are false (create) or kept (edit)"
    )
    ID: WholeInt | None = None
    MessageStream: StrictStr | None = None

    def to_fields(self) -> WebhookFields:
        auth, headers, triggers = self.HttpAuth, self.HttpHeaders, self.Triggers
        return WebhookFields(
            url=self.Url,
            webhook_id=self.ID,
            message_stream=self.MessageStream,
            username=auth.Username if auth is not None else None,
            password=auth.Password if auth is not None else None,
            http_headers=[HttpHeader(h.Name, h.Value) for h in headers] if headers is not None else None,
            triggers=(triggers.changes() or None) if triggers is not None else None,
        )


def _create_schema(schema: JsonDict) -> None:
    # ID exists to be refused (1356), so the document leaves it out; Url is required (1354).
    properties = schema["properties"]
    assert isinstance(properties, dict)
    del properties["ID"]
    properties["Url"] = URL_SCHEMA
    properties["MessageStream"] = {
        **STREAM_ID_SCHEMA,
        "description": "A Transactional or Broadcasts stream of the server, not archived (1226, 1350, 1351); "
        "outbound when omitted",
    }
    schema["required"] = ["Url"]


def _edit_schema(schema: JsonDict) -> None:
    properties = schema["properties"]
    assert isinstance(properties, dict)
    properties["ID"] = {
        "type": "integer",
        "description": "Only the webhook's own ID: it cannot change (ErrorCode 1357)",
    }
    properties["MessageStream"] = {
        **STREAM_ID_SCHEMA,
        "description": "Only the webhook's own stream: it cannot change (ErrorCode 1357)",
    }
    schema["minProperties"] = 1  # ErrorCode 1355 when nothing is given


class CreateWebhookRequest(WebhookRequestFields):
    model_config = ConfigDict(json_schema_extra=_create_schema)


class EditWebhookRequest(WebhookRequestFields):
    """Partial update: an absent or ``null`` field keeps its value."""

    model_config = ConfigDict(json_schema_extra=_edit_schema)


class WebhookHttpAuth(PostmarkModel):
    Username: str
    Password: str = Field(description='"" for callers without webhooks:manage on the server')


class WebhookHttpHeader(PostmarkModel):
    Name: str
    Value: str


class WebhookTrigger(PostmarkModel):
    Enabled: bool


class WebhookOpenTrigger(WebhookTrigger):
    PostFirstOpenOnly: bool


class WebhookContentTrigger(WebhookTrigger):
    IncludeContent: bool


class WebhookTriggers(PostmarkModel):
    Open: WebhookOpenTrigger
    Click: WebhookTrigger
    Delivery: WebhookTrigger
    Bounce: WebhookContentTrigger
    SpamComplaint: WebhookContentTrigger
    SubscriptionChange: WebhookTrigger


class WebhookResponse(PostmarkModel):
    ID: int
    Url: str = Field(description="Credentials in the URL are masked for callers without webhooks:manage")
    MessageStream: str
    HttpAuth: WebhookHttpAuth
    HttpHeaders: list[WebhookHttpHeader]
    Triggers: WebhookTriggers
    SigningSecret: str | None = Field(
        default=None,
        description="Beyond Postmark: the HMAC-SHA256 key that signs each delivery; only for callers with "
        "webhooks:manage on the server",
    )


class WebhookListResponse(PostmarkModel):
    Webhooks: list[WebhookResponse]


def render_webhook(view: WebhookView) -> dict[str, Any]:
    """Every field, always, in Postmark's order; ``SigningSecret`` only for who may see it."""
    webhook = view.webhook
    rendered: dict[str, Any] = {
        "ID": webhook.id,
        "Url": view.url,
        "MessageStream": webhook.message_stream,
        "HttpAuth": {"Username": webhook.http_auth_username, "Password": view.password},
        "HttpHeaders": [{"Name": header["Name"], "Value": header["Value"]} for header in webhook.http_headers],
        "Triggers": {trigger: dict(webhook.triggers[trigger]) for trigger in TRIGGERS},
    }
    if view.signing_secret is not None:
        rendered["SigningSecret"] = view.signing_secret
    return rendered
