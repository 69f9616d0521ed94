"""The caller themselves: signing in and out, ``/me``, personal tokens and the second factor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import NotFound, Reason
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator, context_of
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.routing import (
    entity_id,
    guarded_by,
    id_parameter,
    json_body,
    open_to_anyone,
    read_body,
    run_in_session,
)
from postwarden.surfaces.team.schemas import (
    NewPersonalTokenRequest,
    PasswordRequest,
    SignInRequest,
    TwoFactorCodeRequest,
    render_personal_token,
)
from postwarden.surfaces.wire import PERSON_ONLY, iso
from postwarden.tokens.personal import NewPersonalToken, PersonalTokenService
from postwarden.users.service import UserService
from postwarden.users.sign_in import SignIn, SignInService, sign_out
from postwarden.users.two_factor import TwoFactorService

RawId = Annotated[str, Path(include_in_schema=False)]
TOKEN_ID: dict[str, object] = {"parameters": [id_parameter("token_id", "The personal token's ID")]}


def me_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Team: you"])

    @router.post(
        "/sessions",
        summary="Sign in: a session token for the Authorization header",
        openapi_extra={**json_body(SignInRequest, required=True), **open_to_anyone("this is how one signs in")},
    )
    async def sign_in(request: Request) -> Response:
        body = await read_body(request, SignInRequest)
        context = context_of(request)

        def work(session: Session) -> SignIn | dict[str, object]:
            outcome = SignInService(session, runtime, context).sign_in(
                body.Email, body.Password, code=body.Code, recovery_code=body.RecoveryCode, account_id=body.AccountID
            )
            if outcome.refusal is not None or outcome.session is None:
                return outcome  # committed, so the failure counts towards throttling
            return {
                "SessionToken": outcome.session_token,
                "UserID": outcome.session.user_id,
                "AccountID": outcome.session.account_id,
                "ExpiresAt": iso(outcome.session.expires_at),
            }

        result = await run_in_session(runtime, work, write=True)
        if isinstance(result, SignIn):
            assert result.refusal is not None
            raise result.refusal
        return JSONBytesResponse(result)

    @router.delete(
        "/sessions",
        summary="Sign out: end the session of the Authorization header",
        openapi_extra={**PERSON_ONLY, **guarded_by(Permission.SESSIONS_END)},
    )
    async def end_session(request: Request) -> Response:
        actor = await auth.person_actor(request)
        await run_in_session(runtime, lambda session: sign_out(session, runtime, actor), write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": "Signed out."})

    @router.get(
        "/me",
        summary="You: your accounts, your role here, what you may do and which servers you reach",
        openapi_extra={**PERSON_ONLY, **guarded_by(Permission.PROFILE_READ)},
    )
    async def me(request: Request) -> Response:
        actor = await auth.person_actor(request)

        def work(session: Session) -> dict[str, object]:
            profile = UserService(session, actor, runtime).profile(actor.account_id or 0)
            return {
                "ID": profile.user.id,
                "Email": profile.user.email,
                "Name": profile.user.name,
                "TwoFactorEnabled": profile.user.totp_enabled_at is not None,
                "Credential": actor.credential.value,
                "AccountID": actor.account_id,
                "Role": actor.role,
                "Permissions": [permission.value for permission in profile.permissions],
                "Servers": [
                    {"ServerID": server_id, "Name": name, "Access": access.value}
                    for server_id, name, access in profile.servers
                ],
                "Accounts": [{"ID": i, "Name": name, "Role": role} for i, name, role in profile.accounts],
            }

        return JSONBytesResponse(await run_in_session(runtime, work, write=False))

    @router.post(
        "/me/tokens",
        summary="Create a personal token (shown once)",
        openapi_extra={
            **json_body(NewPersonalTokenRequest, required=True),
            **PERSON_ONLY,
            **guarded_by(Permission.PROFILE_MANAGE),
        },
    )
    async def create_token(request: Request) -> Response:
        actor = await auth.person_actor(request)
        body = await read_body(request, NewPersonalTokenRequest)
        given = NewPersonalToken(
            name=body.Name, expires_at=body.ExpiresAt, scopes=body.Scopes, server_ids=body.ServerIDs
        )

        def work(session: Session) -> dict[str, object]:
            token, plaintext = PersonalTokenService(session, actor, runtime).create_token(actor.account_id or 0, given)
            return render_personal_token(token, plaintext)

        return JSONBytesResponse(await run_in_session(runtime, work, write=True))

    @router.get(
        "/me/tokens",
        summary="Your personal tokens in this account (never their secrets)",
        openapi_extra={**PERSON_ONLY, **guarded_by(Permission.PROFILE_READ)},
    )
    async def list_tokens(request: Request) -> Response:
        actor = await auth.person_actor(request)

        def work(session: Session) -> dict[str, object]:
            tokens = PersonalTokenService(session, actor, runtime).list_tokens(actor.account_id or 0)
            return {"TotalCount": len(tokens), "Tokens": [render_personal_token(token) for token in tokens]}

        return JSONBytesResponse(await run_in_session(runtime, work, write=False))

    @router.delete(
        "/me/tokens/{token_id}",
        summary="Revoke one of your personal tokens",
        openapi_extra={**TOKEN_ID, **PERSON_ONLY, **guarded_by(Permission.PROFILE_MANAGE)},
    )
    async def revoke_token(request: Request, token_id: RawId) -> Response:
        actor = await auth.person_actor(request)
        target = entity_id(
            token_id, NotFound(Reason.PERSONAL_TOKEN_NOT_FOUND, f"Personal token {token_id} was not found.")
        )

        def work(session: Session) -> str:
            return PersonalTokenService(session, actor, runtime).revoke_token(actor.account_id or 0, target).name

        name = await run_in_session(runtime, work, write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"Personal token '{name}' was revoked."})

    @router.post(
        "/me/two-factor",
        summary="Start two-factor enrolment: a secret and its QR code for an authenticator app",
        openapi_extra={**PERSON_ONLY, **guarded_by(Permission.TWO_FACTOR_ENROL)},
    )
    async def start_two_factor(request: Request) -> Response:
        actor = await auth.person_actor(request)

        def work(session: Session) -> dict[str, object]:
            enrolment = TwoFactorService(session, actor, runtime).start_enrolment(actor.account_id or 0)
            return {"Secret": enrolment.secret, "OtpauthUri": enrolment.otpauth_uri, "QrCode": enrolment.qr_data_uri}

        return JSONBytesResponse(await run_in_session(runtime, work, write=True))

    @router.post(
        "/me/two-factor/confirm",
        summary="Finish enrolment with a code from the app; returns single-use recovery codes, shown once",
        openapi_extra={
            **json_body(TwoFactorCodeRequest, required=True),
            **PERSON_ONLY,
            **guarded_by(Permission.TWO_FACTOR_ENROL),
        },
    )
    async def confirm_two_factor(request: Request) -> Response:
        actor = await auth.person_actor(request)
        body = await read_body(request, TwoFactorCodeRequest)

        def work(session: Session) -> dict[str, object]:
            codes = TwoFactorService(session, actor, runtime).confirm_enrolment(actor.account_id or 0, body.Code)
            return {"TwoFactorEnabled": True, "RecoveryCodes": codes}

        return JSONBytesResponse(await run_in_session(runtime, work, write=True))

    @router.delete(
        "/me/two-factor",
        summary="Turn two-factor authentication off (asks for the password); enrol again after",
        openapi_extra={
            **json_body(PasswordRequest, required=True),
            **PERSON_ONLY,
            **guarded_by(Permission.TWO_FACTOR_ENROL),
        },
    )
    async def disable_two_factor(request: Request) -> Response:
        actor = await auth.person_actor(request)
        body = await read_body(request, PasswordRequest)

        def work(session: Session) -> None:
            TwoFactorService(session, actor, runtime).disable(actor.account_id or 0, body.Password)

        await run_in_session(runtime, work, write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": "Two-factor authentication is off."})

    return router
