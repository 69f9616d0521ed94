"""The console's servers: each person's pins, and a server's page with its settings, its tokens
shown on request (each reveal recorded, the password asked again when it is old), its streams
and webhooks, for Full access and View only members alike."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.errors import PermissionDenied, Reason
from postwarden.identity import Actor, Credential, Via
from postwarden.policy import ACCOUNT_TOKEN_ROLE, Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.servers.models import ServerPin
from postwarden.servers.service import ServerService
from postwarden.tokens.service import TokenService
from postwarden.users.models import User, UserSession
from tests.surfaces.console.test_console import console_sign_in, csrf
from tests.surfaces.team.helpers import PASSWORD, add_member, create_server

ACCOUNT_TOKEN = "X-Postmark-Account-Token"


def console_events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        found = session.scalars(
            select(AuditEvent).where(AuditEvent.action == action, AuditEvent.via == "console").order_by(AuditEvent.id)
        ).all()
        session.expunge_all()
        return list(found)


def listed_names(page: str) -> list[str]:
    return re.findall(r'<a href="/console/servers/\d+">([^<]+)</a>', page)


def server_token(runtime: Runtime, server_id: int) -> str:
    with runtime.db.session_scope(write=False) as session:
        return TokenService(session, runtime).server_tokens(server_id)[0]


def settings_form(client: TestClient, server_id: int, **changes: str | None) -> dict[str, str]:
    """The settings form as the page shows it, with ``changes`` typed in (None unticks a box)."""
    page = client.get(f"/console/servers/{server_id}").text
    form = page[page.index('action="/console/servers/' + str(server_id) + '/settings"') :].split("</form>")[0]
    values = dict(
        re.findall(r'<input type="(?:text|url|number|hidden)" [^>]*?name="([^"]+)" [^>]*?value="([^"]*)"', form)
    )
    values |= dict.fromkeys(
        re.findall(r'<input type="checkbox" id="[^"]+" name="([^"]+)" value="on" checked', form), "on"
    )
    for select_name, options in re.findall(r'<select id="[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected>', options)
        assert chosen is not None, select_name
        values[select_name] = chosen.group(1)
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return values


def test_pinned_servers_come_first_and_each_change_is_recorded_once(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """Pins reorder only their owner's list: pinned first, then the rest, each part alphabetical;
    pinning what is pinned changes nothing and records nothing."""
    ids = {name: create_server(client, account, name) for name in ("zeta", "Alpha", "beta", "Mid")}
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    console_sign_in(client, account.owner_email, account.owner_password)
    token = csrf(client, "/console/servers")
    assert listed_names(client.get("/console/servers").text) == ["Alpha", "beta", "Mid", "zeta"]

    for name in ("zeta", "Mid", "zeta"):
        answer = client.post(f"/console/servers/{ids[name]}/pin", data={"csrf_token": token})
        assert answer.status_code == 200 and f"{name} is pinned to the top of your list." in answer.text
    page = client.get("/console/servers").text
    assert listed_names(page) == ["Mid", "zeta", "Alpha", "beta"]
    assert re.search(r'aria-pressed="true" aria-label="Pin zeta"', page)
    assert re.search(r'aria-pressed="false" aria-label="Pin Alpha"', page)
    pinned = console_events(runtime, "server.pinned")
    assert [(e.target_type, e.target_label, e.actor_label) for e in pinned] == [
        ("server", "zeta", account.owner_email),
        ("server", "Mid", account.owner_email),
    ]

    unpinned = client.post(f"/console/servers/{ids['zeta']}/unpin", data={"csrf_token": token, "q": "e"})
    assert unpinned.url.path == "/console/servers" and unpinned.url.params["q"] == "e"  # the search is kept
    assert "zeta is no longer pinned." in unpinned.text
    assert listed_names(unpinned.text) == ["beta", "zeta"]  # "e" matches these two; neither is pinned now
    client.post(f"/console/servers/{ids['zeta']}/unpin", data={"csrf_token": token})
    assert [e.target_label for e in console_events(runtime, "server.unpinned")] == ["zeta"]
    assert listed_names(client.get("/console/servers").text) == ["Mid", "Alpha", "beta", "zeta"]

    other = TestClient(client.app)
    console_sign_in(other, "admin@example.org")
    assert listed_names(other.get("/console/servers").text) == ["Alpha", "beta", "Mid", "zeta"]  # not their pins


def test_a_server_one_cannot_see_cannot_be_pinned_nor_by_an_account_token(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """Pins are a person's: an account token is refused with a reason, and a member cannot pin
    a server hidden from them."""
    seen, hidden = create_server(client, account, "Seen"), create_server(client, account, "Hidden")
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={seen: ServerAccess.VIEW})
    console_sign_in(client, "viewer@example.org")
    token = csrf(client, "/console/servers")
    assert client.post(f"/console/servers/{seen}/pin", data={"csrf_token": token}).status_code == 200
    assert client.post(f"/console/servers/{hidden}/pin", data={"csrf_token": token}).status_code == 403
    assert [e.target_label for e in console_events(runtime, "server.pinned")] == ["Seen"]

    token_actor = Actor(
        credential=Credential.ACCOUNT_TOKEN,
        label="account token",
        via=Via.API,
        account_id=account.account.id,
        role=ACCOUNT_TOKEN_ROLE.value,
    )
    with runtime.db.session_scope() as session:
        service = ServerService(session, token_actor, runtime)
        with pytest.raises(PermissionDenied) as refused:
            service.pin(account.account.id, seen)
        assert refused.value.reason is Reason.PERSONAL_CREDENTIAL_NEEDED and "person" in refused.value.message
    with runtime.db.session_scope(write=False) as session:
        pins = session.execute(select(ServerPin.user_id, ServerPin.server_id)).all()
    assert [server for _, server in pins] == [seen]  # the viewer's own pin only


def test_a_view_only_member_sees_the_server_read_only_and_cannot_reveal_its_tokens(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """View only: settings, streams and webhooks to read, no form and no reveal button; posting
    either form anyway is refused by the services and records nothing."""
    server_id = create_server(client, account, "Production")
    hook = client.post(
        f"/webhooks?server_id={server_id}",
        json={"Url": "https://hooks.example.com/postmark", "Triggers": {"Open": {"Enabled": True}}},
        headers={ACCOUNT_TOKEN: account.account_token},
    )
    assert hook.status_code == 200, hook.text
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={server_id: ServerAccess.VIEW})
    console_sign_in(client, "viewer@example.org")

    page = client.get(f"/console/servers/{server_id}")
    assert page.status_code == 200 and "<h1>" in page.text and "Production" in page.text
    assert "You may see this server's settings but not change them." in page.text
    assert "/settings" not in page.text and 'name="name"' not in page.text
    assert "Reveal tokens" not in page.text and "does not include its API tokens" in page.text
    assert "Delete server" not in page.text
    assert "Default Transactional Stream" in page.text and "https://hooks.example.com/postmark" in page.text
    assert server_token(runtime, server_id) not in page.text

    token = csrf(client, f"/console/servers/{server_id}")
    revealed = client.post(f"/console/servers/{server_id}/reveal-tokens", data={"csrf_token": token})
    assert revealed.status_code == 403 and server_token(runtime, server_id) not in revealed.text
    changed = client.post(f"/console/servers/{server_id}/settings", data={"csrf_token": token, "name": "Mine"})
    assert changed.status_code == 403
    assert console_events(runtime, "server_token.viewed") == [] and console_events(runtime, "server.updated") == []
    kept = client.get(f"/servers/{server_id}", headers={ACCOUNT_TOKEN: account.account_token}).json()
    assert kept["Name"] == "Production"


def test_a_full_access_member_changes_the_settings_and_sees_refusals_next_to_the_form(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """The form saves through the same service as the API (one ``server.updated`` by the
    console); a refused value comes back on the form as typed, with the service's message."""
    server_id = create_server(client, account, "Staging")
    create_server(client, account, "Production")
    add_member(runtime, account, "dev@example.org", Role.MEMBER, access={server_id: ServerAccess.FULL})
    console_sign_in(client, "dev@example.org")
    token = csrf(client, f"/console/servers/{server_id}")

    form = settings_form(client, server_id, name="Staging EU", color="green", track_opens="on", track_links="HtmlOnly")
    assert form["smtp_api_activated"] == "on"  # on by default: the form shows it ticked, and keeps it
    saved = client.post(f"/console/servers/{server_id}/settings", data={**form, "csrf_token": token})
    assert saved.status_code == 200 and "Settings saved." in saved.text
    api = client.get(f"/servers/{server_id}", headers={ACCOUNT_TOKEN: account.account_token}).json()
    assert (api["Name"], api["Color"], api["TrackOpens"], api["TrackLinks"], api["SmtpApiActivated"]) == (
        "Staging EU",
        "green",
        True,
        "HtmlOnly",
        True,
    )
    events = console_events(runtime, "server.updated")
    assert [(e.target_label, e.actor_label, sorted(e.changes)) for e in events] == [
        ("Staging EU", "dev@example.org", ["color", "name", "track_links", "track_opens"])
    ]

    unchanged = client.post(
        f"/console/servers/{server_id}/settings", data={**settings_form(client, server_id), "csrf_token": token}
    )
    assert "Nothing to save" in unchanged.text and len(console_events(runtime, "server.updated")) == 1

    taken = client.post(
        f"/console/servers/{server_id}/settings",
        data={**settings_form(client, server_id, name="production"), "csrf_token": token},
    )
    assert taken.status_code == 422 and "Server name already exists." in taken.text
    assert re.search(r'id="name" name="name" value="production" [^>]*aria-invalid="true"', taken.text)
    bad_hook = client.post(
        f"/console/servers/{server_id}/settings",
        data={**settings_form(client, server_id, bounce_hook_url="http://127.0.0.1/hook"), "csrf_token": token},
    )
    assert bad_hook.status_code == 422 and "BounceHookUrl" in bad_hook.text
    assert re.search(r'id="bounce_hook_url" [^>]*aria-invalid="true"', bad_hook.text)
    threshold = client.post(
        f"/console/servers/{server_id}/settings",
        data={**settings_form(client, server_id, inbound_spam_threshold="lots"), "csrf_token": token},
    )
    assert threshold.status_code == 422 and "whole number from 0 to 30" in threshold.text
    assert len(console_events(runtime, "server.updated")) == 1


