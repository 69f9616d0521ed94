"""The plan's server limit holds under concurrent creates over real HTTP."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.conftest import LiveServer, create_account


def test_fifty_concurrent_creates_against_a_limit_of_ten_leave_exactly_ten(live_server: LiveServer) -> None:
    account = create_account(live_server.runtime, "Basic Plan", server_limit=10)
    headers = {"X-Postmark-Account-Token": account.account_token}

    def create(number: int) -> httpx.Response:
        with httpx.Client(base_url=live_server.base_url, timeout=60) as http:
            return http.post("/servers", json={"Name": f"server-{number}"}, headers=headers)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(create, range(50)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 10, [r.text for r in responses if r.status_code not in (200, 422)]
    refused = [r.json() for r in responses if r.status_code == 422]
    assert len(refused) == 40
    assert {body["ErrorCode"] for body in refused} == {614}
    with httpx.Client(base_url=live_server.base_url) as http:
        listing = http.get("/servers?count=500&offset=0", headers=headers).json()
    assert listing["TotalCount"] == 10
    assert len({s["Name"] for s in listing["Servers"]}) == 10


def test_limit_counts_only_this_accounts_servers(live_server: LiveServer) -> None:
    limited = create_account(live_server.runtime, "Small", server_limit=1)
    other = create_account(live_server.runtime, "Big")
    with httpx.Client(base_url=live_server.base_url) as http:
        for number in range(3):
            assert http.post(
                "/servers", json={"Name": f"big-{number}"}, headers={"X-Postmark-Account-Token": other.account_token}
            ).is_success
        small = {"X-Postmark-Account-Token": limited.account_token}
        assert http.post("/servers", json={"Name": "one"}, headers=small).status_code == 200
        refused = http.post("/servers", json={"Name": "two"}, headers=small)
        assert refused.status_code == 422 and refused.json()["ErrorCode"] == 614
        assert "1 servers" in refused.json()["Message"]
