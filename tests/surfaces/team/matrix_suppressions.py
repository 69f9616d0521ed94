"""Authorization-matrix requests for the suppressions endpoints: one valid request per
operation, on server A (``World.on_a``), so the matrix expects what policy says of server A.

Each delete lifts an address suppressed just before, so every allowed call changes the list."""

from __future__ import annotations

from typing import Any

from tests.surfaces.team.matrix import Builder, Request, World, counter

BASE = "/message-streams/outbound/suppressions"


def _suppressed(world: World) -> dict[str, Any]:
    """A body naming an address that server A's outbound stream now suppresses."""
    body = {"Suppressions": [{"EmailAddress": f"matrix{next(counter)}@example.org"}]}
    answer = world.client.post(world.on_a(BASE), json=body, headers=world.admin_headers)
    assert answer.status_code == 200, answer.text
    return body


def _lifting(world: World, _headers: dict[str, str]) -> Request:
    return world.on_a(f"{BASE}/delete"), _suppressed(world), world.server_a


SUPPRESSION_REQUESTS: dict[tuple[str, str], Builder] = {
    ("GET", "/message-streams/{stream_id}/suppressions/dump"): lambda w, h: (w.on_a(f"{BASE}/dump"), None, w.server_a),
    ("POST", "/message-streams/{stream_id}/suppressions"): lambda w, h: (
        w.on_a(BASE),
        {"Suppressions": [{"EmailAddress": f"new{next(counter)}@example.org"}]},
        w.server_a,
    ),
    ("POST", "/message-streams/{stream_id}/suppressions/delete"): _lifting,
}
