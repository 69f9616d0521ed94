"""Postmark wire shapes (PascalCase), for requests and for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from postwarden.config import Settings
from postwarden.servers.models import Server
from postwarden.servers.service import ServerFields


class PostmarkModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class ErrorResponse(PostmarkModel):
    ErrorCode: int
    Message: str


class ServerRequestFields(PostmarkModel):
    """Fields a server create or edit may carry; all optional on the wire."""

    Name: StrictStr | None = None
    Color: StrictStr | None = None
    SmtpApiActivated: StrictBool | None = None
    RawEmailEnabled: StrictBool | None = None
    InboundHookUrl: StrictStr | None = None
    BounceHookUrl: StrictStr | None = None
    OpenHookUrl: StrictStr | None = None
    DeliveryHookUrl: StrictStr | None = None
    ClickHookUrl: StrictStr | None = None
    PostFirstOpenOnly: StrictBool | None = None
    InboundDomain: StrictStr | None = None
    InboundSpamThreshold: StrictInt | None = None
    TrackOpens: StrictBool | None = None
    TrackLinks: StrictStr | None = None
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


class CreateServerRequest(ServerRequestFields):
    Name: StrictStr | None = Field(default=None, description="Required. Unique in the account (ErrorCode 603).")
    DeliveryType: StrictStr | None = Field(default=None, description="Live (default) or Sandbox; set on create only.")

    def to_fields(self, **extra: Any) -> ServerFields:
        return super().to_fields(delivery_type=self.DeliveryType, **extra)


class EditServerRequest(ServerRequestFields):
    """Partial update: an absent or ``null`` field keeps its value."""

    DeliveryType: StrictStr | None = Field(default=None, description="Ignored: fixed at creation.")

    def to_fields(self, **extra: Any) -> ServerFields:
        return super().to_fields(delivery_type=self.DeliveryType, **extra)


class ServerResponse(PostmarkModel):
    ID: int
    Name: str
    ApiTokens: list[str]
    Color: str
    SmtpApiActivated: bool
    RawEmailEnabled: bool
    DeliveryType: str
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
    TrackLinks: str
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
