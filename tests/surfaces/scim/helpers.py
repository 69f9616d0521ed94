"""Shared steps of the SCIM tests: SCIM tokens made through the service, and SCIM requests
as an identity provider sends them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import httpx
import httpx2
from sqlalchemy import select
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.identity import Actor
from postwarden.runtime import Runtime
from postwarden.tokens.scim import ScimTokenService
from postwarden.users.models import User

BASE: Final = "/scim/v2"
USERS: Final = f"{BASE}/Users"
GROUPS: Final = f"{BASE}/Groups"
MEDIA_TYPE: Final = "application/scim+json"

USER_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA: Final = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA: Final = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_SCHEMA: Final = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

#: In-process (TestClient) or over a real socket (httpx against a live server).
HttpClient = TestClient | httpx.Client
#: What either answers with.
Answer = httpx2.Response | httpx.Response


@dataclass(frozen=True)
class IssuedToken:
    """A SCIM token as the Owner hands it to the identity provider."""

    id: int
    plaintext: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.plaintext}"}


def issue_token(runtime: Runtime, account: NewAccount, name: str = "okta") -> IssuedToken:
    with runtime.db.session_scope() as session:
        row, plaintext = ScimTokenService(session, Actor.system("tests"), runtime).create_token(
            account.account.id, name
        )
        return IssuedToken(row.id, plaintext)


def revoke_token(runtime: Runtime, account: NewAccount, token: IssuedToken) -> None:
    with runtime.db.session_scope() as session:
        ScimTokenService(session, Actor.system("tests"), runtime).revoke_token(account.account.id, token.id)


def owner_id(runtime: Runtime, account: NewAccount) -> str:
    """The Owner's SCIM id: their user id."""
    with runtime.db.session_scope() as session:
        found = session.scalar(select(User.id).where(User.email == account.owner_email))
        assert found is not None
        return str(found)


def user_body(user_name: str, **attributes: Any) -> dict[str, Any]:
    schemas = [USER_SCHEMA, ENTERPRISE_SCHEMA] if ENTERPRISE_SCHEMA in attributes else [USER_SCHEMA]
    return {"schemas": schemas, "userName": user_name, **attributes}


def create_user(client: HttpClient, headers: dict[str, str], user_name: str, **attributes: Any) -> dict[str, Any]:
    """Provisions a user; returns the SCIM representation the service answered with."""
    answer = client.post(USERS, json=user_body(user_name, **attributes), headers=headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def create_group(
    client: HttpClient, headers: dict[str, str], display_name: str, members: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP_SCHEMA], "displayName": display_name}
    if members is not None:
        body["members"] = [{"value": member} for member in members]
    answer = client.post(GROUPS, json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def search_body(**parameters: Any) -> dict[str, Any]:
    return {"schemas": [SEARCH_SCHEMA], **parameters}


def is_scim(answer: Answer) -> bool:
    return answer.headers.get("content-type", "").split(";")[0].strip() == MEDIA_TYPE


def assert_scim_error(answer: Answer, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """A SCIM error (RFC 7644 §3.12): its schema, ``status`` as a string, a ``detail``."""
    assert answer.status_code == status, answer.text
    assert is_scim(answer), answer.headers.get("content-type")
    body: dict[str, Any] = answer.json()
    assert ERROR_SCHEMA in body["schemas"]
    assert body["status"] == str(status)
    assert isinstance(body.get("detail"), str) and body["detail"]
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def listed(answer: Answer) -> list[dict[str, Any]]:
    """The resources of a list or search answer, after checking it is one."""
    assert answer.status_code == 200, answer.text
    assert is_scim(answer)
    body = answer.json()
    assert LIST_SCHEMA in body["schemas"]
    resources: list[dict[str, Any]] = body.get("Resources", [])
    return resources


def user_names(answer: Answer) -> list[str]:
    return [resource["userName"] for resource in listed(answer)]


def find_users(client: HttpClient, headers: dict[str, str], scim_filter: str) -> set[str]:
    return set(user_names(client.get(USERS, params={"filter": scim_filter}, headers=headers)))
