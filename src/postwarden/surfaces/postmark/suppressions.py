"""Suppressions: one server's, with its server token or an account-level credential and ``server_id``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Final, TypeVar

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import InvalidRequest, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.suppressions.service import DumpFilters, SuppressionService
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.postmark.stream_schemas import stream_path_parameter
from postwarden.surfaces.postmark.suppression_schemas import (
    SuppressionDumpResponse,
    SuppressionOutcomesResponse,
    SuppressionsRequest,
    dump_parameters,
    render_dump,
    render_outcomes,
)
from postwarden.surfaces.routing import guarded_by, json_body, parse_text, read_body, run_in_session
from postwarden.surfaces.wire import on_server

Result = TypeVar("Result")
StreamId = Annotated[str, Path(include_in_schema=False)]
ON_A_STREAM: dict[str, object] = on_server(stream_path_parameter())
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def suppressions_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Suppressions"])

    async def in_transaction(actor: Actor, work: Callable[[SuppressionService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(SuppressionService(session, actor)), write=write)

    @router.get(
        "/message-streams/{stream_id}/suppressions/dump",
        response_model=SuppressionDumpResponse,
        summary="Every suppression of a stream that passes the filters (not paged)",
        openapi_extra={
            **on_server(stream_path_parameter(), *dump_parameters()),
            **guarded_by(Permission.SUPPRESSIONS_READ),
        },
    )
    async def dump(request: Request, stream_id: StreamId) -> Response:
        actor, server_id = await auth.server_scope(request)
        query = request.query_params  # names already lower-cased, underscores dropped
        reason = Reason.SUPPRESSION_QUERY_INVALID
        filters = DumpFilters(
            reason=parse_text(query.get("suppressionreason"), "SuppressionReason", reason),
            origin=parse_text(query.get("origin"), "Origin", reason),
            from_date=_date(query.get("fromdate"), "fromdate"),
            to_date=_date(query.get("todate"), "todate"),
            email_address=parse_text(query.get("emailaddress"), "EmailAddress", reason),
        )
        found = await in_transaction(actor, lambda s: render_dump(s.dump(server_id, stream_id, filters)), write=False)
        return JSONBytesResponse(found)

    @router.post(
        "/message-streams/{stream_id}/suppressions",
        response_model=SuppressionOutcomesResponse,
        summary="Suppress up to 50 addresses on a stream",
        openapi_extra={
            **json_body(SuppressionsRequest, required=True),
            **ON_A_STREAM,
            **guarded_by(Permission.SUPPRESSIONS_MANAGE),
        },
    )
    async def suppress(request: Request, stream_id: StreamId) -> Response:
        actor, server_id = await auth.server_scope(request)
        addresses = (await read_body(request, SuppressionsRequest)).addresses()
        outcomes = await in_transaction(actor, lambda s: s.suppress(server_id, stream_id, addresses), write=True)
        return JSONBytesResponse(render_outcomes(outcomes))

    @router.post(
        "/message-streams/{stream_id}/suppressions/delete",
        response_model=SuppressionOutcomesResponse,
        summary="Lift the suppression of up to 50 addresses on a stream",
        openapi_extra={
            **json_body(SuppressionsRequest, required=True),
            **ON_A_STREAM,
            **guarded_by(Permission.SUPPRESSIONS_MANAGE),
        },
    )
    async def unsuppress(request: Request, stream_id: StreamId) -> Response:
        actor, server_id = await auth.server_scope(request)
        addresses = (await read_body(request, SuppressionsRequest)).addresses()
        outcomes = await in_transaction(actor, lambda s: s.unsuppress(server_id, stream_id, addresses), write=True)
        return JSONBytesResponse(render_outcomes(outcomes))

    return router


def _date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    wrong = InvalidRequest(
        Reason.SUPPRESSION_QUERY_INVALID, f"The '{name}' query parameter must be a date as YYYY-MM-DD."
    )
    if not _DATE_RE.fullmatch(value):
        raise wrong
    try:
        return date.fromisoformat(value)
    except ValueError as exc:  # 2024-02-30
        raise wrong from exc
