"""Templates and layouts: the only code that creates, edits, deletes or pushes them, and
that checks and test-renders template content.

A standard template may be rendered inside a layout, which holds ``{{{ @content }}}``
exactly once in each body it has. A server keeps at most 100 active templates; deleting
one only deactivates it, so that it stays readable by id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import utcnow
from postwarden.errors import Conflict, InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.paging import check_page
from postwarden.policy import Permission
from postwarden.servers.models import Server
from postwarden.servers.service import reach_server
from postwarden.templates.models import Template
from postwarden.templates.rendering import (
    Node,
    TemplateSyntaxError,
    content_placeholders,
    parse,
    render,
    suggest_model,
)

STANDARD: Final = "Standard"
LAYOUT: Final = "Layout"
TEMPLATE_TYPES: Final = (STANDARD, LAYOUT)
TYPE_FILTERS: Final = ("All", *TEMPLATE_TYPES)
TEMPLATE_LIMIT: Final = 100
NAME_MAX_LENGTH: Final = 255
ALIAS_MAX_LENGTH: Final = 255
SUBJECT_MAX_LENGTH: Final = 2000
#: Postmark's limit for each body of a message.
BODY_MAX_LENGTH: Final = 5 * 1024 * 1024
ALIAS_SYNTAX: Final = r"[A-Za-z][A-Za-z0-9._-]*"
PLACEHOLDER: Final = "{{{ @content }}}"
ID_NOT_FOUND: Final = "The 'TemplateId' associated with this request is not valid or was not found."
ALIAS_NOT_FOUND: Final = "The Template's 'Alias' associated with this request is not valid or was not found."
LAYOUT_NOT_FOUND: Final = "The 'LayoutTemplate' associated with this request is not valid or was not found."
_ALIAS_RE: Final = re.compile(ALIAS_SYNTAX)

#: A template by its id (int) or its alias (str).
TemplateRef = int | str


@dataclass(frozen=True)
class TemplateFields:
    """What a caller gives on create and edit; None means "not given"."""

    name: str | None = None
    alias: str | None = None
    subject: str | None = None
    html_body: str | None = None
    text_body: str | None = None
    template_type: str | None = None
    #: A layout's alias; ``""`` takes the layout away.
    layout_template: str | None = None


@dataclass(frozen=True)
class TemplatePage:
    total: int
    templates: list[Template]


@dataclass(frozen=True)
class Draft:
    """Content to validate, and how to render it."""

    subject: str | None = None
    html_body: str | None = None
    text_body: str | None = None
    test_model: Mapping[str, Any] | None = None
    template_type: str | None = None
    layout_template: str | None = None


@dataclass(frozen=True)
class Problem:
    message: str
    #: 1-based; None when the problem is what the content lacks rather than where it is.
    line: int | None
    character: int | None


@dataclass(frozen=True)
class PartCheck:
    problems: list[Problem]
    #: None when the content does not parse.
    rendered: str | None


@dataclass(frozen=True)
class Validation:
    """One check per part given (None for a part not given), and the model the content suggests."""

    subject: PartCheck | None
    html_body: PartCheck | None
    text_body: PartCheck | None
    suggested_model: dict[str, Any]

    @property
    def all_valid(self) -> bool:
        return all(not part.problems for part in (self.subject, self.html_body, self.text_body) if part)


@dataclass(frozen=True)
class PushedTemplate:
    action: str  # "Create" or "Edit"
    #: The destination's template; None for a template a dry run would create.
    template_id: int | None
    alias: str
    name: str
    template_type: str


class TemplateService:
    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    # reading

    def list_templates(
        self,
        server_id: int,
        *,
        count: int,
        offset: int,
        template_type: str | None = None,
        layout_template: str | None = None,
    ) -> TemplatePage:
        """The active templates, oldest first; ``layout_template`` keeps those inside that layout."""
        server = reach_server(self.session, self.actor, server_id, Permission.TEMPLATES_READ)
        check_page(count, offset, Reason.TEMPLATE_QUERY_INVALID)
        wanted = _choice(template_type, TYPE_FILTERS, Reason.TEMPLATE_QUERY_INVALID, "TemplateType")
        query = select(Template).where(Template.server_id == server.id, Template.active)
        if wanted != "All":
            query = query.where(Template.template_type == wanted)
        if layout_template:
            layout = aliased(Template)
            query = query.join(layout, Template.layout_id == layout.id).where(
                layout.alias_key == layout_template.lower()
            )
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        found = self.session.scalars(query.order_by(Template.id).limit(count).offset(offset))
        return TemplatePage(total, list(found))

    def get_template(self, server_id: int, ref: TemplateRef) -> Template:
        """By id also once deleted (``active`` false); by alias only while active."""
        server = reach_server(self.session, self.actor, server_id, Permission.TEMPLATES_READ)
        return self._find(server.id, ref, deleted_too=True)

    def validate(self, server_id: int, draft: Draft) -> Validation:
        """Parse and test-render content, inside a layout when one is named."""
        server = reach_server(self.session, self.actor, server_id, Permission.TEMPLATES_READ)
        kind = _choice(draft.template_type, TEMPLATE_TYPES, Reason.TEMPLATE_FIELD_INVALID, "TemplateType")
        if draft.subject is None and draft.html_body is None and draft.text_body is None:
            raise InvalidRequest(
                Reason.TEMPLATE_FIELD_MISSING, "Give at least one of Subject, HtmlBody or TextBody to validate."
            )
        layout = None
        if draft.layout_template:
            if kind == LAYOUT:
                raise InvalidRequest(Reason.TEMPLATE_FIELDS_CONFLICT, "A layout cannot have a LayoutTemplate.")
            layout = self._layout(server.id, draft.layout_template)
        model = draft.test_model or {}
        used: list[Sequence[Node]] = []

        def check(source: str | None, *, html: bool, frame: str | None, body: bool) -> PartCheck | None:
            if source is None:
                return None
            try:
                nodes = parse(source)
            except TemplateSyntaxError as error:
                return PartCheck([Problem(error.message, error.line, error.character)], None)
            used.append(nodes)
            problems = _placeholder_problems(nodes) if kind == LAYOUT and body else []
            rendered = render(nodes, model, html=html)
            if frame is not None:
                frame_nodes = parse(frame)  # stored layouts always parse
                used.append(frame_nodes)
                rendered = render(frame_nodes, model, html=html, content=rendered)
            return PartCheck(problems, rendered)

        return Validation(
            subject=check(draft.subject, html=False, frame=None, body=False),
            html_body=check(draft.html_body, html=True, frame=layout.html_body if layout else None, body=True),
            text_body=check(draft.text_body, html=False, frame=layout.text_body if layout else None, body=True),
            suggested_model=suggest_model(*used),
        )

    # changing

    def create_template(self, server_id: int, fields: TemplateFields) -> Template:
        server = reach_server(self.session, self.actor, server_id, Permission.TEMPLATES_MANAGE)
        self._lock(server)
        kind = _choice(fields.template_type, TEMPLATE_TYPES, Reason.TEMPLATE_FIELD_INVALID, "TemplateType")
        if kind == LAYOUT and (fields.subject is not None or fields.layout_template):
            raise InvalidRequest(
                Reason.TEMPLATE_FIELDS_CONFLICT, "A layout has no Subject and no LayoutTemplate of its own."
            )
        template = Template(server_id=server.id, template_type=kind, name=_name(fields.name))
        self._apply_content(template, fields, creating=True)
        if fields.alias is not None:
            self._set_alias(template, fields.alias)
        elif kind == LAYOUT:  # templates name their layout by alias, so a layout always has one
            self._set_alias(template, self._free_alias(server.id, template.name))
        active = self.session.scalar(select(func.count()).where(Template.server_id == server.id, Template.active))
        if (active or 0) >= TEMPLATE_LIMIT:
            raise Conflict(
                Reason.TEMPLATE_LIMIT_REACHED,
                f"This server already has {TEMPLATE_LIMIT} templates, the most it may have: delete one first.",
            )
        self.session.add(template)
        self._flush_alias(template)
        self._record(template, AuditAction.TEMPLATE_CREATED, audit.changed_fields({}, _audited(template)))
        return template

    def update_template(self, server_id: int, ref: TemplateRef, fields: TemplateFields) -> Template:
        """Absent (None) fields keep their value; ``""`` removes a body or the layout."""
        server = reach_server(self.session, self.actor, server_id, Permission.TEMPLATES_MANAGE)
        template = self._find(server.id, ref, deleted_too=False)
        if fields.template_type is not None and template.template_type != _choice(
            fields.template_type, TEMPLATE_TYPES, Reason.TEMPLATE_FIELD_INVALID, "TemplateType"
        ):
            raise InvalidRequest(
                Reason.TEMPLATE_FIELDS_CONFLICT, "The TemplateType of a template is fixed when it is created."
            )
        if template.template_type == LAYOUT and (fields.subject is not None or fields.layout_template):
            raise InvalidRequest(
                Reason.TEMPLATE_FIELDS_CONFLICT, "A layout has no Subject and no LayoutTemplate of its own."
            )
        before = _audited(template)
        if fields.name is not None:
            template.name = _name(fields.name)
        self._apply_content(template, fields, creating=False)
        if fields.alias is not None:
            self._set_alias(template, fields.alias)
        changes = audit.changed_fields(before, _audited(template))
        if changes:
            template.updated_at = utcnow()
            self._flush_alias(template)
            self._record(template, AuditAction.TEMPLATE_UPDATED, changes)
        return template

    def delete_template(self, server_id: int, ref: TemplateRef) -> Template:
        server = reach_server(self.session, self.actor, server_id, Permission.TEMPLATES_MANAGE)
        template = self._find(server.id, ref, deleted_too=False)
        users = self.session.scalar(select(func.count()).where(Template.layout_id == template.id, Template.active))
        if users:
            raise InvalidRequest(
                Reason.TEMPLATE_LAYOUT_IN_USE,
                f"The layout template cannot be deleted because it has dependent templates ({users}): "
                "give them another layout or delete them first.",
            )
        template.active, template.alias_key, template.updated_at = False, None, utcnow()
        self._record(template, AuditAction.TEMPLATE_DELETED, {"active": {"before": True, "after": False}})
        return template

    def push(self, source_id: int, destination_id: int, *, perform: bool) -> list[PushedTemplate]:
        """Copy the source's aliased templates to the destination, matched by alias; only the
        templates that would change are listed, and only ``perform`` changes them."""
        source = self._push_server(source_id, Permission.TEMPLATES_READ, "source")
        destination = self._push_server(destination_id, Permission.TEMPLATES_MANAGE, "destination")
        if perform:
            self._lock(destination)
        pushed = self._aliased(source.id)
        if not pushed:
            raise InvalidRequest(
                Reason.TEMPLATE_NOTHING_TO_PUSH, "The source server has no templates with an alias to push."
            )
        existing = {t.alias_key: t for t in self._aliased(destination.id)}
        plan: list[tuple[Template, Template | None]] = []
        for template in pushed:
            match = existing.get(template.alias_key)
            if match is not None and match.template_type != template.template_type:
                raise InvalidRequest(
                    Reason.TEMPLATE_TYPES_DIFFER,
                    f"The template types don't match on the source and destination servers: '{template.alias}' "
                    f"is a {template.template_type} template on one and a {match.template_type} on the other.",
                )
            if match is None or _pushed_fields(match) != _pushed_fields(template):
                plan.append((template, match))
        creates = sum(1 for _, match in plan if match is None)
        active = self.session.scalar(select(func.count()).where(Template.server_id == destination.id, Template.active))
        if creates and (active or 0) + creates > TEMPLATE_LIMIT:
            raise Conflict(
                Reason.TEMPLATE_LIMIT_REACHED,
                f"Pushing would create {creates} templates on the destination server, beyond its "
                f"{TEMPLATE_LIMIT}: delete some there first.",
            )
        return [self._push_one(destination, template, match, perform=perform) for template, match in plan]

    # helpers

    def _find(self, server_id: int, ref: TemplateRef, *, deleted_too: bool) -> Template:
        if isinstance(ref, int):
            found = self.session.get(Template, ref)
            if found is None or found.server_id != server_id or not (found.active or deleted_too):
                raise NotFound(Reason.TEMPLATE_NOT_FOUND, ID_NOT_FOUND)
            return found
        by_alias = self._by_alias(server_id, ref)
        if by_alias is None:
            raise NotFound(Reason.TEMPLATE_NOT_FOUND, ALIAS_NOT_FOUND)
        return by_alias

    def _by_alias(self, server_id: int, alias: str) -> Template | None:
        return self.session.scalar(
            select(Template).where(Template.server_id == server_id, Template.alias_key == alias.lower())
        )

    def _layout(self, server_id: int, alias: str) -> Template:
        layout = self._by_alias(server_id, alias)
        if layout is None or layout.template_type != LAYOUT:
            raise NotFound(Reason.TEMPLATE_NOT_FOUND, LAYOUT_NOT_FOUND)
        return layout

    def _aliased(self, server_id: int) -> list[Template]:
        """Active templates with an alias, layouts first: templates need their layout in place."""
        found = self.session.scalars(
            select(Template)
            .where(Template.server_id == server_id, Template.alias_key.is_not(None))
            .order_by(Template.template_type != LAYOUT, Template.id)
        )
        return list(found)

    def _apply_content(self, template: Template, fields: TemplateFields, *, creating: bool) -> None:
        if fields.subject is not None:
            template.subject = _subject(fields.subject)
        elif creating and template.template_type == STANDARD:
            raise InvalidRequest(Reason.TEMPLATE_FIELD_MISSING, "A Subject is required for a standard template.")
        if fields.html_body is not None:
            template.html_body = _body("HtmlBody", fields.html_body)
        if fields.text_body is not None:
            template.text_body = _body("TextBody", fields.text_body)
        if not template.html_body and not template.text_body:
            raise InvalidRequest(Reason.TEMPLATE_FIELD_MISSING, "An HtmlBody or a TextBody is required.")
        if fields.layout_template is not None:
            template.layout = (
                self._layout(template.server_id, fields.layout_template) if fields.layout_template else None
            )
        _check_content(template)

    def _set_alias(self, template: Template, alias: str) -> None:
        if len(alias) > ALIAS_MAX_LENGTH:
            raise InvalidRequest(
                Reason.TEMPLATE_FIELD_TOO_LONG, f"The Alias must be at most {ALIAS_MAX_LENGTH} characters."
            )
        if not _ALIAS_RE.fullmatch(alias):
            raise InvalidRequest(
                Reason.TEMPLATE_FIELD_INVALID,
                f"The Alias '{alias}' is invalid: it starts with a letter and holds only letters, digits, "
                "'.', '-' and '_'.",
            )
        taken = self._by_alias(template.server_id, alias)
        if taken is not None and taken is not template:
            raise InvalidRequest(_ALIAS_TAKEN, f"The Alias '{alias}' is already used by another template here.")
        template.alias, template.alias_key = alias, alias.lower()

    def _free_alias(self, server_id: int, name: str) -> str:
        """An alias made from a name, unused on the server: ``Main layout`` -> ``main-layout``."""
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[: ALIAS_MAX_LENGTH - 20]
        base = base if base[:1].isalpha() else f"layout-{base}".rstrip("-")
        candidate, n = base, 1
        while self._by_alias(server_id, candidate) is not None:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _flush_alias(self, template: Template) -> None:
        try:
            self.session.flush()  # a concurrent template with the same alias fails here
        except IntegrityError as exc:
            raise InvalidRequest(
                _ALIAS_TAKEN, f"The Alias '{template.alias}' is already used by another template here."
            ) from exc

    def _lock(self, server: Server) -> None:
        """Serialize the changes that count a server's templates (SQLite writers already are)."""
        self.session.execute(select(Server.id).where(Server.id == server.id).with_for_update())

    def _push_server(self, server_id: int, permission: Permission, role: str) -> Server:
        try:
            return reach_server(self.session, self.actor, server_id, permission)
        except NotFound as exc:
            raise NotFound(
                Reason.TEMPLATE_PUSH_SERVER_NOT_FOUND, f"The {role} server {server_id} is not a server of this account."
            ) from exc

    def _push_one(
        self, destination: Server, source: Template, match: Template | None, *, perform: bool
    ) -> PushedTemplate:
        action = "Create" if match is None else "Edit"
        assert source.alias is not None  # pushed templates are the aliased ones
        if perform:
            match = self._copy(destination, source, match)
        return PushedTemplate(action, match.id if match else None, source.alias, source.name, source.template_type)

    def _copy(self, destination: Server, source: Template, target: Template | None) -> Template:
        before = _audited(target) if target is not None else {}
        if target is None:
            target = Template(
                server_id=destination.id,
                template_type=source.template_type,
                alias=source.alias,
                alias_key=source.alias_key,
            )
            self.session.add(target)
        else:
            target.updated_at = utcnow()
        target.name, target.subject = source.name, source.subject
        target.html_body, target.text_body = source.html_body, source.text_body
        target.layout = self._layout(destination.id, source.layout_alias) if source.layout_alias else None
        self.session.flush()
        changes = audit.changed_fields(before, _audited(target))
        changes["pushed_from"] = {"before": None, "after": {"server_id": source.server_id, "template_id": source.id}}
        self._record(target, AuditAction.TEMPLATE_PUSHED, changes)
        return target

    def _record(self, template: Template, action: AuditAction, changes: dict[str, Any]) -> None:
        server = self.session.get(Server, template.server_id)
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=server.account_id if server is not None else None,
            target_type="template",
            target_id=template.id,
            target_label=template.alias or template.name,
            changes=changes,
        )


