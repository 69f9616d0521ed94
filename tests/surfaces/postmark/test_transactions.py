"""The edge owns the transaction: a change whose commit fails answers an error, never a 200."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from postwarden.runtime import Runtime

FAIL_AT_COMMIT = """
CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'fail-at-commit' THEN
        RAISE EXCEPTION 'refused at commit';
    END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON servers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit();
"""


@pytest.fixture
def commit_fails_for_one_name(runtime: Runtime) -> Iterator[None]:
    """A PostgreSQL deferred constraint: the insert succeeds, the commit fails."""
    if runtime.db.is_sqlite:
        pytest.skip("SQLite has no deferred triggers; the PostgreSQL run covers this")
    with runtime.db.engine.begin() as connection:
        connection.execute(text(FAIL_AT_COMMIT))
    yield
    with runtime.db.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER refuse_at_commit ON servers; DROP FUNCTION refuse_at_commit()"))


@pytest.mark.usefixtures("commit_fails_for_one_name")
def test_a_failed_commit_answers_500_and_keeps_nothing(client: TestClient, account_headers: dict[str, str]) -> None:
    response = client.post("/servers", json={"Name": "fail-at-commit"}, headers=account_headers)
    assert response.status_code == 500
    assert response.json()["ErrorCode"] == 101
    assert response.headers["X-Request-Id"] in response.json()["Message"]
    listing = client.get("/servers?count=10&offset=0", headers=account_headers).json()
    assert listing["TotalCount"] == 0
    # and the next request works
    assert client.post("/servers", json={"Name": "fine"}, headers=account_headers).status_code == 200
