"""The audit log (filters, export) and the access review, for those who may read the log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from postwarden.audit_log.export import csv_lines, event_document, jsonl_lines
from postwarden.audit_log.service import AuditLogService, EventFilters, check_action, known_actions
from postwarden.identity import Actor, Via
from postwarden.surfaces.console.base import PAGE_SIZE, Console, page_count, page_number
from postwarden.surfaces.routing import run_in_session
from postwarden.users.review import AccessReviewService, ReviewCriteria


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    async def audit_log(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        query = request.query_params
        filters = EventFilters(
            action=query.get("action") or None,
            actor=query.get("actor", "").strip() or None,
            via=query.get("via") or None,
        )
        page = page_number(request)

        def work(session: Session) -> tuple[int, list[dict[str, Any]]]:
            if filters.action is not None:
                check_action(filters.action)
            total, rows = AuditLogService(session, actor).list_events(
                account_id, filters, count=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
            return total, [event_document(row) for row in rows]

        total, events = await run_in_session(runtime, work, write=False)
        kept = urlencode({key: value for key, value in query.items() if key != "page" and value})
        return console.render(
            request,
            "audit_log.html",
            title="Audit log",
            actor=actor,
            events=events,
            total=total,
            page=page,
            pages=page_count(total),
            filters=filters,
            kept=kept,
            actions=known_actions(),
            vias=[member.value for member in Via],
        )

    async def audit_export(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        chosen = request.query_params.get("format", "csv")
        render_lines = csv_lines if chosen == "csv" else jsonl_lines
        action = request.query_params.get("action") or None
        filters = EventFilters(
            action=check_action(action) if action else None,
            actor=request.query_params.get("actor", "").strip() or None,
            via=request.query_params.get("via") or None,
        )
        await run_in_session(
            runtime, lambda session: AuditLogService(session, actor).authorize_export(account_id), write=False
        )

        def body() -> Iterator[bytes]:
            with runtime.db.session_scope(write=False) as session:
                for line in render_lines(AuditLogService(session, actor).stream_events(account_id, filters)):
                    yield line.encode()

        extension, media_type = ("csv", "text/csv") if chosen == "csv" else ("jsonl", "application/x-ndjson")
        return StreamingResponse(
            body(),
            media_type=f"{media_type}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="audit-events-{account_id}.{extension}"'},
        )

    async def access_review(request: Request, actor: Actor) -> Response:
        account_id = actor.account_id or 0
        page = page_number(request)

        def work(session: Session) -> tuple[int, list[dict[str, Any]]]:
            reviewed = AccessReviewService(session, actor).review(
                account_id, ReviewCriteria(), count=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
            )
            return reviewed.total, [
                {
                    "email": entry.member.user.email,
                    "role": entry.member.role.value,
                    "suspended": entry.member.membership.suspended_at is not None,
                    "servers": [(name, level.value) for _, name, level in entry.servers],
                    "last_login": entry.member.user.last_login_at,
                    "last_token_use": entry.last_token_use_at,
                    "flags": [flag.value for flag in entry.flags],
                }
                for entry in reviewed.members
            ]

        total, members = await run_in_session(runtime, work, write=False)
        return console.render(
            request,
            "access_review.html",
            title="Access review",
            actor=actor,
            members=members,
            total=total,
            page=page,
            pages=page_count(total),
        )

    return [
        Route("/access-review", console.signed_in(access_review)),
        Route("/audit-log", console.signed_in(audit_log)),
        Route("/audit-log/export", console.signed_in(audit_export)),
    ]
