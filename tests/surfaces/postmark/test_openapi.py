"""/openapi.json tells the truth: schemathesis drives every operation it lists against a
live server, with schema-valid and schema-invalid requests, and checks every answer
against the document (no 5xx, documented status codes, content types, headers, bodies).

The operations are driven one by one through ``APIOperation.as_strategy`` rather than
``schema.parametrize()``: that needs the schema at import time, before any database exists,
and ``schemathesis.pytest.from_fixture`` (schemathesis 4.32) fails on pytest 9.2, whose
nodes no longer have ``_nodeid``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode

from postwarden.accounts.service import NewAccount
from postwarden.identity import Actor, Credential, Via
from postwarden.policy import Role
from postwarden.runtime import Runtime
from postwarden.tokens.personal import NewPersonalToken, PersonalTokenService
from postwarden.users.service import UserService
from tests.conftest import LiveServer

EXAMPLES_PER_OPERATION = 25

#: Refusals of schema-valid requests that no schema can state, with the ErrorCode that says
#: so: they depend on stored data, on URL parsing and address classes, or on "at least one
#: field that is not null". Any other refusal of a schema-valid request is a schema gap.
REFUSALS_BEYOND_THE_SCHEMA = {
    501: "the sender id names no sender signature of this account",
    503: "the sender address is at a public mailbox domain",
    504: "the account already has a sender signature for this address",
    505: "a DKIM rotation is already pending",
    506: "the sender signature is already confirmed",
    510: "the domain id names no domain of this account",
    511: "the Return-Path domain must be a subdomain of the domain",
    512: "the domain already exists in the account",
    522: "a sender's Return-Path domain must be a subdomain of its address's domain",
    523: "the Return-Path CNAME in DNS does not point where it should",
    601: "the server id names no server of this account",
    602: "the inbound domain is already used by another server",
    603: "the name is already used by another server of the account",
    604: "deleting servers is not enabled on this account token",
    606: "a hook URL must be http(s) and reach a public host",
    609: "an edit must change at least one field (null means absent)",
    614: "the account's plan allows no more servers",
    1101: "the id or alias names no template (or the LayoutTemplate no layout) of this server",
    1105: "the server already has the most templates it may have (100)",
    1109: "a template edit must carry at least one field that is not null",
    1120: "a template edit may not take away the only body it has",
    1122: "template content must parse as a template, and an alias must be free on the server",
    1123: "a stored layout takes no Subject or LayoutTemplate, and a template keeps its TemplateType",
    1124: "the source server has no template with an alias to push",
    1125: "a pushed template's type must match the destination's template of the same alias",
    1130: "a layout that templates use cannot be deleted",
    1131: "a layout must hold {{{ @content }}} exactly once in each body",
    1225: "the server already has the most message streams it may have (ten)",
    1226: "the stream id names no message stream of this server",
    1229: "the stream id names the default transactional or inbound stream, which stays",
    1230: "the server already has a message stream with this ID",
    1232: "the archived stream's purge date has passed",
    1239: "a stream's unsubscribe handling must suit its type (Broadcasts need Postmark, inbound takes None)",
    1350: "webhooks: the stream is archived",
    1351: "webhooks: the stream is the server's inbound stream",
    1352: "the webhook id names no webhook of this server",
    1353: "webhooks: bounce and spam complaint triggers exist on transactional streams only",
    1354: "a webhook URL must be http(s) and reach a public host",
    1355: "a webhook create or edit must carry at least one field that is not null",
    1357: "a webhook's ID and MessageStream may only be sent back unchanged",
    1358: "a webhook header may not be one that frames the request (Host, Content-Length...)",
    1359: "the stream already has the most webhooks it may have",
    9011: "the account was made to require two-factor authentication, which the owner has not set up",
    9014: "the user id names no member of this account",
    9016: "the user id names the Owner, who cannot be removed or demoted",
    9017: "nobody becomes Owner by a role change or an invitation",
    9018: "ownership goes only to an Admin",
    9019: "the server id names no server of this account",
    9020: "per-server access does not apply to that member's role",
    9021: "the invitation id names no pending invitation",
    9023: "the address is already a member",
    9024: "the token names no invitation link",
    9027: "the email and password name no user",
    9028: "too many failed sign-ins in the last minutes",
    9030: "the code is not the authenticator's current one",
    9031: "two-factor authentication is already set up",
    9032: "two-factor enrolment was not started",
    9033: "the token id names no personal token of the caller",
    9036: "an edit must change at least one field (null means absent)",
    9037: "the password is not the caller's",
    9034: "a personal token's expiry must be in the future and its servers in the account",
    9041: "the token id names no live SCIM token of this account",
    9043: "the group id names no group of this account",
    9050: "the event id names no audit event of this account",
    9052: "audit log query parameters that do not go together (fromdate after todate, ...)",
    9044: "a group mapping's servers must be in the account, and it never grants Owner",
}
#: Operations that end the credential the run authenticates with; tests/surfaces/team
#: drives their success, so here they get only invalid requests.
ENDS_OWN_CREDENTIAL = {"DELETE /sessions", "DELETE /me/tokens/{token_id}"}


@dataclass
class Target:
    schema: Any
    server_id: int


@pytest.fixture
def target(live_server: LiveServer, account: NewAccount) -> Target:
    created = httpx.post(
        f"{live_server.base_url}/servers",
        json={"Name": "Schema target"},
        headers={"X-Postmark-Account-Token": account.account_token},
    )
    assert created.status_code == 200, created.text
    config = schemathesis.Config.from_dict(
        {
            # Every credential on every request: each operation reads the one it needs, and the
            # "ignored_auth" check drops them to prove that the operation then refuses.
            "headers": {
                "X-Postmark-Account-Token": account.account_token,
                "X-Postmark-Server-Token": created.json()["ApiTokens"][0],
                "Authorization": f"Bearer {owner_personal_token(live_server.runtime, account)}",
            },
            "generation": {"deterministic": True, "database": "none"},
            # Replaced by the stricter check_refusal below: Postmark answers every refusal
            # with 422 and an ErrorCode, including refusals a schema cannot express, so the
            # ErrorCode, not the status, tells a schema gap from a legitimate refusal.
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json", config=config)
    return Target(schema, created.json()["ID"])


def owner_personal_token(runtime: Runtime, account: NewAccount) -> str:
    with runtime.db.session_scope() as session:
        owner = UserService(session, Actor.system("tests"), runtime).find_user_by_email(account.owner_email)
        assert owner is not None
        actor = Actor(
            credential=Credential.PERSONAL_TOKEN,
            label=owner.email,
            via=Via.API,
            account_id=account.account.id,
            user_id=owner.id,
            role=Role.OWNER.value,
        )
        _, token = PersonalTokenService(session, actor, runtime).create_token(
            account.account.id, NewPersonalToken(name="schema run")
        )
    return token


def has_nul(case: Case[Any]) -> bool:
    """NUL characters are refused (402/600): valid JSON that no database stores."""
    sent = json.dumps([case.body, case.query, case.path_parameters], default=str)
    return "\\u0000" in sent


def check_refusal(case: Case[Any], response: Any) -> None:
    if response.status_code == 200:
        return
    body = response.json()
    code = body["ErrorCode"]
    if code in REFUSALS_BEYOND_THE_SCHEMA or (code in (402, 600) and has_nul(case)):
        return
    pytest.fail(
        f"{case.operation.label} refused a schema-valid request with {response.status_code} {body}: "
        f"the schema should say why.\nRequest: query={case.query} body={case.body!r}"
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_every_operation_answers_as_documented(target: Target, mode: GenerationMode, subtests: pytest.Subtests) -> None:
    operations = [result.ok() for result in target.schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /servers",
        "POST /servers",
        "PUT /server",
        "DELETE /servers/{server_id}",
    }
    for operation in operations:
        if mode is GenerationMode.POSITIVE and operation.label in ENDS_OWN_CREDENTIAL:
            continue
        strategy = operation.as_strategy(mode)
        if mode is GenerationMode.POSITIVE and "{server_id}" in operation.path:
            # Random IDs name no server, so cases that name the existing one are mixed in.
            strategy |= operation.as_strategy(mode, path_parameters={"server_id": target.server_id})

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def exercise(case: Case[Any]) -> None:
            response = case.call_and_validate()
            if mode is GenerationMode.POSITIVE:
                check_refusal(case, response)

        with subtests.test(msg=operation.label):
            try:
                exercise()
            except Unsatisfiable:
                # Nothing about this operation can be made invalid (no parameters, or
                # free-form strings only): there is no invalid request to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
