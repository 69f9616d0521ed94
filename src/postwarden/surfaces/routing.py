"""Postmark's lenient request conventions, applied once for every route of this surface:
paths match in any case and with or without a trailing slash; query names match in any
case and with or without underscores; JSON keys match in any case and ``null`` means absent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.paging import MAX_PAGE_SIZE
from postwarden.policy import Permission
from postwarden.runtime import Runtime

Model = TypeVar("Model", bound=BaseModel)
Result = TypeVar("Result")

#: The largest whole number a query parameter may carry: what SQLite and PostgreSQL store (64-bit).
MAX_QUERY_INT = 2**63 - 1
UNSTORABLE_TEXT = "text must be valid Unicode without NUL characters"


class LenientPostmarkRequests:
    """ASGI wrapper that rewrites a request to the canonical form of a Postmark route.

    Clients differ (``/deliveryStats`` vs ``/deliverystats``, ``/domains/`` vs ``/domains``,
    ``Count`` vs ``count``); Postmark accepts them all, so the router sees one spelling.
    Only the fixed segments of a known route change; path parameters keep their case.
    """

    def __init__(self, app: ASGIApp, route_paths: list[str]) -> None:
        self.app = app
        self._templates = [
            [None if part.startswith("{") else part for part in path.strip("/").split("/")] for path in route_paths
        ]
        self._canonical = lru_cache(maxsize=8192)(self._canonical_uncached)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            canonical = self._canonical(scope["path"])
            if canonical is not None:
                scope["path"] = canonical
                scope["raw_path"] = canonical.encode()
                if scope.get("query_string"):
                    scope["query_string"] = normalize_query(scope["query_string"])
        await self.app(scope, receive, send)

    def _canonical_uncached(self, path: str) -> str | None:
        parts = path.strip("/").split("/")
        for template in self._templates:
            if len(template) == len(parts) and all(
                fixed is None or fixed.lower() == part.lower() for fixed, part in zip(template, parts, strict=True)
            ):
                return "/" + "/".join(
                    part if fixed is None else fixed for fixed, part in zip(template, parts, strict=True)
                )
        return None


def query_key(name: str) -> str:
    return name.replace("_", "").lower()


def normalize_query(raw: bytes) -> bytes:
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    return urlencode([(query_key(name), value) for name, value in pairs]).encode("latin-1")


@cache
def _field_names(model: type[BaseModel]) -> dict[str, str]:
    """Lower-cased wire name -> the model's alias."""
    names: dict[str, str] = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        names[alias.lower()] = alias
    return names


async def read_body(request: Request, model: type[Model]) -> Model:
    """Parse a JSON object body leniently; an empty body is an empty object."""
    raw = await request.body()
    data: Any = {}
    if raw.strip():
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
            raise InvalidRequest(Reason.INVALID_JSON, "Received invalid JSON input.") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidRequest(Reason.INVALID_JSON, "The request body must be a JSON object.")
    names = _field_names(model)
    given = {names[key.lower()]: value for key, value in data.items() if value is not None and key.lower() in names}
    for field, value in given.items():
        if not storable(value):
            raise InvalidRequest(Reason.INVALID_FIELD, f"Invalid value for '{field}': {UNSTORABLE_TEXT}.")
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        raise InvalidRequest(Reason.INVALID_FIELD, f"Invalid value for '{field}': {problem['msg']}.") from exc


def require_change(
    body: Model,
    reason: Reason = Reason.NOTHING_TO_CHANGE,
    message: str = "The request changes nothing: give at least one field.",
) -> Model:
    """An edit must carry at least one field (``null`` counts as absent); ``reason`` is the
    resource's own code for an empty edit where Postmark has one (templates: 1109)."""
    if not body.model_fields_set:
        raise InvalidRequest(reason, message)
    return body


def parse_int(value: str | None, name: str, reason: Reason, *, required: bool) -> int | None:
    if value is None or value == "":
        if required:
            raise InvalidRequest(reason, f"The '{name}' query parameter is required.")
        return None
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidRequest(reason, f"The '{name}' query parameter must be a whole number.") from exc
    if abs(number) > MAX_QUERY_INT:
        raise InvalidRequest(reason, f"The '{name}' query parameter is out of range.")
    return number


def parse_text(value: str | None, name: str, reason: Reason) -> str | None:
    if value is not None and not storable(value):
        raise InvalidRequest(reason, f"The '{name}' query parameter is invalid: {UNSTORABLE_TEXT}.")
    return value


def storable(value: Any) -> bool:
    """False for text that is valid JSON but that no database stores: NUL characters and
    unpaired surrogates (PostgreSQL refuses the first, every UTF-8 encoder the second)."""
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(storable(item) for item in value)
    if isinstance(value, dict):
        return all(storable(key) and storable(item) for key, item in value.items())
    return True


#: Entity ids are 32-bit integer columns.
MAX_ID = 2**31 - 1


def entity_id(raw: str, not_found: NotFound) -> int:
    """A path id: ASCII digits within the id column's range, else ``not_found``.

    (``"²".isdigit()`` is true and ``int()`` refuses it; PostgreSQL refuses an id beyond its
    column instead of finding nothing.)
    """
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 0 < int(raw) <= MAX_ID:
        raise not_found
    return int(raw)


def id_parameter(name: str, description: str) -> dict[str, object]:
    """The OpenAPI description of an id in the path (parsed by ``entity_id``)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def paging_parameters() -> list[dict[str, object]]:
    """``count`` and ``offset``, both required, as Postmark's lists take them (``parse_page``)."""
    return [
        {"name": name, "in": "query", "required": True, "schema": {"type": "integer", "minimum": low, "maximum": high}}
        for name, low, high in (("count", 1, MAX_PAGE_SIZE), ("offset", 0, MAX_QUERY_INT))
    ]


def parse_page(count: str | None, offset: str | None, reason: Reason) -> tuple[int, int]:
    """Both paging parameters are required; a missing or non-numeric one is ``reason``."""
    return (
        parse_int(count, "count", reason, required=True) or 0,
        parse_int(offset, "offset", reason, required=True) or 0,
    )


async def run_in_session(runtime: Runtime, work: Callable[[Session], Result], *, write: bool) -> Result:
    """Run ``work`` in one unit of work on a worker thread: services are synchronous."""

    def run() -> Result:
        with runtime.db.session_scope(write=write) as session:
            return work(session)

    return await run_in_threadpool(run)


def json_body(model: type[BaseModel], *, required: bool) -> dict[str, object]:
    """An OpenAPI request body for bodies read by ``read_body``, nested models inlined (the
    body is described here, outside FastAPI's components)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {"requestBody": {"required": required, "content": {"application/json": {"schema": inline(schema)}}}}


PERMISSION_KEY = "x-permission"


def guarded_by(*permissions: Permission) -> dict[str, object]:
    """Declares, in the OpenAPI document, the permissions an operation asks ``policy`` for.

    The authorization matrix test reads this to drive every operation with every role;
    an operation without the declaration fails that test.
    """
    return {PERMISSION_KEY: [permission.value for permission in permissions]}


def open_to_anyone(why: str) -> dict[str, object]:
    """Declares an operation that no permission guards (sign-in, a mailed link), and why."""
    return {PERMISSION_KEY: [], "x-open-because": why}
