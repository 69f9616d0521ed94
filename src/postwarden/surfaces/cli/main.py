"""The ``postwarden`` command line, for operators."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from postwarden.accounts.service import AccountService, NewAccount
from postwarden.config import Settings, load_settings
from postwarden.db import utcnow
from postwarden.errors import PostwardenError
from postwarden.identity import Actor
from postwarden.migrations import alembic_config, upgrade
from postwarden.policy import ServerAccess
from postwarden.runtime import Runtime
from postwarden.servers.service import ServerFields, ServerService
from postwarden.tokens.secrets import Keyring
from postwarden.tokens.service import TokenService
from postwarden.users.service import Member, UserService, parse_access, parse_role

P = ParamSpec("P")
R = TypeVar("R")

DEMO_ACCOUNT = "Demo"
DEMO_OWNER = "owner@demo.postwarden.localhost"


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    """User mistakes end in one clear line and exit status 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except PostwardenError as exc:
            raise click.ClickException(exc.message) from exc
        except ValidationError as exc:
            problems = "; ".join(f"POSTWARDEN_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
            raise click.ClickException(f"invalid setting: {problems}") from exc
        except OperationalError as exc:
            raise click.ClickException(f"cannot use the database: {exc.orig}") from exc

    return wrapper


def _settings() -> Settings:
    return load_settings()


def _runtime() -> Runtime:
    runtime = Runtime.start(_settings(), warn=lambda text: click.echo(f"warning: {text}", err=True))
    _require_migrated(runtime)
    return runtime


def _operator(label: str) -> Actor:
    return Actor.system(f"cli: {label}")


def _require_migrated(runtime: Runtime) -> None:
    url = make_url(runtime.settings.resolved_database_url)
    if (
        url.get_backend_name() == "sqlite"
        and url.database not in {None, "", ":memory:"}
        and not Path(url.database).exists()
    ):
        raise click.ClickException(f"there is no database at {url.database} yet: run `postwarden migrate`")
    head = ScriptDirectory.from_config(alembic_config(runtime.settings.resolved_database_url)).get_current_head()
    with runtime.db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise click.ClickException(
            f"the database is not migrated (at {current or 'nothing'}, code needs {head}): run `postwarden migrate`"
        )


@click.group()
@click.version_option(package_name="postwarden")
def cli() -> None:
    """postwarden: account and access server for transactional email."""


@cli.command()
@friendly_errors
def migrate() -> None:
    """Create or upgrade the database schema to the current version."""
    settings = _settings()
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url, audit_key=Keyring(settings.resolved_secret_key).audit_key)
    click.echo("database is up to date", err=True)


@cli.command()
@click.option("--account", "account_name", required=True, help="Name of the new account.")
@click.option("--owner-email", required=True, help="Email of the account Owner (a new user).")
@click.option("--owner-password", default=None, help="Owner password; generated when omitted.")
@click.option("--server-limit", type=click.IntRange(min=0), default=None, help="Plan limit on servers.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (for scripts).")
@friendly_errors
def init(
    account_name: str, owner_email: str, owner_password: str | None, server_limit: int | None, as_json: bool
) -> None:
    """Create an account with its Owner and account token."""
    runtime = _runtime()
    with runtime.db.session_scope() as session:
        created = AccountService(session, _operator("init"), runtime).create_account(
            account_name, owner_email=owner_email, owner_password=owner_password, server_limit=server_limit
        )
    if as_json:
        click.echo(json.dumps(_new_account_json(created)))
    else:
        _print_new_account(created, server_token=None)


def _new_account_json(created: NewAccount) -> dict[str, Any]:
    return {
        "AccountID": created.account.id,
        "AccountName": created.account.name,
        "AccountToken": created.account_token,
        "OwnerEmail": created.owner_email,
        "OwnerPassword": created.owner_password,
    }