def test_revealing_tokens_shows_them_and_records_every_click(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """Hidden until asked; each reveal is its own ``server_token.viewed``, unlike the API's
    hourly summary of reads, and the token never travels in a URL."""
    server_id = create_server(client, account, "Production")
    console_sign_in(client, account.owner_email, account.owner_password)
    secret = server_token(runtime, server_id)
    page = client.get(f"/console/servers/{server_id}").text
    assert "Reveal tokens" in page and secret not in page
    token = csrf(client, f"/console/servers/{server_id}")
    for clicks in (1, 2):
        revealed = client.post(f"/console/servers/{server_id}/reveal-tokens", data={"csrf_token": token})
        assert revealed.status_code == 200 and revealed.url.path == f"/console/servers/{server_id}/reveal-tokens"
        assert f'<code class="secret">{secret}</code>' in revealed.text
        assert "Confirm your password" not in revealed.text  # typed at sign-in, a moment ago
        assert len(console_events(runtime, "server_token.viewed")) == clicks
    viewed = console_events(runtime, "server_token.viewed")
    assert {(e.target_type, e.target_id, e.target_label, e.actor_label) for e in viewed} == {
        ("server", str(server_id), "Production", account.owner_email)
    }
    assert secret not in client.get(f"/console/servers/{server_id}").text


def test_revealing_tokens_asks_the_password_again_once_it_is_older_than_fifteen_minutes(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """The form comes back as a password prompt that posts the same request again; a wrong
    password shows nothing and records no view."""
    server_id = create_server(client, account, "Production")
    console_sign_in(client, account.owner_email, account.owner_password)
    with runtime.db.session_scope() as session:
        owner = session.scalar(select(User.id).where(User.email == account.owner_email))
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == owner)
            .values(password_confirmed_at=utcnow() - timedelta(minutes=16))
        )
    secret = server_token(runtime, server_id)
    token = csrf(client, f"/console/servers/{server_id}")
    asked = client.post(f"/console/servers/{server_id}/reveal-tokens", data={"csrf_token": token})
    assert asked.status_code == 200 and "Confirm your password" in asked.text
    assert "reveal this server&#39;s API tokens" in asked.text and secret not in asked.text
    assert f'action="/console/servers/{server_id}/reveal-tokens"' in asked.text
    wrong = client.post(
        f"/console/servers/{server_id}/reveal-tokens", data={"csrf_token": token, "current_password": "not it"}
    )
    assert wrong.status_code == 401 and "That is not your password." in wrong.text and secret not in wrong.text
    assert console_events(runtime, "server_token.viewed") == []
    right = client.post(
        f"/console/servers/{server_id}/reveal-tokens",
        data={"csrf_token": token, "current_password": account.owner_password},
    )
    assert right.status_code == 200 and secret in right.text
    assert len(console_events(runtime, "server_token.viewed")) == 1


