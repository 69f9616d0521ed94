"""Invitations as the inviting admin and the invitee see them (addresses, mailed links,
replacement, resending, revocation, expiry, joining with an existing login, the link opening
the console), and the account's own settings and billing through ``/account`` and ``/account/billing``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import AccountService, NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.identity import Actor
from postwarden.invitations.models import Invitation
from postwarden.mail.models import OutboxMessage
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.tasks import TaskQueue
from tests.conftest import create_account
from tests.surfaces.team.helpers import LINK, PASSWORD, add_member, bearer, create_server, owner_headers, sign_in

NEW_PASSWORD = "a long enough secret"


def token_headers(account: NewAccount) -> dict[str, str]:
    return {"X-Postmark-Account-Token": account.account_token}


def error_of(answer: Any) -> tuple[int, int]:
    return answer.status_code, answer.json()["ErrorCode"]


def outbox(runtime: Runtime, account_id: int) -> list[tuple[str, str]]:
    """(recipient, body) of every message queued for the account, oldest first."""
    with runtime.db.session_scope() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.account_id == account_id).order_by(OutboxMessage.id)
        )
        return [(row.to_address, row.text_body) for row in rows]


def links_for(runtime: Runtime, account_id: int, email: str) -> list[str]:
    """The paths of the invitation links mailed to ``email``, oldest first."""
    found = []
    for to_address, body in outbox(runtime, account_id):
        if to_address == email:
            match = LINK.search(body)
            assert match is not None, body
            found.append(match.group(1))
    return found


def invite(
    client: TestClient, account: NewAccount, emails: list[str], role: str = "Member", **extra: Any
) -> list[dict[str, Any]]:
    answer = client.post("/invitations", json={"Emails": emails, "Role": role, **extra}, headers=token_headers(account))
    assert answer.status_code == 200, answer.text
    invitations: list[dict[str, Any]] = answer.json()["Invitations"]
    return invitations


def pending(client: TestClient, account: NewAccount) -> dict[str, Any]:
    answer = client.get("/invitations?count=50&offset=0", headers=token_headers(account))
    assert answer.status_code == 200, answer.text
    listed: dict[str, Any] = answer.json()
    return listed


def pause_sending(runtime: Runtime, account_id: int) -> None:
    with runtime.db.session_scope() as session:
        AccountService(session, Actor.system("tests"), runtime).set_sending_paused(account_id, paused=True)


# Invitations: who is invited, with what, and what is mailed


def test_one_invitation_per_distinct_address_with_the_given_role_and_access(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    staging = create_server(client, account, "Staging")
    production = create_server(client, account, "Production")
    created = invite(
        client,
        account,
        ["Ann@Example.com", "bob@example.com", "ANN@example.COM", " Carl@Example.org "],
        role="Technical",
        Servers=[
            {"ServerID": production, "Access": "ViewOnly"},
            {"ServerID": staging, "Access": "FullAccess"},
        ],
        ServersLimited=True,
    )

    assert sorted(i["Email"] for i in created) == ["ann@example.com", "bob@example.com", "carl@example.org"]
    for invitation in created:
        assert invitation["Role"] == "Technical"
        assert invitation["ServersLimited"] is True
        assert staging < production
        assert invitation["Servers"] == [
            {"ServerID": staging, "Access": "FullAccess"},
            {"ServerID": production, "Access": "ViewOnly"},
        ]
        assert invitation["Expired"] is False
    assert len({i["ID"] for i in created}) == 3

    listed = pending(client, account)
    assert listed["TotalCount"] == 3
    assert [i["Email"] for i in listed["Invitations"]] == ["ann@example.com", "bob@example.com", "carl@example.org"]

    mailed = outbox(runtime, account.account.id)
    assert sorted(to for to, _ in mailed) == ["ann@example.com", "bob@example.com", "carl@example.org"]
    links = [links_for(runtime, account.account.id, i["Email"]) for i in created]
    assert all(len(found) == 1 for found in links)
    assert len({found[0] for found in links}) == 3  # each person has their own link
    assert TaskQueue(runtime).huey.pending_count() == 3


def test_an_accepted_invitation_grants_the_role_and_servers_it_named(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    staging = create_server(client, account, "Staging")
    create_server(client, account, "Production")
    invite(client, account, ["Dana@Example.com"], Servers=[{"ServerID": staging, "Access": "ViewOnly"}])
    (link,) = links_for(runtime, account.account.id, "dana@example.com")

    assert error_of(client.post(link, json={"Name": "Dana", "Password": "short"})) == (422, 9007)
    accepted = client.post(link, json={"Name": "Dana", "Password": NEW_PASSWORD})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["AccountID"] == account.account.id
    me = client.get("/me", headers=bearer(accepted.json()["SessionToken"])).json()
    assert me["Email"] == "dana@example.com" and me["Name"] == "Dana"
    assert me["Role"] == "Member"
    assert me["Servers"] == [{"ServerID": staging, "Name": "Staging", "Access": "ViewOnly"}]
    assert pending(client, account)["TotalCount"] == 0


REFUSED_INVITATIONS: list[tuple[dict[str, Any], int]] = [
    ({"Emails": ["new@example.com"], "Role": "Owner"}, 9017),
    ({"Emails": ["new@example.com"], "Role": "owner"}, 9017),
    ({"Emails": ["new@example.com"], "Role": "Boss"}, 9015),
    ({"Emails": ["new@example.com", "not-an-address"], "Role": "Member"}, 9005),
    ({"Emails": ["new@example.com", "two@@example.com"], "Role": "Member"}, 9005),
    ({"Emails": [], "Role": "Member"}, 9022),
    ({"Emails": [f"person{n}@example.com" for n in range(51)], "Role": "Member"}, 9022),
]


def test_refused_invitations_create_nothing_and_mail_nothing(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    for body, code in REFUSED_INVITATIONS:
        answer = client.post("/invitations", json=body, headers=token_headers(account))
        assert error_of(answer) == (422, code), (body, answer.text)
        assert answer.json()["Message"]
    assert pending(client, account)["TotalCount"] == 0
    assert outbox(runtime, account.account.id) == []

    created = invite(client, account, [f"person{n}@example.com" for n in range(50)])
    assert len(created) == 50
    assert len(outbox(runtime, account.account.id)) == 50


def test_inviting_an_existing_member_is_refused(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, "member@example.com", Role.MEMBER)
    answer = client.post(
        "/invitations",
        json={"Emails": ["fresh@example.com", "Member@Example.com"], "Role": "Member"},
        headers=token_headers(account),
    )
    assert error_of(answer) == (422, 9023)
    assert "member@example.com" in answer.json()["Message"]
    owner = client.post(
        "/invitations", json={"Emails": [account.owner_email.upper()], "Role": "Admin"}, headers=token_headers(account)
    )
    assert error_of(owner) == (422, 9023)
    assert pending(client, account)["TotalCount"] == 0
    assert outbox(runtime, account.account.id) == []


def test_server_access_must_name_this_accounts_servers_and_fit_the_role(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    own = create_server(client, account, "Ours")
    other = create_account(runtime, "Other")
    theirs = create_server(client, other, "Theirs")

    foreign = client.post(
        "/invitations",
        json={"Emails": ["x@example.com"], "Role": "Member", "Servers": [{"ServerID": theirs, "Access": "FullAccess"}]},
        headers=token_headers(account),
    )
    assert error_of(foreign) == (422, 9019)
    missing = client.post(
        "/invitations",
        json={"Emails": ["x@example.com"], "Role": "Member", "Servers": [{"ServerID": 999999, "Access": "ViewOnly"}]},
        headers=token_headers(account),
    )
    assert error_of(missing) == (422, 9019)
    bad_level = client.post(
        "/invitations",
        json={"Emails": ["x@example.com"], "Role": "Member", "Servers": [{"ServerID": own, "Access": "Everything"}]},
        headers=token_headers(account),
    )
    assert error_of(bad_level) == (422, 9019)
    billing = client.post(
        "/invitations",
        json={"Emails": ["x@example.com"], "Role": "Billing", "Servers": [{"ServerID": own, "Access": "ViewOnly"}]},
        headers=token_headers(account),
    )
    assert error_of(billing) == (422, 9020)
    admin = client.post(
        "/invitations",
        json={"Emails": ["x@example.com"], "Role": "Admin", "Servers": [{"ServerID": own, "Access": "ViewOnly"}]},
        headers=token_headers(account),
    )
    assert error_of(admin) == (422, 9020)
    limited_member = client.post(
        "/invitations",
        json={"Emails": ["x@example.com"], "Role": "Member", "ServersLimited": True},
        headers=token_headers(account),
    )
    assert error_of(limited_member) == (422, 9020)
    assert pending(client, account)["TotalCount"] == 0
    assert outbox(runtime, account.account.id) == []

    plain_billing = invite(client, account, ["x@example.com"], role="Billing")
    assert plain_billing[0]["Role"] == "Billing" and plain_billing[0]["Servers"] == []


# Invitations: one live link per person


def test_inviting_again_replaces_the_pending_invitation(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    server = create_server(client, account, "Staging")
    assert len(invite(client, account, ["dana@example.com"])) == 1
    (second,) = invite(
        client, account, ["DANA@example.com"], role="Technical", Servers=[{"ServerID": server, "Access": "ViewOnly"}]
    )

    listed = pending(client, account)
    assert listed["TotalCount"] == 1
    (only,) = listed["Invitations"]
    assert only["ID"] == second["ID"]
    assert only["Role"] == "Technical"
    assert only["Servers"] == [{"ServerID": server, "Access": "ViewOnly"}]

    old_link, new_link = links_for(runtime, account.account.id, "dana@example.com")
    assert error_of(client.post(old_link, json={"Name": "Dana", "Password": NEW_PASSWORD})) == (404, 9024)
    assert client.get(old_link).status_code == 404
    joined = client.post(new_link, json={"Name": "Dana", "Password": NEW_PASSWORD})
    assert joined.status_code == 200, joined.text
    assert client.get("/me", headers=bearer(joined.json()["SessionToken"])).json()["Role"] == "Technical"


def test_resending_mails_a_new_link_and_the_old_one_stops_working(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    (invitation,) = invite(client, account, ["dana@example.com"])
    resent = client.post(f"/invitations/{invitation['ID']}/resend", headers=token_headers(account))
    assert resent.status_code == 200, resent.text
    assert resent.json()["ID"] == invitation["ID"]
    assert resent.json()["Email"] == "dana@example.com"
    assert pending(client, account)["TotalCount"] == 1

    old_link, new_link = links_for(runtime, account.account.id, "dana@example.com")
    assert old_link != new_link
    assert error_of(client.post(old_link, json={"Name": "Dana", "Password": NEW_PASSWORD})) == (404, 9024)
    assert client.get(new_link).status_code == 200
    joined = client.post(new_link, json={"Name": "Dana", "Password": NEW_PASSWORD})
    assert joined.status_code == 200, joined.text
    assert error_of(client.post(new_link, json={"Password": NEW_PASSWORD})) == (404, 9024)  # single use
    accepted = client.post(f"/invitations/{invitation['ID']}/resend", headers=token_headers(account))
    assert error_of(accepted) == (404, 9021)


def test_resending_renews_an_expired_invitation(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    (invitation,) = invite(client, account, ["dana@example.com"])
    with runtime.db.session_scope() as session:
        session.execute(
            update(Invitation).where(Invitation.id == invitation["ID"]).values(expires_at=utcnow() - timedelta(days=1))
        )
    (listed,) = pending(client, account)["Invitations"]
    assert listed["Expired"] is True

    resent = client.post(f"/invitations/{invitation['ID']}/resend", headers=token_headers(account))
    assert resent.status_code == 200, resent.text
    assert resent.json()["Expired"] is False
    new_link = links_for(runtime, account.account.id, "dana@example.com")[-1]
    assert client.post(new_link, json={"Name": "Dana", "Password": NEW_PASSWORD}).status_code == 200


def test_revoking_an_invitation_kills_its_link(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    kept, revoked = invite(client, account, ["kept@example.com", "revoked@example.com"])
    answer = client.delete(f"/invitations/{revoked['ID']}", headers=token_headers(account))
    assert answer.status_code == 200, answer.text
    assert answer.json()["ErrorCode"] == 0
    assert "revoked@example.com" in answer.json()["Message"]

    listed = pending(client, account)
    assert listed["TotalCount"] == 1
    assert [i["ID"] for i in listed["Invitations"]] == [kept["ID"]]
    (link,) = links_for(runtime, account.account.id, "revoked@example.com")
    assert error_of(client.post(link, json={"Name": "R", "Password": NEW_PASSWORD})) == (404, 9024)
    assert client.get(link).status_code == 404
    assert error_of(client.delete(f"/invitations/{revoked['ID']}", headers=token_headers(account))) == (404, 9021)
    assert error_of(client.post(f"/invitations/{revoked['ID']}/resend", headers=token_headers(account))) == (404, 9021)
    with runtime.db.session_scope() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.target_type == "invitation", AuditEvent.target_id == str(revoked["ID"])
            )
        ).all()
    assert "invitation.revoked" in actions

    other = create_account(runtime, "Other")
    (theirs,) = invite(client, other, ["dana@example.com"])
    for path in ("/invitations/999999", "/invitations/abc", f"/invitations/{theirs['ID']}"):
        assert error_of(client.delete(path, headers=token_headers(account))) == (404, 9021), path
        assert error_of(client.post(f"{path}/resend", headers=token_headers(account))) == (404, 9021), path
    assert pending(client, other)["TotalCount"] == 1  # the other account's invitation is untouched


def test_an_expired_link_is_refused(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    (invitation,) = invite(client, account, ["dana@example.com"])
    (link,) = links_for(runtime, account.account.id, "dana@example.com")
    with runtime.db.session_scope() as session:
        session.execute(
            update(Invitation)
            .where(Invitation.id == invitation["ID"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    answer = client.post(link, json={"Name": "Dana", "Password": NEW_PASSWORD})
    assert error_of(answer) == (410, 9025)
    assert "expired" in answer.json()["Message"]
    page = client.get(link)  # the console's page, through the API's redirect
    assert page.status_code == 410 and "expired" in page.text and "<form" not in page.text
    assert client.post("/sessions", json={"Email": "dana@example.com", "Password": NEW_PASSWORD}).status_code == 401
    answer = client.post("/invitations/accept/" + "0" * 64, json={"Name": "X", "Password": NEW_PASSWORD})
    assert error_of(answer) == (404, 9024)


# Invitations: the invitee


def test_an_existing_login_joins_with_its_own_password(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    other = create_account(runtime, "Other")
    add_member(runtime, other, "dana@example.com", Role.ADMIN)
    invite(client, account, ["Dana@example.com"], role="Technical")
    (link,) = links_for(runtime, account.account.id, "dana@example.com")

    wrong = client.post(link, json={"Password": "not her password at all"})
    assert error_of(wrong) == (401, 9027)
    with runtime.db.session_scope() as session:
        assert session.scalar(select(Invitation.accepted_at).where(Invitation.account_id == account.account.id)) is None
    assert pending(client, account)["TotalCount"] == 1

    joined = client.post(link, json={"Name": "Someone Else", "Password": PASSWORD})
    assert joined.status_code == 200, joined.text
    assert joined.json()["AccountID"] == account.account.id
    me = client.get("/me", headers=bearer(joined.json()["SessionToken"])).json()
    assert me["AccountID"] == account.account.id
    assert me["Role"] == "Technical"
    assert sorted((a["ID"], a["Name"], a["Role"]) for a in me["Accounts"]) == sorted(
        [(account.account.id, "Acme", "Technical"), (other.account.id, "Other", "Admin")]
    )
    # One login: the other account still answers to the same password, with its own role.
    there = sign_in(client, "dana@example.com", PASSWORD, AccountID=other.account.id)
    assert client.get("/me", headers=there).json()["Role"] == "Admin"
    assert pending(client, account)["TotalCount"] == 0


def test_the_api_link_sends_a_browser_to_the_consoles_page(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    invite(client, account, ["dana@example.com"], role="Technical")
    (link,) = links_for(runtime, account.account.id, "dana@example.com")
    answer = client.get(link, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, f"/console{link}")


# Invitations while the operator has paused the account's sending


def test_no_invitation_is_mailed_while_sending_is_paused(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    (earlier,) = invite(client, account, ["earlier@example.com"])
    pause_sending(runtime, account.account.id)
    queued_before = TaskQueue(runtime).huey.pending_count()

    answer = client.post(
        "/invitations", json={"Emails": ["dana@example.com"], "Role": "Member"}, headers=token_headers(account)
    )
    assert error_of(answer) == (422, 9026)
    resent = client.post(f"/invitations/{earlier['ID']}/resend", headers=token_headers(account))
    assert error_of(resent) == (422, 9026)

    assert [to for to, _ in outbox(runtime, account.account.id)] == ["earlier@example.com"]
    assert TaskQueue(runtime).huey.pending_count() == queued_before
    assert [i["Email"] for i in pending(client, account)["Invitations"]] == ["earlier@example.com"]
    (link,) = links_for(runtime, account.account.id, "earlier@example.com")
    assert client.get(link).status_code == 200  # the failed resend did not replace the link
    assert client.get("/account", headers=token_headers(account)).json()["SendingPaused"] is True


# /account


def test_rename_the_account_and_the_change_is_audited(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    owner = owner_headers(client, account)
    before = client.get("/account", headers=owner)
    assert before.status_code == 200, before.text
    assert before.json()["Name"] == "Acme"
    assert before.json()["ID"] == account.account.id
    assert before.json()["RequireTwoFactor"] is False

    renamed = client.put("/account", json={"Name": "  Acme Corp  "}, headers=owner)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["Name"] == "Acme Corp"
    assert client.get("/account", headers=token_headers(account)).json()["Name"] == "Acme Corp"
    with runtime.db.session_scope() as session:
        events = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "account.updated", AuditEvent.account_id == account.account.id
            )
        ).all()
        assert len(events) == 1
        assert events[0].changes == {"name": {"before": "Acme", "after": "Acme Corp"}}
        assert events[0].actor_label == account.owner_email

    for bad in ("", "   ", "x" * 256):
        assert error_of(client.put("/account", json={"Name": bad}, headers=owner)) == (422, 9004), bad
    assert client.get("/account", headers=owner).json()["Name"] == "Acme Corp"

    add_member(runtime, account, "tech@example.com", Role.TECHNICAL)
    tech = sign_in(client, "tech@example.com")
    assert error_of(client.put("/account", json={"Name": "Mine"}, headers=tech)) == (403, 9001)
    assert client.get("/account", headers=token_headers(account)).json()["Name"] == "Acme Corp"


def test_an_account_edit_must_change_something(client: TestClient, account: NewAccount) -> None:
    owner = owner_headers(client, account)
    assert error_of(client.put("/account", json={}, headers=owner)) == (422, 9036)
    assert error_of(client.put("/account", content=b"", headers=owner)) == (422, 9036)
    assert error_of(client.put("/account", json={"Name": None}, headers=owner)) == (422, 9036)


def test_requiring_two_factor(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    owner = owner_headers(client, account)
    refused = client.put("/account", json={"RequireTwoFactor": True}, headers=owner)
    assert error_of(refused) == (422, 9035)
    assert client.get("/account", headers=owner).json()["RequireTwoFactor"] is False

    server = create_server(client, account, "Staging")
    add_member(runtime, account, "member@example.com", Role.MEMBER, access={server: ServerAccess.VIEW})
    member = sign_in(client, "member@example.com")
    assert client.get("/servers?count=10&offset=0", headers=member).status_code == 200

    required = client.put("/account", json={"RequireTwoFactor": True}, headers=token_headers(account))
    assert required.status_code == 200, required.text
    assert required.json()["RequireTwoFactor"] is True

    blocked = client.get("/servers?count=10&offset=0", headers=member)
    assert error_of(blocked) == (403, 9011)
    assert error_of(client.get(f"/servers/{server}", headers=member)) == (403, 9011)
    enrolment = client.post("/me/two-factor", headers=member)
    assert enrolment.status_code == 200, enrolment.text
    assert enrolment.json()["Secret"]


# /account/billing


def test_the_billing_role_reads_and_changes_billing(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, "billing@example.com", Role.BILLING)
    billing = sign_in(client, "billing@example.com")

    current = client.get("/account/billing", headers=billing)
    assert current.status_code == 200, current.text
    assert current.json()["Plan"] == "Platform"
    assert current.json()["ServerLimit"] is None
    assert {p["Name"]: p["ServerLimit"] for p in current.json()["Plans"]} == {
        "Basic": 10,
        "Pro": 50,
        "Platform": None,
    }

    changed = client.put(
        "/account/billing",
        json={
            "Plan": "basic",
            "ReceiptRecipients": ["Books@Example.com", "books@example.com", "cfo@example.com"],
            "BillTo": "Acme Ltd\n1 Main Street",
        },
        headers=billing,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["Plan"] == "Basic"
    assert changed.json()["ServerLimit"] == 10
    assert changed.json()["ReceiptRecipients"] == ["books@example.com", "cfo@example.com"]

    seen = client.get("/account/billing", headers=token_headers(account)).json()
    assert seen["Plan"] == "Basic" and seen["ServerLimit"] == 10
    assert seen["ReceiptRecipients"] == ["books@example.com", "cfo@example.com"]
    assert seen["BillTo"] == "Acme Ltd\n1 Main Street"
    account_view = client.get("/account", headers=token_headers(account)).json()
    assert account_view["Plan"] == "Basic" and account_view["ServerLimit"] == 10
    with runtime.db.session_scope() as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.account_id == account.account.id)).all()
    assert "billing.updated" in actions

    # Billing sees no servers and cannot rename the account.
    assert error_of(client.put("/account", json={"Name": "Mine"}, headers=billing)) == (403, 9001)


def test_a_technical_member_has_no_billing(client: TestClient, runtime: Runtime, account: NewAccount) -> None:
    add_member(runtime, account, "tech@example.com", Role.TECHNICAL)
    tech = sign_in(client, "tech@example.com")
    assert error_of(client.get("/account/billing", headers=tech)) == (403, 9001)
    assert error_of(client.put("/account/billing", json={"Plan": "Basic"}, headers=tech)) == (403, 9001)
    assert client.get("/account/billing", headers=token_headers(account)).json()["Plan"] == "Platform"


def test_the_basic_plan_caps_servers_at_ten(client: TestClient, account: NewAccount) -> None:
    answer = client.put("/account/billing", json={"Plan": "Basic"}, headers=token_headers(account))
    assert answer.status_code == 200, answer.text
    for n in range(10):
        create_server(client, account, f"Server {n}")
    refused = client.post("/servers", json={"Name": "Eleventh"}, headers=token_headers(account))
    assert refused.status_code == 422
    assert refused.json()["ErrorCode"] == 614

    upgraded = client.put("/account/billing", json={"Plan": "Pro"}, headers=token_headers(account))
    assert upgraded.json()["ServerLimit"] == 50
    create_server(client, account, "Eleventh")


def test_invalid_billing_changes_are_refused(client: TestClient, account: NewAccount) -> None:
    admin = token_headers(account)
    eleven = [f"r{n}@example.com" for n in range(11)]
    for body in (
        {"Plan": "Enterprise"},
        {"Plan": "Basic", "ReceiptRecipients": eleven},
        {"ReceiptRecipients": eleven},
        {"BillingErrorRecipients": eleven},
        {"BillTo": "x" * 1001},
    ):
        assert error_of(client.put("/account/billing", json=body, headers=admin)) == (422, 9035), body
    assert error_of(client.put("/account/billing", json={"ReceiptRecipients": ["nope"]}, headers=admin)) == (422, 9005)
    assert error_of(client.put("/account/billing", json={}, headers=admin)) == (422, 9036)
    assert error_of(client.put("/account/billing", content=b"", headers=admin)) == (422, 9036)

    unchanged = client.get("/account/billing", headers=admin).json()
    assert unchanged["Plan"] == "Platform" and unchanged["ServerLimit"] is None
    assert unchanged["ReceiptRecipients"] == []

    ten = client.put("/account/billing", json={"BillingErrorRecipients": eleven[:10]}, headers=admin)
    assert ten.status_code == 200, ten.text
    assert ten.json()["BillingErrorRecipients"] == eleven[:10]
