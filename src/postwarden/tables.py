"""Imports every table, so ``Base.metadata`` is complete for migrations and tests."""

from postwarden.accounts.models import Account
from postwarden.audit import AuditChain, AuditEvent
from postwarden.db import Base
from postwarden.domains.models import DkimKey, Domain
from postwarden.groups.models import Group, GroupMember, GroupServerAccess
from postwarden.invitations.models import Invitation
from postwarden.mail.models import OutboxMessage
from postwarden.senders.models import ConfirmationToken, SenderSignature
from postwarden.servers.models import MessageStream, Server
from postwarden.suppressions.models import Suppression
from postwarden.templates.models import Template
from postwarden.tokens.models import AccountToken, PersonalToken, ScimToken, ServerToken, TokenSighting
from postwarden.users.models import MemberEmail, Membership, RecoveryCode, ServerAccessGrant, User, UserSession
from postwarden.webhook_deliveries.models import WebhookDelivery, WebhookDeliveryAttempt
from postwarden.webhooks.models import Webhook

metadata = Base.metadata

__all__ = [
    "Account",
    "AccountToken",
    "AuditChain",
    "AuditEvent",
    "ConfirmationToken",
    "DkimKey",
    "Domain",
    "Group",
    "GroupMember",
    "GroupServerAccess",
    "Invitation",
    "MemberEmail",
    "Membership",
    "MessageStream",
    "OutboxMessage",
    "PersonalToken",
    "RecoveryCode",
    "ScimToken",
    "SenderSignature",
    "Server",
    "ServerAccessGrant",
    "ServerToken",
    "Suppression",
    "Template",
    "TokenSighting",
    "User",
    "UserSession",
    "Webhook",
    "WebhookDelivery",
    "WebhookDeliveryAttempt",
    "metadata",
]
