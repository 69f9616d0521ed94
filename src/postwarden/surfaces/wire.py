"""Wire primitives shared by the Postmark and team APIs, which follow one set of conventions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from annotated_types import Ge, Le
from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictInt, WithJsonSchema
from pydantic.config import JsonDict

from postwarden.surfaces.auth import ACCOUNT_HEADER, SERVER_HEADER

#: Account-wide endpoints: the account token, or a person's bearer credential.
ACCOUNT_OR_PERSON: Final[dict[str, Any]] = {"security": [{"AccountToken": []}, {"PersonalToken": []}]}
#: Endpoints about the caller themselves: a person's bearer credential only.
PERSON_ONLY: Final[dict[str, Any]] = {"security": [{"PersonalToken": []}]}
#: One server's endpoints: its server token.
SERVER_TOKEN: Final[dict[str, Any]] = {"security": [{"ServerToken": []}]}
_SERVER_OR_ACCOUNT: Final[list[dict[str, Any]]] = [{"ServerToken": []}, {"AccountToken": []}, {"PersonalToken": []}]
_SERVER_ID_QUERY: Final[dict[str, Any]] = {
    "name": "server_id",
    "in": "query",
    "required": False,
    "description": "The server, when calling with an account token or personal token (ErrorCode 9038 when "
    "missing then, 601 when it names no server of the account or not the server token's own server)",
    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
}


def on_server(*parameters: dict[str, Any]) -> dict[str, Any]:
    """One server's resources (streams, webhooks, templates, suppressions), as ``openapi_extra``:
    its server token, or an account-level credential naming the server with ``server_id``
    (``Authenticator.server_scope``); ``parameters`` are the operation's others."""
    return {"security": _SERVER_OR_ACCOUNT, "parameters": [*parameters, _SERVER_ID_QUERY]}


SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "AccountToken": {
        "type": "apiKey",
        "in": "header",
        "name": ACCOUNT_HEADER,
        "description": "Account API token: /servers and the other account-wide endpoints.",
    },
    "ServerToken": {
        "type": "apiKey",
        "in": "header",
        "name": SERVER_HEADER,
        "description": "Server API token: /server and the endpoints of that one server.",
    },
    "PersonalToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A person's credential: a personal token (pw_...) or a session (pws_..., from POST /sessions). "
        "Acts with that person's role and server access.",
    },
}


def _whole_number(value: Any) -> Any:
    # JSON has one number type: 5.0 is the integer 5 (JSON Schema agrees), but "5" is not.
    return int(value) if isinstance(value, float) and value.is_integer() else value


WholeInt = Annotated[StrictInt, BeforeValidator(_whole_number)]


def any_case(*values: str) -> JsonDict:
    """The accepted values in their usual spellings (any case is accepted), or null."""
    spellings: list[Any] = list(dict.fromkeys([*values, *(value.lower() for value in values)]))
    return {"enum": [*spellings, None]}


class PostmarkModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class ErrorResponse(PostmarkModel):
    ErrorCode: int
    Message: str


#: An entity id in a body: a 32-bit positive integer, as the id columns store them.
EntityId = Annotated[
    WholeInt,
    Ge(1),
    Le(2**31 - 1),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 2**31 - 1}),
]


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with the UTC offset, as every timestamp of the API; None for what has not happened."""
    return moment.isoformat() if moment is not None else None
