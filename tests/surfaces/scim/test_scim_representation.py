"""postwarden renders its resources itself, the fast way; scim2-models must read each back
unchanged: same attributes, same values, same forms (timestamps, empty attributes left out)."""

from __future__ import annotations

from typing import Any

from scim2_models import Context
from scim2_models import Group as GroupResource
from starlette.testclient import TestClient

from postwarden.scim.schemas import UserResource
from tests.surfaces.scim.helpers import ENTERPRISE_SCHEMA, GROUPS, USERS, create_group, create_user


def _as_scim2_models_renders(model: Any, sent: dict[str, Any]) -> dict[str, Any]:
    parsed = model.model_validate(sent, scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    rendered: dict[str, Any] = parsed.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return rendered


def test_a_full_user_and_a_bare_one_are_rendered_as_scim2_models_renders_them(
    client: TestClient, scim: dict[str, str]
) -> None:
    full = create_user(
        client,
        scim,
        "ada@example.com",
        externalId="00u1",
        name={"givenName": "Ada", "familyName": "Lovelace", "honorificPrefix": "Ms."},
        displayName="Ada Lovelace",
        emails=[
            {"value": "ada@example.com", "type": "work", "primary": True},
            {"value": "ada@home.example"},
        ],
        **{ENTERPRISE_SCHEMA: {"department": "Engines", "employeeNumber": "1815"}},
    )
    create_group(client, scim, "Analysts", [full["id"]])
    bare = create_user(client, scim, "babbage")
    for user in (full, bare):
        answered = client.get(f"{USERS}/{user['id']}", headers=scim).json()
        assert answered == _as_scim2_models_renders(UserResource, answered)
    read = client.get(f"{USERS}/{full['id']}", headers=scim).json()
    assert read["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_SCHEMA]
    assert read["meta"]["created"].endswith("Z") and read["groups"][0]["display"] == "Analysts"
    assert read["emails"][1] == {"value": "ada@home.example"}
    assert "name" not in client.get(f"{USERS}/{bare['id']}", headers=scim).json()


def test_groups_with_and_without_members_are_rendered_as_scim2_models_renders_them(
    client: TestClient, scim: dict[str, str]
) -> None:
    member = create_user(client, scim, "ada@example.com")
    for group in (create_group(client, scim, "Analysts", [member["id"]]), create_group(client, scim, "Empty")):
        answered = client.get(f"{GROUPS}/{group['id']}", headers=scim).json()
        assert answered == _as_scim2_models_renders(GroupResource, answered)
        listed = client.get(f'{GROUPS}?filter=id eq "{group["id"]}"', headers=scim).json()["Resources"]
        assert listed == [answered]
