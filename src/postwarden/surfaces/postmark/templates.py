"""Templates: one server's, with its server token or an account-level credential and
``server_id``; ``PUT /templates/push`` between two servers with an account-level credential."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from postwarden.errors import InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission
from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator
from postwarden.surfaces.http import JSONBytesResponse
from postwarden.surfaces.postmark.schemas import ActionResponse
from postwarden.surfaces.postmark.template_schemas import (
    CreateTemplateRequest,
    EditTemplateRequest,
    PushTemplatesRequest,
    PushTemplatesResponse,
    TemplateListResponse,
    TemplateResponse,
    TemplateSavedResponse,
    ValidateTemplateRequest,
    ValidationResponse,
    render_pushed,
    render_saved,
    render_template,
    render_template_item,
    render_validation,
)
from postwarden.surfaces.routing import (
    MAX_ID,
    entity_id,
    guarded_by,
    json_body,
    paging_parameters,
    parse_page,
    parse_text,
    read_body,
    require_change,
    run_in_session,
)
from postwarden.surfaces.wire import ACCOUNT_OR_PERSON, on_server
from postwarden.templates.service import (
    ALIAS_MAX_LENGTH,
    ALIAS_SYNTAX,
    ID_NOT_FOUND,
    TYPE_FILTERS,
    TemplateRef,
    TemplateService,
)

Result = TypeVar("Result")
# Parsed by _template_ref (an id, or else an alias); ID_OR_ALIAS documents it.
IdOrAlias = Annotated[str, Path(include_in_schema=False)]
ID_OR_ALIAS: dict[str, object] = {
    "name": "id_or_alias",
    "in": "path",
    "required": True,
    "description": "The template's ID or its alias (ErrorCode 1101 when it names no template of this server)",
    "schema": {"type": "string", "pattern": f"^([0-9]{{1,10}}|{ALIAS_SYNTAX})$", "maxLength": ALIAS_MAX_LENGTH},
}
LIST_PARAMETERS: list[dict[str, object]] = [
    *paging_parameters(),
    {
        "name": "TemplateType",
        "in": "query",
        "required": False,
        "description": "Any case; All when not given",
        "schema": {"enum": [*TYPE_FILTERS, *(name.lower() for name in TYPE_FILTERS)]},
    },
    {
        "name": "LayoutTemplate",
        "in": "query",
        "required": False,
        "description": "Only the templates inside the layout with this alias (any case)",
        "schema": {"type": "string"},
    },
]
ONE_SERVER: dict[str, object] = on_server()
ONE_TEMPLATE: dict[str, object] = on_server(ID_OR_ALIAS)


def templates_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Templates"])

    async def in_transaction(actor: Actor, work: Callable[[TemplateService], Result], *, write: bool) -> Result:
        return await run_in_session(runtime, lambda session: work(TemplateService(session, actor)), write=write)

    @router.get(
        "/templates",
        response_model=TemplateListResponse,
        summary="List the server's active templates",
        openapi_extra={
            **on_server(*LIST_PARAMETERS),
            **guarded_by(Permission.TEMPLATES_READ),
        },
    )
    async def list_templates(
        request: Request,
        # Parsed here so that bad paging answers with ErrorCode 1100; LIST_PARAMETERS documents them.
        count: Annotated[str | None, Query(include_in_schema=False)] = None,
        offset: Annotated[str | None, Query(include_in_schema=False)] = None,
        template_type: Annotated[str | None, Query(alias="templatetype", include_in_schema=False)] = None,
        layout_template: Annotated[str | None, Query(alias="layouttemplate", include_in_schema=False)] = None,
    ) -> Response:
        actor, server_id = await auth.server_scope(request)
        page_size, start = parse_page(count, offset, Reason.TEMPLATE_QUERY_INVALID)
        layout = parse_text(layout_template, "LayoutTemplate", Reason.TEMPLATE_QUERY_INVALID)
        wanted = parse_text(template_type, "TemplateType", Reason.TEMPLATE_QUERY_INVALID)

        def work(service: TemplateService) -> dict[str, object]:
            page = service.list_templates(
                server_id, count=page_size, offset=start, template_type=wanted, layout_template=layout
            )
            return {"TotalCount": page.total, "Templates": [render_template_item(t) for t in page.templates]}

        return JSONBytesResponse(await in_transaction(actor, work, write=False))

    @router.post(
        "/templates",
        response_model=TemplateSavedResponse,
        summary="Create a template or a layout",
        openapi_extra={
            **json_body(CreateTemplateRequest, required=True),
            **ONE_SERVER,
            **guarded_by(Permission.TEMPLATES_MANAGE),
        },
    )
    async def create_template(request: Request) -> Response:
        actor, server_id = await auth.server_scope(request)
        fields = (await read_body(request, CreateTemplateRequest)).to_fields()
        saved = await in_transaction(actor, lambda s: render_saved(s.create_template(server_id, fields)), write=True)
        return JSONBytesResponse(saved)

    @router.put(
        "/templates/push",
        response_model=PushTemplatesResponse,
        summary="Push the aliased templates of one server to another (or preview it)",
        openapi_extra={
            **json_body(PushTemplatesRequest, required=True),
            **ACCOUNT_OR_PERSON,
            **guarded_by(Permission.TEMPLATES_MANAGE, Permission.TEMPLATES_READ),
        },
    )
    async def push_templates(request: Request) -> Response:
        actor = await auth.account_actor(request)
        body = await read_body(request, PushTemplatesRequest)
        if body.SourceServerID is None or body.DestinationServerID is None or body.PerformChanges is None:
            raise InvalidRequest(
                Reason.TEMPLATE_FIELD_MISSING, "SourceServerID, DestinationServerID and PerformChanges are required."
            )
        source, destination = _push_server(body.SourceServerID), _push_server(body.DestinationServerID)
        perform = body.PerformChanges
        pushed = await in_transaction(
            actor, lambda s: render_pushed(s.push(source, destination, perform=perform)), write=perform
        )
        return JSONBytesResponse(pushed)

    @router.post(
        "/templates/validate",
        response_model=ValidationResponse,
        summary="Check template content and render it with a test model",
        openapi_extra={
            **json_body(ValidateTemplateRequest, required=True),
            **ONE_SERVER,
            **guarded_by(Permission.TEMPLATES_READ),
        },
    )
    async def validate_template(request: Request) -> Response:
        actor, server_id = await auth.server_scope(request)
        draft = (await read_body(request, ValidateTemplateRequest)).to_draft()
        checked = await in_transaction(actor, lambda s: render_validation(s.validate(server_id, draft)), write=False)
        return JSONBytesResponse(checked)

    @router.get(
        "/templates/{id_or_alias}",
        response_model=TemplateResponse,
        summary="Get a template (by ID also once deleted, with Active false)",
        openapi_extra={**ONE_TEMPLATE, **guarded_by(Permission.TEMPLATES_READ)},
    )
    async def get_template(request: Request, id_or_alias: IdOrAlias) -> Response:
        actor, server_id = await auth.server_scope(request)
        ref = _template_ref(id_or_alias)
        found = await in_transaction(actor, lambda s: render_template(s.get_template(server_id, ref)), write=False)
        return JSONBytesResponse(found)

    @router.put(
        "/templates/{id_or_alias}",
        response_model=TemplateSavedResponse,
        summary="Edit a template",
        openapi_extra={
            **json_body(EditTemplateRequest, required=False),
            **ONE_TEMPLATE,
            **guarded_by(Permission.TEMPLATES_MANAGE),
        },
    )
    async def edit_template(request: Request, id_or_alias: IdOrAlias) -> Response:
        actor, server_id = await auth.server_scope(request)
        ref = _template_ref(id_or_alias)
        body = require_change(
            await read_body(request, EditTemplateRequest),
            Reason.TEMPLATE_NO_DATA,
            "No template data received: give at least one field.",
        )
        fields = body.to_fields()
        saved = await in_transaction(
            actor, lambda s: render_saved(s.update_template(server_id, ref, fields)), write=True
        )
        return JSONBytesResponse(saved)

    @router.delete(
        "/templates/{id_or_alias}",
        response_model=ActionResponse,
        summary="Delete a template (it stays readable by ID)",
        openapi_extra={**ONE_TEMPLATE, **guarded_by(Permission.TEMPLATES_MANAGE)},
    )
    async def delete_template(request: Request, id_or_alias: IdOrAlias) -> Response:
        actor, server_id = await auth.server_scope(request)
        ref = _template_ref(id_or_alias)
        deleted = await in_transaction(actor, lambda s: s.delete_template(server_id, ref).id, write=True)
        return JSONBytesResponse({"ErrorCode": 0, "Message": f"Template {deleted} removed."})

    return router


def _template_ref(raw: str) -> TemplateRef:
    """Digits are an id (aliases start with a letter); anything else is an alias."""
    if raw.isascii() and raw.isdigit():
        return entity_id(raw, NotFound(Reason.TEMPLATE_NOT_FOUND, ID_NOT_FOUND))
    return raw


def _push_server(number: int) -> int:
    if not 1 <= number <= MAX_ID:
        raise NotFound(Reason.TEMPLATE_PUSH_SERVER_NOT_FOUND, f"Server {number} is not a server of this account.")
    return number