#: Both an invalid alias and one already taken are Postmark's 1122.
_ALIAS_TAKEN: Final = Reason.TEMPLATE_FIELD_INVALID


def _choice(value: str | None, allowed: Sequence[str], reason: Reason, field: str) -> str:
    """``value`` in any case, spelled as ``allowed`` spells it; the first one when not given."""
    if value is None:
        return allowed[0]
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise InvalidRequest(reason, f"The {field} '{value}' is invalid: use one of {', '.join(allowed)}.")


def _name(value: str | None) -> str:
    name = (value or "").strip()
    if not name:
        raise InvalidRequest(Reason.TEMPLATE_FIELD_MISSING, "A Name is required for a template.")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidRequest(Reason.TEMPLATE_FIELD_TOO_LONG, f"The Name must be at most {NAME_MAX_LENGTH} characters.")
    return name


def _subject(value: str) -> str:
    if not value.strip():
        raise InvalidRequest(Reason.TEMPLATE_FIELD_MISSING, "The Subject of a standard template cannot be blank.")
    if len(value) > SUBJECT_MAX_LENGTH:
        raise InvalidRequest(
            Reason.TEMPLATE_FIELD_TOO_LONG, f"The Subject must be at most {SUBJECT_MAX_LENGTH} characters."
        )
    return value


