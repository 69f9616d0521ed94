"""A bare Starlette app that answers with canned bytes.

It is the baseline for ``bench/api_throughput.py``: the same uvicorn, the same
response bodies as postwarden, and no work at all behind them (no auth, no
database, no serialisation). Whatever postwarden does on top of that shows up
as the gap between the two.

The canned responses are read at import time from the JSON file named by the
``BENCH_BARE_RESPONSES`` environment variable::

    {"routes": [
        {"path": "/server", "status": 200,
         "content_type": "application/json", "body_b64": "..."},
        {"path": "/servers/{id}", ...},
        {"path": "/servers", ...}
    ]}

``path`` is a Starlette route template, so ``/servers/{id}`` answers for any id.
``GET /healthz`` is always there. Without the variable the app serves a small
default body on ``/server`` so it can be started by hand::

    uvicorn --app-dir bench bare_app:app --no-access-log --log-level warning
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_DEFAULT_ROUTES: list[dict[str, Any]] = [
    {
        "path": "/server",
        "status": 200,
        "content_type": "application/json",
        "body_b64": base64.b64encode(b'{"ID":1,"Name":"bare"}').decode(),
    }
]


def _load_routes() -> list[dict[str, Any]]:
    path = os.environ.get("BENCH_BARE_RESPONSES")  # noqa: TID251 - set by bench/api_throughput.py
    if not path:
        return _DEFAULT_ROUTES
    with open(path, encoding="utf-8") as fh:
        routes: list[dict[str, Any]] = json.load(fh)["routes"]
    return routes


def _make_endpoint(status: int, content_type: str, body: bytes) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return Response(content=body, status_code=status, media_type=content_type)

    return endpoint


async def healthz(request: Request) -> Response:
    return Response(content=b'{"status":"ok"}', media_type="application/json")


def build_app() -> Starlette:
    routes = [Route("/healthz", healthz, methods=["GET"])]
    for spec in _load_routes():
        body = base64.b64decode(spec["body_b64"])
        routes.append(
            Route(
                spec["path"],
                _make_endpoint(
                    int(spec.get("status", 200)),
                    spec.get("content_type", "application/json"),
                    body,
                ),
                methods=["GET"],
            )
        )
    return Starlette(routes=routes)


app = build_app()
