"""Servers: ``/servers`` with the account token, ``/server`` with the server token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerService
from postwarden.surfaces.http import JSONBytesResponse, dump_json
from postwarden.surfaces.postmark.auth import Authenticator
from postwarden.surfaces.postmark.routing import parse_int, read_body
from postwarden.surfaces.postmark.schemas import (
    ActionResponse,
    CreateServerRequest,
    EditServerRequest,
    ServerListResponse,
    ServerResponse,
    render_server,
)

Result = TypeVar("Result")
ServerId = Annotated[str, "server id"]


def body_schema(model: type[CreateServerRequest] | type[EditServerRequest]) -> dict[str, object]:
    return {
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}
            },
        }
    }


def servers_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Servers"])
    settings = runtime.settings

    async def in_transaction(work: Callable[[ServerService], Result], actor: Actor, *, write: bool) -> Result:
        def run() -> Result:
            with runtime.db.session_scope(write=write) as session:
                return work(ServerService(session, actor, runtime))

        return await run_in_threadpool(run)

    def render(service: ServerService, account_id: int, server_id: int) -> bytes:
        server = service.get_server(account_id, server_id)
        return dump_json(render_server(server, service.api_tokens(server), settings))

    async def cached_server(actor: Actor, account_id: int, server_id: int) -> Response:
        """The hot read: policy, then the per-process cache, then the database."""
        require(actor, Permission.SERVERS_READ, account_id=account_id, server_id=server_id)
        require(actor, Permission.SERVER_TOKENS_READ, account_id=account_id, server_id=server_id)
        cached = runtime.cache.get_server(server_id)
        if cached is not None:
            if cached[0] != account_id:
                raise NotFound(Reason.SERVER_NOT_FOUND, f"Server {server_id} was not found.")
            return JSONBytesResponse(cached[1])
        generation = runtime.cache.generation
        rendered = await in_transaction(lambda s: render(s, account_id, server_id), actor, write=False)
        runtime.cache.put_server(server_id, account_id, rendered, read_at_generation=generation)
        return JSONBytesResponse(rendered)

    @router.get("/servers", response_model=ServerListResponse, summary="List servers")
    async def list_servers(
        request: Request,
        count: Annotated[str | None, Query(description="1-500, required")] = None,
        offset: Annotated[str | None, Query(description="0 or more, required")] = None,
        name: Annotated[str | None, Query(description="Substring of the server name")] = None,
    ) -> Response:
        actor = await auth.account_actor(request)
        page_size = parse_int(count, "count", Reason.SERVER_QUERY_INVALID, required=True) or 0
        start = parse_int(offset, "offset", Reason.SERVER_QUERY_INVALID, required=True) or 0

        def work(service: ServerService) -> bytes:
            page = service.list_servers(actor.account_id or 0, count=page_size, offset=start, name=name)
            return dump_json(
                {
                    "TotalCount": page.total,
                    "Servers": [render_server(s, page.tokens[s.id], settings) for s in page.servers],
                }
            )

        return JSONBytesResponse(await in_transaction(work, actor, write=False))

    @router.post(
        "/servers",
        response_model=ServerResponse,
        summary="Create a server",
        openapi_extra=body_schema(CreateServerRequest),
    )
    async def create_server(request: Request) -> Response:
        actor = await auth.account_actor(request)
        given = (await read_body(request, CreateServerRequest)).to_fields()

        def work(service: ServerService) -> bytes:
            server = service.create_server(actor.account_id or 0, given)
            return dump_json(render_server(server, service.api_tokens(server), settings))

        return JSONBytesResponse(await in_transaction(work, actor, write=True))

    @router.get("/servers/{server_id}", response_model=ServerResponse, summary="Get a server")
    async def get_server(request: Request, server_id: ServerId) -> Response:
        actor = await auth.account_actor(request)
        return await cached_server(actor, actor.account_id or 0, _server_id(server_id))

    @router.put(
        "/servers/{server_id}",
        response_model=ServerResponse,
        summary="Edit a server (partial)",
        openapi_extra=body_schema(EditServerRequest),
    )
    async def edit_server(request: Request, server_id: ServerId) -> Response:
        actor = await auth.account_actor(request)
        target = _server_id(server_id)
        given = (await read_body(request, EditServerRequest)).to_fields()

        def work(service: ServerService) -> bytes:
            server = service.update_server(actor.account_id or 0, target, given)
            return dump_json(render_server(server, service.api_tokens(server), settings))

        return JSONBytesResponse(await in_transaction(work, actor, write=True))

    @router.delete("/servers/{server_id}", response_model=ActionResponse, summary="Delete a server")
    async def delete_server(request: Request, server_id: ServerId) -> Response:
        actor = await auth.account_actor(request)
        target = _server_id(server_id)
        name = await in_transaction(lambda s: s.delete_server(actor.account_id or 0, target), actor, write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"Server {name} removed."})

    @router.get("/server", response_model=ServerResponse, summary="Get the server of this server token")
    async def current_server(request: Request) -> Response:
        actor = await auth.server_actor(request)
        return await cached_server(actor, actor.account_id or 0, actor.server_id or 0)

    @router.put(
        "/server",
        response_model=ServerResponse,
        summary="Edit the server of this server token (partial)",
        openapi_extra=body_schema(EditServerRequest),
    )
    async def edit_current_server(request: Request) -> Response:
        actor = await auth.server_actor(request)
        given = (await read_body(request, EditServerRequest)).to_fields()

        def work(service: ServerService) -> bytes:
            server = service.update_server(actor.account_id or 0, actor.server_id or 0, given)
            return dump_json(render_server(server, service.api_tokens(server), settings))

        return JSONBytesResponse(await in_transaction(work, actor, write=True))

    return router


def _server_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(Reason.SERVER_NOT_FOUND, f"Server {raw} was not found.")
    return int(raw)