def _print_new_account(created: NewAccount, *, server_token: str | None) -> None:
    lines = [
        f"Account:        {created.account.name} (ID {created.account.id})",
        f"Owner email:    {created.owner_email}",
        f"Owner password: {created.owner_password}   (shown only now)",
        f"Account token:  {created.account_token}   (header X-Postmark-Account-Token)",
    ]
    if server_token:
        lines.append(f"Server token:   {server_token}   (header X-Postmark-Server-Token)")
    lines.append("Show the tokens again with: postwarden tokens show")
    width = max(map(len, lines))
    click.echo("+" + "-" * (width + 2) + "+")
    for line in lines:
        click.echo(f"| {line.ljust(width)} |")
    click.echo("+" + "-" * (width + 2) + "+")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8025, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@friendly_errors
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (and, on first start, create a demo account)."""
    import uvicorn

    runtime = _runtime()
    _ = runtime.settings.resolved_secret_key  # generated here, before workers start, so all share it
    _create_demo_account_once(runtime)
    runtime.db.dispose()
    click.echo(f"postwarden serving on http://{host}:{port}", err=True)
    uvicorn.run(
        "postwarden.surfaces.cli.main:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        # Client addresses (rate limits, audit log) come from X-Forwarded-For only when
        # the operator names the proxies to trust.
        proxy_headers=bool(runtime.settings.trusted_proxies),
        forwarded_allow_ips=",".join(runtime.settings.trusted_proxies) or None,
        server_header=False,
    )


def app_from_environment() -> Any:
    """The ASGI app for each server process, configured from ``POSTWARDEN_*`` variables."""
    from postwarden.app import create_app
    from postwarden.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def _create_demo_account_once(runtime: Runtime) -> None:
    with runtime.db.session_scope() as session:
        operator = _operator("first start")
        accounts = AccountService(session, operator, runtime)
        if accounts.has_accounts():
            return
        created = accounts.create_account(DEMO_ACCOUNT, owner_email=DEMO_OWNER)
        server = ServerService(session, operator, runtime).create_server(
            created.account.id, ServerFields(name="Demo Server", color="blue")
        )
        server_token = TokenService(session, runtime).server_tokens(server.id)[0]
    click.echo("First start: created a demo account.")
    _print_new_account(created, server_token=server_token)


@cli.command()
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@friendly_errors
def worker(workers: int) -> None:
    """Run background jobs (outgoing mail, webhook deliveries) apart from the web servers.

    Set POSTWARDEN_EMBEDDED_WORKER=false on the servers when workers run apart.
    """
    from postwarden.logs import configure_logging
    from postwarden.tasks import TaskQueue

    runtime = _runtime()
    configure_logging(runtime.settings.log_level)
    TaskQueue(runtime).consumer(workers=workers).run()


@cli.group()
def outbox() -> None:
    """Mail postwarden has sent or holds."""


@outbox.command("list")
@click.option("--status", type=click.Choice(["queued", "sent", "held", "failed"]), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def outbox_list(status: str | None, limit: int, as_json: bool) -> None:
    """The newest messages first."""
    from postwarden.mail.service import MailService

    runtime = _runtime()
    with runtime.db.session_scope(write=False) as session:
        messages = MailService(session, runtime.settings, _no_enqueue).list_messages(limit=limit, status=status)
        rows = [
            {
                "ID": m.id,
                "Status": m.status,
                "To": m.to_address,
                "Subject": m.subject,
                "Attempts": m.attempts,
                "LastError": m.last_error,
                "CreatedAt": m.created_at.isoformat(),
            }
            for m in messages
        ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("the outbox is empty")
    for row in rows:
        click.echo(f"{row['ID']:>6}  {row['Status']:<7} {row['To']}  {row['Subject']}")


@outbox.command("show")
@click.argument("message_id", type=int)
@friendly_errors
def outbox_show(message_id: int) -> None:
    """One message with its text, as it was (or will be) sent."""
    from postwarden.mail.service import MailService

    runtime = _runtime()
    with runtime.db.session_scope(write=False) as session:
        message = MailService(session, runtime.settings, _no_enqueue).get_message(message_id)
        click.echo(f"To: {message.to_address}\nSubject: {message.subject}\nStatus: {message.status}")
        if message.last_error:
            click.echo(f"Last error: {message.last_error}")
        click.echo("")
        click.echo(message.text_body)


def _no_enqueue(_message_id: int) -> None:
    raise RuntimeError("reading the outbox queues nothing")


@cli.group()
def accounts() -> None:
    """Accounts of this installation."""


@accounts.command("set-server-limit")
@click.argument("account_id", type=int)
@click.argument("limit")
@friendly_errors
def accounts_set_server_limit(account_id: int, limit: str) -> None:
    """Cap the account's servers at LIMIT (a number, or 'none' for unlimited)."""
    if limit.strip().lower() in {"none", "unlimited"}:
        server_limit = None
    elif limit.strip().isdigit():
        server_limit = int(limit)
    else:
        raise click.BadParameter("give a whole number or 'none'", param_hint="LIMIT")
    runtime = _runtime()
    with runtime.db.session_scope() as session:
        account = AccountService(session, _operator("accounts set-server-limit"), runtime).set_server_limit(
            account_id, server_limit
        )
    shown = "unlimited" if account.server_limit is None else str(account.server_limit)
    click.echo(f"account {account.id} ({account.name}): server limit {shown}")


