"""The world the authorization matrix runs in (test_authorization_matrix.py), and the
shape of the request builders that each resource's ``matrix_*.py`` module adds to it."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from postwarden.accounts.service import NewAccount
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from tests.surfaces.team.helpers import add_member, create_server

counter = itertools.count()


@dataclass
class World:
    client: httpx.Client
    runtime: Runtime
    account: NewAccount
    admin_headers: dict[str, str]
    server_a: int
    server_b: int
    #: Sessions of the one Owner, signed in before any operation turns on their second factor.
    owner_sessions: list[dict[str, str]]
    #: Targets that builders make once and share, by name.
    made: dict[str, int] = field(default_factory=dict)

    def fresh(self, what: str) -> int:
        """A new target that one call may change or delete."""
        n = next(counter)
        if what == "server":
            return create_server(self.client, self.account, f"Scratch {n}")
        if what == "domain":
            answer = self.client.post("/domains", json={"Name": f"d{n}.example.org"}, headers=self.admin_headers)
        elif what == "sender":
            answer = self.client.post(
                "/senders", json={"FromEmail": f"s{n}@acme-mail.example.org", "Name": "S"}, headers=self.admin_headers
            )
        elif what == "member":  # View only on A: seen by those who reach A (who sees whom)
            email = f"scratch{n}@example.org"
            return add_member(self.runtime, self.account, email, Role.MEMBER, access={self.server_a: ServerAccess.VIEW})
        elif what == "admin":
            return add_member(self.runtime, self.account, f"admin{n}@example.org", Role.ADMIN)
        elif what == "invitation":
            answer = self.client.post(
                "/invitations", json={"Emails": [f"i{n}@example.org"], "Role": "Member"}, headers=self.admin_headers
            )
            return int(answer.json()["Invitations"][0]["ID"])
        else:
            raise AssertionError(what)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["ID"])

    def on_a(self, path: str) -> str:
        """``path`` on server A for an account-level credential (``server_id``)."""
        return f"{path}{'&' if '?' in path else '?'}server_id={self.server_a}"

    def twin_of_a(self, headers: dict[str, str]) -> int:
        """A third server on which the caller has exactly the access it has on A.

        For operations that act on two servers at once: whatever the caller's role and
        grants, policy then answers on the twin as on A, so the matrix's expectation on A
        alone holds for the pair. Members get the twin granted as they have A.
        """
        if "twin of A" not in self.made:
            self.made["twin of A"] = create_server(self.client, self.account, "Twin of A")
        twin = self.made["twin of A"]
        me = self.client.get("/me", headers=headers)
        if me.status_code == 200:  # a person (the account token reaches every server alike)
            access = {entry["ServerID"]: entry["Access"] for entry in me.json()["Servers"]}
            if access.get(self.server_a) != access.get(twin):
                granted = self.client.put(
                    f"/users/{me.json()['ID']}/servers",
                    json={"Servers": [{"ServerID": twin, "Access": access.get(self.server_a, "NoAccess")}]},
                    headers=self.admin_headers,
                )
                assert granted.status_code == 200, granted.text
        return twin


Request = tuple[str, dict[str, Any] | None, int | None]  # path, JSON body, the server the path names
Builder = Callable[[World, dict[str, str]], Request]
