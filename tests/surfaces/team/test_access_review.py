"""The access review as an Owner runs it before signing a periodic review off: every member
with their effective access (SCIM groups included), the flags that ask for a second look,
paged as JSON or whole as a CSV file that is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.db import utcnow
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.tokens.models import PersonalToken
from postwarden.users.models import Membership, User
from tests.surfaces.scim.helpers import GROUP_SCHEMA, GROUPS, USERS, create_user, issue_token, patch_body
from tests.surfaces.team.helpers import add_member, create_server, owner_headers, sign_in

REVIEW = "/access-review?count=100&offset=0"
EXPORT = "/access-review/export"
KEYS = {
    "ID",
    "Email",
    "Name",
    "Role",
    "Suspended",
    "TwoFactorEnabled",
    "LastLoginAt",
    "LastTokenUseAt",
    "PersonalTokens",
    "DefaultAccess",
    "Servers",
    "Flags",
}


def _days_ago(days: int) -> datetime:
    return utcnow() - timedelta(days=days)


def _set_user(runtime: Runtime, email: str, **values: Any) -> None:
    with runtime.db.session_scope() as session:
        session.execute(update(User).where(User.email == email).values(**values))


def _add_token(
    runtime: Runtime,
    account: NewAccount,
    email: str,
    *,
    created: datetime,
    used: datetime | None = None,
    revoked: bool = False,
    expires: datetime | None = None,
) -> None:
    """A personal token as the database holds it after some time, made without using it."""
    with runtime.db.session_scope() as session:
        user_id = session.scalar(select(User.id).where(User.email == email))
        session.add(
            PersonalToken(
                user_id=user_id,
                account_id=account.account.id,
                name="ci",
                secret_digest=secrets.token_hex(32),
                created_at=created,
                last_used_at=used,
                revoked_at=utcnow() if revoked else None,
                expires_at=expires,
            )
        )


def _members(client: TestClient, headers: dict[str, str], query: str = "") -> dict[str, dict[str, Any]]:
    answer = client.get(REVIEW + query, headers=headers)
    assert answer.status_code == 200, answer.text
    return {member["Email"]: member for member in answer.json()["Members"]}


def _export(client: TestClient, headers: dict[str, str], query: str = "") -> list[dict[str, str]]:
    answer = client.get(EXPORT + query, headers=headers)
    assert answer.status_code == 200, answer.text
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_every_member_shows_with_effective_access_including_scim_groups_and_suspension(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    owner = owner_headers(client, account)
    production = create_server(client, account, "Production")
    staging = create_server(client, account, "Staging")
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    add_member(runtime, account, "dev@example.org", Role.TECHNICAL, access={staging: ServerAccess.FULL}, limited=True)
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={production: ServerAccess.VIEW})
    add_member(runtime, account, "billing@example.org", Role.BILLING)
    scim = issue_token(runtime, account).headers
    ann = create_user(client, scim, "ann@example.org")
    gone = create_user(client, scim, "gone@example.org")
    viewer_id = client.get("/users?count=10&offset=0&email=viewer", headers=owner).json()["Users"][0]["ID"]
    group = client.post(
        GROUPS,
        json={
            "schemas": [GROUP_SCHEMA],
            "displayName": "Support",
            "members": [{"value": ann["id"]}, {"value": str(viewer_id)}],
        },
        headers=scim,
    )
    assert group.status_code == 201, group.text
    mapped = client.put(
        f"/scim-groups/{group.json()['id']}",
        json={
            "Servers": [{"ServerID": staging, "Access": "ViewOnly"}, {"ServerID": production, "Access": "FullAccess"}]
        },
        headers=owner,
    )
    assert mapped.status_code == 200, mapped.text
    suspended = client.patch(
        f"{USERS}/{gone['id']}", json=patch_body({"op": "replace", "value": {"active": False}}), headers=scim
    )
    assert suspended.status_code == 200, suspended.text

    answer = client.get(REVIEW, headers=owner)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    emails = [member["Email"] for member in body["Members"]]
    assert body["TotalCount"] == 7 and len(emails) == 7
    assert emails == sorted(emails)
    assert all(set(member) == KEYS for member in body["Members"])
    members = {member["Email"]: member for member in body["Members"]}

    def reach(email: str) -> list[tuple[int, str, str]]:
        return [(s["ServerID"], s["ServerName"], s["Access"]) for s in members[email]["Servers"]]

    everywhere = [(production, "Production", "FullAccess"), (staging, "Staging", "FullAccess")]
    assert reach(account.owner_email) == everywhere and members[account.owner_email]["Role"] == "Owner"
    assert reach("admin@example.org") == everywhere
    assert reach("dev@example.org") == [(staging, "Staging", "FullAccess")]
    assert members["dev@example.org"]["DefaultAccess"] == "NoAccess"
    assert reach("billing@example.org") == [] and members["billing@example.org"]["DefaultAccess"] == "NoAccess"
    # Only through the group: ViewOnly on Staging and FullAccess on Production.
    assert reach("ann@example.org") == [(production, "Production", "FullAccess"), (staging, "Staging", "ViewOnly")]
    # Their own ViewOnly on Production, raised to FullAccess by the group: the strongest wins.
    assert reach("viewer@example.org") == reach("ann@example.org")
    assert members["gone@example.org"]["Suspended"] is True
    assert [email for email, member in members.items() if member["Suspended"]] == ["gone@example.org"]

    # The same effective access, name and standing as /users/{id} shows each member.
    for member in body["Members"]:
        shown = client.get(f"/users/{member['ID']}", headers=owner).json()
        assert [(s["ServerID"], s["Access"]) for s in shown["Servers"] if s["Access"] != "NoAccess"] == [
            (s["ServerID"], s["Access"]) for s in member["Servers"]
        ]
        for key in ("Email", "Name", "Role", "DefaultAccess", "Suspended", "TwoFactorEnabled", "LastLoginAt"):
            assert shown[key] == member[key], (member["Email"], key)


def test_flags_follow_sign_ins_second_factor_and_token_use(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    owner = owner_headers(client, account)
    for email in ("active", "inactive", "never", "idle", "fresh", "mixed", "dead"):
        add_member(runtime, account, f"{email}@example.org", Role.MEMBER)
    _set_user(runtime, account.owner_email, totp_enabled_at=utcnow())
    _set_user(runtime, "active@example.org", last_login_at=_days_ago(1), totp_enabled_at=utcnow())
    _set_user(runtime, "inactive@example.org", last_login_at=_days_ago(100))
    for email in ("idle", "fresh", "mixed", "dead"):
        _set_user(runtime, f"{email}@example.org", last_login_at=_days_ago(2))
    # idle: one token used 120 days ago, one never used and made 200 days ago.
    _add_token(runtime, account, "idle@example.org", created=_days_ago(300), used=_days_ago(120))
    _add_token(runtime, account, "idle@example.org", created=_days_ago(200))
    # fresh: never used, but made yesterday: not idle yet.
    _add_token(runtime, account, "fresh@example.org", created=_days_ago(1))
    # mixed: one idle token, one used this week.
    _add_token(runtime, account, "mixed@example.org", created=_days_ago(300), used=_days_ago(200))
    _add_token(runtime, account, "mixed@example.org", created=_days_ago(300), used=_days_ago(3))
    # dead: a revoked token used yesterday and an expired one: no live token, so nothing idle.
    _add_token(runtime, account, "dead@example.org", created=_days_ago(300), used=_days_ago(1), revoked=True)
    _add_token(runtime, account, "dead@example.org", created=_days_ago(300), expires=_days_ago(5))

    members = _members(client, owner)
    flags = {email.split("@")[0]: member["Flags"] for email, member in members.items()}
    assert flags == {
        "owner": [],
        "active": [],
        "inactive": ["NoTwoFactor", "Inactive"],
        "never": ["NoTwoFactor", "NeverLoggedIn"],
        "idle": ["NoTwoFactor", "TokensUnused"],
        "fresh": ["NoTwoFactor"],
        "mixed": ["NoTwoFactor"],
        "dead": ["NoTwoFactor"],
    }
    assert members[account.owner_email]["TwoFactorEnabled"] is True
    assert members["never@example.org"]["LastLoginAt"] is None
    tokens = {email.split("@")[0]: (m["PersonalTokens"], m["LastTokenUseAt"]) for email, m in members.items()}
    assert tokens["active"] == (0, None) and tokens["fresh"] == (1, None)
    assert tokens["idle"][0] == 2 and tokens["mixed"][0] == 2 and tokens["dead"][0] == 0
    assert datetime.fromisoformat(tokens["idle"][1]) < _days_ago(119)
    assert datetime.fromisoformat(tokens["mixed"][1]) > _days_ago(4)
    # The latest use of any token, a revoked one included: when the member last used the API.
    assert datetime.fromisoformat(tokens["dead"][1]) > _days_ago(2)

    # Wider windows: 100 days ago is recent within 150 days, 200 days within 365.
    wider = _members(client, owner, "&InactiveDays=150&unused_days=365")
    assert wider["inactive@example.org"]["Flags"] == ["NoTwoFactor"]
    assert wider["idle@example.org"]["Flags"] == ["NoTwoFactor"]
    # Narrower ones: the member seen 2 days ago is inactive over 1 day, the token used 3 days ago idle over 2.
    narrower = _members(client, owner, "&inactivedays=1&unuseddays=2")
    assert narrower["mixed@example.org"]["Flags"] == ["NoTwoFactor", "Inactive", "TokensUnused"]
    assert narrower["fresh@example.org"]["Flags"] == ["NoTwoFactor", "Inactive"]


def test_only_the_owner_admins_and_account_tokens_run_it(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server = create_server(client, account, "Production")
    for email, role in (
        ("admin@example.org", Role.ADMIN),
        ("tech@example.org", Role.TECHNICAL),
        ("billing@example.org", Role.BILLING),
        ("member@example.org", Role.MEMBER),
    ):
        add_member(runtime, account, email, role, access={server: ServerAccess.FULL} if role is Role.MEMBER else None)
    allowed = {
        "owner": owner_headers(client, account),
        "admin": sign_in(client, "admin@example.org"),
        "account token": {"X-Postmark-Account-Token": account.account_token},
    }
    for who, headers in allowed.items():
        assert client.get(REVIEW, headers=headers).status_code == 200, who
        assert client.get(EXPORT, headers=headers).status_code == 200, who
    for email in ("tech@example.org", "billing@example.org", "member@example.org"):
        headers = sign_in(client, email)
        for path in (REVIEW, EXPORT):
            refused = client.get(path, headers=headers)
            assert (refused.status_code, refused.json()["ErrorCode"]) == (403, 9001), (email, path)
            assert refused.headers["content-type"].startswith("application/json")
    missing = client.get(EXPORT)
    assert (missing.status_code, missing.json()["ErrorCode"]) == (401, 10)


def test_pages_by_count_and_offset_in_email_order(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    owner = owner_headers(client, account)
    for name in ("erin", "bob", "dave", "carol"):
        add_member(runtime, account, f"{name}@example.org", Role.MEMBER)
    pages = [client.get(f"/access-review?count=2&offset={offset}", headers=owner).json() for offset in (0, 2, 4)]
    assert [page["TotalCount"] for page in pages] == [5, 5, 5]
    assert [[member["Email"] for member in page["Members"]] for page in pages] == [
        ["bob@example.org", "carol@example.org"],
        ["dave@example.org", "erin@example.org"],
        [account.owner_email],
    ]
    beyond = client.get("/access-review?count=2&offset=10", headers=owner).json()
    assert beyond == {"TotalCount": 5, "Members": []}


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("", "count"),
        ("?count=10", "offset"),
        ("?count=0&offset=0", "count"),
        ("?count=501&offset=0", "count"),
        ("?count=10&offset=-1", "offset"),
        ("?count=ten&offset=0", "count"),
        ("?count=10&offset=0&inactivedays=0", "inactivedays"),
        ("?count=10&offset=0&inactivedays=-5", "inactivedays"),
        ("?count=10&offset=0&inactivedays=1.5", "inactivedays"),
        ("?count=10&offset=0&inactivedays=abc", "inactivedays"),
        ("?count=10&offset=0&inactivedays=36501", "inactivedays"),
        ("?count=10&offset=0&inactivedays=99999999999999999999999", "inactivedays"),
        ("?count=10&offset=0&UnusedDays=0", "unuseddays"),
        ("?count=10&offset=0&unuseddays=x", "unuseddays"),
    ],
)
def test_bad_paging_or_windows_are_422_naming_the_parameter(
    client: TestClient, account: NewAccount, query: str, named: str
) -> None:
    answer = client.get("/access-review" + query, headers={"X-Postmark-Account-Token": account.account_token})
    assert (answer.status_code, answer.json()["ErrorCode"]) == (422, 9013), answer.text
    assert f"'{named}'" in answer.json()["Message"]


@pytest.mark.parametrize("query", ["?inactivedays=0", "?unuseddays=-1", "?unuseddays=seven", "?inactivedays=36501"])
def test_the_export_refuses_bad_windows_before_the_file_starts(
    client: TestClient, account: NewAccount, query: str
) -> None:
    answer = client.get(EXPORT + query, headers={"X-Postmark-Account-Token": account.account_token})
    assert (answer.status_code, answer.json()["ErrorCode"]) == (422, 9013), answer.text
    assert "content-disposition" not in answer.headers


def test_the_export_is_a_csv_file_of_the_same_rows(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    owner = owner_headers(client, account)
    production = create_server(client, account, "Production")
    staging = create_server(client, account, "Staging")
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={production: ServerAccess.VIEW})
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    _set_user(runtime, "admin@example.org", name="Ada Admin", last_login_at=_days_ago(100), totp_enabled_at=utcnow())
    _add_token(runtime, account, "admin@example.org", created=_days_ago(200))

    answer = client.get(EXPORT + "?inactivedays=30", headers=owner)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    today = utcnow().date().isoformat()
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="access-review-{account.account.id}-{today}.csv"'
    )
    rows = list(csv.reader(io.StringIO(answer.text)))
    # The columns are the JSON member's fields, in its order.
    first_member = client.get(REVIEW, headers=owner).json()["Members"][0]
    assert rows[0] == list(first_member) and set(first_member) == KEYS
    exported = {row["Email"]: row for row in csv.DictReader(io.StringIO(answer.text))}
    assert list(exported) == ["admin@example.org", account.owner_email, "viewer@example.org"]
    admin = exported["admin@example.org"]
    assert admin["Name"] == "Ada Admin" and admin["Role"] == "Admin"
    assert admin["Suspended"] == "false" and admin["TwoFactorEnabled"] == "true"
    assert admin["PersonalTokens"] == "1" and admin["LastTokenUseAt"] == ""
    assert admin["Servers"] == f"Production ({production}): FullAccess; Staging ({staging}): FullAccess"
    assert admin["Flags"] == "Inactive;TokensUnused"
    assert exported["viewer@example.org"]["Servers"] == f"Production ({production}): ViewOnly"
    assert exported["viewer@example.org"]["Flags"] == "NoTwoFactor;NeverLoggedIn"

    # Row for row what the JSON review says, with the same windows.
    members = _members(client, owner, "&inactivedays=30")
    for email, row in exported.items():
        member = members[email]
        assert row["ID"] == str(member["ID"]) and row["Role"] == member["Role"]
        assert row["LastLoginAt"] == (member["LastLoginAt"] or "")
        assert row["DefaultAccess"] == member["DefaultAccess"]
        assert (row["Flags"].split(";") if row["Flags"] else []) == member["Flags"]


def test_the_export_escapes_cells_a_spreadsheet_would_run(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    owner = owner_headers(client, account)
    server = create_server(client, account, "=cmd|' /C calc'!A0")
    add_member(runtime, account, "a@example.org", Role.MEMBER, access={server: ServerAccess.FULL})
    add_member(runtime, account, "b@example.org", Role.MEMBER)
    add_member(runtime, account, "c@example.org", Role.MEMBER)
    add_member(runtime, account, "d@example.org", Role.MEMBER)
    add_member(runtime, account, "e@example.org", Role.MEMBER)
    _set_user(runtime, "a@example.org", name='=HYPERLINK("http://evil.example","x")')
    _set_user(runtime, "b@example.org", name="+1+1")
    _set_user(runtime, "c@example.org", name="-2+3")
    _set_user(runtime, "d@example.org", name="@SUM(A1:A2)")
    _set_user(runtime, "e@example.org", name='Plain, with a comma and a "quote"')

    exported = {row["Email"]: row for row in _export(client, owner)}
    assert exported["a@example.org"]["Name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert exported["a@example.org"]["Servers"] == f"'=cmd|' /C calc'!A0 ({server}): FullAccess"
    assert exported["b@example.org"]["Name"] == "'+1+1"
    assert exported["c@example.org"]["Name"] == "'-2+3"
    assert exported["d@example.org"]["Name"] == "'@SUM(A1:A2)"
    assert exported["e@example.org"]["Name"] == 'Plain, with a comma and a "quote"'
    # The JSON review shows names as they are: only the file is for spreadsheets.
    assert _members(client, owner)["b@example.org"]["Name"] == "+1+1"


def test_the_export_reads_every_member_batch_by_batch(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """More members than one batch (500): each appears once, in email order."""
    with runtime.db.session_scope() as session:
        emails = [f"bulk{index:04d}@example.org" for index in range(1, 1102)]
        session.execute(insert(User), [{"email": email, "password_hash": "x"} for email in emails])
        user_ids = session.execute(select(User.id, User.email).where(User.email.in_(emails))).all()
        session.execute(
            insert(Membership),
            [
                {
                    "account_id": account.account.id,
                    "user_id": user_id,
                    "role": Role.MEMBER.value,
                    "user_name": email,
                    "user_name_key": email,
                }
                for user_id, email in user_ids
            ],
        )
    exported = [row["Email"] for row in _export(client, {"X-Postmark-Account-Token": account.account_token})]
    assert exported == [*emails, account.owner_email]
    total = client.get("/access-review?count=1&offset=0", headers=owner_headers(client, account)).json()
    assert total["TotalCount"] == len(emails) + 1