@accounts.command("transfer-ownership")
@click.argument("account_id", type=int)
@click.argument("user_id", type=int)
@friendly_errors
def accounts_transfer_ownership(account_id: int, user_id: int) -> None:
    """Make the Admin USER_ID the Owner of ACCOUNT_ID; the current Owner becomes an Admin."""
    runtime = _runtime()
    with runtime.db.session_scope() as session:
        member = UserService(session, _operator("accounts transfer-ownership"), runtime).transfer_ownership(
            account_id, user_id
        )
        email = member.user.email
    click.echo(f"account {account_id}: {email} is now the Owner")


@accounts.command("pause-sending")
@click.argument("account_id", type=int)
@click.option("--resume", is_flag=True, help="Resume sending instead.")
@friendly_errors
def accounts_pause_sending(account_id: int, resume: bool) -> None:
    """Stop all mail of ACCOUNT_ID, invitations included (--resume to start it again)."""
    runtime = _runtime()
    with runtime.db.session_scope() as session:
        account = AccountService(session, _operator("accounts pause-sending"), runtime).set_sending_paused(
            account_id, paused=not resume
        )
        state = "paused" if account.sending_paused else "active"
    click.echo(f"account {account_id}: sending {state}")


@accounts.command("list")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def accounts_list(as_json: bool) -> None:
    """List accounts with their server counts."""
    runtime = _runtime()
    with runtime.db.session_scope(write=False) as session:
        summaries = AccountService(session, _operator("accounts list"), runtime).list_accounts()
    rows = [
        {
            "AccountID": s.account.id,
            "Name": s.account.name,
            "Servers": s.server_count,
            "ServerLimit": s.account.server_limit,
            "CreatedAt": s.account.created_at.isoformat(),
        }
        for s in summaries
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no accounts yet: create one with `postwarden init`")
        return
    click.echo(f"{'ID':>5}  {'SERVERS':>7}  {'LIMIT':>5}  NAME")
    for row in rows:
        limit = "-" if row["ServerLimit"] is None else str(row["ServerLimit"])
        click.echo(f"{row['AccountID']:>5}  {row['Servers']:>7}  {limit:>5}  {row['Name']}")


@cli.group()
def tokens() -> None:
    """Account and server API tokens."""


@tokens.command("show")
@click.option("--account", "account_id", type=int, default=None, help="Only this account.")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def tokens_show(account_id: int | None, as_json: bool) -> None:
    """Show account and server tokens (they are stored encrypted and can be shown again).

    Each token shown is an audit event of its account (``account_token.viewed``,
    ``server_token.viewed``)."""
    runtime = _runtime()
    operator = _operator("tokens show")
    result: list[dict[str, Any]] = []
    with runtime.db.session_scope() as session:
        accounts_service = AccountService(session, operator, runtime)
        token_service = TokenService(session, runtime)
        chosen = (
            [accounts_service.get_account(account_id)]
            if account_id is not None
            else [s.account for s in accounts_service.list_accounts()]
        )
        for account in chosen:
            servers = ServerService(session, operator, runtime)
            page = servers.list_servers(account.id, count=500, offset=0)
            loaded = servers.load_servers(account.id, page.server_ids)
            servers.record_token_views(account.id, [entry.server.id for entry in loaded if entry.api_tokens])
            result.append(
                {
                    "AccountID": account.id,
                    "AccountName": account.name,
                    "AccountTokens": [
                        {
                            "ID": t.id,
                            "Name": t.name,
                            "Token": token_service.reveal_account_token(operator, t),
                            "CanDeleteServers": t.can_delete_servers,
                        }
                        for t in token_service.account_tokens(operator, account.id)
                    ],
                    "Servers": [
                        {"ID": entry.server.id, "Name": entry.server.name, "ApiTokens": entry.api_tokens}
                        for entry in loaded
                    ],
                }
            )
    if as_json:
        click.echo(json.dumps(result))
        return
    for entry in result:
        click.echo(f"Account {entry['AccountID']}: {entry['AccountName']}")
        for token in entry["AccountTokens"]:
            deletion = ", may delete servers" if token["CanDeleteServers"] else ""
            click.echo(f"  account token #{token['ID']} {token['Name']!r}: {token['Token']}{deletion}")
        for server in entry["Servers"]:
            for value in server["ApiTokens"]:
                click.echo(f"  server {server['ID']} {server['Name']!r}: {value}")


@tokens.command("rotate")
@click.option("--server", "server_id", type=int, default=None, help="Replace this server's tokens.")
@click.option("--account-token", "account_token_id", type=int, default=None, help="Replace this account token.")
@friendly_errors
def tokens_rotate(server_id: int | None, account_token_id: int | None) -> None:
    """Replace a token and print the new one.

    Running servers refuse the old token at once when they share POSTWARDEN_REDIS_URL with
    this command, otherwise within POSTWARDEN_CACHE_TTL_SECONDS.
    """
    if (server_id is None) == (account_token_id is None):
        raise click.UsageError("give exactly one of --server ID or --account-token ID")
    runtime = _runtime()
    operator = _operator("tokens rotate")
    with runtime.db.session_scope() as session:
        token_service = TokenService(session, runtime)
        if server_id is not None:
            server = ServerService(session, operator, runtime).find_server(server_id)
            if server is None:
                raise click.ClickException(f"there is no server {server_id}")
            new_token = token_service.rotate_server_tokens(operator, server.id, server.account_id, server.name)
        else:
            new_token = token_service.rotate_account_token(
                operator, token_service.get_account_token(account_token_id or 0)
            )
    click.echo(new_token)


@tokens.command("allow-server-deletion")
@click.argument("account_token_id", type=int)
@click.option("--off", "disable", is_flag=True, help="Switch it off again.")
@friendly_errors
def tokens_allow_server_deletion(account_token_id: int, disable: bool) -> None:
    """Let an account token delete servers through the API (refused with 604 otherwise)."""
    runtime = _runtime()
    operator = _operator("tokens allow-server-deletion")
    with runtime.db.session_scope() as session:
        token_service = TokenService(session, runtime)
        token = token_service.get_account_token(account_token_id)
        token_service.set_server_deletion(operator, token, enabled=not disable)
    click.echo(f"account token #{account_token_id}: server deletion {'off' if disable else 'on'}")


@cli.group()
def users() -> None:
    """People in an account: members, their roles and invitations."""


@users.command("list")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.option("--role", default=None, help="Only members with this role.")
@click.option("--email", default=None, help="Only members whose email contains this text.")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def users_list(account_id: int, role: str | None, email: str | None, as_json: bool) -> None:
    """List the account's members by email."""
    wanted_role = parse_role(role) if role else None
    runtime = _runtime()
    operator = _operator("users list")
    rows: list[dict[str, Any]] = []
    with runtime.db.session_scope(write=False) as session:
        AccountService(session, operator, runtime).get_account(account_id)
        service = UserService(session, operator, runtime)
        offset = 0
        while True:
            page = service.list_members(account_id, count=500, offset=offset, role=wanted_role, email=email)
            rows.extend(_member_json(member) for member in page.members)
            offset += len(page.members)
            if not page.members or offset >= page.total:
                break
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no members match" if role or email else "the account has no members")
        return
    table = [("ID", "EMAIL", "NAME", "ROLE", "2FA", "SERVERS")] + [
        (
            str(row["ID"]),
            row["Email"],
            row["Name"] or "-",
            row["Role"] + (" (limited)" if row["ServersLimited"] else ""),
            "yes" if row["TwoFactor"] else "no",
            ", ".join(f"{server_id}:{level}" for server_id, level in row["ServerAccess"].items()) or "-",
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]) - 1)]
    for line in table:
        cells = [line[0].rjust(widths[0])] + [
            cell.ljust(width) for cell, width in zip(line[1:-1], widths[1:], strict=True)
        ]
        click.echo("  ".join([*cells, line[-1]]))


