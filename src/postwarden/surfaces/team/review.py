"""The access review: ``/access-review``, a page of every member with what they reach and why
they may deserve a second look, and ``/access-review/export``, all of it as a CSV file for
the spreadsheet a periodic review is signed off in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from postwarden.errors import Reason
from postwarden.identity import Actor
from postwarden.paging import MAX_PAGE_SIZE
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.spreadsheets import csv_text
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.routing import guarded_by, paging_parameters, parse_int, parse_page, run_in_session
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON, iso
from postwarden.users.review import DEFAULT_DAYS, MAX_DAYS, AccessReviewService, ReviewCriteria, ReviewedMember

REVIEW_PARAMETERS: Final[list[dict[str, object]]] = [
    {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS, "default": DEFAULT_DAYS},
    }
    for name, description in (
        ("inactivedays", "Flag members whose last sign-in is older than this (Inactive)"),
        ("unuseddays", "Flag members whose live personal tokens were none used within this (TokensUnused)"),
    )
]
#: The columns of the export: the keys of a reviewed member as ``/access-review`` renders it.
COLUMNS: Final = (
    "ID",
    "Email",
    "Name",
    "Role",
    "Suspended",
    "TwoFactorEnabled",
    "LastLoginAt",
    "LastTokenUseAt",
    "PersonalTokens",
    "DefaultAccess",
    "Servers",
    "Flags",
)
#: Spreadsheets run a cell that starts with one of these as a formula (OWASP's CSV injection).


def render_reviewed(reviewed: ReviewedMember) -> dict[str, Any]:
    member = reviewed.member
    membership, user = member.membership, member.user
    return {
        "ID": user.id,
        "Email": user.email,
        "Name": user.name,
        "Role": membership.role,
        "Suspended": membership.suspended_at is not None,
        "TwoFactorEnabled": user.totp_enabled_at is not None,
        "LastLoginAt": iso(user.last_login_at),
        "LastTokenUseAt": iso(reviewed.last_token_use_at),
        "PersonalTokens": reviewed.personal_tokens,
        "DefaultAccess": member.default_access.value,
        "Servers": [
            {"ServerID": server_id, "ServerName": name, "Access": level.value}
            for server_id, name, level in reviewed.servers
        ],
        "Flags": [flag.value for flag in reviewed.flags],
    }


def csv_row(rendered: Mapping[str, Any]) -> list[object]:
    flat = dict(rendered)
    flat["Servers"] = "; ".join(f"{s['ServerName']} ({s['ServerID']}): {s['Access']}" for s in rendered["Servers"])
    flat["Flags"] = ";".join(rendered["Flags"])
    return [flat[column] for column in COLUMNS]


def _criteria(query: QueryParams) -> ReviewCriteria:
    inactive = parse_int(query.get("inactivedays"), "inactivedays", Reason.TEAM_QUERY_INVALID, required=False)
    unused = parse_int(query.get("unuseddays"), "unuseddays", Reason.TEAM_QUERY_INVALID, required=False)
    return ReviewCriteria(
        inactive_days=DEFAULT_DAYS if inactive is None else inactive,
        unused_days=DEFAULT_DAYS if unused is None else unused,
    )


def review_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Team: access review"])

    async def batch(actor: Actor, criteria: ReviewCriteria, after_email: str | None) -> list[ReviewedMember]:
        account_id = actor.account_id or 0
        return await run_in_session(
            runtime,
            lambda session: AccessReviewService(session, actor).review_after(
                account_id, criteria, after_email=after_email, limit=MAX_PAGE_SIZE
            ),
            write=False,
        )

    @router.get(
        "/access-review",
        summary="Review every member's access, with flags for missing 2FA, inactivity and idle tokens",
        openapi_extra={
            "parameters": [*paging_parameters(), *REVIEW_PARAMETERS],
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.AUDIT_READ),
        },
    )
    async def access_review(request: Request) -> Response:
        actor = await auth.account_actor(request)
        query = request.query_params  # names already lower-cased, underscores dropped
        count, offset = parse_page(query.get("count"), query.get("offset"), Reason.TEAM_QUERY_INVALID)
        criteria = _criteria(query)

        def work(session: Session) -> dict[str, object]:
            page = AccessReviewService(session, actor).review(
                actor.account_id or 0, criteria, count=count, offset=offset
            )
            return {"TotalCount": page.total, "Members": [render_reviewed(member) for member in page.members]}

        return JSONBytesResponse(await run_in_session(runtime, work, write=False))

    @router.get(
        "/access-review/export",
        summary="The access review of every member as a CSV file",
        response_class=StreamingResponse,
        responses={200: {"description": "One row per member, by email", "content": {"text/csv": {}}}},
        openapi_extra={"parameters": REVIEW_PARAMETERS, **ACCOUNT_OR_PERSON, **guarded_by(Permission.AUDIT_READ)},
    )
    async def export_access_review(request: Request) -> Response:
        actor = await auth.account_actor(request)
        criteria = _criteria(request.query_params)
        # Read before the answer starts: a refusal or a bad parameter is still a JSON error.
        first = await batch(actor, criteria, None)

        async def lines() -> AsyncIterator[str]:
            yield csv_text([COLUMNS])
            members = first
            while members:
                yield csv_text(csv_row(render_reviewed(member)) for member in members)
                if len(members) < MAX_PAGE_SIZE:
                    break
                members = await batch(actor, criteria, members[-1].member.user.email)

        filename = f"access-review-{actor.account_id}-{criteria.as_of.date().isoformat()}.csv"
        return StreamingResponse(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return router
