"""Authorization-matrix requests for the templates endpoints: one valid request per
operation, on server A (``World.on_a``), so the matrix expects what policy says of server A.

A server holds 100 active templates: reads share one template, and each edit or delete
gets a fresh one. ``PUT /templates/push`` acts on two servers, reading the source and
writing the destination, while the matrix's expectation names one: it pushes from A to
A's twin (``World.twin_of_a``), where every caller has exactly its access on A, so that
"templates:read and templates:manage on A" is the answer policy gives the pair.
Pushing from A to A would prove nothing (nothing differs, nothing is written), and a
push between A and B would be refused to the members who reach only one of them.
"""

from __future__ import annotations

from tests.surfaces.team.matrix import Builder, Request, World, counter

SHARED = "matrix-shared"


def _shared(world: World) -> str:
    """The aliased template of server A that reads and pushes use, made once."""
    if SHARED not in world.made:
        world.made[SHARED] = _new(world, SHARED)
    return SHARED


def _new(world: World, alias: str | None = None) -> int:
    body = {"Name": f"Matrix {next(counter)}", "Subject": "Hi {{name}}", "TextBody": "Hello {{name}}", "Alias": alias}
    answer = world.client.post(world.on_a("/templates"), json=body, headers=world.admin_headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["TemplateId"])


def _push(world: World, headers: dict[str, str]) -> Request:
    _shared(world)
    body = {"SourceServerID": world.server_a, "DestinationServerID": world.twin_of_a(headers), "PerformChanges": True}
    return "/templates/push", body, world.server_a


TEMPLATE_REQUESTS: dict[tuple[str, str], Builder] = {
    ("GET", "/templates"): lambda w, h: (w.on_a("/templates?count=50&offset=0"), None, w.server_a),
    ("POST", "/templates"): lambda w, h: (
        w.on_a("/templates"),
        {"Name": f"Created {next(counter)}", "Subject": "S", "HtmlBody": "<p>{{name}}</p>"},
        w.server_a,
    ),
    ("POST", "/templates/validate"): lambda w, h: (
        w.on_a("/templates/validate"),
        {"Subject": "{{a}}", "TextBody": "{{#each b}}{{c}}{{/each}}", "TestRenderModel": {"a": 1}},
        w.server_a,
    ),
    ("PUT", "/templates/push"): _push,
    ("GET", "/templates/{id_or_alias}"): lambda w, h: (w.on_a(f"/templates/{_shared(w)}"), None, w.server_a),
    ("PUT", "/templates/{id_or_alias}"): lambda w, h: (
        w.on_a(f"/templates/{_new(w)}"),
        {"Name": "Renamed"},
        w.server_a,
    ),
    ("DELETE", "/templates/{id_or_alias}"): lambda w, h: (w.on_a(f"/templates/{_new(w)}"), None, w.server_a),
}