def _member_json(member: Member) -> dict[str, Any]:
    return {
        "ID": member.user.id,
        "Email": member.user.email,
        "Name": member.user.name,
        "Role": member.role.value,
        "ServersLimited": member.membership.servers_limited,
        "TwoFactor": member.user.totp_enabled_at is not None,
        "ServerAccess": {str(server_id): level for server_id, level in sorted(member.listed_access.items())},
    }


def _server_grants(values: tuple[str, ...]) -> dict[int, ServerAccess]:
    grants: dict[int, ServerAccess] = {}
    for value in values:
        server, _, level = value.partition(":")
        if not server.strip().isdigit() or not level.strip():
            raise click.BadParameter(f"'{value}' is not ID:LEVEL (for example 12:ViewOnly)", param_hint="--server")
        grants[int(server)] = parse_access(level)
    return grants


@users.command("invite")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.option("--role", required=True, help="Role of the invited people (not Owner).")
@click.option(
    "--server",
    "servers",
    multiple=True,
    metavar="ID:LEVEL",
    help="Access to one server, for Technical and Member (repeatable).",
)
@click.option("--limited", is_flag=True, help="Technical only: reach just the servers given with --server.")
@click.argument("emails", nargs=-1, required=True)
@friendly_errors
def users_invite(account_id: int, role: str, servers: tuple[str, ...], limited: bool, emails: tuple[str, ...]) -> None:
    """Invite people by email; each gets a link by mail (see `postwarden outbox list`)."""
    from postwarden.invitations.service import InvitationService, NewInvitations
    from postwarden.tasks import TaskQueue

    given = NewInvitations(
        emails=list(emails), role=parse_role(role), server_access=_server_grants(servers), servers_limited=limited
    )
    runtime = _runtime()
    with runtime.db.session_scope() as session:
        invitations = InvitationService(
            session, _operator("users invite"), runtime, TaskQueue(runtime).enqueue_mail
        ).invite(account_id, given)
        sent = [(invitation.id, invitation.email) for invitation in invitations]
    for invitation_id, address in sent:
        click.echo(f"invitation {invitation_id}: {address}")


