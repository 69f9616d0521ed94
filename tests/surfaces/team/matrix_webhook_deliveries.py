"""Authorization-matrix requests for the webhook delivery endpoints (``/webhooks/{id}/test``,
``/webhooks/{id}/deliveries``): one valid request per operation, on server A.

Every call reuses one webhook of server A (found by its URL): a stream holds at most ten.
"""

from __future__ import annotations

from tests.surfaces.team.matrix import Builder, Request, World

TESTED_URL = "https://hooks.example.com/matrix/deliveries"


def _webhook(world: World) -> int:
    listed = world.client.get(world.on_a("/webhooks"), headers=world.admin_headers)
    assert listed.status_code == 200, listed.text
    for hook in listed.json()["Webhooks"]:
        if hook["Url"] == TESTED_URL:
            return int(hook["ID"])
    created = world.client.post(world.on_a("/webhooks"), json={"Url": TESTED_URL}, headers=world.admin_headers)
    assert created.status_code == 200, created.text
    return int(created.json()["ID"])


def _test(world: World, _headers: dict[str, str]) -> Request:
    return world.on_a(f"/webhooks/{_webhook(world)}/test"), {"RecordType": "Bounce"}, world.server_a


def _log(world: World, _headers: dict[str, str]) -> Request:
    return world.on_a(f"/webhooks/{_webhook(world)}/deliveries?count=10&offset=0"), None, world.server_a


WEBHOOK_DELIVERY_REQUESTS: dict[tuple[str, str], Builder] = {
    ("POST", "/webhooks/{webhook_id}/test"): _test,
    ("GET", "/webhooks/{webhook_id}/deliveries"): _log,
}
