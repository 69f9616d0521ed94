"""The account itself: ``/account``, ``/account/billing`` and ownership transfer."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from postwarden.accounts.service import AccountService
from postwarden.identity import Actor
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.routing import guarded_by, json_body, read_body, require_change, run_in_session
from postwarden.surfaces.team.schemas import (
    EditAccountRequest,
    EditBillingRequest,
    TransferOwnershipRequest,
    render_account,
    render_billing,
    render_member,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON, PERSON_ONLY
from postwarden.users.service import UserService

Result = TypeVar("Result")


def account_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Team: account"])

    async def with_accounts(actor: Actor, work: Callable[[AccountService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(AccountService(session, actor, runtime)), write=write)

    @router.get(
        "/account",
        summary="The account's name and settings",
        openapi_extra={**ACCOUNT_OR_PERSON, **guarded_by(Permission.ACCOUNT_READ)},
    )
    async def get_account(request: Request) -> Response:
        actor = await auth.account_actor(request)
        return JSONBytesResponse(
            await with_accounts(actor, lambda a: render_account(a.get_settings(actor.account_id or 0)), write=False)
        )

    @router.put(
        "/account",
        summary="Rename the account or require two-factor authentication (partial)",
        openapi_extra={
            **json_body(EditAccountRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.ACCOUNT_UPDATE),
        },
    )
    async def edit_account(request: Request) -> Response:
        actor = await auth.account_actor(request)
        given = require_change(await read_body(request, EditAccountRequest)).to_settings()
        return JSONBytesResponse(
            await with_accounts(
                actor, lambda a: render_account(a.update_settings(actor.account_id or 0, given)), write=True
            )
        )

    @router.get(
        "/account/billing",
        summary="Plan, limits and receipt settings (Owner, Admin, Billing)",
        openapi_extra={**ACCOUNT_OR_PERSON, **guarded_by(Permission.BILLING_READ)},
    )
    async def get_billing(request: Request) -> Response:
        actor = await auth.account_actor(request)
        return JSONBytesResponse(
            await with_accounts(actor, lambda a: render_billing(a.get_billing(actor.account_id or 0)), write=False)
        )

    @router.put(
        "/account/billing",
        summary="Change the plan or the receipt settings (partial)",
        openapi_extra={
            **json_body(EditBillingRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.BILLING_MANAGE),
        },
    )
    async def edit_billing(request: Request) -> Response:
        actor = await auth.account_actor(request)
        given = require_change(await read_body(request, EditBillingRequest)).to_settings()
        return JSONBytesResponse(
            await with_accounts(
                actor, lambda a: render_billing(a.update_billing(actor.account_id or 0, given)), write=True
            )
        )

    @router.post(
        "/account/transfer-ownership",
        summary="Make an Admin the Owner; the Owner becomes an Admin",
        openapi_extra={
            **json_body(TransferOwnershipRequest, required=True),
            **PERSON_ONLY,
            **guarded_by(Permission.OWNERSHIP_TRANSFER),
        },
    )
    async def transfer_ownership(request: Request) -> Response:
        actor = await auth.person_actor(request)
        body = await read_body(request, TransferOwnershipRequest)

        def work(users: UserService) -> dict[str, object]:
            account_id = actor.account_id or 0
            member = users.transfer_ownership(account_id, body.UserID)
            return render_member(member, users.servers_seen_by_caller(account_id))

        return JSONBytesResponse(
            await run_in_session(runtime, lambda session: work(UserService(session, actor, runtime)), write=True)
        )

    return router
