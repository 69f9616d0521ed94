"""Postmark wire shapes for sender signatures (§2.2 of the API reference)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import ConfigDict, Field, StrictStr
from pydantic.config import JsonDict

from postwarden import addresses
from postwarden.config import Settings
from postwarden.domains.dns import Check, CheckOutcome
from postwarden.senders.models import SenderSignature
from postwarden.senders.service import NAME_MAX_LENGTH, NOTE_MAX_LENGTH, SenderState
from postwarden.surfaces.postmark.domain_schemas import dkim_fields, spf_text
from postwarden.surfaces.postmark.schemas import DOMAIN_SCHEMA
from postwarden.surfaces.wire import PostmarkModel

EMAIL_PATTERN: Final = addresses.PATTERN
NAME_SCHEMA: Final[JsonDict] = {"pattern": r"\S", "maxLength": NAME_MAX_LENGTH}
REPLY_TO_SCHEMA: Final[JsonDict] = {
    "description": 'An email address (ErrorCode 522 otherwise), or "" for none',
    "pattern": f"^$|{EMAIL_PATTERN}",
    "maxLength": 320,
}
RETURN_PATH_SCHEMA: Final[JsonDict] = {
    **DOMAIN_SCHEMA,
    "description": 'A subdomain of the sender\'s domain (ErrorCode 522 otherwise), or "" for none',
}
NOTE_SCHEMA: Final[JsonDict] = {"maxLength": NOTE_MAX_LENGTH}


def _create_required(schema: JsonDict) -> None:
    # Missing or blank (520), too long (521), malformed (522): the document says so up front.
    properties = schema["properties"]
    assert isinstance(properties, dict)
    properties["FromEmail"] = {
        "type": "string",
        "pattern": EMAIL_PATTERN,
        "maxLength": 320,
        "description": "At a domain the account owns: public mailbox domains are refused (ErrorCode 503)",
    }
    properties["Name"] = {"type": "string", **NAME_SCHEMA}
    schema["required"] = ["FromEmail", "Name"]


class SenderFields(PostmarkModel):
    ReplyToEmail: StrictStr | None = Field(default=None, json_schema_extra=REPLY_TO_SCHEMA)
    ReturnPathDomain: StrictStr | None = Field(default=None, json_schema_extra=RETURN_PATH_SCHEMA)
    ConfirmationPersonalNote: StrictStr | None = Field(default=None, json_schema_extra=NOTE_SCHEMA)


class CreateSenderRequest(SenderFields):
    model_config = ConfigDict(json_schema_extra=_create_required)

    FromEmail: StrictStr | None = None
    Name: StrictStr | None = None


class EditSenderRequest(SenderFields):
    Name: StrictStr | None = Field(default=None, json_schema_extra=NAME_SCHEMA)


class SenderResponse(PostmarkModel):
    ID: int
    Domain: str
    EmailAddress: str
    ReplyToEmailAddress: str
    Name: str
    Confirmed: bool
    SPFVerified: bool
    SPFHost: str
    SPFTextValue: str
    DKIMVerified: bool
    WeakDKIM: bool
    DKIMHost: str
    DKIMTextValue: str
    DKIMPendingHost: str
    DKIMPendingTextValue: str
    DKIMRevokedHost: str
    DKIMRevokedTextValue: str
    SafeToRemoveRevokedKeyFromDNS: bool
    DKIMUpdateStatus: str
    ReturnPathDomain: str
    ReturnPathDomainVerified: bool
    ReturnPathDomainCNAMEValue: str
    ConfirmationPersonalNote: str
    Message: str | None = None


class SenderListItem(PostmarkModel):
    ID: int
    Domain: str
    EmailAddress: str
    ReplyToEmailAddress: str
    Name: str
    Confirmed: bool


class SenderListResponse(PostmarkModel):
    TotalCount: int
    SenderSignatures: list[SenderListItem]


NO_DKIM_KEY: dict[str, Any] = {
    "DKIMVerified": False,
    "WeakDKIM": False,
    "DKIMHost": "",
    "DKIMTextValue": "",
    "DKIMPendingHost": "",
    "DKIMPendingTextValue": "",
    "DKIMRevokedHost": "",
    "DKIMRevokedTextValue": "",
    "SafeToRemoveRevokedKeyFromDNS": False,
    "DKIMUpdateStatus": "Verified",
}


def _dkim_fields(state: SenderState) -> dict[str, Any]:
    # The account's domain was deleted: no key until requestnewdkim creates it again.
    return dkim_fields(state.domain) if state.domain is not None else NO_DKIM_KEY


def render_sender(state: SenderState, settings: Settings, check: Check | None = None) -> dict[str, Any]:
    """Every field, always; ``Message`` only when DNS could not be asked and nothing changed."""
    signature = state.signature
    domain = state.domain.domain if state.domain is not None else None
    rendered: dict[str, Any] = {
        "ID": signature.id,
        "Domain": signature.domain,
        "EmailAddress": signature.email,
        "ReplyToEmailAddress": signature.reply_to_email,
        "Name": signature.name,
        "Confirmed": signature.confirmed,
        "SPFVerified": domain.spf_verified if domain is not None else False,
        "SPFHost": signature.domain,
        "SPFTextValue": spf_text(settings),
        **_dkim_fields(state),
        "ReturnPathDomain": signature.return_path_domain,
        "ReturnPathDomainVerified": (
            domain is not None
            and bool(signature.return_path_domain)
            and domain.return_path_domain == signature.return_path_domain
            and domain.return_path_verified
        ),
        "ReturnPathDomainCNAMEValue": settings.return_path_target,
        "ConfirmationPersonalNote": signature.confirmation_personal_note,
    }
    if check is not None and check.outcome is CheckOutcome.UNKNOWN:
        rendered["Message"] = f"DNS could not be checked, nothing changed: {check.detail}"
    return rendered


def render_sender_item(signature: SenderSignature) -> dict[str, Any]:
    return {
        "ID": signature.id,
        "Domain": signature.domain,
        "EmailAddress": signature.email,
        "ReplyToEmailAddress": signature.reply_to_email,
        "Name": signature.name,
        "Confirmed": signature.confirmed,
    }