@users.command("set-role")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.option(
    "--limited/--not-limited",
    "servers_limited",
    default=None,
    help="Technical only: reach just the servers listed for them, or every server.",
)
@click.argument("user_id", type=int)
@click.argument("role")
@friendly_errors
def users_set_role(account_id: int, servers_limited: bool | None, user_id: int, role: str) -> None:
    """Give member USER_ID the role ROLE (ownership changes only by transfer)."""
    new_role = parse_role(role)
    runtime = _runtime()
    with runtime.db.session_scope() as session:
        member = UserService(session, _operator("users set-role"), runtime).set_role(
            account_id, user_id, new_role, servers_limited=servers_limited
        )
        shown = f"user {member.user.id} ({member.user.email}): {member.role.value}"
        if member.membership.servers_limited:
            shown += ", limited to listed servers"
    click.echo(shown)


@users.command("remove")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.argument("user_id", type=int)
@friendly_errors
def users_remove(account_id: int, user_id: int) -> None:
    """Remove member USER_ID from the account, revoking their sessions and tokens there."""
    runtime = _runtime()
    with runtime.db.session_scope() as session:
        member = UserService(session, _operator("users remove"), runtime).remove_member(account_id, user_id)
        shown = f"user {member.user.id} ({member.user.email}) removed from account {account_id}"
    click.echo(shown)


