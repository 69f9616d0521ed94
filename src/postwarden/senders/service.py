"""Sender signatures: the only code that creates, confirms, edits or deletes them.

A signature shares its DKIM key with the account's Domain of the same name, which is
created along with the first signature of that domain.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import utcnow
from postwarden.domains.dns import Check, CheckOutcome, DnsChecker
from postwarden.domains.models import Domain
from postwarden.domains.service import DomainService, DomainState
from postwarden.errors import Conflict, InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.mail.service import MailService
from postwarden.paging import check_page
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime
from postwarden.senders.models import ConfirmationToken, SenderSignature

NAME_MAX_LENGTH: Final = 255
EMAIL_MAX_LENGTH: Final = 320
NOTE_MAX_LENGTH: Final = 400
CONFIRMATION_LIFETIME: Final = timedelta(hours=48)
#: Mailbox providers whose domains no one account can prove it owns.
PUBLIC_DOMAINS: Final = frozenset(
    {
        "aol.com",
        "gmail.com",
        "googlemail.com",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mac.com",
        "mail.com",
        "me.com",
        "msn.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "web.de",
        "yahoo.com",
        "yandex.com",
        "yandex.ru",
        "ymail.com",
        "zoho.com",
    }
)
#: Providers with a domain per country (gmx.de, yahoo.co.uk, hotmail.fr, gmx.com.br...).
PUBLIC_PROVIDERS: Final = frozenset({"gmx", "hotmail", "live", "outlook", "yahoo"})
_DOMAIN_RE: Final = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_LOCAL_RE: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


@dataclass(frozen=True)
class SenderState:
    """A signature with the DKIM state of its domain, as the API shows it."""

    signature: SenderSignature
    domain: DomainState | None


@dataclass(frozen=True)
class SenderPage:
    total: int
    signatures: list[SenderSignature]


class SenderService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime, enqueue: Callable[[int], None]) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime
        self.enqueue = enqueue

    # reading

    def list_senders(self, account_id: int, *, count: int, offset: int) -> SenderPage:
        require(self.actor, Permission.SENDERS_READ, account_id=account_id)
        check_page(count, offset, Reason.SENDER_QUERY_INVALID)
        query = select(SenderSignature).where(SenderSignature.account_id == account_id)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        ordered = query.order_by(SenderSignature.email, SenderSignature.id)
        found = self.session.scalars(ordered.limit(count).offset(offset))
        return SenderPage(total, list(found))

    def get_sender(self, account_id: int, signature_id: int) -> SenderState:
        require(self.actor, Permission.SENDERS_READ, account_id=account_id)
        return self._state(self._find(account_id, signature_id))

    # changing

    def create_sender(
        self,
        account_id: int,
        *,
        from_email: str | None,
        name: str | None,
        reply_to_email: str | None = None,
        return_path_domain: str | None = None,
        personal_note: str | None = None,
    ) -> SenderState:
        require(self.actor, Permission.SENDERS_MANAGE, account_id=account_id)
        email = (from_email or "").strip().lower()
        clean_name = (name or "").strip()
        if not email or not clean_name:
            raise InvalidRequest(
                Reason.SENDER_FIELD_MISSING, "FromEmail and Name are required fields to create a Sender Signature."
            )
        _check_lengths(clean_name, personal_note)
        domain = _email_domain(email, "FromEmail")
        if is_public_domain(domain):
            raise InvalidRequest(
                Reason.SENDER_PUBLIC_DOMAIN,
                f"You cannot use a public domain ({domain}): use an address at a domain you own.",
            )
        signature = SenderSignature(
            account_id=account_id,
            email=email,
            domain=domain,
            name=clean_name,
            reply_to_email=_reply_to(reply_to_email),
            return_path_domain=_return_path(domain, return_path_domain),
            confirmation_personal_note=(personal_note or "").strip(),
        )
        if self.session.scalar(
            select(SenderSignature.id).where(SenderSignature.account_id == account_id, SenderSignature.email == email)
        ):
            raise Conflict(Reason.SENDER_TAKEN, "This Sender Signature already exists.")
        self.session.add(signature)
        try:
            self.session.flush()  # assigns signature.id; a concurrent duplicate fails here
        except IntegrityError as exc:
            raise Conflict(Reason.SENDER_TAKEN, "This Sender Signature already exists.") from exc
        if self._domain_row(signature) is None:
            DomainService(self.session, self.actor, self.runtime).create_domain(account_id, domain, None)
        self._record(signature, AuditAction.SENDER_CREATED, {"email": {"before": None, "after": email}})
        self._send_confirmation(signature)
        return self._state(signature)

    def update_sender(
        self,
        account_id: int,
        signature_id: int,
        *,
        name: str | None = None,
        reply_to_email: str | None = None,
        return_path_domain: str | None = None,
        personal_note: str | None = None,
    ) -> SenderState:
        """Absent (None) fields keep their value."""
        require(self.actor, Permission.SENDERS_MANAGE, account_id=account_id)
        signature = self._find(account_id, signature_id)
        before = _fields(signature)
        if name is not None and not name.strip():
            raise InvalidRequest(Reason.SENDER_FIELD_MISSING, "Name must not be blank.")
        _check_lengths(name.strip() if name is not None else None, personal_note)
        if name is not None:
            signature.name = name.strip()
        if reply_to_email is not None:
            signature.reply_to_email = _reply_to(reply_to_email)
        if return_path_domain is not None:
            signature.return_path_domain = _return_path(signature.domain, return_path_domain)
        if personal_note is not None:
            signature.confirmation_personal_note = personal_note.strip()
        changes = audit.changed_fields(before, _fields(signature))
        if changes:
            self._record(signature, AuditAction.SENDER_UPDATED, changes)
        return self._state(signature)

    def delete_sender(self, account_id: int, signature_id: int) -> str:
        require(self.actor, Permission.SENDERS_MANAGE, account_id=account_id)
        signature = self._find(account_id, signature_id)
        self._record(signature, AuditAction.SENDER_DELETED, {"email": {"before": signature.email, "after": None}})
        self.session.delete(signature)
        return signature.email

    def resend_confirmation(self, account_id: int, signature_id: int) -> str:
        require(self.actor, Permission.SENDERS_MANAGE, account_id=account_id)
        signature = self._find(account_id, signature_id)
        if signature.confirmed:
            raise InvalidRequest(Reason.SENDER_ALREADY_CONFIRMED, "This Sender Signature is already confirmed.")
        self._send_confirmation(signature)
        return signature.email

    def confirm(self, token: str) -> SenderSignature:
        """Follow a mailed link: possession of the unused, unexpired token is the proof."""
        found = self.session.scalar(
            select(ConfirmationToken).where(ConfirmationToken.token_digest == self.runtime.keyring.digest(token))
        )
        if found is None or found.used_at is not None:
            raise NotFound(Reason.SENDER_CONFIRMATION_INVALID, "This link has expired or was already used.")
        if found.expires_at <= utcnow():
            raise InvalidRequest(Reason.SENDER_CONFIRMATION_EXPIRED, "This link has expired or was already used.")
        signature = self.session.get(SenderSignature, found.signature_id)
        if signature is None:  # pragma: no cover - tokens are deleted with their signature
            raise NotFound(Reason.SENDER_CONFIRMATION_INVALID, "This link has expired or was already used.")
        found.used_at = utcnow()
        if not signature.confirmed:
            signature.confirmed, signature.confirmed_at = True, utcnow()
            self._record(signature, AuditAction.SENDER_CONFIRMED, {"confirmed": {"before": False, "after": True}})
        return signature

    def verify_spf(self, account_id: int, signature_id: int) -> tuple[SenderState, Check]:
        require(self.actor, Permission.SENDERS_MANAGE, account_id=account_id)
        signature = self._find(account_id, signature_id)
        domain = self._domain_row(signature)
        settings = self.runtime.settings
        check = DnsChecker(settings.dns_nameservers, timeout=settings.dns_timeout_seconds).spf_includes(
            signature.domain, settings.spf_include
        )
        if domain is not None and check.outcome is not CheckOutcome.UNKNOWN and check.verified != domain.spf_verified:
            audit.record(
                self.session,
                self.actor,
                AuditAction.DOMAIN_VERIFIED,
                account_id=account_id,
                target_type="domain",
                target_id=domain.id,
                target_label=domain.name,
                changes={"spf_verified": {"before": domain.spf_verified, "after": check.verified}},
            )
            domain.spf_verified = check.verified
        return self._state(signature), check

    def request_new_dkim(self, account_id: int, signature_id: int) -> SenderState:
        """Rotate the DKIM key of the signature's domain (505 while a new key is pending)."""
        require(self.actor, Permission.SENDERS_MANAGE, account_id=account_id)
        signature = self._find(account_id, signature_id)
        domains = DomainService(self.session, self.actor, self.runtime)
        domain = self._domain_row(signature)
        if domain is None:  # the domain was deleted: recreate it, with a new pending key
            domains.create_domain(account_id, signature.domain, None)
        else:
            domains.rotate_dkim(account_id, domain.id)
        return self._state(signature)

    # helpers

    def _find(self, account_id: int, signature_id: int) -> SenderSignature:
        signature = self.session.get(SenderSignature, signature_id)
        if signature is None or signature.account_id != account_id:
            raise NotFound(Reason.SENDER_NOT_FOUND, "This Sender Signature was not found.")
        return signature

    def _domain_row(self, signature: SenderSignature) -> Domain | None:
        return self.session.scalar(
            select(Domain).where(Domain.account_id == signature.account_id, Domain.name == signature.domain)
        )

    def _state(self, signature: SenderSignature) -> SenderState:
        domain = self._domain_row(signature)
        if domain is None:
            return SenderState(signature, None)
        return SenderState(signature, DomainService(self.session, self.actor, self.runtime).state_of(domain))

    def _send_confirmation(self, signature: SenderSignature) -> None:
        plaintext = secrets.token_hex(32)
        self.session.add(
            ConfirmationToken(
                signature_id=signature.id,
                token_digest=self.runtime.keyring.digest(plaintext),
                expires_at=utcnow() + CONFIRMATION_LIFETIME,
            )
        )
        link = f"{self.runtime.settings.public_url.rstrip('/')}/senders/confirm/{plaintext}"
        note = f"{signature.confirmation_personal_note}\n\n" if signature.confirmation_personal_note else ""
        body = (
            f"{note}Please confirm that {signature.name} <{signature.email}> may be used as a sender "
            f"by opening this link within {int(CONFIRMATION_LIFETIME.total_seconds() // 3600)} hours:\n\n"
            f"{link}\n\nIf you did not expect this message, you can ignore it.\n"
        )
        MailService(self.session, self.runtime.settings, self.enqueue).queue(
            to_address=signature.email,
            subject=f"Confirm your sender signature {signature.email}",
            text_body=body,
            account_id=signature.account_id,
        )
        self._record(signature, AuditAction.SENDER_CONFIRMATION_SENT, {})

    def _record(self, signature: SenderSignature, action: AuditAction, changes: dict[str, object]) -> None:
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=signature.account_id,
            target_type="sender",
            target_id=signature.id,
            target_label=signature.email,
            changes=changes,
        )


