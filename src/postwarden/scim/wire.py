"""What SCIM users and groups share: a resource as it is sent, its version, and the
refusals scim2-models raises turned into domain errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from scim2_models import Context, PatchOp
from scim2_models.exceptions import SCIMException

from postwarden.errors import InvalidRequest, Reason
from postwarden.scim.schemas import TOLERANT

#: A resource as SCIM sends it: the JSON object of RFC 7643, rendered once by its service.
Wire = dict[str, Any]


def meta(resource_type: str, row: Any, location: str) -> Wire:
    return {
        "resourceType": resource_type,
        "created": timestamp(row.created_at),
        "lastModified": timestamp(row.updated_at),
        "location": location,
        "version": etag(row.version),
    }


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as SCIM clients expect it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def without_empty(resource: Wire) -> Wire:
    """Attributes without a value are not sent (RFC 7643 §2.5): nulls, empty lists and
    complex attributes whose sub-attributes are all null."""
    kept: Wire = {}
    for name, given in resource.items():
        value = given
        if isinstance(given, dict):
            value = without_empty(given)
        elif isinstance(given, list):
            value = [without_empty(item) if isinstance(item, dict) else item for item in given]
        if value is not None and value not in ([], {}):
            kept[name] = value
    return kept


def etag(version: int) -> str:
    return f'W/"{version}"'


def check_version(current: int, if_match: str | None) -> None:
    """``If-Match`` (RFC 7644 §3.14): refuse with 412 unless it names the current version."""
    if if_match is None:
        return
    wanted = {tag.strip() for tag in if_match.split(",")}
    if "*" in wanted or etag(current) in wanted or f'"{current}"' in wanted:
        return
    raise InvalidRequest(
        Reason.SCIM_VERSION_MISMATCH,
        f"The resource changed: its version is {etag(current)}, not {if_match}. Read it again.",
    )


_SCIM_TYPE_REASONS: Final = {
    "invalidPath": Reason.SCIM_PATH_INVALID,
    "noTarget": Reason.SCIM_NO_TARGET,
    "mutability": Reason.SCIM_MUTABILITY,
    "invalidFilter": Reason.SCIM_FILTER_INVALID,
    "invalidSyntax": Reason.SCIM_SYNTAX_INVALID,
    "tooMany": Reason.SCIM_TOO_MANY,
}


def scim_reason(scim_type: str | None) -> Reason:
    """The domain reason of a scimType that scim2-models gives a refusal; ``invalidValue`` else."""
    return _SCIM_TYPE_REASONS.get(scim_type or "", Reason.SCIM_VALUE_INVALID)


def scim_error(exc: SCIMException) -> InvalidRequest:
    """A scim2-models refusal (a PATCH that cannot apply) as a domain error of the same kind."""
    return InvalidRequest(scim_reason(exc.scim_type), str(exc) or type(exc).__name__)


def patched(model: Any, resource: Wire, patch: PatchOp[Any]) -> Any:
    """``resource`` with ``patch`` applied in memory, as a scim2-models object: all its
    operations or none (RFC 7644 §3.5.2)."""
    parsed = model.model_validate(resource, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    try:
        patch.patch(parsed, scim_policy=TOLERANT)
    except SCIMException as exc:
        raise scim_error(exc) from exc
    return parsed