def test_streams_and_webhooks_are_listed_with_their_state(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """Archived streams stay listed as such; a webhook shows its stream and enabled triggers,
    and never the credentials its URL may carry."""
    server_id = create_server(client, account, "Production")
    headers = {ACCOUNT_TOKEN: account.account_token}
    stream = client.post(
        f"/message-streams?server_id={server_id}",
        json={"ID": "newsletters", "Name": "Newsletters", "MessageStreamType": "Broadcasts"},
        headers=headers,
    )
    assert stream.status_code == 200, stream.text
    assert (
        client.post(f"/message-streams/newsletters/archive?server_id={server_id}", headers=headers).status_code == 200
    )
    hook = client.post(
        f"/webhooks?server_id={server_id}",
        json={
            "Url": "https://user:hunter2@hooks.example.com/in",
            "Triggers": {"Bounce": {"Enabled": True}, "Delivery": {"Enabled": True}},
        },
        headers=headers,
    )
    assert hook.status_code == 200, hook.text
    console_sign_in(client, account.owner_email, account.owner_password)
    page = client.get(f"/console/servers/{server_id}").text
    row = page[page.index("<code>newsletters</code>") :].split("</tr>")[0]
    assert "Newsletters" in row and "Broadcasts" in row and "Archived" in row
    outbound = page[page.index("<code>outbound</code>") :].split("</tr>")[0]
    assert "Active" in outbound
    webhook = page[page.index("hooks.example.com/in") - 60 :].split("</tr>")[0]
    assert "Delivery, Bounce" in webhook and "hunter2" not in page
    assert "managed through the API for now" in page
    assert '<a href="/console/servers">← Servers</a>' in page


def test_deleting_a_server_asks_the_password_every_time_and_only_the_owner_sees_it(
    client: TestClient, runtime: Runtime, account: NewAccount
) -> None:
    """Deleting is Owner's only (Admins neither see nor may post it), and the password is asked
    even right after signing in."""
    server_id = create_server(client, account, "Old")
    add_member(runtime, account, "admin@example.org", Role.ADMIN)
    admin = TestClient(client.app)
    console_sign_in(admin, "admin@example.org")
    assert "Delete server" not in admin.get(f"/console/servers/{server_id}").text
    admin_token = csrf(admin, f"/console/servers/{server_id}")
    refused = admin.post(
        f"/console/servers/{server_id}/delete", data={"csrf_token": admin_token, "current_password": PASSWORD}
    )
    assert refused.status_code == 403

    console_sign_in(client, account.owner_email, account.owner_password)
    token = csrf(client, f"/console/servers/{server_id}")
    asked = client.post(f"/console/servers/{server_id}/delete", data={"csrf_token": token})
    assert "Confirm your password" in asked.text and "delete this server" in asked.text
    deleted = client.post(
        f"/console/servers/{server_id}/delete",
        data={"csrf_token": token, "current_password": account.owner_password},
    )
    assert deleted.url.path == "/console/servers" and "Server Old deleted." in deleted.text
    assert [e.target_label for e in console_events(runtime, "server.deleted")] == ["Old"]
    assert client.get(f"/console/servers/{server_id}").status_code == 404
