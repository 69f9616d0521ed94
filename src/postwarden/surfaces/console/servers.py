"""The servers an actor may see."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.identity import Actor
from postwarden.servers.service import ServerService
from postwarden.surfaces.console.base import Console
from postwarden.surfaces.routing import run_in_session


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    async def servers(request: Request, actor: Actor) -> Response:
        query = request.query_params.get("q", "").strip()
        account_id = actor.account_id or 0

        def work(session: Session) -> list[dict[str, Any]]:
            service = ServerService(session, actor, runtime)
            page = service.list_servers(account_id, count=500, offset=0, name=query or None)
            loaded = service.load_servers(account_id, page.server_ids)
            return sorted(
                ({"id": entry.server.id, "name": entry.server.name, "color": entry.server.color} for entry in loaded),
                key=lambda server: (server["name"].casefold(), server["id"]),
            )

        found = await run_in_session(runtime, work, write=False)
        return console.render(request, "servers.html", title="Servers", actor=actor, servers=found, query=query)

    return [Route("/servers", console.signed_in(servers))]
