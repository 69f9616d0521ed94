"""The Message Streams API over HTTP: every field, rule and ErrorCode, who may change what,
and the audit trail of each change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from postwarden.accounts.service import NewAccount
from postwarden.audit import AuditEvent
from postwarden.db import utcnow
from postwarden.policy import Role, ServerAccess
from postwarden.runtime import Runtime
from postwarden.servers.models import MessageStream
from postwarden.surfaces.postmark.stream_schemas import StreamResponse
from tests.conftest import create_account
from tests.surfaces.postmark.test_servers import assert_error
from tests.surfaces.team.helpers import add_member, sign_in

STREAM_FIELDS = list(StreamResponse.model_fields)
DEFAULTS = [
    ("outbound", "Default Transactional Stream", "Transactional", "None"),
    ("inbound", "Default Inbound Stream", "Inbound", "None"),
    ("broadcast", "Default Broadcast Stream", "Broadcasts", "Postmark"),
]


class Server:
    """A server of the test account and its token."""

    def __init__(self, client: TestClient, account_headers: dict[str, str], name: str = "Production") -> None:
        created = client.post("/servers", json={"Name": name}, headers=account_headers)
        assert created.status_code == 200, created.text
        self.id: int = created.json()["ID"]
        self.headers = {"X-Postmark-Server-Token": created.json()["ApiTokens"][0]}


@pytest.fixture
def server(client: TestClient, account_headers: dict[str, str]) -> Server:
    return Server(client, account_headers)


def create(client: TestClient, headers: dict[str, str], stream_id: str = "transactional-dev", **body: Any) -> Any:
    fields = {"ID": stream_id, "Name": "Dev", "MessageStreamType": "Transactional", **body}
    response = client.post("/message-streams", json=fields, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def listed(client: TestClient, headers: dict[str, str], query: str = "") -> list[str]:
    response = client.get(f"/message-streams{query}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["TotalCount"] == len(body["MessageStreams"])
    return [stream["ID"] for stream in body["MessageStreams"]]


def events(runtime: Runtime, action: str) -> list[AuditEvent]:
    with runtime.db.session_scope(write=False) as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def moment(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() is not None, text
    return parsed


def test_every_server_has_the_three_default_streams(client: TestClient, server: Server) -> None:
    response = client.get("/message-streams", headers=server.headers)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["MessageStreams", "TotalCount"] and body["TotalCount"] == 3
    streams = body["MessageStreams"]
    assert [(s["ID"], s["Name"], s["MessageStreamType"]) for s in streams] == [d[:3] for d in DEFAULTS]
    assert [s["SubscriptionManagementConfiguration"] for s in streams] == [
        {"UnsubscribeHandlingType": d[3]} for d in DEFAULTS
    ]
    for stream in streams:
        assert list(stream) == STREAM_FIELDS
        assert stream["ServerID"] == server.id
        assert stream["Description"] is None and stream["UpdatedAt"] is None
        assert stream["ArchivedAt"] is None and stream["ExpectedPurgeDate"] is None
        assert abs(moment(stream["CreatedAt"]) - utcnow()) < timedelta(minutes=1)
        assert client.get(f"/message-streams/{stream['ID']}", headers=server.headers).json() == stream


def test_create_returns_the_stream_and_the_listing_filters_it(client: TestClient, server: Server) -> None:
    created = create(client, server.headers, Description="  Second transactional stream  ")
    assert list(created) == STREAM_FIELDS
    assert (created["ID"], created["ServerID"], created["Name"]) == ("transactional-dev", server.id, "Dev")
    assert created["Description"] == "Second transactional stream"
    assert created["MessageStreamType"] == "Transactional"
    assert created["SubscriptionManagementConfiguration"] == {"UnsubscribeHandlingType": "None"}
    assert (created["UpdatedAt"], created["ArchivedAt"], created["ExpectedPurgeDate"]) == (None, None, None)
    assert client.get("/message-streams/transactional-dev", headers=server.headers).json() == created

    news = create(client, server.headers, "newsletters", MessageStreamType="broadcasts")
    assert news["MessageStreamType"] == "Broadcasts"
    assert news["SubscriptionManagementConfiguration"] == {"UnsubscribeHandlingType": "Postmark"}
    opt_in = create(
        client,
        server.headers,
        "receipts",
        SubscriptionManagementConfiguration={"UnsubscribeHandlingType": "postmark"},
    )
    assert opt_in["SubscriptionManagementConfiguration"] == {"UnsubscribeHandlingType": "Postmark"}

    everything = ["outbound", "inbound", "broadcast", "transactional-dev", "newsletters", "receipts"]
    assert listed(client, server.headers) == everything
    assert listed(client, server.headers, "?MessageStreamType=All&IncludeArchivedStreams=false") == everything
    assert listed(client, server.headers, "?messageStreamType=Transactional") == [
        "outbound",
        "transactional-dev",
        "receipts",
    ]
    assert listed(client, server.headers, "?message_stream_type=broadcasts") == ["broadcast", "newsletters"]
    assert listed(client, server.headers, "?MessageStreamType=Inbound") == ["inbound"]
    assert_error(client.get("/message-streams?MessageStreamType=Outbound", headers=server.headers), 422, 1221)
    text = assert_error(client.get("/message-streams?IncludeArchivedStreams=yes", headers=server.headers), 422, 9040)
    assert text == "The 'IncludeArchivedStreams' query parameter must be true or false."


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"ID": None}, 1222, "A valid 'ID' must be provided."),
        ({"ID": "  "}, 1222, "A valid 'ID' must be provided."),
        *(
            (
                {"ID": bad},
                1227,
                "The 'ID' must start with a letter and hold only lowercase letters, digits, '-' and '_', "
                "30 characters at most.",
            )
            for bad in ("Dev", "9lives", "dev stream", "dev.stream", "x" * 31, "dev\n")
        ),
        ({"ID": "pm-dev"}, 1233, "The 'ID' must not start with the 'pm-' prefix."),
        (
            {"ID": "all"},
            1237,
            "The 'ID' 'all' is reserved; these IDs are: all, broadcasts, default, transactional.",
        ),
        ({"ID": "outbound"}, 1230, "The 'ID' provided (outbound) already exists for this server."),
        ({"ID": "broadcast"}, 1230, "The 'ID' provided (broadcast) already exists for this server."),
        ({"Name": None}, 1223, "A valid 'Name' must be provided."),
        ({"Name": " \t "}, 1223, "A valid 'Name' must be provided."),
        ({"Name": "n" * 101}, 1224, "The 'Name' is too long: 100 characters at most."),
        ({"Description": "d" * 1001}, 1231, "The 'Description' is too long: 1000 characters at most."),
        ({"Description": "Our <b>best</b> stream"}, 1234, "The 'Description' must not contain HTML tags."),
        ({"MessageStreamType": None}, 1221, "The 'MessageStreamType' must be one of: Transactional, Broadcasts."),
        (
            {"MessageStreamType": "Marketing"},
            1221,
            "The 'MessageStreamType' must be one of: Transactional, Broadcasts.",
        ),
        (
            {"MessageStreamType": "Inbound"},
            1228,
            "A server can only have one inbound stream, and every server has it.",
        ),
        (
            {"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Sometimes"}},
            1240,
            "The 'UnsubscribeHandlingType' must be one of: None, Postmark, Custom.",
        ),
        (
            {"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Custom"}},
            1238,
            "Custom unsubscribe handling is not available here: use Postmark (or None on a transactional stream).",
        ),
        (
            {
                "MessageStreamType": "Broadcasts",
                "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "None"},
            },
            1239,
            "The 'UnsubscribeHandlingType' None is not supported for Broadcasts streams: use Postmark.",
        ),
        ({"ID": 5}, 402, "Invalid value for 'ID': Input should be a valid string."),
    ],
)
def test_create_errors(client: TestClient, server: Server, body: dict[str, Any], code: int, message: str) -> None:
    fields = {"ID": "dev", "Name": "Dev", "MessageStreamType": "Transactional", **body}
    assert assert_error(client.post("/message-streams", json=fields, headers=server.headers), 422, code) == message
    assert listed(client, server.headers) == ["outbound", "inbound", "broadcast"]


def test_a_server_holds_ten_streams_archived_ones_included(
    client: TestClient, server: Server, account_headers: dict[str, str]
) -> None:
    for n in range(7):
        create(client, server.headers, f"stream-{n}")
    assert client.post("/message-streams/stream-0/archive", headers=server.headers).status_code == 200
    refused = client.post(
        "/message-streams",
        json={"ID": "one-more", "Name": "X", "MessageStreamType": "Broadcasts"},
        headers=server.headers,
    )
    assert assert_error(refused, 422, 1225) == (
        "This server already has the maximum of 10 message streams (the defaults and archived streams included)."
    )
    assert len(listed(client, server.headers, "?IncludeArchivedStreams=true")) == 10
    other = Server(client, account_headers, "Staging")  # the limit is per server
    assert create(client, other.headers, "stream-0")["ServerID"] == other.id


def test_edit_is_partial_and_sets_updated_at(client: TestClient, server: Server, runtime: Runtime) -> None:
    create(client, server.headers, Description="Keep me")
    renamed = client.patch("/message-streams/transactional-dev", json={"Name": "Renamed"}, headers=server.headers)
    assert renamed.status_code == 200, renamed.text
    stream = renamed.json()
    assert list(stream) == STREAM_FIELDS
    assert (stream["Name"], stream["Description"]) == ("Renamed", "Keep me")
    assert moment(stream["UpdatedAt"]) >= moment(stream["CreatedAt"])

    both = client.patch(
        "/Message-Streams/transactional-dev/",
        json={
            "name": None,
            "Description": "",
            "SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Postmark"},
        },
        headers=server.headers,
    ).json()
    assert (both["Name"], both["Description"]) == ("Renamed", None)
    assert both["SubscriptionManagementConfiguration"] == {"UnsubscribeHandlingType": "Postmark"}
    assert client.get("/message-streams/transactional-dev", headers=server.headers).json() == both

    updates = events(runtime, "message_stream.updated")
    assert [event.changes for event in updates] == [
        {"name": {"before": "Dev", "after": "Renamed"}},
        {
            "description": {"before": "Keep me", "after": None},
            "unsubscribe_handling": {"before": "None", "after": "Postmark"},
        },
    ]
    same = client.patch("/message-streams/transactional-dev", json={"Name": "Renamed"}, headers=server.headers)
    assert same.json() == both  # nothing changed: no event, UpdatedAt kept
    assert len(events(runtime, "message_stream.updated")) == 2


@pytest.mark.parametrize(
    ("stream_id", "body", "code"),
    [
        ("transactional-dev", {}, 9036),
        ("transactional-dev", {"Name": None, "Description": None}, 9036),
        ("transactional-dev", {"Name": ""}, 1223),
        ("transactional-dev", {"Name": "n" * 101}, 1224),
        ("transactional-dev", {"Description": "<script>x</script>"}, 1234),
        ("transactional-dev", {"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Custom"}}, 1238),
        ("broadcast", {"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "None"}}, 1239),
        ("inbound", {"SubscriptionManagementConfiguration": {"UnsubscribeHandlingType": "Postmark"}}, 1239),
        ("transactional-dev", {"SubscriptionManagementConfiguration": {}}, 402),
        ("missing", {"Name": "X"}, 1226),
    ],
)
def test_edit_errors(client: TestClient, server: Server, stream_id: str, body: dict[str, Any], code: int) -> None:
    create(client, server.headers)
    assert_error(client.patch(f"/message-streams/{stream_id}", json=body, headers=server.headers), 422, code)


def test_archive_hides_the_stream_until_unarchived(client: TestClient, server: Server, runtime: Runtime) -> None:
    create(client, server.headers)
    archived = client.post("/message-streams/transactional-dev/archive", json={}, headers=server.headers)
    assert archived.status_code == 200, archived.text
    answer = archived.json()
    assert list(answer) == ["ID", "ServerID", "ExpectedPurgeDate"]
    assert (answer["ID"], answer["ServerID"]) == ("transactional-dev", server.id)
    stream = client.get("/message-streams/transactional-dev", headers=server.headers).json()
    assert moment(answer["ExpectedPurgeDate"]) - moment(stream["ArchivedAt"]) == timedelta(days=45)
    assert stream["ExpectedPurgeDate"] == answer["ExpectedPurgeDate"]
    assert "transactional-dev" not in listed(client, server.headers)
    assert "transactional-dev" in listed(client, server.headers, "?IncludeArchivedStreams=True")

    # Archiving again (postmark.js sends {}, others nothing at all) keeps the first date.
    again = client.post(
        "/message-streams/transactional-dev/archive", content=b"", headers={**server.headers, "Content-Length": "0"}
    )
    assert again.json() == answer
    assert len(events(runtime, "message_stream.archived")) == 1

    back = client.post("/message-streams/transactional-dev/unarchive", headers=server.headers)
    assert back.status_code == 200, back.text
    assert list(back.json()) == STREAM_FIELDS
    assert (back.json()["ArchivedAt"], back.json()["ExpectedPurgeDate"]) == (None, None)
    assert "transactional-dev" in listed(client, server.headers)
    assert client.post("/message-streams/transactional-dev/unarchive", headers=server.headers).json() == back.json()
    (archive_event,) = events(runtime, "message_stream.archived")
    (unarchive_event,) = events(runtime, "message_stream.unarchived")
    assert archive_event.changes == {"archived_at": {"before": None, "after": stream["ArchivedAt"]}}
    assert unarchive_event.changes == {"archived_at": {"before": stream["ArchivedAt"], "after": None}}


def test_the_default_transactional_and_inbound_streams_cannot_be_archived(client: TestClient, server: Server) -> None:
    for stream_id in ("outbound", "inbound"):
        text = assert_error(client.post(f"/message-streams/{stream_id}/archive", headers=server.headers), 422, 1229)
        assert text == "You cannot archive the default transactional and inbound streams (outbound, inbound)."
    assert client.post("/message-streams/broadcast/archive", headers=server.headers).status_code == 200
    assert listed(client, server.headers) == ["outbound", "inbound"]


def test_a_stream_past_its_purge_date_cannot_be_unarchived(
    client: TestClient, server: Server, runtime: Runtime
) -> None:
    create(client, server.headers)
    client.post("/message-streams/transactional-dev/archive", headers=server.headers)
    long_ago = utcnow() - timedelta(days=45, minutes=1)
    with runtime.db.session_scope() as session:
        session.execute(
            update(MessageStream).where(MessageStream.stream_id == "transactional-dev").values(archived_at=long_ago)
        )
    refused = client.post("/message-streams/transactional-dev/unarchive", headers=server.headers)
    text = assert_error(refused, 422, 1232)
    assert text.startswith("You cannot unarchive this message stream anymore: its purge date (")


def test_stream_ids_match_exactly_and_only_on_their_server(
    client: TestClient, server: Server, account_headers: dict[str, str]
) -> None:
    other = Server(client, account_headers, "Staging")
    create(client, other.headers, "only-there")
    for path in ("/message-streams/Outbound", "/message-streams/only-there", "/message-streams/only-there/archive"):
        method = client.post if path.endswith("archive") else client.get
        text = assert_error(method(path, headers=server.headers), 422, 1226)
        assert text.endswith("was not found on this server.")
    assert_error(client.patch("/message-streams/only-there", json={"Name": "X"}, headers=server.headers), 422, 1226)
    assert_error(client.post("/message-streams/only-there/unarchive", headers=server.headers), 422, 1226)


def test_view_only_reads_streams_and_changes_none(
    client: TestClient, server: Server, runtime: Runtime, account: NewAccount
) -> None:
    add_member(runtime, account, "viewer@example.org", Role.MEMBER, access={server.id: ServerAccess.VIEW})
    viewer = sign_in(client, "viewer@example.org")
    on_server = f"server_id={server.id}"
    assert client.get(f"/message-streams?{on_server}", headers=viewer).json()["TotalCount"] == 3
    assert client.get(f"/message-streams/outbound?{on_server}", headers=viewer).json()["ID"] == "outbound"
    body = {"ID": "dev", "Name": "Dev", "MessageStreamType": "Transactional"}
    for response in (
        client.post(f"/message-streams?{on_server}", json=body, headers=viewer),
        client.patch(f"/message-streams/broadcast?{on_server}", json={"Name": "X"}, headers=viewer),
        client.post(f"/message-streams/broadcast/archive?{on_server}", headers=viewer),
        client.post(f"/message-streams/broadcast/unarchive?{on_server}", headers=viewer),
    ):
        assert_error(response, 403, 9001)
    assert listed(client, server.headers) == ["outbound", "inbound", "broadcast"]
    assert client.get("/message-streams/broadcast", headers=server.headers).json()["Name"] == "Default Broadcast Stream"
    stranger = Server(client, {"X-Postmark-Account-Token": account.account_token}, "Elsewhere")
    assert_error(client.get(f"/message-streams?server_id={stranger.id}", headers=viewer), 403, 9001)


def test_an_account_token_names_the_server_and_every_change_is_audited(
    client: TestClient, server: Server, account_headers: dict[str, str], account: NewAccount, runtime: Runtime
) -> None:
    assert_error(client.get("/message-streams", headers=account_headers), 422, 9038)
    foreign = Server(client, {"X-Postmark-Account-Token": create_account(runtime, "Other").account_token}, "Theirs")
    assert_error(client.get(f"/message-streams?server_id={foreign.id}", headers=account_headers), 404, 601)
    assert_error(client.get(f"/message-streams?server_id={foreign.id}", headers=server.headers), 404, 601)

    created = client.post(
        f"/message-streams?ServerID={server.id}",
        json={"ID": "by-account", "Name": "By account", "MessageStreamType": "Broadcasts"},
        headers=account_headers,
    )
    assert created.status_code == 200, created.text
    assert created.json()["ServerID"] == server.id
    assert "by-account" in listed(client, server.headers)
    create(client, server.headers)

    by_account, by_server = events(runtime, "message_stream.created")
    assert (by_account.actor_credential, by_account.account_id) == ("account_token", account.account.id)
    assert by_server.actor_credential == "server_token"
    assert (by_account.target_type, by_account.target_label) == ("message_stream", "by-account on Production")
    with runtime.db.session_scope(write=False) as session:
        row = session.scalar(select(MessageStream).where(MessageStream.stream_id == "by-account"))
        assert row is not None and by_account.target_id == str(row.id)
    assert by_account.changes == {
        "stream_id": {"before": None, "after": "by-account"},
        "stream_type": {"before": None, "after": "Broadcasts"},
        "name": {"before": None, "after": "By account"},
        "description": {"before": None, "after": None},
        "unsubscribe_handling": {"before": None, "after": "Postmark"},
    }
    assert events(runtime, "message_stream.created")[1].changes["stream_id"]["after"] == "transactional-dev"
