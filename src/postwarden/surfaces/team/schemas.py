"""Team API wire shapes: PascalCase like Postmark's, so one client serves both APIs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import AwareDatetime, ConfigDict, Field, StrictBool, StrictStr
from pydantic.config import JsonDict

from postwarden.accounts.models import Account
from postwarden.accounts.service import PLANS, AccountSettings, BillingSettings
from postwarden.groups.service import GroupGrant
from postwarden.invitations.models import Invitation
from postwarden.policy import Permission, Role, ServerAccess
from postwarden.scim.schemas import GROUP_ID_PREFIX
from postwarden.surfaces.wire import EntityId, PostmarkModel, any_case, iso
from postwarden.tokens.models import PersonalToken, ScimToken
from postwarden.users.service import EMAIL_MAX_LENGTH, EMAIL_PATTERN, Member

ROLE_SCHEMA: Final = any_case(*(role.value for role in Role))
ACCESS_SCHEMA: Final = any_case(*(level.value for level in ServerAccess))
#: What ``users.service.normalize_email`` accepts (ErrorCode 9005 otherwise).
EMAIL_SCHEMA: Final[JsonDict] = {"type": "string", "pattern": EMAIL_PATTERN, "maxLength": EMAIL_MAX_LENGTH}
NAME_SCHEMA: Final[JsonDict] = {"pattern": r"\S", "maxLength": 255}


# requests


class ServerAccessEntry(PostmarkModel):
    ServerID: EntityId
    Access: StrictStr = Field(json_schema_extra=ACCESS_SCHEMA)


class EditUserRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # ErrorCode 9036 otherwise

    Role: StrictStr | None = Field(default=None, description="Any case", json_schema_extra=ROLE_SCHEMA)
    ServersLimited: StrictBool | None = Field(
        default=None, description="Technical only: reach just the servers granted one by one."
    )


class EditServerAccessRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # ErrorCode 9036 otherwise

    ApplyToAllServers: StrictStr | None = Field(
        default=None,
        description="One level for every current server of the account, applied before 'Servers'.",
        json_schema_extra=ACCESS_SCHEMA,
    )
    Servers: list[ServerAccessEntry] | None = None

    def levels(self) -> dict[int, str]:
        return {entry.ServerID: entry.Access for entry in self.Servers or []}


class InviteRequest(PostmarkModel):
    Emails: list[StrictStr] = Field(json_schema_extra={"minItems": 1, "maxItems": 50, "items": EMAIL_SCHEMA})
    Role: StrictStr = Field(json_schema_extra=ROLE_SCHEMA)
    Servers: list[ServerAccessEntry] | None = None
    ServersLimited: StrictBool | None = None


class AcceptInvitationRequest(PostmarkModel):
    Password: StrictStr = Field(description="At least 10 characters for a new login; else the login's password")
    Name: StrictStr | None = Field(default=None, json_schema_extra={"maxLength": 255})


class TransferOwnershipRequest(PostmarkModel):
    UserID: EntityId


class EditAccountRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # ErrorCode 9036 otherwise

    Name: StrictStr | None = Field(default=None, json_schema_extra=NAME_SCHEMA)
    RequireTwoFactor: StrictBool | None = None

    def to_settings(self) -> AccountSettings:
        return AccountSettings(name=self.Name, require_two_factor=self.RequireTwoFactor)


RECIPIENTS_SCHEMA: Final[JsonDict] = {"maxItems": 10, "items": EMAIL_SCHEMA}


class EditBillingRequest(PostmarkModel):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})  # ErrorCode 9036 otherwise

    Plan: StrictStr | None = Field(default=None, json_schema_extra=any_case(*PLANS))
    ReceiptRecipients: list[StrictStr] | None = Field(default=None, json_schema_extra=RECIPIENTS_SCHEMA)
    BillingErrorRecipients: list[StrictStr] | None = Field(default=None, json_schema_extra=RECIPIENTS_SCHEMA)
    BillTo: StrictStr | None = Field(default=None, json_schema_extra={"maxLength": 1000})

    def to_settings(self) -> BillingSettings:
        return BillingSettings(
            plan=self.Plan,
            receipt_recipients=self.ReceiptRecipients,
            billing_error_recipients=self.BillingErrorRecipients,
            bill_to=self.BillTo,
        )


class SignInRequest(PostmarkModel):
    Email: StrictStr
    Password: StrictStr
    Code: StrictStr | None = Field(default=None, description="The current code of the authenticator app")
    RecoveryCode: StrictStr | None = None
    AccountID: EntityId | None = Field(default=None, description="Which account (default: the first joined)")


class NewPersonalTokenRequest(PostmarkModel):
    Name: StrictStr = Field(json_schema_extra={"pattern": r"\S", "maxLength": 100})
    ExpiresAt: AwareDatetime | None = Field(
        default=None, description="With its UTC offset, and in the future (ErrorCode 9034 otherwise)"
    )
    Scopes: list[StrictStr] | None = Field(
        default=None,
        description="Permission names; the token can do no more than these and its user.",
        json_schema_extra={"minItems": 1, "items": {"type": "string", "enum": [p.value for p in Permission]}},
    )
    ServerIDs: list[EntityId] | None = Field(default=None, json_schema_extra={"minItems": 1})


class NewScimTokenRequest(PostmarkModel):
    Name: StrictStr = Field(json_schema_extra={"pattern": r"\S", "maxLength": 100})


class GroupAccessRequest(PostmarkModel):
    """What a SCIM group grants its members; replaces what it granted before."""

    Role: StrictStr | None = Field(
        default=None,
        description="An account role its members hold at least (never Owner); null grants none. Any case.",
        json_schema_extra=ROLE_SCHEMA,
    )
    Servers: list[ServerAccessEntry] | None = Field(default=None, description="Access on servers; absent: none.")

    def levels(self) -> dict[int, str]:
        return {entry.ServerID: entry.Access for entry in self.Servers or []}


class PasswordRequest(PostmarkModel):
    Password: StrictStr


class TwoFactorCodeRequest(PostmarkModel):
    Code: StrictStr = Field(json_schema_extra={"pattern": r"^\s*[0-9]{6}\s*$"})


# responses


def render_member(member: Member, servers: list[tuple[int, str]] | None = None) -> dict[str, Any]:
    """A member; ``servers`` (id, name) lists effective access on each, else the grants only."""
    membership, user = member.membership, member.user
    if servers is None:
        access = [{"ServerID": server_id, "Access": level} for server_id, level in sorted(member.listed_access.items())]
    else:
        access = [
            {"ServerID": server_id, "Name": name, "Access": member.access_on(server_id).value}
            for server_id, name in servers
        ]
    return {
        "ID": user.id,
        "Email": user.email,
        "Name": user.name,
        "Role": membership.role,
        "ServersLimited": membership.servers_limited,
        # The access on every server not listed in "Servers" (from the role).
        "DefaultAccess": member.default_access.value,
        "TwoFactorEnabled": user.totp_enabled_at is not None,
        "LastLoginAt": iso(user.last_login_at),
        "JoinedAt": iso(membership.created_at),
        # Suspended by the identity provider (SCIM active: false): kept, but no credential works.
        "Suspended": membership.suspended_at is not None,
        "Servers": access,
    }


def render_invitation(invitation: Invitation, now: datetime) -> dict[str, Any]:
    return {
        "ID": invitation.id,
        "Email": invitation.email,
        "Role": invitation.role,
        "Servers": [
            {"ServerID": int(server_id), "Access": level}
            for server_id, level in sorted(invitation.server_access.items(), key=lambda item: int(item[0]))
        ],
        "ServersLimited": invitation.servers_limited,
        "InvitedBy": invitation.invited_by,
        "SentAt": iso(invitation.sent_at),
        "ExpiresAt": iso(invitation.expires_at),
        "Expired": invitation.expires_at <= now,
    }


def render_account(account: Account) -> dict[str, Any]:
    return {
        "ID": account.id,
        "Name": account.name,
        "RequireTwoFactor": account.require_two_factor,
        "SendingPaused": account.sending_paused,
        "Plan": account.plan,
        "ServerLimit": account.server_limit,
        "CreatedAt": iso(account.created_at),
    }


def render_billing(account: Account) -> dict[str, Any]:
    return {
        "Plan": account.plan,
        "ServerLimit": account.server_limit,
        "Plans": [{"Name": name, "ServerLimit": limit} for name, limit in PLANS.items()],
        "ReceiptRecipients": account.receipt_recipients,
        "BillingErrorRecipients": account.billing_error_recipients,
        "BillTo": account.bill_to,
    }


def render_personal_token(token: PersonalToken, plaintext: str | None = None) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "ID": token.id,
        "Name": token.name,
        "Scopes": token.scopes,
        "ServerIDs": token.server_ids,
        "ExpiresAt": iso(token.expires_at),
        "CreatedAt": iso(token.created_at),
        "LastUsedAt": iso(token.last_used_at),
    }
    if plaintext is not None:
        rendered["Token"] = plaintext
    return rendered


def permission_names(permissions: list[Permission]) -> list[str]:
    return [permission.value for permission in permissions]


def render_scim_token(token: ScimToken, plaintext: str | None = None) -> dict[str, Any]:
    rendered: dict[str, Any] = {
        "ID": token.id,
        "Name": token.name,
        "CreatedAt": iso(token.created_at),
        "LastUsedAt": iso(token.last_used_at),
    }
    if plaintext is not None:
        rendered["Token"] = plaintext
    return rendered


def render_group(grant: GroupGrant) -> dict[str, Any]:
    group = grant.group
    return {
        "ID": group.id,
        "ScimID": f"{GROUP_ID_PREFIX}{group.id}",
        "DisplayName": group.display_name,
        "ExternalID": group.external_id,
        "MemberCount": grant.member_count,
        "Role": group.role,
        "Servers": [{"ServerID": server_id, "Access": level} for server_id, level in sorted(grant.servers.items())],
    }
