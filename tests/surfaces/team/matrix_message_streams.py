"""Authorization-matrix requests for the message streams endpoints: one valid request per
operation, on server A (``World.on_a``), so the matrix expects what policy says of server A.

Streams cannot be deleted and a server holds ten, archived ones included: the three
defaults, the one shared stream that the edits, archives and unarchives act on, and one new
stream per caller that may create one on A (six of the matrix's ten kinds of caller).
"""

from __future__ import annotations

from tests.surfaces.team.matrix import Builder, Request, World, counter

SHARED = "matrix-shared"


def _shared(world: World, state: str | None = None) -> str:
    """The shared stream of server A, made when missing; ``state`` puts it in that state first."""
    created = world.client.post(
        world.on_a("/message-streams"),
        json={"ID": SHARED, "Name": "Matrix", "MessageStreamType": "Broadcasts"},
        headers=world.admin_headers,
    )
    assert created.status_code == 200 or created.json()["ErrorCode"] == 1230, created.text
    if state is not None:
        answer = world.client.post(world.on_a(f"/message-streams/{SHARED}/{state}"), headers=world.admin_headers)
        assert answer.status_code == 200, answer.text
    return SHARED


def _creation(world: World, _headers: dict[str, str]) -> Request:
    body = {"ID": f"matrix-{next(counter)}", "Name": "Created", "MessageStreamType": "Transactional"}
    return world.on_a("/message-streams"), body, world.server_a


MESSAGE_STREAM_REQUESTS: dict[tuple[str, str], Builder] = {
    ("GET", "/message-streams"): lambda w, h: (
        w.on_a("/message-streams?IncludeArchivedStreams=true"),
        None,
        w.server_a,
    ),
    ("GET", "/message-streams/{stream_id}"): lambda w, h: (w.on_a("/message-streams/outbound"), None, w.server_a),
    ("POST", "/message-streams"): _creation,
    ("PATCH", "/message-streams/{stream_id}"): lambda w, h: (
        w.on_a(f"/message-streams/{_shared(w)}"),
        {"Name": f"Renamed {next(counter)}"},
        w.server_a,
    ),
    ("POST", "/message-streams/{stream_id}/archive"): lambda w, h: (
        w.on_a(f"/message-streams/{_shared(w, 'unarchive')}/archive"),
        None,
        w.server_a,
    ),
    ("POST", "/message-streams/{stream_id}/unarchive"): lambda w, h: (
        w.on_a(f"/message-streams/{_shared(w, 'archive')}/unarchive"),
        None,
        w.server_a,
    ),
}
