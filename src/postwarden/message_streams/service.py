"""Message streams: the only code that creates, edits, archives or unarchives them.

Every server is created with the three default streams (``servers.service``). A server
holds at most ten streams, archived ones and the defaults included, and one inbound stream;
an archived stream can be brought back until its purge date, 45 days after archiving.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import utcnow
from postwarden.errors import Conflict, InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.policy import Permission
from postwarden.servers.models import MessageStream, Server
from postwarden.servers.service import reach_server

STREAM_TYPES: Final = ("Transactional", "Inbound", "Broadcasts")
#: The inbound stream comes with the server: a server has exactly one.
CREATABLE_TYPES: Final = ("Transactional", "Broadcasts")
LIST_FILTERS: Final = ("All", *STREAM_TYPES)
UNSUBSCRIBE_TYPES: Final = ("None", "Postmark", "Custom")
#: Broadcasts must let recipients unsubscribe; inbound mail has nobody to unsubscribe.
#: ``Custom`` (the sender's own unsubscribe pages) is an approval Postmark grants by hand.
UNSUBSCRIBE_BY_TYPE: Final[dict[str, tuple[str, ...]]] = {
    "Transactional": ("None", "Postmark"),
    "Broadcasts": ("Postmark",),
    "Inbound": ("None",),
}
DEFAULT_UNSUBSCRIBE: Final = {"Transactional": "None", "Broadcasts": "Postmark", "Inbound": "None"}
MAX_STREAMS_PER_SERVER: Final = 10
ID_MAX_LENGTH: Final = 30
NAME_MAX_LENGTH: Final = 100
DESCRIPTION_MAX_LENGTH: Final = 1000
PURGE_AFTER: Final = timedelta(days=45)
#: The default transactional and inbound streams: mail reaches a server through them.
UNARCHIVABLE: Final = frozenset({"outbound", "inbound"})
#: The names of the stream types and of "any stream": as IDs they would read as filters.
RESERVED_IDS: Final = frozenset({"all", "default", "transactional", "broadcasts"})
ID_SYNTAX: Final = f"[a-z][a-z0-9_-]{{0,{ID_MAX_LENGTH - 1}}}"
RESERVED_PREFIX: Final = "pm-"
HTML_TAG: Final = r"<\s*/?\s*[A-Za-z!][^>]*>"
_ID_RE: Final = re.compile(ID_SYNTAX)
_HTML_TAG_RE: Final = re.compile(HTML_TAG)


@dataclass(frozen=True)
class StreamFields:
    """What a caller may set on create and edit; None means "not given"."""

    name: str | None = None
    description: str | None = None
    unsubscribe_handling: str | None = None


def expected_purge_date(stream: MessageStream) -> datetime | None:
    return stream.archived_at + PURGE_AFTER if stream.archived_at is not None else None


def find_stream(session: Session, server_id: int, stream_id: str) -> MessageStream | None:
    """The stream by its ``ID``, matched exactly: IDs are lowercase by rule."""
    return session.scalar(
        select(MessageStream).where(MessageStream.server_id == server_id, MessageStream.stream_id == stream_id)
    )


def get_stream(session: Session, server_id: int, stream_id: str) -> MessageStream:
    stream = find_stream(session, server_id, stream_id)
    if stream is None:
        raise NotFound(Reason.STREAM_NOT_FOUND, f"The message stream '{stream_id}' was not found on this server.")
    return stream


class MessageStreamService:
    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor

    # reading

    def list_streams(
        self, server_id: int, *, stream_type: str | None = None, include_archived: bool = False
    ) -> list[MessageStream]:
        """Oldest first, so the defaults lead; ``stream_type`` is any of ``LIST_FILTERS``, in any case."""
        server = reach_server(self.session, self.actor, server_id, Permission.MESSAGE_STREAMS_READ)
        wanted = _one_of("All" if stream_type is None else stream_type, LIST_FILTERS)
        if wanted is None:
            raise InvalidRequest(
                Reason.STREAM_TYPE_INVALID,
                "The 'MessageStreamType' filter must be one of: " + ", ".join(LIST_FILTERS) + ".",
            )
        query = select(MessageStream).where(MessageStream.server_id == server.id)
        if wanted != "All":
            query = query.where(MessageStream.stream_type == wanted)
        if not include_archived:
            query = query.where(MessageStream.archived_at.is_(None))
        return list(self.session.scalars(query.order_by(MessageStream.id)))

    def get_stream(self, server_id: int, stream_id: str) -> MessageStream:
        reach_server(self.session, self.actor, server_id, Permission.MESSAGE_STREAMS_READ)
        return get_stream(self.session, server_id, stream_id)

    # changing

    def create_stream(
        self, server_id: int, stream_id: str | None, stream_type: str | None, given: StreamFields
    ) -> MessageStream:
        server = reach_server(self.session, self.actor, server_id, Permission.MESSAGE_STREAMS_MANAGE)
        new_id = _valid_id(stream_id)
        kind = _creatable_type(stream_type)
        name = _valid_name(given.name)
        description = _valid_description(given.description)
        handling = DEFAULT_UNSUBSCRIBE[kind]
        if given.unsubscribe_handling is not None:
            handling = _valid_unsubscribe(given.unsubscribe_handling, kind)
        self._check_room(server, new_id)
        stream = MessageStream(
            server_id=server.id,
            stream_id=new_id,
            name=name,
            description=description,
            stream_type=kind,
            unsubscribe_handling=handling,
        )
        self.session.add(stream)
        try:
            self.session.flush()  # a concurrent create of the same ID fails here
        except IntegrityError as exc:
            raise _taken(new_id) from exc
        created = {"stream_id": new_id, "stream_type": kind, **_snapshot(stream)}
        changes = {field: {"before": None, "after": value} for field, value in created.items()}
        self._record(server, stream, AuditAction.MESSAGE_STREAM_CREATED, changes)
        return stream

    def update_stream(self, server_id: int, stream_id: str, given: StreamFields) -> MessageStream:
        """Absent (None) fields keep their value; ``""`` clears the description."""
        server = reach_server(self.session, self.actor, server_id, Permission.MESSAGE_STREAMS_MANAGE)
        stream = get_stream(self.session, server.id, stream_id)
        before = _snapshot(stream)
        if given.name is not None:
            stream.name = _valid_name(given.name)
        if given.description is not None:
            stream.description = _valid_description(given.description)
        if given.unsubscribe_handling is not None:
            stream.unsubscribe_handling = _valid_unsubscribe(given.unsubscribe_handling, stream.stream_type)
        changes = audit.changed_fields(before, _snapshot(stream))
        if changes:
            stream.updated_at = utcnow()
            self._record(server, stream, AuditAction.MESSAGE_STREAM_UPDATED, changes)
        return stream

    def archive_stream(self, server_id: int, stream_id: str) -> MessageStream:
        """Stops the stream until it is unarchived; archiving an archived stream changes nothing."""
        server = reach_server(self.session, self.actor, server_id, Permission.MESSAGE_STREAMS_MANAGE)
        stream = get_stream(self.session, server.id, stream_id)
        if stream.stream_id in UNARCHIVABLE:
            raise InvalidRequest(
                Reason.STREAM_DEFAULT_NOT_ARCHIVABLE,
                "You cannot archive the default transactional and inbound streams (outbound, inbound).",
            )
        if stream.archived_at is None:
            stream.archived_at = utcnow()
            self._record(
                server,
                stream,
                AuditAction.MESSAGE_STREAM_ARCHIVED,
                {"archived_at": {"before": None, "after": stream.archived_at.isoformat()}},
            )
        return stream

    def unarchive_stream(self, server_id: int, stream_id: str) -> MessageStream:
        """Brings an archived stream back before its purge date; a live stream is left as it is."""
        server = reach_server(self.session, self.actor, server_id, Permission.MESSAGE_STREAMS_MANAGE)
        stream = get_stream(self.session, server.id, stream_id)
        purge = expected_purge_date(stream)
        if stream.archived_at is None or purge is None:
            return stream
        if purge <= utcnow():
            raise InvalidRequest(
                Reason.STREAM_PURGED,
                f"You cannot unarchive this message stream anymore: its purge date ({purge.isoformat()}) has passed.",
            )
        self._record(
            server,
            stream,
            AuditAction.MESSAGE_STREAM_UNARCHIVED,
            {"archived_at": {"before": stream.archived_at.isoformat(), "after": None}},
        )
        stream.archived_at = None
        return stream

    # helpers

    def _check_room(self, server: Server, stream_id: str) -> None:
        # Serialises creates on one server so that the limit holds under races (PostgreSQL
        # row lock; SQLite writers already hold the database lock from BEGIN).
        self.session.execute(select(Server.id).where(Server.id == server.id).with_for_update())
        if find_stream(self.session, server.id, stream_id) is not None:
            raise _taken(stream_id)
        count = self.session.scalar(select(func.count()).where(MessageStream.server_id == server.id)) or 0
        if count >= MAX_STREAMS_PER_SERVER:
            raise Conflict(
                Reason.STREAM_LIMIT_REACHED,
                f"This server already has the maximum of {MAX_STREAMS_PER_SERVER} message streams "
                "(the defaults and archived streams included).",
            )

    def _record(self, server: Server, stream: MessageStream, action: AuditAction, changes: dict[str, Any]) -> None:
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=server.account_id,
            target_type="message_stream",
            target_id=stream.id,
            target_label=f"{stream.stream_id} on {server.name}",
            changes=changes,
        )


def _snapshot(stream: MessageStream) -> dict[str, Any]:
    return {
        "name": stream.name,
        "description": stream.description,
        "unsubscribe_handling": stream.unsubscribe_handling,
    }


def _one_of(value: str, options: tuple[str, ...]) -> str | None:
    """The option ``value`` names, in any case."""
    return {option.lower(): option for option in options}.get(value.lower())


def _taken(stream_id: str) -> Conflict:
    return Conflict(Reason.STREAM_ID_TAKEN, f"The 'ID' provided ({stream_id}) already exists for this server.")


def _valid_id(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidRequest(Reason.STREAM_ID_MISSING, "A valid 'ID' must be provided.")
    if not _ID_RE.fullmatch(value):
        raise InvalidRequest(
            Reason.STREAM_ID_INVALID,
            f"The 'ID' must start with a letter and hold only lowercase letters, digits, '-' and '_', "
            f"{ID_MAX_LENGTH} characters at most.",
        )
    if value.startswith(RESERVED_PREFIX):
        raise InvalidRequest(
            Reason.STREAM_ID_PM_PREFIX, f"The 'ID' must not start with the '{RESERVED_PREFIX}' prefix."
        )
    if value in RESERVED_IDS:
        raise InvalidRequest(
            Reason.STREAM_ID_RESERVED,
            f"The 'ID' '{value}' is reserved; these IDs are: " + ", ".join(sorted(RESERVED_IDS)) + ".",
        )
    return value


def _creatable_type(value: str | None) -> str:
    kind = _one_of(value or "", STREAM_TYPES)
    if kind == "Inbound":
        raise InvalidRequest(
            Reason.STREAM_INBOUND_EXISTS, "A server can only have one inbound stream, and every server has it."
        )
    if kind is None:
        raise InvalidRequest(
            Reason.STREAM_TYPE_INVALID,
            "The 'MessageStreamType' must be one of: " + ", ".join(CREATABLE_TYPES) + ".",
        )
    return kind


def _valid_name(value: str | None) -> str:
    """Trimmed; the length limit holds for what was sent."""
    name = (value or "").strip()
    if not name:
        raise InvalidRequest(Reason.STREAM_NAME_MISSING, "A valid 'Name' must be provided.")
    if len(value or "") > NAME_MAX_LENGTH:
        raise InvalidRequest(
            Reason.STREAM_NAME_TOO_LONG, f"The 'Name' is too long: {NAME_MAX_LENGTH} characters at most."
        )
    return name


def _valid_description(value: str | None) -> str | None:
    """Trimmed, None when blank; the length limit holds for what was sent."""
    description = (value or "").strip()
    if len(value or "") > DESCRIPTION_MAX_LENGTH:
        raise InvalidRequest(
            Reason.STREAM_DESCRIPTION_TOO_LONG,
            f"The 'Description' is too long: {DESCRIPTION_MAX_LENGTH} characters at most.",
        )
    if _HTML_TAG_RE.search(description):
        raise InvalidRequest(Reason.STREAM_DESCRIPTION_HTML, "The 'Description' must not contain HTML tags.")
    return description or None


def _valid_unsubscribe(value: str, stream_type: str) -> str:
    handling = _one_of(value, UNSUBSCRIBE_TYPES)
    if handling is None:
        raise InvalidRequest(
            Reason.STREAM_UNSUBSCRIBE_INVALID,
            "The 'UnsubscribeHandlingType' must be one of: " + ", ".join(UNSUBSCRIBE_TYPES) + ".",
        )
    if handling == "Custom":
        raise InvalidRequest(
            Reason.STREAM_UNSUBSCRIBE_CUSTOM,
            "Custom unsubscribe handling is not available here: use Postmark (or None on a transactional stream).",
        )
    allowed = UNSUBSCRIBE_BY_TYPE[stream_type]
    if handling not in allowed:
        raise InvalidRequest(
            Reason.STREAM_UNSUBSCRIBE_UNSUPPORTED,
            f"The 'UnsubscribeHandlingType' {handling} is not supported for {stream_type} streams: use "
            + " or ".join(allowed)
            + ".",
        )
    return handling
