"""Exactly one Owner, whatever arrives at once: concurrent ownership transfers and role
changes over real HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import select

from postwarden.accounts.service import NewAccount
from postwarden.policy import Role
from postwarden.users.models import Membership
from tests.conftest import LiveServer
from tests.surfaces.team.helpers import add_member

ADMINS = 10


def test_concurrent_transfers_and_role_changes_leave_exactly_one_owner(
    live_server: LiveServer, account: NewAccount
) -> None:
    runtime = live_server.runtime
    admins = [add_member(runtime, account, f"admin{i}@acme.example", Role.ADMIN) for i in range(ADMINS)]
    with httpx.Client(base_url=live_server.base_url) as api:
        # Ten sessions of the one Owner: each will believe it may hand the account over.
        sessions = [
            api.post("/sessions", json={"Email": account.owner_email, "Password": account.owner_password}).json()[
                "SessionToken"
            ]
            for _ in range(10)
        ]
    token_header = {"X-Postmark-Account-Token": account.account_token}
    start = threading.Barrier(20)

    def transfer(i: int) -> int:
        """The Owner's session i hands ownership to admin i: the first wins, the others find
        their user an Admin by then."""
        headers = {"Authorization": f"Bearer {sessions[i]}"}
        with httpx.Client(base_url=live_server.base_url, timeout=30) as api:
            start.wait()
            return api.post(
                "/account/transfer-ownership", json={"UserID": admins[i % ADMINS]}, headers=headers
            ).status_code

    def change_role(i: int) -> int:
        """The account token demotes an admin (never admin 0, the Owner's own choice) to
        Technical, or tries to crown one."""
        with httpx.Client(base_url=live_server.base_url, timeout=30) as api:
            start.wait()
            role = "Owner" if i % 2 else "Technical"
            target = admins[1 + i % (ADMINS - 1)]
            return api.put(f"/users/{target}", json={"Role": role}, headers=token_header).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        transfers = [pool.submit(transfer, i) for i in range(10)]
        changes = [pool.submit(change_role, i) for i in range(10)]
        transfer_codes = [f.result() for f in transfers]
        change_codes = [f.result() for f in changes]

    assert transfer_codes.count(200) == 1, transfer_codes
    assert set(transfer_codes) <= {200, 403, 422}
    assert set(change_codes) <= {200, 403, 422}
    with runtime.db.session_scope(write=False) as session:
        owners = session.scalars(
            select(Membership.user_id).where(
                Membership.account_id == account.account.id, Membership.role == Role.OWNER.value
            )
        ).all()
    assert len(owners) == 1