def _body(field: str, value: str) -> str | None:
    if len(value) > BODY_MAX_LENGTH:
        raise InvalidRequest(
            Reason.TEMPLATE_FIELD_TOO_LONG, f"The {field} must be at most {BODY_MAX_LENGTH} characters."
        )
    return value or None


def _check_content(template: Template) -> None:
    """Every part parses, and a layout holds its placeholder once in each body."""
    for field, source in (
        ("Subject", template.subject),
        ("HtmlBody", template.html_body),
        ("TextBody", template.text_body),
    ):
        if source is None:
            continue
        try:
            nodes = parse(source)
        except TemplateSyntaxError as error:
            raise InvalidRequest(
                Reason.TEMPLATE_FIELD_INVALID, f"The {field} is not a valid template: {error}."
            ) from error
        if template.template_type == LAYOUT and field != "Subject":
            problems = _placeholder_problems(nodes)
            if problems:
                raise InvalidRequest(Reason.TEMPLATE_LAYOUT_PLACEHOLDER, f"In the {field}: {problems[0].message}")


def _placeholder_problems(nodes: Sequence[Node]) -> list[Problem]:
    found = content_placeholders(nodes)
    if not found:
        return [Problem(f"A layout must contain {PLACEHOLDER} exactly once; it is missing.", None, None)]
    return [
        Problem(f"A layout must contain {PLACEHOLDER} exactly once; this is another one.", extra.line, extra.character)
        for extra in found[1:]
    ]


def _pushed_fields(template: Template) -> tuple[object, ...]:
    layout = template.layout_alias
    return (template.name, template.subject, template.html_body, template.text_body, layout and layout.lower())


def _audited(template: Template) -> dict[str, Any]:
    """A template as the audit log keeps it: bodies by digest, since the template holds them."""
    return {
        "name": template.name,
        "alias": template.alias,
        "template_type": template.template_type,
        "subject": template.subject,
        "html_body": _digest(template.html_body),
        "text_body": _digest(template.text_body),
        "layout_template": template.layout_alias,
    }


def _digest(body: str | None) -> dict[str, object] | None:
    if body is None:
        return None
    return {"sha256": hashlib.sha256(body.encode()).hexdigest(), "characters": len(body)}
