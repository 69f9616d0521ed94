"""Servers: ``/servers`` with the account token, ``/server`` with the server token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from postwarden.cache import SingleFlight
from postwarden.errors import NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission, allows, require
from postwarden.runtime import Runtime
from postwarden.servers.models import Server
from postwarden.servers.service import ServerPage, ServerService
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse, dump_json
from postwarden.surfaces.postmark.schemas import (
    ActionResponse,
    CreateServerRequest,
    EditServerRequest,
    ServerListResponse,
    ServerResponse,
    render_server,
)
from postwarden.surfaces.routing import (
    entity_id,
    guarded_by,
    id_parameter,
    json_body,
    paging_parameters,
    parse_page,
    parse_text,
    read_body,
    run_in_session,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON, SERVER_TOKEN

Result = TypeVar("Result")
# Parsed by _server_id (any other text is ErrorCode 601); SERVER_ID documents it.
ServerId = Annotated[str, Path(include_in_schema=False)]
SERVER_ID: dict[str, object] = {
    "parameters": [id_parameter("server_id", "The server's ID (ErrorCode 601 when it names no server of this account)")]
}
SERVER_LIST_PARAMETERS: list[dict[str, object]] = [
    *paging_parameters(),
    {
        "name": "name",
        "in": "query",
        "required": False,
        "description": "Only servers whose name contains this text, in any case",
        "schema": {"type": "string"},
    },
]


def servers_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Servers"])
    settings = runtime.settings
    server_loads: SingleFlight[bytes] = SingleFlight()

    async def in_transaction(actor: Actor, work: Callable[[ServerService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(ServerService(session, actor, runtime)), write=write)

    def render(service: ServerService, server: Server) -> bytes:
        return dump_json(render_server(server, service.api_tokens(server), settings))

    def rendered_servers(service: ServerService, page: ServerPage) -> list[bytes]:
        """Each server of the page as JSON, from the cache where it is warm."""
        account_id = service.actor.account_id or 0
        generation = runtime.cache.generation
        rendered: dict[int, bytes] = {}
        for server_id in page.server_ids:
            cached = runtime.cache.get_server(server_id)
            # The cache holds servers as rendered for those who see their tokens.
            if cached is not None and cached[0] == account_id and service.may_see_tokens(account_id, server_id):
                rendered[server_id] = cached[1]
        missing = [server_id for server_id in page.server_ids if server_id not in rendered]
        if missing:
            for loaded in service.load_servers(account_id, missing):
                body = dump_json(render_server(loaded.server, loaded.api_tokens, settings))
                if service.may_see_tokens(account_id, loaded.server.id):
                    runtime.cache.put_server(loaded.server.id, account_id, body, read_at_generation=generation)
                rendered[loaded.server.id] = body
        return [rendered[server_id] for server_id in page.server_ids if server_id in rendered]

    async def cached_server(actor: Actor, account_id: int, server_id: int) -> Response:
        """The hot read: policy, then the per-process cache, then the database. The cache
        holds servers with their tokens, so it serves only callers who may see them."""
        require(actor, Permission.SERVERS_READ, account_id=account_id, server_id=server_id)
        if not allows(actor, Permission.SERVER_TOKENS_READ, account_id=account_id, server_id=server_id):
            return JSONBytesResponse(
                await in_transaction(actor, lambda s: render(s, s.get_server(account_id, server_id)), write=False)
            )
        cached = runtime.cache.get_server(server_id)
        if cached is not None:
            if cached[0] != account_id:
                raise NotFound(Reason.SERVER_NOT_FOUND, f"Server {server_id} was not found.")
            rendered = cached[1]
        else:
            generation = runtime.cache.generation
            rendered = await server_loads.run(
                (server_id, account_id),
                lambda: in_transaction(actor, lambda s: render(s, s.get_server(account_id, server_id)), write=False),
            )
            runtime.cache.put_server(server_id, account_id, rendered, read_at_generation=generation)
        await auth.token_views.shown(actor, account_id, [server_id])
        return JSONBytesResponse(rendered)

    @router.get(
        "/servers",
        response_model=ServerListResponse,
        summary="List servers",
        openapi_extra={
            "parameters": SERVER_LIST_PARAMETERS,
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.SERVERS_READ),
        },
    )
    async def list_servers(
        request: Request,
        # Parsed here rather than by FastAPI so that bad paging answers with Postmark's
        # ErrorCode 600; SERVER_LIST_PARAMETERS documents them as the API enforces them.
        count: Annotated[str | None, Query(include_in_schema=False)] = None,
        offset: Annotated[str | None, Query(include_in_schema=False)] = None,
        name: Annotated[str | None, Query(include_in_schema=False)] = None,
    ) -> Response:
        actor = await auth.account_actor(request)
        page_size, start = parse_page(count, offset, Reason.SERVER_QUERY_INVALID)
        name = parse_text(name, "name", Reason.SERVER_QUERY_INVALID)

        account_id = actor.account_id or 0

        def work(service: ServerService) -> tuple[bytes, list[int]]:
            page = service.list_servers(account_id, count=page_size, offset=start, name=name)
            body = b'{"TotalCount":%d,"Servers":[%b]}' % (page.total, b",".join(rendered_servers(service, page)))
            return body, [i for i in page.server_ids if service.may_see_tokens(account_id, i)]

        body, shown = await in_transaction(actor, work, write=False)
        await auth.token_views.shown(actor, account_id, shown)
        return JSONBytesResponse(body)

    @router.post(
        "/servers",
        response_model=ServerResponse,
        summary="Create a server",
        openapi_extra={
            **json_body(CreateServerRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.SERVERS_CREATE),
        },
    )
    async def create_server(request: Request) -> Response:
        actor = await auth.account_actor(request)
        given = (await read_body(request, CreateServerRequest)).to_fields()

        return JSONBytesResponse(
            await in_transaction(actor, lambda s: render(s, s.create_server(actor.account_id or 0, given)), write=True)
        )

    @router.get(
        "/servers/{server_id}",
        response_model=ServerResponse,
        summary="Get a server",
        openapi_extra={**SERVER_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.SERVERS_READ)},
    )
    async def get_server(request: Request, server_id: ServerId) -> Response:
        actor = await auth.account_actor(request)
        return await cached_server(actor, actor.account_id or 0, _server_id(server_id))

    @router.put(
        "/servers/{server_id}",
        response_model=ServerResponse,
        summary="Edit a server (partial)",
        openapi_extra={
            **SERVER_ID,
            **json_body(EditServerRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.SERVERS_UPDATE),
        },
    )
    async def edit_server(request: Request, server_id: ServerId) -> Response:
        actor = await auth.account_actor(request)
        target = _server_id(server_id)
        given = (await read_body(request, EditServerRequest)).to_fields()

        account_id = actor.account_id or 0
        rendered = await in_transaction(
            actor, lambda s: render(s, s.update_server(account_id, target, given)), write=True
        )
        if allows(actor, Permission.SERVER_TOKENS_READ, account_id=account_id, server_id=target):
            await auth.token_views.shown(actor, account_id, [target])
        return JSONBytesResponse(rendered)

    @router.delete(
        "/servers/{server_id}",
        response_model=ActionResponse,
        summary="Delete a server",
        openapi_extra={**SERVER_ID, **ACCOUNT_OR_PERSON, **guarded_by(Permission.SERVERS_DELETE)},
    )
    async def delete_server(request: Request, server_id: ServerId) -> Response:
        actor = await auth.account_actor(request)
        target = _server_id(server_id)
        name = await in_transaction(actor, lambda s: s.delete_server(actor.account_id or 0, target), write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"Server {name} removed."})

    @router.get(
        "/server",
        response_model=ServerResponse,
        summary="Get the server of this server token",
        openapi_extra={**SERVER_TOKEN, **guarded_by(Permission.SERVERS_READ)},
    )
    async def current_server(request: Request) -> Response:
        actor = await auth.server_actor(request)
        return await cached_server(actor, actor.account_id or 0, actor.server_id or 0)

    @router.put(
        "/server",
        response_model=ServerResponse,
        summary="Edit the server of this server token (partial)",
        openapi_extra={
            **json_body(EditServerRequest, required=True),
            **SERVER_TOKEN,
            **guarded_by(Permission.SERVERS_UPDATE),
        },
    )
    async def edit_current_server(request: Request) -> Response:
        actor = await auth.server_actor(request)
        given = (await read_body(request, EditServerRequest)).to_fields()

        server_id = actor.server_id or 0
        return JSONBytesResponse(
            await in_transaction(
                actor, lambda s: render(s, s.update_server(actor.account_id or 0, server_id, given)), write=True
            )
        )

    return router


def _server_id(raw: str) -> int:
    return entity_id(raw, NotFound(Reason.SERVER_NOT_FOUND, f"Server {raw} was not found."))