def is_public_domain(domain: str) -> bool:
    provider, _, country = domain.partition(".")
    labels = country.split(".")
    return domain in PUBLIC_DOMAINS or (
        provider in PUBLIC_PROVIDERS and len(labels) <= 2 and all(0 < len(label) <= 3 for label in labels)
    )


def _fields(signature: SenderSignature) -> dict[str, object]:
    return {
        "name": signature.name,
        "reply_to_email": signature.reply_to_email,
        "return_path_domain": signature.return_path_domain,
        "confirmation_personal_note": signature.confirmation_personal_note,
    }


def _check_lengths(name: str | None, note: str | None) -> None:
    if name is not None and len(name) > NAME_MAX_LENGTH:
        raise InvalidRequest(Reason.SENDER_FIELD_TOO_LONG, "Name field must be less than or equal to 255 characters.")
    if note is not None and len(note.strip()) > NOTE_MAX_LENGTH:
        raise InvalidRequest(
            Reason.SENDER_FIELD_TOO_LONG, "ConfirmationPersonalNote must be less than or equal to 400 characters."
        )


def _email_domain(email: str, field: str) -> str:
    """The domain of a valid address; 522 otherwise."""
    local, _, domain = email.partition("@")
    if len(email) > EMAIL_MAX_LENGTH or not _LOCAL_RE.match(local) or not _DOMAIN_RE.match(domain.lower()):
        raise InvalidRequest(Reason.SENDER_FIELD_INVALID, f"{field} is not a valid email address.")
    return domain.lower()


def _reply_to(value: str | None) -> str:
    clean = (value or "").strip()
    if clean:
        _email_domain(clean, "ReplyToEmail")
    return clean


def _return_path(domain: str, value: str | None) -> str:
    clean = (value or "").strip().lower().rstrip(".")
    if clean and (not _DOMAIN_RE.match(clean) or not clean.endswith("." + domain)):
        raise InvalidRequest(
            Reason.SENDER_FIELD_INVALID,
            f"ReturnPathDomain must be a subdomain of {domain}, such as pm-bounces.{domain}.",
        )
    return clean
