"""Postmark wire shapes (PascalCase), for requests and for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Final

from pydantic import ConfigDict, Field, StrictBool, StrictStr
from pydantic.config import JsonDict

from postwarden.config import Settings
from postwarden.servers.models import Server
from postwarden.servers.service import COLORS, DELIVERY_TYPES, NAME_MAX_LENGTH, TRACK_LINKS, ServerFields
from postwarden.surfaces.wire import PostmarkModel, WholeInt, any_case

# The request models below stay loose (any string, any int) so that the service, not the
# parser, refuses a bad value with its own ErrorCode (607, 611, 612...); their JSON schema
# states what is actually accepted.
NAME_SCHEMA: Final[JsonDict] = {"pattern": r"\S", "maxLength": NAME_MAX_LENGTH}
HOOK_URL_SCHEMA: Final[JsonDict] = {
    "description": 'An http(s) URL of a public host (ErrorCode 606 otherwise), or "" for none',
    "pattern": r"^([Hh][Tt][Tt][Pp][Ss]?://\S+)?$",
}
DOMAIN_SCHEMA: Final[JsonDict] = {
    "pattern": r"^$|^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$",
    "maxLength": 253,
}


class ServerRequestFields(PostmarkModel):
    """Fields a server create or edit may carry; all optional on the wire."""

    Name: StrictStr | None = Field(default=None, json_schema_extra=NAME_SCHEMA)
    Color: StrictStr | None = Field(
        default=None, description="Any case", json_schema_extra=any_case(*(c.capitalize() for c in COLORS))
    )
    SmtpApiActivated: StrictBool | None = None
    RawEmailEnabled: StrictBool | None = None
    InboundHookUrl: StrictStr | None = Field(default=None, json_schema_extra=HOOK_URL_SCHEMA)
    BounceHookUrl: StrictStr | None = Field(default=None, json_schema_extra=HOOK_URL_SCHEMA)
    OpenHookUrl: StrictStr | None = Field(default=None, json_schema_extra=HOOK_URL_SCHEMA)
    DeliveryHookUrl: StrictStr | None = Field(default=None, json_schema_extra=HOOK_URL_SCHEMA)
    ClickHookUrl: StrictStr | None = Field(default=None, json_schema_extra=HOOK_URL_SCHEMA)
    PostFirstOpenOnly: StrictBool | None = None
    InboundDomain: StrictStr | None = Field(default=None, json_schema_extra=DOMAIN_SCHEMA)
    InboundSpamThreshold: WholeInt | None = Field(default=None, json_schema_extra={"minimum": 0, "maximum": 30})
    TrackOpens: StrictBool | None = None
    TrackLinks: StrictStr | None = Field(default=None, description="Any case", json_schema_extra=any_case(*TRACK_LINKS))
    IncludeBounceContentInHook: StrictBool | None = None
    EnableSmtpApiErrorHooks: StrictBool | None = None

    def to_fields(self, **extra: Any) -> ServerFields:
        return ServerFields(
            name=self.Name,
            color=self.Color,
            smtp_api_activated=self.SmtpApiActivated,
            raw_email_enabled=self.RawEmailEnabled,
            inbound_hook_url=self.InboundHookUrl,
            bounce_hook_url=self.BounceHookUrl,
            open_hook_url=self.OpenHookUrl,
            delivery_hook_url=self.DeliveryHookUrl,
            click_hook_url=self.ClickHookUrl,
            post_first_open_only=self.PostFirstOpenOnly,
            inbound_domain=self.InboundDomain,
            inbound_spam_threshold=self.InboundSpamThreshold,
            track_opens=self.TrackOpens,
            track_links=self.TrackLinks,
            include_bounce_content_in_hook=self.IncludeBounceContentInHook,
            enable_smtp_api_error_hooks=self.EnableSmtpApiErrorHooks,
            **extra,
        )


def _name_required(schema: JsonDict) -> None:
    # Missing, null or blank is ErrorCode 608 from the service; the document says so up front.
    properties = schema["properties"]
    assert isinstance(properties, dict)
    properties["Name"] = {"type": "string", "description": "Unique in the account (ErrorCode 603).", **NAME_SCHEMA}
    schema["required"] = ["Name"]


class CreateServerRequest(ServerRequestFields):
    model_config = ConfigDict(json_schema_extra=_name_required)

    DeliveryType: StrictStr | None = Field(
        default=None,
        description="Live (default) or Sandbox, any case; set on create only.",
        json_schema_extra=any_case(*DELIVERY_TYPES),
    )

    def to_fields(self, **extra: Any) -> ServerFields:
        return super().to_fields(delivery_type=self.DeliveryType, **extra)


class EditServerRequest(ServerRequestFields):
    """Partial update: an absent or ``null`` field keeps its value."""

    # Nothing to change is ErrorCode 609.
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    DeliveryType: StrictStr | None = Field(
        default=None, description="Ignored: fixed at creation.", json_schema_extra=any_case(*DELIVERY_TYPES)
    )

    def to_fields(self, **extra: Any) -> ServerFields:
        return super().to_fields(delivery_type=self.DeliveryType, **extra)


class ServerResponse(PostmarkModel):
    ID: int
    Name: str
    ApiTokens: list[str]
    Color: str = Field(json_schema_extra={"enum": list(dict.fromkeys(COLORS.values()))})
    SmtpApiActivated: bool
    RawEmailEnabled: bool
    DeliveryType: str = Field(json_schema_extra={"enum": list(DELIVERY_TYPES)})
    ServerLink: str
    InboundAddress: str
    InboundHookUrl: str
    BounceHookUrl: str
    OpenHookUrl: str
    DeliveryHookUrl: str
    PostFirstOpenOnly: bool
    InboundDomain: str
    InboundHash: str
    InboundSpamThreshold: int
    TrackOpens: bool
    TrackLinks: str = Field(json_schema_extra={"enum": list(TRACK_LINKS)})
    IncludeBounceContentInHook: bool
    ClickHookUrl: str
    EnableSmtpApiErrorHooks: bool


class ServerListResponse(PostmarkModel):
    TotalCount: int
    Servers: list[ServerResponse]


class ActionResponse(PostmarkModel):
    ErrorCode: int = 0
    Message: str


def render_server(server: Server, api_tokens: list[str], settings: Settings) -> dict[str, Any]:
    """Every field, always, in Postmark's order (official clients validate them)."""
    return {
        "ID": server.id,
        "Name": server.name,
        "ApiTokens": api_tokens,
        "Color": server.color,
        "SmtpApiActivated": server.smtp_api_activated,
        "RawEmailEnabled": server.raw_email_enabled,
        "DeliveryType": server.delivery_type,
        "ServerLink": f"{settings.public_url.rstrip('/')}/console/servers/{server.id}",
        "InboundAddress": f"{server.inbound_hash}@{settings.inbound_address_domain}",
        "InboundHookUrl": server.inbound_hook_url,
        "BounceHookUrl": server.bounce_hook_url,
        "OpenHookUrl": server.open_hook_url,
        "DeliveryHookUrl": server.delivery_hook_url,
        "PostFirstOpenOnly": server.post_first_open_only,
        "InboundDomain": server.inbound_domain,
        "InboundHash": server.inbound_hash,
        "InboundSpamThreshold": server.inbound_spam_threshold,
        "TrackOpens": server.track_opens,
        "TrackLinks": server.track_links,
        "IncludeBounceContentInHook": server.include_bounce_content_in_hook,
        "ClickHookUrl": server.click_hook_url,
        "EnableSmtpApiErrorHooks": server.enable_smtp_api_error_hooks,
    }
