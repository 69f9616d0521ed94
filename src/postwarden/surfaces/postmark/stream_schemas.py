"""Postmark wire shapes for message streams (§3.2 of the API reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import ConfigDict, Field, StrictStr
from pydantic.config import JsonDict

from postwarden.message_streams.service import (
    CREATABLE_TYPES,
    DESCRIPTION_MAX_LENGTH,
    HTML_TAG,
    ID_SYNTAX,
    LIST_FILTERS,
    NAME_MAX_LENGTH,
    RESERVED_IDS,
    RESERVED_PREFIX,
    STREAM_TYPES,
    UNSUBSCRIBE_TYPES,
    expected_purge_date,
)
from postwarden.servers.models import MessageStream
from postwarden.surfaces.wire import PostmarkModel, iso


def spellings(*values: str) -> list[Any]:
    """The usual spellings of accepted values: as documented and in lower case (any case is accepted)."""
    return list(dict.fromkeys([*values, *(value.lower() for value in values)]))


STREAM_ID_SCHEMA: Final[JsonDict] = {"type": "string", "pattern": f"^{ID_SYNTAX}$"}
#: Some text that is not space once trimmed: Python also trims U+001C-U+001F and U+0085,
#: which are no whitespace to JSON Schema's \s.
NAME_SCHEMA: Final[JsonDict] = {"pattern": r"[^\s\x1c-\x1f\x85]", "maxLength": NAME_MAX_LENGTH}
DESCRIPTION_SCHEMA: Final[JsonDict] = {
    "description": 'Plain text without HTML tags (ErrorCode 1234); "" clears it',
    "maxLength": DESCRIPTION_MAX_LENGTH,
    "not": {"type": "string", "pattern": HTML_TAG},
}
#: ``Custom`` needs an approval this installation does not give (ErrorCode 1238).
HANDLING_SCHEMA: Final[JsonDict] = {
    "type": "string",
    "description": "Any case. Broadcasts streams need Postmark; inbound streams take only None (ErrorCode 1239)",
    "enum": spellings(*(kind for kind in UNSUBSCRIBE_TYPES if kind != "Custom")),
}


def stream_path_parameter() -> dict[str, object]:
    return {
        "name": "stream_id",
        "in": "path",
        "required": True,
        "description": "The stream's ID, as stored (ErrorCode 1226 when this server has no such stream)",
        "schema": STREAM_ID_SCHEMA,
    }


def list_parameters() -> list[dict[str, object]]:
    return [
        {
            "name": "MessageStreamType",
            "in": "query",
            "required": False,
            "description": "Any case; All by default (ErrorCode 1221 otherwise)",
            "schema": {"type": "string", "enum": spellings(*LIST_FILTERS)},
        },
        {
            "name": "IncludeArchivedStreams",
            "in": "query",
            "required": False,
            "description": "false by default (ErrorCode 9040 for anything but true or false)",
            "schema": {"type": "boolean"},
        },
    ]


def _create_required(schema: JsonDict) -> None:
    # Missing or blank fields are refused by the service with their own ErrorCode
    # (1222, 1223, 1221); the document says up front what is accepted.
    properties = schema["properties"]
    assert isinstance(properties, dict)
    properties["ID"] = {
        **STREAM_ID_SCHEMA,
        "description": "Starts with a letter; lowercase letters, digits, - and _; unique on the server (ErrorCode "
        "1230); not pm-... (1233) nor " + ", ".join(sorted(RESERVED_IDS)) + " (1237)",
        "not": {"anyOf": [{"pattern": f"^{RESERVED_PREFIX}"}, {"enum": list[Any](sorted(RESERVED_IDS))}]},
    }
    properties["Name"] = {"type": "string", **NAME_SCHEMA}
    properties["MessageStreamType"] = {
        "type": "string",
        "description": "Any case; every server already has its one inbound stream (ErrorCode 1228)",
        "enum": spellings(*CREATABLE_TYPES),
    }
    schema["required"] = ["ID", "Name", "MessageStreamType"]


class SubscriptionManagement(PostmarkModel):
    UnsubscribeHandlingType: StrictStr = Field(json_schema_extra=HANDLING_SCHEMA)


class CreateStreamRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra=_create_required)

    ID: StrictStr | None = None
    Name: StrictStr | None = None
    MessageStreamType: StrictStr | None = None
    Description: StrictStr | None = Field(default=None, json_schema_extra=DESCRIPTION_SCHEMA)
    SubscriptionManagementConfiguration: SubscriptionManagement | None = Field(
        default=None, description="Postmark by default for Broadcasts, None otherwise"
    )


class EditStreamRequest(PostmarkModel):
    """Partial update: an absent or ``null`` field keeps its value."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # ErrorCode 9036 otherwise

    Name: StrictStr | None = Field(default=None, json_schema_extra=NAME_SCHEMA)
    Description: StrictStr | None = Field(default=None, json_schema_extra=DESCRIPTION_SCHEMA)
    SubscriptionManagementConfiguration: SubscriptionManagement | None = None


class SubscriptionManagementResponse(PostmarkModel):
    UnsubscribeHandlingType: str = Field(json_schema_extra={"enum": list(UNSUBSCRIBE_TYPES)})


class StreamResponse(PostmarkModel):
    ID: str
    ServerID: int
    Name: str
    Description: str | None
    MessageStreamType: str = Field(json_schema_extra={"enum": list(STREAM_TYPES)})
    CreatedAt: datetime
    UpdatedAt: datetime | None
    ArchivedAt: datetime | None
    ExpectedPurgeDate: datetime | None
    SubscriptionManagementConfiguration: SubscriptionManagementResponse


class StreamListResponse(PostmarkModel):
    MessageStreams: list[StreamResponse]
    TotalCount: int


class ArchiveResponse(PostmarkModel):
    ID: str
    ServerID: int
    ExpectedPurgeDate: datetime


def render_stream(stream: MessageStream) -> dict[str, Any]:
    return {
        "ID": stream.stream_id,
        "ServerID": stream.server_id,
        "Name": stream.name,
        "Description": stream.description,
        "MessageStreamType": stream.stream_type,
        "CreatedAt": iso(stream.created_at),
        "UpdatedAt": iso(stream.updated_at),
        "ArchivedAt": iso(stream.archived_at),
        "ExpectedPurgeDate": iso(expected_purge_date(stream)),
        "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": stream.unsubscribe_handling},
    }


def render_archived(stream: MessageStream) -> dict[str, Any]:
    return {"ID": stream.stream_id, "ServerID": stream.server_id, "ExpectedPurgeDate": iso(expected_purge_date(stream))}
