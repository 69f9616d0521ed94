"""``/scim/v2``: SCIM 2.0 (RFC 7643/7644) for one account, authenticated by its SCIM tokens.

Its own small ASGI application, mounted by ``create_app``, because SCIM speaks its own
conventions: ``application/scim+json``, SCIM error bodies with a string ``status`` and a
``scimType``, case-sensitive paths. Each route parses, makes one service call, renders.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    ListResponse,
    PatchOp,
    ResourceType,
    ResponseParameters,
    Schema,
    SearchRequest,
)
from scim2_models import Group as GroupResource
from scim2_models.exceptions import SCIMException
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.errors import (
    Conflict,
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    PostwardenError,
    Reason,
)
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.scim.groups import ScimGroupService
from postwarden.scim.listing import Page, Query, search_across
from postwarden.scim.schemas import (
    GROUP_SCHEMA_ID,
    MAX_RESULTS,
    RESOURCE_TYPES,
    SCHEMAS,
    TOLERANT,
    UserResource,
    located,
    service_provider_config,
)
from postwarden.scim.users import ScimUserService
from postwarden.scim.wire import Wire, scim_reason
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import dump_json
from postwarden.surfaces.routing import run_in_session

logger = logging.getLogger("postwarden")
MEDIA_TYPE: Final = "application/scim+json"
ANY_RESOURCE: Final[Any] = UserResource | GroupResource
LIST_RESPONSE_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
Result = TypeVar("Result")

#: scimType and HTTP status of each domain reason that SCIM names (RFC 7644 §3.12).
SCIM_TYPES: Final[Mapping[Reason, tuple[int, str | None]]] = {
    Reason.SCIM_FILTER_INVALID: (400, "invalidFilter"),
    Reason.SCIM_SYNTAX_INVALID: (400, "invalidSyntax"),
    Reason.SCIM_PATH_INVALID: (400, "invalidPath"),
    Reason.SCIM_NO_TARGET: (400, "noTarget"),
    Reason.SCIM_VALUE_INVALID: (400, "invalidValue"),
    Reason.SCIM_MUTABILITY: (400, "mutability"),
    Reason.SCIM_TOO_MANY: (400, "tooMany"),
    Reason.SCIM_UNIQUENESS: (409, "uniqueness"),
    Reason.SCIM_VERSION_MISMATCH: (412, None),
}


def base_url(request: Request) -> str:
    """``https://host/scim/v2``, as the caller reached it: where every ``meta.location`` and
    ``$ref`` points. (``request.base_url`` of a mounted application leaves out its mount.)"""
    return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}".rstrip("/")


def scim_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dump_json(body), status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


def error_response(status: int, detail: str, scim_type: str | None = None) -> Response:
    body = Error(status=status, scim_type=scim_type, detail=detail).model_dump()
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return scim_response(body, status, headers)


def domain_error(exc: PostwardenError) -> Response:
    if exc.reason in SCIM_TYPES:
        status, scim_type = SCIM_TYPES[exc.reason]
        return error_response(status, exc.message, scim_type)
    if isinstance(exc, NotAuthenticated):
        return error_response(401, exc.message)
    if isinstance(exc, PermissionDenied):
        return error_response(403, exc.message)
    if isinstance(exc, NotFound):
        return error_response(404, exc.message)
    if isinstance(exc, Conflict):
        return error_response(409, exc.message, "uniqueness")
    return error_response(400, exc.message, "invalidValue")


def _query_parameters(request: Request) -> dict[str, str]:
    """SCIM's query names, in any case (``startindex`` is ``startIndex``)."""
    known = {name.lower(): name for name in ("filter", "sortBy", "sortOrder", "startIndex", "count")}
    known |= {"attributes": "attributes", "excludedattributes": "excludedAttributes"}
    return {known[key.lower()]: value for key, value in request.query_params.items() if key.lower() in known}


