"""Postmark wire shapes for a stream's suppressions (§3.5 of the API reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import ConfigDict, Field, StrictStr
from pydantic.config import JsonDict

from postwarden.suppressions.models import Suppression
from postwarden.suppressions.service import MAX_PER_REQUEST, ORIGINS, REASONS, Outcome, Status
from postwarden.surfaces.postmark.stream_schemas import spellings
from postwarden.surfaces.wire import PostmarkModel, iso

DATE_SCHEMA: Final[JsonDict] = {"type": "string", "format": "date"}


def dump_parameters() -> list[dict[str, object]]:
    """The dump's filters; ``count`` and ``offset``, which postmark.js adds, are ignored."""
    return [
        {
            "name": "SuppressionReason",
            "in": "query",
            "required": False,
            "description": "Any case (ErrorCode 1404 otherwise)",
            "schema": {"type": "string", "enum": spellings(*REASONS)},
        },
        {
            "name": "Origin",
            "in": "query",
            "required": False,
            "description": "Any case (ErrorCode 1405 otherwise)",
            "schema": {"type": "string", "enum": spellings(*ORIGINS)},
        },
        {
            "name": "fromdate",
            "in": "query",
            "required": False,
            "description": "YYYY-MM-DD, UTC, inclusive (ErrorCode 1400 otherwise)",
            "schema": DATE_SCHEMA,
        },
        {
            "name": "todate",
            "in": "query",
            "required": False,
            "description": "YYYY-MM-DD, UTC, inclusive (ErrorCode 1400 otherwise)",
            "schema": DATE_SCHEMA,
        },
        {
            "name": "EmailAddress",
            "in": "query",
            "required": False,
            "description": "Only this address, in any case",
            "schema": {"type": "string"},
        },
    ]


def _list_required(schema: JsonDict) -> None:
    # Missing or null is ErrorCode 1409, more than 50 is 1410; the document says so up front.
    properties = schema["properties"]
    assert isinstance(properties, dict)
    given = properties["Suppressions"]
    assert isinstance(given, dict)
    assert isinstance(given["anyOf"], list)
    array = next(option for option in given["anyOf"] if isinstance(option, dict) and option.get("type") == "array")
    properties["Suppressions"] = {**array, "maxItems": MAX_PER_REQUEST}
    schema["required"] = ["Suppressions"]


class SuppressionEntry(PostmarkModel):
    EmailAddress: StrictStr = Field(description="An invalid address fails on its own, the others still apply")


class SuppressionsRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra=_list_required)

    Suppressions: list[SuppressionEntry] | None = None

    def addresses(self) -> list[str] | None:
        return [entry.EmailAddress for entry in self.Suppressions] if self.Suppressions is not None else None


class SuppressionItem(PostmarkModel):
    EmailAddress: str
    SuppressionReason: str = Field(json_schema_extra={"enum": list(REASONS)})
    Origin: str = Field(json_schema_extra={"enum": list(ORIGINS)})
    CreatedAt: datetime


class SuppressionDumpResponse(PostmarkModel):
    Suppressions: list[SuppressionItem]


class SuppressionOutcome(PostmarkModel):
    EmailAddress: str
    Status: str = Field(json_schema_extra={"enum": [status.value for status in Status]})
    Message: str | None


class SuppressionOutcomesResponse(PostmarkModel):
    Suppressions: list[SuppressionOutcome]


def render_dump(suppressions: list[Suppression]) -> dict[str, Any]:
    return {
        "Suppressions": [
            {
                "EmailAddress": suppression.email_address,
                "SuppressionReason": suppression.reason,
                "Origin": suppression.origin,
                "CreatedAt": iso(suppression.created_at),
            }
            for suppression in suppressions
        ]
    }


def render_outcomes(outcomes: list[Outcome]) -> dict[str, Any]:
    return {
        "Suppressions": [
            {"EmailAddress": outcome.email_address, "Status": outcome.status.value, "Message": outcome.message}
            for outcome in outcomes
        ]
    }
