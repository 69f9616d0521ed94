"""Authorization-matrix requests for the webhooks endpoints: one valid request per
operation, on server A (``World.on_a``), so the matrix expects what policy says of server A.

A stream holds at most ten webhooks, so each kind of target is one webhook made again as
needed (marked by its URL), never a new one per call.
"""

from __future__ import annotations

from tests.surfaces.team.matrix import Builder, Request, World

MARKED_URL = "https://hooks.example.com/matrix/"


def _marked(world: World, mark: str) -> list[int]:
    answer = world.client.get(world.on_a("/webhooks"), headers=world.admin_headers)
    assert answer.status_code == 200, answer.text
    return [hook["ID"] for hook in answer.json()["Webhooks"] if hook["Url"] == MARKED_URL + mark]


def _discard(world: World, mark: str) -> None:
    for webhook_id in _marked(world, mark):
        world.client.delete(world.on_a(f"/webhooks/{webhook_id}"), headers=world.admin_headers)


def _webhook(world: World, mark: str) -> int:
    """The one webhook of server A with this mark, made when there is none."""
    found = _marked(world, mark)
    if found:
        return found[0]
    answer = world.client.post(world.on_a("/webhooks"), json={"Url": MARKED_URL + mark}, headers=world.admin_headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["ID"])


def _creation(world: World, _headers: dict[str, str]) -> Request:
    _discard(world, "created")  # what an earlier caller made
    return world.on_a("/webhooks"), {"Url": MARKED_URL + "created"}, world.server_a


def _deletion(world: World, _headers: dict[str, str]) -> Request:
    return world.on_a(f"/webhooks/{_webhook(world, 'deleted')}"), None, world.server_a


WEBHOOK_REQUESTS: dict[tuple[str, str], Builder] = {
    ("GET", "/webhooks"): lambda w, h: (w.on_a("/webhooks"), None, w.server_a),
    ("POST", "/webhooks"): _creation,
    ("GET", "/webhooks/{webhook_id}"): lambda w, h: (w.on_a(f"/webhooks/{_webhook(w, 'shared')}"), None, w.server_a),
    ("PUT", "/webhooks/{webhook_id}"): lambda w, h: (
        w.on_a(f"/webhooks/{_webhook(w, 'shared')}"),
        {"Triggers": {"Click": {"Enabled": True}}},
        w.server_a,
    ),
    ("DELETE", "/webhooks/{webhook_id}"): _deletion,
    ("POST", "/webhooks/{webhook_id}/rotate-secret"): lambda w, h: (
        w.on_a(f"/webhooks/{_webhook(w, 'shared')}/rotate-secret"),
        None,
        w.server_a,
    ),
}
