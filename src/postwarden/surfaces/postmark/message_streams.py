"""Message streams: one server's, with its server token or an account-level credential and ``server_id``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import InvalidRequest, Reason
from postwarden.identity import Actor
from postwarden.message_streams.service import MessageStreamService, StreamFields
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.postmark.stream_schemas import (
    ArchiveResponse,
    CreateStreamRequest,
    EditStreamRequest,
    StreamListResponse,
    StreamResponse,
    SubscriptionManagement,
    list_parameters,
    render_archived,
    render_stream,
    stream_path_parameter,
)
from postwarden.surfaces.routing import guarded_by, json_body, parse_text, read_body, require_change, run_in_session
from postwarden.surfaces.wire import on_server

Result = TypeVar("Result")
# Matched against the stored IDs as given; stream_path_parameter documents it.
StreamId = Annotated[str, Path(include_in_schema=False)]
ON_A_SERVER: dict[str, object] = on_server()
ON_A_STREAM: dict[str, object] = on_server(stream_path_parameter())


def message_streams_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Message streams"])

    async def in_transaction(actor: Actor, work: Callable[[MessageStreamService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(MessageStreamService(session, actor)), write=write)

    @router.get(
        "/message-streams",
        response_model=StreamListResponse,
        summary="List the server's message streams (not paged)",
        openapi_extra={
            **on_server(*list_parameters()),
            **guarded_by(Permission.MESSAGE_STREAMS_READ),
        },
    )
    async def list_streams(request: Request) -> Response:
        actor, server_id = await auth.server_scope(request)
        query = request.query_params  # names already lower-cased, underscores dropped
        stream_type = parse_text(query.get("messagestreamtype"), "MessageStreamType", Reason.STREAM_TYPE_INVALID)
        include_archived = _flag(query.get("includearchivedstreams"))
        streams = await in_transaction(
            actor,
            lambda s: s.list_streams(server_id, stream_type=stream_type, include_archived=include_archived),
            write=False,
        )
        return JSONBytesResponse(
            {"MessageStreams": [render_stream(stream) for stream in streams], "TotalCount": len(streams)}
        )

    @router.get(
        "/message-streams/{stream_id}",
        response_model=StreamResponse,
        summary="Get a message stream",
        openapi_extra={**ON_A_STREAM, **guarded_by(Permission.MESSAGE_STREAMS_READ)},
    )
    async def get_stream(request: Request, stream_id: StreamId) -> Response:
        actor, server_id = await auth.server_scope(request)
        stream = await in_transaction(actor, lambda s: render_stream(s.get_stream(server_id, stream_id)), write=False)
        return JSONBytesResponse(stream)

    @router.post(
        "/message-streams",
        response_model=StreamResponse,
        summary="Create a transactional or broadcasts stream",
        openapi_extra={
            **json_body(CreateStreamRequest, required=True),
            **ON_A_SERVER,
            **guarded_by(Permission.MESSAGE_STREAMS_MANAGE),
        },
    )
    async def create_stream(request: Request) -> Response:
        actor, server_id = await auth.server_scope(request)
        body = await read_body(request, CreateStreamRequest)
        fields = _fields(body.Name, body.Description, body.SubscriptionManagementConfiguration)
        created = await in_transaction(
            actor,
            lambda s: render_stream(s.create_stream(server_id, body.ID, body.MessageStreamType, fields)),
            write=True,
        )
        return JSONBytesResponse(created)

    @router.patch(
        "/message-streams/{stream_id}",
        response_model=StreamResponse,
        summary="Edit a message stream (partial)",
        openapi_extra={
            **json_body(EditStreamRequest, required=True),
            **ON_A_STREAM,
            **guarded_by(Permission.MESSAGE_STREAMS_MANAGE),
        },
    )
    async def edit_stream(request: Request, stream_id: StreamId) -> Response:
        actor, server_id = await auth.server_scope(request)
        body = require_change(await read_body(request, EditStreamRequest))
        fields = _fields(body.Name, body.Description, body.SubscriptionManagementConfiguration)
        edited = await in_transaction(
            actor, lambda s: render_stream(s.update_stream(server_id, stream_id, fields)), write=True
        )
        return JSONBytesResponse(edited)

    @router.post(
        "/message-streams/{stream_id}/archive",
        response_model=ArchiveResponse,
        summary="Archive a message stream until its purge date, 45 days on",
        openapi_extra={**ON_A_STREAM, **guarded_by(Permission.MESSAGE_STREAMS_MANAGE)},
    )
    async def archive_stream(request: Request, stream_id: StreamId) -> Response:
        actor, server_id = await auth.server_scope(request)
        archived = await in_transaction(
            actor, lambda s: render_archived(s.archive_stream(server_id, stream_id)), write=True
        )
        return JSONBytesResponse(archived)

    @router.post(
        "/message-streams/{stream_id}/unarchive",
        response_model=StreamResponse,
        summary="Bring an archived message stream back before its purge date",
        openapi_extra={**ON_A_STREAM, **guarded_by(Permission.MESSAGE_STREAMS_MANAGE)},
    )
    async def unarchive_stream(request: Request, stream_id: StreamId) -> Response:
        actor, server_id = await auth.server_scope(request)
        stream = await in_transaction(
            actor, lambda s: render_stream(s.unarchive_stream(server_id, stream_id)), write=True
        )
        return JSONBytesResponse(stream)

    return router


def _fields(name: str | None, description: str | None, subscription: SubscriptionManagement | None) -> StreamFields:
    return StreamFields(
        name=name,
        description=description,
        unsubscribe_handling=subscription.UnsubscribeHandlingType if subscription is not None else None,
    )


def _flag(value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidRequest(
        Reason.STREAM_QUERY_INVALID, "The 'IncludeArchivedStreams' query parameter must be true or false."
    )
