"""Domains: the only code that creates, verifies, rotates or deletes them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postwarden import audit
from postwarden.audit import AuditAction
from postwarden.db import utcnow
from postwarden.domains.dkim import DkimSigner, dkim_host, generate_key, selector_for
from postwarden.domains.dns import Check, CheckOutcome, DnsChecker
from postwarden.domains.models import DkimKey, Domain
from postwarden.errors import Conflict, InvalidRequest, NotFound, Reason
from postwarden.identity import Actor
from postwarden.paging import check_page
from postwarden.policy import Permission, require
from postwarden.runtime import Runtime

PENDING, ACTIVE, REVOKED = "pending", "active", "revoked"
NAME_MAX_LENGTH: Final = 255
#: How long a revoked key stays published: mail signed with it may still be in transit.
REVOKED_KEY_GRACE: Final = timedelta(days=7)
_DOMAIN_RE: Final = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class DomainState:
    """A domain with its DKIM keys, as the API shows it."""

    domain: Domain
    active: DkimKey | None
    pending: DkimKey | None
    revoked: DkimKey | None

    @property
    def safe_to_remove_revoked_key(self) -> bool:
        return (
            self.revoked is not None
            and self.revoked.revoked_at is not None
            and (utcnow() - self.revoked.revoked_at >= REVOKED_KEY_GRACE)
        )

    def host_of(self, key: DkimKey | None) -> str:
        return dkim_host(key.selector, self.domain.name) if key is not None else ""


@dataclass(frozen=True)
class DomainPage:
    total: int
    domains: list[DomainState]


class DomainService:
    def __init__(self, session: Session, actor: Actor, runtime: Runtime) -> None:
        self.session = session
        self.actor = actor
        self.runtime = runtime

    # reading

    def list_domains(self, account_id: int, *, count: int, offset: int) -> DomainPage:
        require(self.actor, Permission.DOMAINS_READ, account_id=account_id)
        check_page(count, offset, Reason.DOMAIN_QUERY_INVALID)
        query = select(Domain).where(Domain.account_id == account_id)
        total = self.session.scalar(select(func.count()).select_from(query.subquery())) or 0
        domains = self.session.scalars(query.order_by(Domain.name, Domain.id).limit(count).offset(offset))
        return DomainPage(total, [self._state(domain) for domain in domains])

    def get_domain(self, account_id: int, domain_id: int) -> DomainState:
        require(self.actor, Permission.DOMAINS_READ, account_id=account_id)
        return self._state(self._find(account_id, domain_id))

    def state_of(self, domain: Domain) -> DomainState:
        """The DKIM state of a domain already read under another permission (a sender signature's)."""
        return self._state(domain)

    def signer(self, account_id: int, domain_id: int) -> DkimSigner:
        """A signer holding the domain's active key, for the sending pipeline.

        Raises NotFound while no key is active (DNS has not shown one yet)."""
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        state = self._state(self._find(account_id, domain_id))
        if state.active is None:
            raise NotFound(Reason.DOMAIN_NOT_FOUND, f"{state.domain.name} has no verified DKIM key yet.")
        private_pem = self.runtime.keyring.decrypt(state.active.private_key_encrypted).encode()
        return DkimSigner(private_pem, state.active.selector, state.domain.name)

    # changing

    def create_domain(self, account_id: int, name: str | None, return_path_domain: str | None) -> DomainState:
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        clean = _clean_name(name)
        if self.session.scalar(select(Domain.id).where(Domain.account_id == account_id, Domain.name == clean)):
            raise Conflict(Reason.DOMAIN_TAKEN, "This domain already exists.")
        domain = Domain(account_id=account_id, name=clean, return_path_domain=_return_path(clean, return_path_domain))
        self.session.add(domain)
        try:
            self.session.flush()  # assigns domain.id for its key; a concurrent duplicate fails here
        except IntegrityError as exc:
            raise Conflict(Reason.DOMAIN_TAKEN, "This domain already exists.") from exc
        self._add_pending_key(domain)
        audit.record(
            self.session,
            self.actor,
            AuditAction.DOMAIN_CREATED,
            account_id=account_id,
            target_type="domain",
            target_id=domain.id,
            target_label=domain.name,
            changes={"name": {"before": None, "after": clean}},
        )
        return self._state(domain)

    def update_domain(self, account_id: int, domain_id: int, return_path_domain: str | None) -> DomainState:
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        domain = self._find(account_id, domain_id)
        if return_path_domain is not None:
            new = _return_path(domain.name, return_path_domain)
            if new != domain.return_path_domain:
                self._record(domain, AuditAction.DOMAIN_UPDATED, "return_path_domain", domain.return_path_domain, new)
                domain.return_path_domain = new
                domain.return_path_verified = False
        return self._state(domain)

    def delete_domain(self, account_id: int, domain_id: int) -> str:
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        domain = self._find(account_id, domain_id)
        self._record(domain, AuditAction.DOMAIN_DELETED, "name", domain.name, None)
        self.session.delete(domain)
        return domain.name

    def verify_dkim(self, account_id: int, domain_id: int) -> tuple[DomainState, Check]:
        """Look the pending (or else the active) key up in DNS; a pending key found there
        becomes active and the one it replaces is revoked. A failed lookup changes nothing."""
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        state = self._state(self._find(account_id, domain_id))
        key = state.pending or state.active
        if key is None:  # pragma: no cover - every domain has a key
            raise NotFound(Reason.DOMAIN_NOT_FOUND, "This domain has no DKIM key.")
        check = self._dns().dkim_matches(state.host_of(key), key.public_txt)
        if check.verified and key.state == PENDING:
            now = utcnow()
            if state.active is not None:
                state.active.state, state.active.revoked_at = REVOKED, now
            key.state, key.activated_at = ACTIVE, now
            self._record(
                state.domain, AuditAction.DOMAIN_VERIFIED, "dkim_host", state.host_of(state.active), state.host_of(key)
            )
            state = self._state(state.domain)
        return state, check

    def verify_return_path(self, account_id: int, domain_id: int) -> tuple[DomainState, Check | None]:
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        domain = self._find(account_id, domain_id)
        if not domain.return_path_domain:
            return self._state(domain), None
        target = self.runtime.settings.return_path_target
        check = self._dns().cname_points_to(domain.return_path_domain, target)
        if check.outcome in (CheckOutcome.WRONG, CheckOutcome.MISSING):
            raise InvalidRequest(
                Reason.RETURN_PATH_CNAME_WRONG,
                f"The CNAME record for {domain.return_path_domain} does not point to {target}: {check.detail}",
            )
        if check.verified and not domain.return_path_verified:
            self._record(domain, AuditAction.DOMAIN_VERIFIED, "return_path_verified", False, True)
            domain.return_path_verified = True
        return self._state(domain), check

    def verify_spf(self, account_id: int, domain_id: int) -> tuple[DomainState, Check]:
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        domain = self._find(account_id, domain_id)
        check = self._dns().spf_includes(domain.name, self.runtime.settings.spf_include)
        if check.outcome is not CheckOutcome.UNKNOWN and check.verified != domain.spf_verified:
            self._record(domain, AuditAction.DOMAIN_VERIFIED, "spf_verified", domain.spf_verified, check.verified)
            domain.spf_verified = check.verified
        return self._state(domain), check

    def rotate_dkim(self, account_id: int, domain_id: int) -> DomainState:
        require(self.actor, Permission.DOMAINS_MANAGE, account_id=account_id)
        state = self._state(self._find(account_id, domain_id))
        if state.pending is not None:
            raise Conflict(Reason.DKIM_RENEWAL_PENDING, "This DKIM is already being renewed.")
        key = self._add_pending_key(state.domain)
        audit.record(
            self.session,
            self.actor,
            AuditAction.DOMAIN_DKIM_ROTATED,
            account_id=account_id,
            target_type="domain",
            target_id=state.domain.id,
            target_label=state.domain.name,
            changes={"dkim_pending_host": {"before": None, "after": dkim_host(key.selector, state.domain.name)}},
        )
        return self._state(state.domain)

    # helpers

    def _find(self, account_id: int, domain_id: int) -> Domain:
        domain = self.session.get(Domain, domain_id)
        if domain is None or domain.account_id != account_id:
            raise NotFound(Reason.DOMAIN_NOT_FOUND, "This domain was not found.")
        return domain

    def _state(self, domain: Domain) -> DomainState:
        keys = list(self.session.scalars(select(DkimKey).where(DkimKey.domain_id == domain.id).order_by(DkimKey.id)))
        by_state = {state: [k for k in keys if k.state == state] for state in (PENDING, ACTIVE, REVOKED)}
        return DomainState(
            domain,
            active=by_state[ACTIVE][-1] if by_state[ACTIVE] else None,
            pending=by_state[PENDING][-1] if by_state[PENDING] else None,
            revoked=by_state[REVOKED][-1] if by_state[REVOKED] else None,
        )

    def _add_pending_key(self, domain: Domain) -> DkimKey:
        generated = generate_key(self.runtime.settings.dkim_key_bits)
        key = DkimKey(
            domain_id=domain.id,
            selector=selector_for(utcnow()),
            bits=generated.bits,
            private_key_encrypted=self.runtime.keyring.encrypt(generated.private_pem.decode()),
            public_txt=generated.public_txt,
            state=PENDING,
        )
        self.session.add(key)
        self.session.flush()  # the new key counts in this transaction's reads
        return key

    def _dns(self) -> DnsChecker:
        settings = self.runtime.settings
        return DnsChecker(settings.dns_nameservers, timeout=settings.dns_timeout_seconds)

    def _record(self, domain: Domain, action: AuditAction, field: str, before: object, after: object) -> None:
        audit.record(
            self.session,
            self.actor,
            action,
            account_id=domain.account_id,
            target_type="domain",
            target_id=domain.id,
            target_label=domain.name,
            changes={field: {"before": before, "after": after}},
        )


def _clean_name(name: str | None) -> str:
    clean = (name or "").strip().lower().rstrip(".")
    if not clean:
        raise InvalidRequest(Reason.DOMAIN_NAME_MISSING, "Name is a required field to create a Domain.")
    if len(clean) > NAME_MAX_LENGTH:
        raise InvalidRequest(Reason.DOMAIN_NAME_TOO_LONG, "Name field must be less than or equal to 255 characters.")
    if not _DOMAIN_RE.match(clean):
        raise InvalidRequest(Reason.DOMAIN_NAME_INVALID, "Name format is invalid.")
    return clean


def _return_path(domain: str, value: str | None) -> str:
    """``""`` or ``None`` clears; otherwise a subdomain of the domain itself."""
    clean = (value or "").strip().lower().rstrip(".")
    if clean and (not _DOMAIN_RE.match(clean) or not clean.endswith("." + domain)):
        raise InvalidRequest(
            Reason.DOMAIN_FIELD_INVALID,
            f"ReturnPathDomain must be a subdomain of {domain}, such as pm-bounces.{domain}.",
        )
    return clean