def main() -> None:  # pragma: no cover - console entry point
    cli(prog_name="postwarden")


if __name__ == "__main__":  # pragma: no cover
    main()


@cli.group()
def scim() -> None:
    """SCIM provisioning: tokens for identity providers, and what their groups grant."""


@scim.command("create-token")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.argument("name")
@friendly_errors
def scim_create_token(account_id: int, name: str) -> None:
    """Create a SCIM token named NAME; it is printed once and never shown again."""
    from postwarden.tokens.scim import ScimTokenService

    runtime = _runtime()
    with runtime.db.session_scope() as session:
        token, plaintext = ScimTokenService(session, _operator("scim create-token"), runtime).create_token(
            account_id, name
        )
        token_id = token.id
    click.echo(f"SCIM token {token_id} ({name}): {plaintext}")
    click.echo(f"Base URL for the identity provider: {runtime.settings.public_url.rstrip('/')}/scim/v2")


@scim.command("tokens")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@friendly_errors
def scim_tokens(account_id: int) -> None:
    """List the account's live SCIM tokens (never their secrets)."""
    from postwarden.tokens.scim import ScimTokenService

    runtime = _runtime()
    with runtime.db.session_scope(write=False) as session:
        rows = [
            (token.id, token.created_at.isoformat(), token.name)
            for token in ScimTokenService(session, _operator("scim tokens"), runtime).list_tokens(account_id)
        ]
    if not rows:
        click.echo("no SCIM tokens: create one with `postwarden scim create-token`")
    for token_id, created, name in rows:
        click.echo(f"{token_id:>5}  {created}  {name}")


@scim.command("revoke-token")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.argument("token_id", type=int)
@friendly_errors
def scim_revoke_token(account_id: int, token_id: int) -> None:
    """Revoke a SCIM token: its identity provider is refused at once."""
    from postwarden.tokens.scim import ScimTokenService

    runtime = _runtime()
    with runtime.db.session_scope() as session:
        name = (
            ScimTokenService(session, _operator("scim revoke-token"), runtime).revoke_token(account_id, token_id).name
        )
    click.echo(f"SCIM token {token_id} ({name}) revoked")


@scim.command("map-group")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.option("--role", default=None, help="An account role the group's members hold at least (not Owner).")
@click.option("--server", "servers", multiple=True, metavar="ID:LEVEL", help="Access to one server (repeatable).")
@click.argument("group_id", type=int)
@friendly_errors
def scim_map_group(account_id: int, role: str | None, servers: tuple[str, ...], group_id: int) -> None:
    """Set what the SCIM group GROUP_ID grants its members (replaces what it granted)."""
    from postwarden.groups.service import GroupService

    runtime = _runtime()
    with runtime.db.session_scope() as session:
        grant = GroupService(session, _operator("scim map-group"), runtime).set_access(
            account_id, group_id, role=parse_role(role) if role else None, servers=_server_grants(servers)
        )
        name, granted_role, levels = grant.group.display_name, grant.group.role, dict(grant.servers)
    shown = ", ".join(f"{server}:{level}" for server, level in sorted(levels.items())) or "no server"
    click.echo(f"group {group_id} ({name}): role {granted_role or 'none'}, {shown}")


