"""Authorization-matrix requests for SCIM set-up (``/scim-tokens``, ``/scim-groups``): one
valid request per operation. The group is one the identity provider would have made."""

from __future__ import annotations

from postwarden.groups.models import Group
from tests.surfaces.team.matrix import Builder, Request, World, counter


def _group(world: World) -> int:
    if "group" not in world.made:
        with world.runtime.db.session_scope() as session:
            group = Group(account_id=world.account.account.id, display_name="Support", display_name_key="support")
            session.add(group)
            session.flush()
            world.made["group"] = group.id
    return world.made["group"]


def _fresh_token(world: World, _headers: dict[str, str]) -> Request:
    created = world.client.post("/scim-tokens", json={"Name": f"idp {next(counter)}"}, headers=world.admin_headers)
    assert created.status_code == 200, created.text
    return f"/scim-tokens/{created.json()['ID']}", None, None


SCIM_REQUESTS: dict[tuple[str, str], Builder] = {
    ("POST", "/scim-tokens"): lambda w, h: ("/scim-tokens", {"Name": "okta"}, None),
    ("GET", "/scim-tokens"): lambda w, h: ("/scim-tokens", None, None),
    ("DELETE", "/scim-tokens/{token_id}"): _fresh_token,
    ("GET", "/scim-groups"): lambda w, h: ("/scim-groups?count=50&offset=0", None, None),
    ("GET", "/scim-groups/{group_id}"): lambda w, h: (f"/scim-groups/{_group(w)}", None, None),
    ("PUT", "/scim-groups/{group_id}"): lambda w, h: (
        f"/scim-groups/{_group(w)}",
        {"Role": None, "Servers": [{"ServerID": w.server_a, "Access": "ViewOnly"}]},
        None,
    ),
}
