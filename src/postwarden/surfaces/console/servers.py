"""The servers an actor may see, with each person's pins first, and a server's own page: its
settings, its API tokens (shown only when asked, each time recorded), its streams and webhooks."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Final
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from postwarden.errors import Conflict, InvalidRequest, Reason
from postwarden.identity import Actor
from postwarden.message_streams.service import MessageStreamService
from postwarden.policy import Permission, allows
from postwarden.servers.models import Server
from postwarden.servers.service import COLORS, HOOK_FIELDS, TRACK_LINKS, ServerFields, ServerService
from postwarden.surfaces.console.base import Console, Page, status_of
from postwarden.surfaces.routing import run_in_session
from postwarden.webhooks.service import WebhookService, masked_url

COLOR_CHOICES: Final = tuple(dict.fromkeys(COLORS.values()))
_TRACK_LINK_WORDS: Final = {
    "None": "No",
    "HtmlAndText": "In HTML and text",
    "HtmlOnly": "In HTML only",
    "TextOnly": "In text only",
}
#: Every option the service accepts, in its order, said in words.
TRACK_LINK_LABELS: Final = {value: _TRACK_LINK_WORDS.get(value, value) for value in TRACK_LINKS}


@dataclass(frozen=True)
class Setting:
    """One field of the settings form: ``kind`` is text, url, color, track_links, number or flag."""

    name: str
    label: str
    kind: str
    hint: str = ""


SETTINGS: Final[tuple[tuple[str, tuple[Setting, ...]], ...]] = (
    ("General", (Setting("name", "Name", "text"), Setting("color", "Color", "color"))),
    (
        "Sending and tracking",
        (
            Setting("smtp_api_activated", "SMTP API activated", "flag", "Accept mail over SMTP as well as HTTP."),
            Setting("track_opens", "Track opens", "flag", "For every message sent through this server."),
            Setting("post_first_open_only", "Post the first open only", "flag", "One open event per recipient."),
            Setting("track_links", "Track links", "track_links"),
        ),
    ),
    (
        "Inbound",
        (
            Setting("inbound_domain", "Inbound domain", "text", "Forward mail for this domain to the server."),
            Setting("inbound_spam_threshold", "Inbound spam threshold", "number", "0 to 30; 0 blocks nothing."),
            Setting("inbound_hook_url", "Inbound webhook URL", "url"),
            Setting("raw_email_enabled", "Include the raw email", "flag", "In inbound webhook payloads."),
        ),
    ),
    (
        "Webhook URLs",
        (
            Setting("bounce_hook_url", "Bounce webhook URL", "url"),
            Setting("open_hook_url", "Open webhook URL", "url"),
            Setting("delivery_hook_url", "Delivery webhook URL", "url"),
            Setting("click_hook_url", "Click webhook URL", "url"),
            Setting("include_bounce_content_in_hook", "Include bounce content", "flag", "In bounce webhooks."),
            Setting("enable_smtp_api_error_hooks", "SMTP API errors as bounces", "flag", "In bounce webhooks."),
        ),
    ),
)
FLAGS: Final = tuple(s.name for _, group in SETTINGS for s in group if s.kind == "flag")
#: Which field a refusal of the service is about, to mark it next to the message.
FIELD_OF_REASON: Final = {
    Reason.SERVER_NAME_INVALID: "name",
    Reason.SERVER_NAME_TAKEN: "name",
    Reason.SERVER_COLOR_INVALID: "color",
    Reason.SERVER_TRACK_LINKS_INVALID: "track_links",
    Reason.SERVER_SPAM_THRESHOLD_INVALID: "inbound_spam_threshold",
    Reason.SERVER_INBOUND_DOMAIN_INVALID: "inbound_domain",
    Reason.SERVER_INBOUND_DOMAIN_TAKEN: "inbound_domain",
}


def routes(console: Console) -> list[Route]:
    runtime = console.runtime

    async def servers(request: Request, actor: Actor) -> Response:
        query = request.query_params.get("q", "").strip()
        account_id = actor.account_id or 0

        def work(session: Session) -> list[dict[str, Any]]:
            if not allows(actor, Permission.SERVERS_READ, account_id=account_id):
                return []  # a member granted no server yet: an empty list, not a refusal
            service = ServerService(session, actor, runtime)
            page = service.list_servers(account_id, count=500, offset=0, name=query or None)
            loaded = service.load_servers(account_id, page.server_ids, with_tokens=False)
            pinned = service.pinned_ids(account_id)
            listed = (
                {
                    "id": entry.server.id,
                    "name": entry.server.name,
                    "color": entry.server.color,
                    "pinned": entry.server.id in pinned,
                }
                for entry in loaded
            )
            return sorted(listed, key=lambda server: (not server["pinned"], server["name"].casefold(), server["id"]))

        found = await run_in_session(runtime, work, write=False)
        return console.render(
            request,
            "servers.html",
            title="Servers",
            actor=actor,
            servers=found,
            query=query,
            pinned=request.query_params.get("pinned"),
            unpinned=request.query_params.get("unpinned"),
            deleted=request.query_params.get("deleted"),
        )

    def pin_action(pinning: bool) -> Page:
        @console.with_form
        async def act(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
            server_id: int = request.path_params["server_id"]
            account_id = actor.account_id or 0

            def work(session: Session) -> str:
                service = ServerService(session, actor, runtime)
                (service.pin if pinning else service.unpin)(account_id, server_id)
                return service.get_server(account_id, server_id).name

            name = await run_in_session(runtime, work, write=True)
            done = {"q": fields["q"]} if fields.get("q") else {}
            done["pinned" if pinning else "unpinned"] = name
            return console.redirect(request, "/servers?" + urlencode(done))

        return console.signed_in(act)

    def server_page(
        request: Request,
        actor: Actor,
        shown: dict[str, Any],
        *,
        status: int = 200,
        **values: Any,
    ) -> Response:
        return console.render(
            request,
            "server.html",
            status=status,
            title=shown["server"]["name"],
            actor=actor,
            groups=SETTINGS,
            color_choices=COLOR_CHOICES,
            track_link_labels=TRACK_LINK_LABELS,
            **shown,
            **values,
        )

    def shown_server(session: Session, actor: Actor, server_id: int) -> dict[str, Any]:
        """Everything the server page shows, but its tokens."""
        account_id = actor.account_id or 0
        service = ServerService(session, actor, runtime)
        server = service.get_server(account_id, server_id)
        streams = webhooks = None
        if allows(actor, Permission.MESSAGE_STREAMS_READ, account_id=account_id, server_id=server_id):
            streams = [
                {
                    "id": stream.stream_id,
                    "name": stream.name,
                    "type": stream.stream_type,
                    "archived": stream.archived_at is not None,
                }
                for stream in MessageStreamService(session, actor).list_streams(server_id, include_archived=True)
            ]
        if allows(actor, Permission.WEBHOOKS_READ, account_id=account_id, server_id=server_id):
            webhooks = [
                {
                    "url": masked_url(view.webhook.url),
                    "stream": view.webhook.message_stream,
                    "triggers": [name for name, flags in view.webhook.triggers.items() if flags.get("Enabled")],
                }
                for view in WebhookService(session, actor, runtime).list_webhooks(server_id)
            ]
        return {
            "server": {
                "id": server.id,
                "name": server.name,
                "color": server.color,
                "delivery_type": server.delivery_type,
                "inbound_address": f"{server.inbound_hash}@{runtime.settings.inbound_address_domain}",
            },
            "settings": settings_of(server),
            "may_update": allows(actor, Permission.SERVERS_UPDATE, account_id=account_id, server_id=server_id),
            "may_reveal": service.may_see_tokens(account_id, server_id),
            "may_delete": allows(actor, Permission.SERVERS_DELETE, account_id=account_id, server_id=server_id),
            "streams": streams,
            "webhooks": webhooks,
        }

    async def server(request: Request, actor: Actor) -> Response:
        server_id: int = request.path_params["server_id"]
        shown = await run_in_session(runtime, lambda session: shown_server(session, actor, server_id), write=False)
        done = request.query_params.get("done")
        return server_page(request, actor, shown, done=done if done in {"saved", "unchanged"} else None)

    @console.with_form
    async def update(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        server_id: int = request.path_params["server_id"]
        account_id = actor.account_id or 0

        def work(session: Session) -> bool:
            """Whether any setting changed."""
            service = ServerService(session, actor, runtime)
            before = settings_of(service.get_server(account_id, server_id))
            after = settings_of(service.update_server(account_id, server_id, given_settings(fields)))
            return before != after

        try:
            changed = await run_in_session(runtime, work, write=True)
        except (InvalidRequest, Conflict) as refusal:
            # The form comes back as typed, the refusal above it and on the field it is about.
            shown = await run_in_session(runtime, lambda session: shown_server(session, actor, server_id), write=False)
            typed: dict[str, Any] = {name: fields.get(name, "") for name in shown["settings"]}
            typed |= {name: name in fields for name in FLAGS}
            return server_page(
                request,
                actor,
                {**shown, "settings": typed},
                status=status_of(refusal),
                error=refusal.message,
                error_field=field_of(refusal),
            )
        return console.redirect(request, f"/servers/{server_id}?done={'saved' if changed else 'unchanged'}")

    @console.with_form
    async def reveal(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        server_id: int = request.path_params["server_id"]
        account_id = actor.account_id or 0

        def work(session: Session) -> tuple[dict[str, Any], list[str]]:
            # An explicit request to see them: every one is recorded, unlike the API's reads.
            service = ServerService(session, actor, runtime)
            found = service.get_server(account_id, server_id)
            service.record_token_views(account_id, [found.id])
            return shown_server(session, actor, server_id), service.api_tokens(found)

        shown, tokens = await run_in_session(runtime, work, write=True)
        return server_page(request, actor, shown, tokens=tokens)

    @console.with_form
    async def delete(request: Request, actor: Actor, fields: dict[str, str]) -> Response:
        server_id: int = request.path_params["server_id"]
        account_id = actor.account_id or 0

        def work(session: Session) -> str:
            return ServerService(session, actor, runtime).delete_server(account_id, server_id)

        name = await run_in_session(runtime, work, write=True)
        return console.redirect(request, "/servers?" + urlencode({"deleted": name}))

    return [
        Route("/servers", console.signed_in(servers)),
        Route("/servers/{server_id:int}", console.signed_in(server)),
        Route("/servers/{server_id:int}/settings", console.signed_in(update), methods=["POST"]),
        Route(
            "/servers/{server_id:int}/reveal-tokens",
            console.signed_in(reveal, sensitive="reveal this server's API tokens"),
            methods=["POST"],
        ),
        Route(
            "/servers/{server_id:int}/delete",
            console.signed_in(delete, sensitive="delete this server", always_ask=True),
            methods=["POST"],
        ),
        Route("/servers/{server_id:int}/pin", pin_action(True), methods=["POST"]),
        Route("/servers/{server_id:int}/unpin", pin_action(False), methods=["POST"]),
    ]


def settings_of(server: Server) -> dict[str, Any]:
    """The server's settings as the form shows them (the delivery type is fixed at creation)."""
    return {f.name: getattr(server, f.name) for f in fields(ServerFields) if f.name != "delivery_type"}


