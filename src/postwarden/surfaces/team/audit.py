"""The account's audit log: ``/audit-events`` (pages, following, one event, export, verify)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from postwarden.audit_log.chain import ChainReport
from postwarden.audit_log.export import csv_lines, event_document, jsonl_lines
from postwarden.audit_log.service import AuditLogService, EventFilters, check_action, known_actions
from postwarden.db import utcnow
from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Via
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.routing import (
    MAX_ID,
    MAX_QUERY_INT,
    entity_id,
    guarded_by,
    id_parameter,
    paging_parameters,
    parse_int,
    parse_text,
    run_in_session,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON

RawId = Annotated[str, Path(include_in_schema=False)]
EVENT_ID: Final[dict[str, object]] = {
    "parameters": [id_parameter("event_id", "The audit event's ID (ErrorCode 9050 if none in this account)")]
}
EXPORT_FORMATS: Final = {
    "jsonl": ("application/x-ndjson; charset=utf-8", jsonl_lines),
    "csv": ("text/csv; charset=utf-8", csv_lines),
}
#: Export lines are sent in chunks of about this many characters.
CHUNK: Final = 64 * 1024
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INVALID = Reason.AUDIT_QUERY_INVALID
_COMBINATION = Reason.AUDIT_QUERY_COMBINATION


def _filter_parameters() -> list[dict[str, object]]:
    text: dict[str, object] = {"type": "string"}
    moment: dict[str, object] = {
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
    }
    described: dict[str, tuple[str, dict[str, object]]] = {
        "actor": ("Who acted, as the event's Actor.Label shows it (an email, a token's name); any case", text),
        "actoruserid": ("Who acted, by user ID", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
        "action": (
            "An action (membership.updated), or every action of a resource (membership.*)",
            {"type": "string", "enum": known_actions()},
        ),
        "targettype": ("What was acted on (user, server, ...)", text),
        "targetid": ("Its ID; only with targettype (ErrorCode 9052 without)", text),
        "via": ("The surface the event came through", {"type": "string", "enum": [member.value for member in Via]}),
        "fromdate": ("From this moment on: YYYY-MM-DD (from its start, UTC) or a date and time", moment),
        "todate": ("Until this moment: YYYY-MM-DD (to its end, UTC) or a date and time (after fromdate)", moment),
    }
    return [
        {"name": name, "in": "query", "required": False, "description": description, "schema": schema}
        for name, (description, schema) in described.items()
    ]


def audit_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Team: audit log"])
    key = runtime.keyring.audit_key

    @router.get(
        "/audit-events",
        summary="The account's audit events, newest first; or, with 'after', the ones after a cursor",
        openapi_extra={
            "parameters": [
                *paging_parameters(),
                *_filter_parameters(),
                {
                    "name": "after",
                    "in": "query",
                    "required": False,
                    "description": "Follow the log: only events whose Sequence is above this, oldest first "
                    "(pass the last answer's Cursor; offset is then not taken: ErrorCode 9052 with both)",
                    "schema": {"type": "integer", "minimum": 0, "maximum": MAX_QUERY_INT},
                },
            ],
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.AUDIT_READ),
        },
    )
    async def list_events(request: Request) -> Response:
        actor = await auth.account_actor(request)
        query = request.query_params
        filters = _filters(query)
        count = parse_int(query.get("count"), "count", _INVALID, required=True) or 0
        after = parse_int(query.get("after"), "after", _INVALID, required=False)
        offset = parse_int(query.get("offset"), "offset", _INVALID, required=after is None)
        if after is not None and offset:
            raise InvalidRequest(
                _COMBINATION, "Send either 'offset' (pages, newest first) or 'after' (following), not both."
            )
        account_id = actor.account_id or 0

        def work(session: Session) -> dict[str, object]:
            service = AuditLogService(session, actor)
            if after is None:
                total, rows = service.list_events(account_id, filters, count=count, offset=offset or 0)
                cursor = max((row["seq"] for row in rows), default=None)
            else:
                total, rows = service.events_after(account_id, filters, after=after, count=count)
                cursor = rows[-1]["seq"] if rows else after
            return {
                "TotalCount": total,
                "AuditEvents": [event_document(row) for row in rows],
                "Cursor": cursor,
            }

        return JSONBytesResponse(await run_in_session(runtime, work, write=False))

    @router.get(
        "/audit-events/export",
        summary="Every audit event that passes the filters, oldest first, as JSON Lines or CSV (streamed)",
        response_class=Response,
        responses={
            200: {
                "description": "One event per line",
                "content": {"application/x-ndjson": {}, "text/csv": {}},
            }
        },
        openapi_extra={
            "parameters": [
                *_filter_parameters(),
                {
                    "name": "format",
                    "in": "query",
                    "required": False,
                    "description": "jsonl (the default) or csv",
                    "schema": {"type": "string", "enum": list(EXPORT_FORMATS)},
                },
            ],
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.AUDIT_READ),
        },
    )
    async def export_events(request: Request) -> Response:
        actor = await auth.account_actor(request)
        filters = _filters(request.query_params)
        chosen = (request.query_params.get("format") or "jsonl").lower()
        if chosen not in EXPORT_FORMATS:
            raise InvalidRequest(_INVALID, "The 'format' query parameter must be jsonl or csv.")
        media_type, render = EXPORT_FORMATS[chosen]
        account_id = actor.account_id or 0
        await run_in_session(
            runtime, lambda session: AuditLogService(session, actor).authorize_export(account_id), write=False
        )

        def body() -> Iterator[bytes]:
            with runtime.db.session_scope(write=False) as session:
                pending: list[str] = []
                size = 0
                for line in render(AuditLogService(session, actor).stream_events(account_id, filters)):
                    pending.append(line)
                    size += len(line)
                    if size >= CHUNK:
                        yield "".join(pending).encode()
                        pending, size = [], 0
                if pending:
                    yield "".join(pending).encode()

        filename = f"audit-events-{account_id}-{utcnow():%Y%m%dT%H%M%SZ}.{chosen}"
        return StreamingResponse(
            body(), media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
        )

    @router.get(
        "/audit-events/verify",
        summary="Check the account's hash chain and report its first broken link",
        openapi_extra={**ACCOUNT_OR_PERSON, **guarded_by(Permission.AUDIT_READ)},
    )
    async def verify(request: Request) -> Response:
        actor = await auth.account_actor(request)
        account_id = actor.account_id or 0
        report = await run_in_session(
            runtime, lambda session: AuditLogService(session, actor).verify(key, account_id), write=False
        )
        return JSONBytesResponse(render_report(report))

    @router.get(
        "/audit-events/{event_id}",
        summary="One audit event",
        openapi_extra={**EVENT_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.AUDIT_READ)},
    )
    async def get_event(request: Request, event_id: RawId) -> Response:
        actor = await auth.account_actor(request)
        number = entity_id(event_id, NotFound(Reason.AUDIT_EVENT_NOT_FOUND, f"There is no audit event {event_id}."))
        row = await run_in_session(
            runtime,
            lambda session: AuditLogService(session, actor).get_event(actor.account_id or 0, number),
            write=False,
        )
        return JSONBytesResponse(event_document(row))

    return router


def render_report(report: ChainReport) -> dict[str, object]:
    broken = report.broken
    return {
        "Valid": report.valid,
        "CheckedEvents": report.checked,
        "FirstSequence": report.first_seq,
        "LastSequence": report.last_seq,
        "Head": {"Sequence": report.head_seq, "Hash": report.head_hash},
        "PrunedThroughSequence": report.pruned_seq,
        "PrunedAt": report.pruned_at.isoformat() if report.pruned_at else None,
        "BrokenLink": None
        if broken is None
        else {"Sequence": broken.seq, "EventID": broken.event_id, "Problem": broken.problem},
    }


def _filters(query: QueryParams) -> EventFilters:
    get = query.get
    action = parse_text(get("action"), "action", _INVALID)
    via = parse_text(get("via"), "via", _INVALID)
    if via is not None and via not in {member.value for member in Via}:
        raise InvalidRequest(
            _INVALID, f"The 'via' query parameter must be one of {', '.join(member.value for member in Via)}."
        )
    since = _moment(get("fromdate"), "fromdate", end_of_day=False)
    until = _moment(get("todate"), "todate", end_of_day=True)
    if since is not None and until is not None and since >= until:
        raise InvalidRequest(_COMBINATION, "'fromdate' must come before 'todate'.")
    target_id = parse_text(get("targetid"), "targetid", _INVALID)
    target_type = parse_text(get("targettype"), "targettype", _INVALID)
    if target_id is not None and target_type is None:
        raise InvalidRequest(_COMBINATION, "'targetid' needs 'targettype' too (IDs repeat across kinds of target).")
    actor_user_id = parse_int(get("actoruserid"), "actoruserid", _INVALID, required=False)
    if actor_user_id is not None and not 0 < actor_user_id <= MAX_ID:
        raise InvalidRequest(_INVALID, "The 'actoruserid' query parameter must be a user ID.")
    return EventFilters(
        actor=parse_text(get("actor"), "actor", _INVALID),
        actor_user_id=actor_user_id,
        action=check_action(action) if action is not None else None,
        target_type=target_type,
        target_id=target_id,
        via=via,
        since=since,
        until=until,
    )


def _moment(value: str | None, name: str, *, end_of_day: bool) -> datetime | None:
    """A date (its start, or with ``end_of_day`` the start of the next) or a date and time;
    times without an offset are UTC."""
    if value is None:
        return None
    wrong = InvalidRequest(_INVALID, f"The '{name}' query parameter must be YYYY-MM-DD or an ISO 8601 date and time.")
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(value.replace(" ", "+"))  # a '+' arrives as a space
    except ValueError as exc:
        raise wrong from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
