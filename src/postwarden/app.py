"""``create_app(settings)``: the ASGI application with every HTTP surface mounted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, TextIO

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from postwarden import __version__
from postwarden.cache import INVALIDATION_CHANNEL
from postwarden.config import Settings
from postwarden.errors import PostwardenError
from postwarden.ratelimit import MemoryBackend, RateLimiter, RedisBackend, Verdict, parse_rate
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.console.app import console_app
from postwarden.surfaces.errors import postmark_error, postmark_error_response
from postwarden.surfaces.http import AccessLog, JSONBytesResponse, Metrics, Mounted, RequestMiddleware
from postwarden.surfaces.postmark.domains import domains_router
from postwarden.surfaces.postmark.hot_reads import HotReads
from postwarden.surfaces.postmark.message_streams import message_streams_router
from postwarden.surfaces.postmark.senders import senders_router
from postwarden.surfaces.postmark.servers import servers_router
from postwarden.surfaces.postmark.suppressions import suppressions_router
from postwarden.surfaces.postmark.templates import templates_router
from postwarden.surfaces.postmark.webhook_deliveries import webhook_deliveries_router
from postwarden.surfaces.postmark.webhooks import webhooks_router
from postwarden.surfaces.routing import LenientPostmarkRequests, open_to_anyone
from postwarden.surfaces.scim.app import scim_app
from postwarden.surfaces.team.account import account_router
from postwarden.surfaces.team.audit import audit_router
from postwarden.surfaces.team.me import me_router
from postwarden.surfaces.team.people import people_router
from postwarden.surfaces.team.review import review_router
from postwarden.surfaces.team.scim import scim_router
from postwarden.surfaces.wire import SECURITY_SCHEMES, ErrorResponse
from postwarden.tasks import TaskQueue

logger = logging.getLogger("postwarden")


def _header(description: str) -> dict[str, object]:
    return {"description": description, "required": True, "schema": {"type": "string"}}


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {
        "model": ErrorResponse,
        "description": description,
        "headers": {"X-PM-ApiErrorCode": _header("The ErrorCode of the body, as Postmark sends it"), **headers},
    }
    for status, description, headers in (
        (401, "Missing, unknown or wrong kind of API token (ErrorCode 10)", {}),
        (403, "The token may not do this", {}),
        (404, "Unknown route or entity", {}),
        (405, "Method not allowed on this path", {"Allow": _header("The methods this path answers")}),
        (422, "Request understood but refused; ErrorCode says why", {}),
        (429, "Rate limit exceeded (ErrorCode 429)", {"Retry-After": _header("Seconds until the next request")}),
        (500, "Unexpected error (ErrorCode 101)", {}),
    )
}


def create_app(
    settings: Settings, *, runtime: Runtime | None = None, access_log_stream: TextIO | None = None
) -> ASGIApp:
    """The whole HTTP service. ``access_log_stream`` defaults to stderr."""
    runtime = runtime or Runtime.start(settings)
    auth = Authenticator(runtime)
    limiter_backend: MemoryBackend | RedisBackend = (
        RedisBackend(settings.redis_url) if settings.redis_url else MemoryBackend()
    )
    limiter = RateLimiter(
        limiter_backend,
        per_token=parse_rate(settings.rate_limit_per_token),
        per_ip=parse_rate(settings.rate_limit_per_ip),
    )
    metrics = Metrics(CollectorRegistry())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        listener = asyncio.create_task(_listen_for_invalidations(runtime)) if settings.redis_url else None
        worker = TaskQueue(runtime).consumer(embedded=True) if settings.embedded_worker else None
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                await run_in_threadpool(worker.stop, graceful=True)
            if listener is not None:
                listener.cancel()
            if isinstance(limiter_backend, RedisBackend):
                await limiter_backend.close()
            runtime.db.dispose()

    app = FastAPI(
        title="postwarden",
        version=__version__,
        description="Account and access server for transactional email, speaking the Postmark API.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.runtime = runtime

    def openapi_with_token_headers() -> dict[str, Any]:
        # The routes authenticate by reading the token headers themselves (no FastAPI
        # security dependency on the hot path), so their schemes are declared here.
        document = FastAPI.openapi(app)
        document.setdefault("components", {}).setdefault("securitySchemes", SECURITY_SCHEMES)
        return document

    app.openapi = openapi_with_token_headers  # type: ignore[method-assign]

    @app.exception_handler(PostwardenError)
    async def domain_error(_request: Request, exc: PostwardenError) -> Response:
        return postmark_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            allowed = sorted(
                {
                    method
                    for route in postmark_routes
                    if route.path_regex.match(request.url.path)
                    for method in route.methods or ()
                }
            )
            return postmark_error(
                405,
                9405,
                f"The method {request.method} is not allowed on {request.url.path}; use {', '.join(allowed)}.",
                {"Allow": ", ".join(allowed)},
            )
        if exc.status_code == 404:
            return postmark_error(404, 9404, f"There is no API endpoint at {request.url.path}.")
        return postmark_error(exc.status_code, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        problem = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(part) for part in problem["loc"])
        return postmark_error(422, 402, f"Invalid value for '{field}': {problem['msg']}.")

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        request_id = request.scope.get("state", {}).get("request_id", "")
        logger.exception("unexpected error", extra={"request_id": request_id})
        return postmark_error(500, 101, f"An unexpected error occurred. Error ID: {request_id}.")

    @app.get(
        "/healthz",
        tags=["Operations"],
        summary="The process is up",
        openapi_extra=open_to_anyone("load balancers probe it"),
    )
    async def healthz() -> dict[str, str]:
        return {"Status": "ok"}

    @app.get(
        "/readyz",
        tags=["Operations"],
        summary="The database answers",
        responses={503: {"model": ErrorResponse}},
        openapi_extra=open_to_anyone("load balancers probe it"),
    )
    async def readyz() -> Response:
        def check() -> None:
            with runtime.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        try:
            await run_in_threadpool(check)
        except Exception:
            logger.exception("readiness check failed")
            return postmark_error(503, 100, "The database is not reachable.")
        return JSONBytesResponse({"Status": "ready"})

    @app.get(
        "/metrics",
        tags=["Operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
        openapi_extra=open_to_anyone("Prometheus scrapes it; it carries counts, never data"),
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    postmark_routers = [
        servers_router(runtime, auth),
        domains_router(runtime, auth),
        senders_router(runtime, auth),
        message_streams_router(runtime, auth),
        suppressions_router(runtime, auth),
        templates_router(runtime, auth),
        webhooks_router(runtime, auth),
        webhook_deliveries_router(runtime, auth),
        people_router(runtime, auth),
        account_router(runtime, auth),
        me_router(runtime, auth),
        scim_router(runtime, auth),
        review_router(runtime, auth),
        audit_router(runtime, auth),
    ]
    for router in postmark_routers:
        app.include_router(router)
    postmark_routes = [route for router in postmark_routers for route in router.routes if isinstance(route, APIRoute)]

    def rate_limited(verdict: Verdict) -> Response:
        return postmark_error(
            429,
            429,
            f"Rate limit exceeded: at most {verdict.limit} requests per window. "
            f"Retry in {verdict.reset_seconds} seconds.",
            {"Retry-After": str(verdict.reset_seconds)},
        )

    hot_reads = HotReads(app, runtime, auth, {route.path: route for route in postmark_routes})
    lenient = LenientPostmarkRequests(hot_reads, [route.path for route in postmark_routes])
    # SCIM has its own conventions and application: its requests skip the Postmark layers.
    scim = Mounted(lenient, "/scim/v2", scim_app(runtime, auth))
    console = Mounted(scim, "/console", console_app(runtime, auth))
    return RequestMiddleware(
        console,
        limiter=limiter,
        metrics=metrics,
        rate_limited=rate_limited,
        access_log=AccessLog(access_log_stream) if settings.access_log else None,
    )


async def _listen_for_invalidations(runtime: Runtime) -> None:
    """Apply cache invalidations published by the other processes."""
    from redis.asyncio import Redis

    redis = Redis.from_url(runtime.settings.redis_url)
    while True:
        try:
            async with redis.pubsub() as pubsub:
                await pubsub.subscribe(INVALIDATION_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        runtime.cache.apply(message["data"].decode())
        except asyncio.CancelledError:
            await redis.aclose()
            raise
        except Exception:
            logger.exception("cache invalidation listener failed; reconnecting")
            await asyncio.sleep(1)
