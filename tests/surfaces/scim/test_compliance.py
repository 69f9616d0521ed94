"""scim2-tester, the SCIM compliance checker, against a live postwarden over loopback HTTP:
discovery, every CRUD step, attribute projection, /.search and PATCH add, remove and
replace on every attribute the schemas publish. Every check must be a SUCCESS."""

from __future__ import annotations

from collections import Counter

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from postwarden.accounts.service import NewAccount
from postwarden.identity import Actor
from postwarden.tokens.scim import ScimTokenService
from tests.conftest import LiveServer


def test_scim2_tester_finds_every_check_a_success(live_server: LiveServer, account: NewAccount) -> None:
    runtime = live_server.runtime
    with runtime.db.session_scope() as session:
        _, token = ScimTokenService(session, Actor.system("tests"), runtime).create_token(account.account.id, "tester")
    with Client(
        base_url=f"{live_server.base_url}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        results = check_server(SyncSCIMClient(http))
    statuses = Counter(result.status for result in results)
    failures = [
        f"{result.status.name} {result.resource_type or ''} {result.title}: {result.reason}"
        for result in results
        if result.status is not Status.SUCCESS
    ]
    assert failures == [], "\n".join(failures)
    # Discovery, both resource types, and a PATCH check for each published attribute ran.
    assert statuses[Status.SUCCESS] >= 80
    titles = {(result.resource_type, result.title) for result in results}
    for resource_type in ("User", "Group"):
        for title in ("object_creation", "object_replacement", "object_deletion", "search_with_attributes"):
            assert (resource_type, title) in titles