def _whole(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise InvalidRequest(Reason.SCIM_VALUE_INVALID, f"{name} must be a whole number.") from exc


def _query(parameters: Mapping[str, Any]) -> Query:
    order = str(parameters.get("sortOrder") or "ascending").lower()
    if order not in ("ascending", "descending"):
        raise InvalidRequest(Reason.SCIM_VALUE_INVALID, "sortOrder is ascending or descending.")
    return Query(
        filter=parameters.get("filter") or None,
        sort_by=parameters.get("sortBy") or None,
        descending=order == "descending",
        start_index=_whole(_text(parameters.get("startIndex")), "startIndex", 1),
        count=_whole(_text(parameters.get("count")), "count", MAX_RESULTS),
    )


def _search_query(search: Any) -> Query:
    """The query of a ``SearchRequest`` body (``POST .search``)."""
    return Query(
        filter=str(search.filter) if search.filter else None,
        sort_by=str(search.sort_by) if search.sort_by else None,
        descending=str(search.sort_order or "").lower().endswith("descending"),
        start_index=search.start_index or 1,
        count=search.count if search.count is not None else MAX_RESULTS,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def _json(request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in ("application/json", MEDIA_TYPE) and not content_type.endswith("+json"):
        raise InvalidRequest(Reason.SCIM_SYNTAX_INVALID, f"Send JSON ({MEDIA_TYPE}), not {content_type}.")
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidRequest(Reason.SCIM_SYNTAX_INVALID, "The body is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest(Reason.SCIM_SYNTAX_INVALID, "The body must be a JSON object.")
    return data


def _validated(model: Any, data: Any, context: Context) -> Any:
    try:
        return model.model_validate(data, scim_ctx=context, scim_policy=TOLERANT)
    except ValidationError as exc:
        error = Error.from_validation_errors(exc)[0]
        raise InvalidRequest(scim_reason(error.scim_type), error.detail or str(exc)) from exc


class Resources:
    """One resource type's routes (users or groups) over its service, whose methods are the
    same for both: search, read, create, replace, patch, delete."""

    def __init__(self, runtime: Runtime, auth: Authenticator, model: Any, service: Any) -> None:
        self.runtime = runtime
        self.auth = auth
        self.model = model
        #: ``ScimUserService`` or ``ScimGroupService``
        self.service_class = service
        # The scim2-models messages, each parametrised with this resource type.
        self.response_parameters: Any = ResponseParameters[model]
        self.search_request: Any = SearchRequest[model]
        self.patch_op: Any = PatchOp[model]

    def service(self, session: Session, request: Request, actor: Actor) -> Any:
        return self.service_class(session, actor, self.runtime, base_url(request))

    async def run(self, request: Request, work: Callable[[Any], Result], *, write: bool) -> Result:
        actor = await self.auth.scim_actor(request)
        return await run_in_session(
            self.runtime, lambda session: work(self.service(session, request, actor)), write=write
        )

    def parameters(self, attributes: Any, excluded: Any) -> ResponseParameters[Any] | None:
        """``attributes`` and ``excludedAttributes``; None when neither was given."""
        return _response_parameters(self.response_parameters, attributes, excluded)

    def reading(self, parameters: ResponseParameters[Any] | None) -> dict[str, bool]:
        """Entra reads groups with ``excludedAttributes=members``: then members are not loaded."""
        if self.service_class is not ScimGroupService or parameters is None:
            return {}
        excluded = [str(path).lower() for path in parameters.excluded_attributes or []]
        return {"with_members": not any(path.endswith("members") for path in excluded)}

    async def list(self, request: Request) -> Response:
        given = _query_parameters(request)
        query = _query(given)
        parameters = self.parameters(given.get("attributes"), given.get("excludedAttributes"))
        return await self._search(request, query, parameters)

    async def search(self, request: Request) -> Response:
        search = _validated(self.search_request, await _json(request), Context.SEARCH_REQUEST)
        parameters = self.parameters(search.attributes, search.excluded_attributes)
        return await self._search(request, _search_query(search), parameters)

    async def _search(self, request: Request, query: Query, parameters: ResponseParameters[Any] | None) -> Response:
        options = self.reading(parameters)
        page: Page = await self.run(request, lambda service: service.search(query, **options), write=False)
        return scim_response(_listing(page, parameters))

    async def create(self, request: Request) -> Response:
        resource = _validated(self.model, await _json(request), Context.RESOURCE_CREATION_REQUEST)
        created = await self.run(request, lambda service: service.create(resource), write=True)
        return self._one(created, Context.RESOURCE_CREATION_RESPONSE, status=201, location=True)

    async def get(self, request: Request) -> Response:
        resource_id = request.path_params["resource_id"]
        given = _query_parameters(request)
        parameters = self.parameters(given.get("attributes"), given.get("excludedAttributes"))
        options = self.reading(parameters)
        resource = await self.run(request, lambda service: service.read(resource_id, **options), write=False)
        if_none_match = request.headers.get("if-none-match")
        version = resource["meta"]["version"]
        if if_none_match and version in {tag.strip() for tag in if_none_match.split(",")}:
            return Response(status_code=304, headers={"ETag": version})
        return self._one(resource, Context.RESOURCE_QUERY_RESPONSE, parameters=parameters)

    async def replace(self, request: Request) -> Response:
        resource_id = request.path_params["resource_id"]
        resource = _validated(self.model, await _json(request), Context.RESOURCE_REPLACEMENT_REQUEST)
        if_match = request.headers.get("if-match")
        replaced = await self.run(
            request, lambda service: service.replace(resource_id, resource, if_match=if_match), write=True
        )
        return self._one(replaced, Context.RESOURCE_REPLACEMENT_RESPONSE)

    async def patch(self, request: Request) -> Response:
        resource_id = request.path_params["resource_id"]
        patch = _validated(self.patch_op, await _json(request), Context.RESOURCE_PATCH_REQUEST)
        if_match = request.headers.get("if-match")
        patched = await self.run(
            request, lambda service: service.patch(resource_id, patch, if_match=if_match), write=True
        )
        return self._one(patched, Context.RESOURCE_PATCH_RESPONSE)

    async def delete(self, request: Request) -> Response:
        resource_id = request.path_params["resource_id"]
        if_match = request.headers.get("if-match")
        await self.run(request, lambda service: service.delete(resource_id, if_match=if_match), write=True)
        return Response(status_code=204)

    def _one(
        self,
        resource: Wire,
        context: Context,
        *,
        status: int = 200,
        location: bool = False,
        parameters: ResponseParameters[Any] | None = None,
    ) -> Response:
        where = resource["meta"]["location"]
        headers = {"ETag": resource["meta"]["version"], "Content-Location": where}
        if location:
            headers["Location"] = where
        return scim_response(_projected(resource, parameters, context), status, headers)


def _response_parameters(model: Any, attributes: Any, excluded: Any) -> ResponseParameters[Any] | None:
    if attributes is None and excluded is None:
        return None
    values = {"attributes": attributes, "excludedAttributes": excluded}
    parameters: ResponseParameters[Any] = _validated(
        model, {k: v for k, v in values.items() if v is not None}, Context.DEFAULT
    )
    return parameters


def _projected(resource: Wire, parameters: ResponseParameters[Any] | None, context: Context) -> Wire:
    """The resource as sent, or only the attributes asked for (scim2-models projects them)."""
    if parameters is None:
        return resource
    model = GroupResource if resource["schemas"][0] == GROUP_SCHEMA_ID else UserResource
    parsed = model.model_validate(resource, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    projected: Wire = parsed.model_dump(scim_ctx=context, response_parameters=parameters)
    return projected


def _listing(page: Page, parameters: ResponseParameters[Any] | None) -> Wire:
    return {
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": page.total,
        "startIndex": page.start_index,
        "itemsPerPage": len(page.resources),
        "Resources": [_projected(resource, parameters, Context.SEARCH_RESPONSE) for resource in page.resources],
    }


def scim_app(runtime: Runtime, auth: Authenticator) -> Starlette:
    users = Resources(runtime, auth, UserResource, ScimUserService)
    groups = Resources(runtime, auth, GroupResource, ScimGroupService)

    def discovery(render: Callable[[Request], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            await auth.scim_actor(request)
            return scim_response(render(request))

        return endpoint

    def listing(items: list[Any], model: Any) -> Any:
        return ListResponse[model](
            total_results=len(items), start_index=1, items_per_page=len(items), resources=items
        ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)

    def schema(request: Request, schema_id: str) -> Any:
        return located(SCHEMAS[schema_id], base_url(request), f"Schemas/{schema_id}")

    def one_schema(request: Request) -> Any:
        schema_id = request.path_params["schema_id"]
        if schema_id not in SCHEMAS:
            raise NotFound(Reason.SCIM_RESOURCE_NOT_FOUND, f"Schema {schema_id} not found.")
        return schema(request, schema_id).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)

    def resource_types(request: Request) -> list[Any]:
        return [located(rt, base_url(request), f"ResourceTypes/{rt.id}") for rt in RESOURCE_TYPES.values()]

    def one_resource_type(request: Request) -> Any:
        wanted = request.path_params["type_id"]
        if wanted not in RESOURCE_TYPES:
            raise NotFound(Reason.SCIM_RESOURCE_NOT_FOUND, f"Resource type {wanted} not found.")
        found = located(RESOURCE_TYPES[wanted], base_url(request), f"ResourceTypes/{wanted}")
        return found.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)

    def config(request: Request) -> Any:
        spc = located(service_provider_config(), base_url(request), "ServiceProviderConfig")
        return spc.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)

    async def search_all(request: Request) -> Response:
        """``POST /.search``: users, then groups, as one list."""
        search = _validated(SearchRequest[ANY_RESOURCE], await _json(request), Context.SEARCH_REQUEST)
        query = _search_query(search)
        actor = await auth.scim_actor(request)

        def work(session: Session) -> Page:
            return search_across([kind.service(session, request, actor) for kind in (users, groups)], query)

        page = await run_in_session(runtime, work, write=False)
        parameters = _response_parameters(
            ResponseParameters[ANY_RESOURCE], search.attributes, search.excluded_attributes
        )
        return scim_response(_listing(page, parameters))

    routes = [
        Route("/ServiceProviderConfig", discovery(config), methods=["GET"]),
        Route("/Schemas", discovery(lambda r: listing([schema(r, s) for s in SCHEMAS], Schema)), methods=["GET"]),
        Route("/Schemas/{schema_id:path}", discovery(one_schema), methods=["GET"]),
        Route("/ResourceTypes", discovery(lambda r: listing(resource_types(r), ResourceType)), methods=["GET"]),
        Route("/ResourceTypes/{type_id}", discovery(one_resource_type), methods=["GET"]),
        Route("/.search", search_all, methods=["POST"]),
    ]
    for path, resources in (("/Users", users), ("/Groups", groups)):
        routes += [
            Route(path, resources.list, methods=["GET"]),
            Route(path, resources.create, methods=["POST"]),
            Route(f"{path}/.search", resources.search, methods=["POST"]),
            Route(f"{path}/{{resource_id}}", resources.get, methods=["GET"]),
            Route(f"{path}/{{resource_id}}", resources.replace, methods=["PUT"]),
            Route(f"{path}/{{resource_id}}", resources.patch, methods=["PATCH"]),
            Route(f"{path}/{{resource_id}}", resources.delete, methods=["DELETE"]),
        ]

    async def on_domain_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PostwardenError)
        return domain_error(exc)

    async def on_scim_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SCIMException)
        return error_response(exc.status, str(exc) or type(exc).__name__, exc.scim_type or None)

    async def on_unexpected_error(request: Request, exc: Exception) -> Response:
        request_id = request.scope.get("state", {}).get("request_id", "")
        logger.exception("unexpected error", extra={"request_id": request_id})
        return error_response(500, f"An unexpected error occurred. Error ID: {request_id}.")

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 405:
            path = request.scope["path"].removeprefix(request.scope.get("root_path", ""))
            allowed = sorted({m for r in routes if r.path_regex.match(path) for m in r.methods or ()})
            response = error_response(405, f"{request.method} is not allowed on {request.url.path}.")
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(exc.status_code, f"There is nothing at {request.url.path}.")

    return Starlette(
        routes=routes,
        exception_handlers={
            PostwardenError: on_domain_error,
            SCIMException: on_scim_error,
            HTTPException: on_http_error,
            Exception: on_unexpected_error,
        },
    )