def given_settings(form: dict[str, str]) -> ServerFields:
    """The settings form as the service takes it: the whole form, an unticked box being off."""
    threshold = form.get("inbound_spam_threshold", "").strip()
    if threshold and not threshold.isdigit():
        raise InvalidRequest(
            Reason.SERVER_SPAM_THRESHOLD_INVALID, "The inbound spam threshold must be a whole number from 0 to 30."
        )

    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() if value is not None else None

    return ServerFields(
        name=text("name"),
        color=text("color"),
        smtp_api_activated="smtp_api_activated" in form,
        raw_email_enabled="raw_email_enabled" in form,
        inbound_hook_url=text("inbound_hook_url"),
        bounce_hook_url=text("bounce_hook_url"),
        open_hook_url=text("open_hook_url"),
        delivery_hook_url=text("delivery_hook_url"),
        click_hook_url=text("click_hook_url"),
        post_first_open_only="post_first_open_only" in form,
        inbound_domain=text("inbound_domain"),
        inbound_spam_threshold=int(threshold) if threshold else None,
        track_opens="track_opens" in form,
        track_links=text("track_links"),
        include_bounce_content_in_hook="include_bounce_content_in_hook" in form,
        enable_smtp_api_error_hooks="enable_smtp_api_error_hooks" in form,
    )


def field_of(refusal: InvalidRequest | Conflict) -> str | None:
    if refusal.reason is Reason.SERVER_HOOK_URL_INVALID:
        wire_names = {"".join(part.capitalize() for part in hook.split("_")): hook for hook in HOOK_FIELDS}
        return next((hook for wire, hook in wire_names.items() if f" {wire}:" in refusal.message), None)
    return FIELD_OF_REASON.get(refusal.reason)
