"""Postmark wire shapes for domains (§2.3 of the API reference)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import ConfigDict, Field, StrictStr
from pydantic.config import JsonDict

from postwarden.config import Settings
from postwarden.domains.dns import Check, CheckOutcome
from postwarden.domains.service import DomainState
from postwarden.surfaces.postmark.schemas import DOMAIN_SCHEMA
from postwarden.surfaces.wire import PostmarkModel

DOMAIN_NAME_PATTERN: Final = r"^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
RETURN_PATH_SCHEMA: Final[JsonDict] = {
    **DOMAIN_SCHEMA,
    "description": 'A subdomain of the domain (ErrorCode 511 otherwise), or "" for none',
}


def _name_required(schema: JsonDict) -> None:
    # Missing, blank (514), too long (515) or malformed (516): the document says so up front.
    properties = schema["properties"]
    assert isinstance(properties, dict)
    properties["Name"] = {"type": "string", **DOMAIN_SCHEMA, "pattern": DOMAIN_NAME_PATTERN}
    schema["required"] = ["Name"]


class CreateDomainRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra=_name_required)

    Name: StrictStr | None = None
    ReturnPathDomain: StrictStr | None = Field(default=None, json_schema_extra=RETURN_PATH_SCHEMA)


class EditDomainRequest(PostmarkModel):
    ReturnPathDomain: StrictStr | None = Field(default=None, json_schema_extra=RETURN_PATH_SCHEMA)


class DkimRotationResponse(PostmarkModel):
    Name: str
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
    ID: int


class DomainResponse(PostmarkModel):
    ID: int
    Name: str
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
    Message: str | None = None


class DomainListItem(PostmarkModel):
    ID: int
    Name: str
    SPFVerified: bool
    DKIMVerified: bool
    WeakDKIM: bool
    ReturnPathDomainVerified: bool


class DomainListResponse(PostmarkModel):
    TotalCount: int
    Domains: list[DomainListItem]


class SpfResponse(PostmarkModel):
    SPFHost: str
    SPFVerified: bool
    SPFTextValue: str
    Message: str | None = None


def spf_text(settings: Settings) -> str:
    return f"v=spf1 a mx include:{settings.spf_include} ~all"


def dkim_fields(state: DomainState) -> dict[str, Any]:
    active, pending, revoked = state.active, state.pending, state.revoked
    return {
        "DKIMVerified": active is not None,
        "WeakDKIM": active is not None and active.bits < 1024,
        "DKIMHost": state.host_of(active),
        "DKIMTextValue": active.public_txt if active else "",
        "DKIMPendingHost": state.host_of(pending),
        "DKIMPendingTextValue": pending.public_txt if pending else "",
        "DKIMRevokedHost": state.host_of(revoked),
        "DKIMRevokedTextValue": revoked.public_txt if revoked else "",
        "SafeToRemoveRevokedKeyFromDNS": state.safe_to_remove_revoked_key,
        "DKIMUpdateStatus": "Pending" if pending is not None else "Verified",
    }


def render_domain(state: DomainState, settings: Settings, check: Check | None = None) -> dict[str, Any]:
    """Every field, always; ``Message`` only when DNS could not be asked and nothing changed."""
    domain = state.domain
    rendered = {
        "ID": domain.id,
        "Name": domain.name,
        "SPFVerified": domain.spf_verified,
        "SPFHost": domain.name,
        "SPFTextValue": spf_text(settings),
        **dkim_fields(state),
        "ReturnPathDomain": domain.return_path_domain,
        "ReturnPathDomainVerified": domain.return_path_verified,
        "ReturnPathDomainCNAMEValue": settings.return_path_target,
    }
    if check is not None and check.outcome is CheckOutcome.UNKNOWN:
        rendered["Message"] = f"DNS could not be checked, nothing changed: {check.detail}"
    return rendered


def render_domain_item(state: DomainState) -> dict[str, Any]:
    domain = state.domain
    return {
        "ID": domain.id,
        "Name": domain.name,
        "SPFVerified": domain.spf_verified,
        "DKIMVerified": state.active is not None,
        "WeakDKIM": state.active is not None and state.active.bits < 1024,
        "ReturnPathDomainVerified": domain.return_path_verified,
    }


def render_rotation(state: DomainState) -> dict[str, Any]:
    return {"Name": state.domain.name, **dkim_fields(state), "ID": state.domain.id}


def render_spf(state: DomainState, settings: Settings, check: Check) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "SPFHost": state.domain.name,
        "SPFVerified": state.domain.spf_verified,
        "SPFTextValue": spf_text(settings),
    }
    if check.outcome is CheckOutcome.UNKNOWN:
        rendered["Message"] = f"DNS could not be checked, nothing changed: {check.detail}"
    return rendered