@cli.group()
def audit() -> None:
    """The audit log: export it, verify its hash chains, prune it."""


@audit.command("export")
@click.option("--account", "account_id", type=int, required=True, help="The account.")
@click.option("--format", "file_format", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None, help="File.")
@click.option("--action", default=None, help="An action (membership.updated) or a resource's every action (user.*).")
@click.option("--since", default=None, help="From this ISO 8601 date or time on (UTC unless it says otherwise).")
@click.option("--until", default=None, help="Before this ISO 8601 date or time.")
@friendly_errors
def audit_export(
    *,
    account_id: int,
    file_format: str,
    output: Path | None,
    action: str | None,
    since: str | None,
    until: str | None,
) -> None:
    """Write the account's events, oldest first, as JSON Lines or CSV (to stdout by default).

    Streams: memory stays flat however long the log is.
    """
    from postwarden.audit_log.export import csv_lines, jsonl_lines
    from postwarden.audit_log.service import AuditLogService, EventFilters, check_action

    filters = EventFilters(
        action=check_action(action) if action else None,
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
    )
    runtime = _runtime()
    render = csv_lines if file_format == "csv" else jsonl_lines
    written = 0
    with (
        runtime.db.session_scope(write=False) as session,
        click.open_file(str(output) if output else "-", "wb") as out,
    ):
        for line in render(AuditLogService(session, _operator("audit export")).stream_events(account_id, filters)):
            out.write(line.encode())
            written += 1
    if output is not None:
        click.echo(f"{written - (file_format == 'csv')} events written to {output}", err=True)


def _moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time", param_hint=option) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit.command("verify")
@click.option("--account", "account_id", type=int, default=None, help="Only this account (default: every chain).")
@friendly_errors
def audit_verify(account_id: int | None) -> None:
    """Check every event against its hash chain; exits 1 and names the first broken link if any."""
    from postwarden.audit_log.service import AuditLogService

    runtime = _runtime()
    key = runtime.keyring.audit_key
    with runtime.db.session_scope(write=False) as session:
        service = AuditLogService(session, _operator("audit verify"))
        reports = [service.verify(key, account_id)] if account_id is not None else service.verify_all(key)
    broken = 0
    for report in reports:
        name = f"account {report.chain}" if report.chain else "installation (no account)"
        pruned = f", pruned through {report.pruned_seq}" if report.pruned_seq else ""
        if report.broken is None:
            click.echo(f"{name}: {report.checked} events, chain intact (head {report.head_seq}{pruned})")
            continue
        broken += 1
        where = f"event {report.broken.seq}" + (f" (id {report.broken.event_id})" if report.broken.event_id else "")
        click.echo(f"{name}: BROKEN at {where}: {report.broken.problem}")
    if broken:
        raise SystemExit(1)


@audit.command("prune")
@click.option(
    "--older-than-days",
    type=click.IntRange(min=1),
    default=None,
    help="Default: POSTWARDEN_AUDIT_RETENTION_DAYS.",
)
@friendly_errors
def audit_prune(older_than_days: int | None) -> None:
    """Delete events older than the retention period, leaving each chain a signed checkpoint."""
    from postwarden.audit_log.service import AuditLogService

    runtime = _runtime()
    days = older_than_days or runtime.settings.audit_retention_days
    if days is None:
        raise click.ClickException(
            "audit events are kept forever: set POSTWARDEN_AUDIT_RETENTION_DAYS or pass --older-than-days"
        )
    with runtime.db.session_scope() as session:
        pruned = AuditLogService(session, _operator("audit prune")).prune(
            runtime.keyring.audit_key, utcnow() - timedelta(days=days)
        )
    for entry in pruned:
        click.echo(f"chain {entry.chain}: {entry.events} events pruned through {entry.through_seq}")
    if not pruned:
        click.echo(f"no events older than {days} days")
