"""The dependency direction of DESIGN §6, held by reading every module's imports:
surfaces -> domain services -> policy, audit, identity, errors, db."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "postwarden"
WEB_AND_CLI = ("fastapi", "starlette", "jinja2", "click", "uvicorn", "httpx", "prometheus_client")
#: Modules below the surfaces: they never know how a request arrived.
CORE_MODULES = [
    path
    for path in PACKAGE.rglob("*.py")
    if "surfaces" not in path.relative_to(PACKAGE).parts and path.name != "app.py"
]
#: The lowest layer: it knows no domain package.
FOUNDATION = ("policy.py", "identity.py", "errors.py", "db.py", "config.py")
DOMAIN_PACKAGES = (
    "accounts",
    "domains",
    "groups",
    "invitations",
    "mail",
    "message_streams",
    "scim",
    "senders",
    "servers",
    "suppressions",
    "templates",
    "tokens",
    "users",
    "webhook_deliveries",
    "webhooks",
)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_imports_no_web_or_cli_framework_and_no_surface(path: Path) -> None:
    for name in imports_of(path):
        assert not name.startswith(WEB_AND_CLI), f"{path.name} imports {name}"
        assert not name.startswith("postwarden.surfaces"), f"{path.name} imports {name}"


@pytest.mark.parametrize("name", FOUNDATION)
def test_foundation_imports_no_domain_package(name: str) -> None:
    for imported in imports_of(PACKAGE / name):
        assert not imported.startswith(tuple(f"postwarden.{p}" for p in DOMAIN_PACKAGES)), f"{name} imports {imported}"


def test_surfaces_do_not_import_each_other() -> None:
    surfaces = [p.name for p in (PACKAGE / "surfaces").iterdir() if p.is_dir() and p.name != "__pycache__"]
    for surface in surfaces:
        for path in (PACKAGE / "surfaces" / surface).rglob("*.py"):
            for imported in imports_of(path):
                for other in surfaces:
                    if other != surface:
                        assert not imported.startswith(f"postwarden.surfaces.{other}"), f"{path} imports {imported}"


def test_only_the_unit_of_work_commits() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name == "db.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "commit":
                pytest.fail(f"{path.relative_to(PACKAGE)}:{node.lineno} calls .commit(); use session_scope()")


def test_only_config_reads_the_environment() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name == "config.py":
            continue
        source = path.read_text()
        assert "os.environ" not in source and "getenv" not in source, path


#: Words that are role names elsewhere: a suppression's Origin is Postmark's "Admin" (a
#: Postmark staff member suppressed the address), no role of this installation.
NOT_A_ROLE = {(Path("suppressions/service.py"), "Admin")}


def test_only_policy_names_roles() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name == "policy.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (path.relative_to(PACKAGE), getattr(node, "value", None)) in NOT_A_ROLE:
                continue
            if isinstance(node, ast.Constant) and node.value in {"Owner", "Admin", "Technical", "Billing", "Member"}:
                pytest.fail(f"{path.relative_to(PACKAGE)}:{node.lineno} names the role {node.value!r}")


def test_every_mutating_service_method_checks_policy_and_writes_audit() -> None:
    """A public service method that adds, deletes or assigns to a row calls require() and audit.record()."""
    exempt = {
        # issuing secrets is one step of a creation that is authorised and audited by its caller
        ("TokenService", "issue_account_token"),
        ("TokenService", "issue_server_token"),
        # user creation and membership are steps of account creation (operator only, audited inside)
        ("UserService", "create_user"),
        ("UserService", "add_membership"),
        # mail is queued as one step of an audited change, and the outbox is its own record;
        # delivery is the queue's bookkeeping, not anyone's change
        ("MailService", "queue"),
        ("MailService", "deliver"),
        # likewise webhook deliveries: claiming due rows and logging attempts is the queue's
        # bookkeeping; the test event that queued them was authorised and audited
        ("DeliveryQueue", "claim"),
        ("DeliveryQueue", "record"),
        # a mailed confirmation link is its own authority: the single-use token proves the
        # address was reached (the confirmation is audited inside)
        ("SenderService", "confirm"),
        # likewise an invitation link: the invitation was authorised and audited when sent
        ("InvitationService", "accept"),
        # asking for a forgotten-password link is open to anyone (it mails only the login's own
        # address); the mailed link authorises the reset, like an invitation's (both audited inside)
        ("PasswordResetService", "request"),
        ("PasswordResetService", "reset"),
        # signing in is authorised by the password (and second factor) itself; the session
        # and every failed attempt are audited inside
        ("SignInService", "sign_in"),
        # a pending TOTP secret grants nothing; confirming it is the audited change
        ("TwoFactorService", "start_enrolment"),
    }
    services = [path for path in PACKAGE.glob("*/*.py") if path.parent.name in DOMAIN_PACKAGES]
    for path in services:
        for cls in (n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)):
            for method in (n for n in cls.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")):
                calls = {
                    (c.func.attr if isinstance(c.func, ast.Attribute) else getattr(c.func, "id", ""))
                    for c in ast.walk(method)
                    if isinstance(c, ast.Call)
                }
                mutates = bool(calls & {"add", "delete", "update"}) or any(
                    isinstance(n, ast.Assign) and any(isinstance(t, ast.Attribute) for t in n.targets)
                    for n in ast.walk(method)
                )
                if not mutates or (cls.name, method.name) in exempt or method.name == "__init__":
                    continue
                checks_policy = bool(calls & {"require", "_require_operator", "get_server", "reach_server"})
                assert checks_policy, f"{cls.name}.{method.name} changes rows without policy.require()"
                # _record, _change_and_record: a service's own wrappers of audit.record
                audited = any(name == "record" or name.endswith("_record") for name in calls)
                assert audited, f"{cls.name}.{method.name} changes rows without audit.record()"
