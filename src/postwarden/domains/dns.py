"""DNS lookups for domain verification, and the rules that decide whether a record is right.

Lookups never raise for what DNS answers: a missing record and an unreachable nameserver are
outcomes the caller records differently (a failed lookup must leave a verified domain verified).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Generic, TypeVar

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

T = TypeVar("T")

#: Postmark's SPF include and Return-Path target; customers copy these from Postmark's docs.
SPF_INCLUDE = "spf.mtasv.net"
RETURN_PATH_TARGET = "pm.mtasv.net"


class LookupStatus(enum.StrEnum):
    FOUND = "found"
    #: NXDOMAIN, or the name exists without a record of the asked type.
    NOT_FOUND = "not_found"
    #: Timeout, SERVFAIL, REFUSED, network error: DNS said nothing about the record.
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Lookup(Generic[T]):
    status: LookupStatus
    value: T
    detail: str

    @property
    def found(self) -> bool:
        return self.status is LookupStatus.FOUND


class CheckOutcome(enum.StrEnum):
    VERIFIED = "verified"
    WRONG = "wrong"
    MISSING = "missing"
    #: The lookup failed; the caller keeps the state it had.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Check:
    outcome: CheckOutcome
    detail: str

    @property
    def verified(self) -> bool:
        return self.outcome is CheckOutcome.VERIFIED


def parse_nameserver(value: str) -> tuple[str, int]:
    """``host[:port]`` with an IP literal (IPv6 as ``[addr]:port`` or bare); resolvers need addresses."""
    text = value.strip()
    if not text:
        raise ValueError("DNS nameserver is empty; expected an IP address with an optional :port")
    port_text: str | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"DNS nameserver {value!r} is not valid; expected [IPv6]:port")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"DNS nameserver {value!r} is not an IP address (host[:port], e.g. 192.0.2.53:53)") from None
    if text.startswith("[") and address.version != 6:
        raise ValueError(f"DNS nameserver {value!r}: brackets are only for IPv6 addresses")
    port = 53
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"DNS nameserver {value!r} has an invalid port; expected 1-65535")
        port = int(port_text)
    return str(address), port


def _display(name: str) -> str:
    return name.rstrip(".")


def _same_host(a: str, b: str) -> bool:
    return a.rstrip(".").casefold() == b.rstrip(".").casefold()


def _failure_reason(exc: dns.resolver.NoNameservers) -> str:
    reasons: list[str] = []
    for error in exc.kwargs.get("errors", []):
        address = str(error[0]).removeprefix("Do53:").split("@")[0]
        server, problem = f"nameserver {address}#{error[2]}", error[3]
        text = f"{server} answered {problem}" if isinstance(problem, str) else f"{server}: {problem}"
        if text not in reasons:
            reasons.append(text)
    return "; ".join(reasons) or "no nameserver answered"


def _dkim_tags(record: str) -> dict[str, str]:
    """DKIM tag=value list (RFC 6376 §3.2): order is free and whitespace is folding, not content."""
    tags: dict[str, str] = {}
    for part in record.split(";"):
        tag, sep, value = part.partition("=")
        if sep:
            tags[tag.strip().lower()] = "".join(value.split())
    return tags


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DnsChecker:
    """Asks the configured nameservers (or the system's) and encodes the verification rules."""

    def __init__(self, nameservers: list[str], timeout: float = 3.0) -> None:
        self.timeout = timeout
        self._setup_error: str | None = None
        if nameservers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in map(parse_nameserver, nameservers)
            ]
        else:
            try:
                resolver = dns.resolver.Resolver(configure=True)
            except dns.resolver.NoResolverConfiguration as exc:
                # A host without resolv.conf should fail its checks, not the start-up of the server.
                resolver = dns.resolver.Resolver(configure=False)
                self._setup_error = f"no system DNS configuration ({exc})"
        resolver.timeout = timeout
        resolver.lifetime = timeout
        resolver.cache = None
        self._resolver = resolver

    def _resolve(self, name: str, rdtype: dns.rdatatype.RdataType) -> Lookup[dns.resolver.Answer | None]:
        shown = _display(name)
        kind = rdtype.name
        if self._setup_error is not None:
            return Lookup(LookupStatus.FAILED, None, f"DNS lookup for {shown} failed: {self._setup_error}")
        try:
            qname = dns.name.from_text(name)
            answer = self._resolver.resolve(qname, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return Lookup(LookupStatus.NOT_FOUND, None, f"{shown} does not exist in DNS (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            return Lookup(LookupStatus.NOT_FOUND, None, f"{shown} has no {kind} record")
        except dns.resolver.LifetimeTimeout:
            return Lookup(LookupStatus.FAILED, None, f"DNS lookup for {shown} timed out after {self.timeout:g} s")
        except dns.resolver.NoNameservers as exc:
            return Lookup(LookupStatus.FAILED, None, f"DNS lookup for {shown} failed: {_failure_reason(exc)}")
        except dns.exception.DNSException as exc:
            return Lookup(LookupStatus.FAILED, None, f"DNS lookup for {shown} failed: {exc}")
        return Lookup(LookupStatus.FOUND, answer, f"{shown} has {kind} records")

    def txt_records(self, name: str) -> Lookup[list[str]]:
        """Each record's character-strings joined, as DNS clients (and DKIM verifiers) read them."""
        result = self._resolve(name, dns.rdatatype.TXT)
        if result.value is None:
            return Lookup(result.status, [], result.detail)
        records = [
            b"".join(rdata.strings).decode("utf-8", errors="replace")
            for rdata in result.value
            if rdata.rdtype == dns.rdatatype.TXT
        ]
        return Lookup(LookupStatus.FOUND, records, f"{_display(name)} has {len(records)} TXT record(s)")

    def cname(self, name: str) -> Lookup[str | None]:
        result = self._resolve(name, dns.rdatatype.CNAME)
        if result.value is None:
            return Lookup(result.status, None, result.detail)
        target = _display(result.value[0].target.to_text())
        return Lookup(LookupStatus.FOUND, target, f"{_display(name)} is a CNAME for {target}")

    def dkim_matches(self, name: str, expected_txt: str) -> Check:
        """Only the public key matters: the record may order tags or fold whitespace differently."""
        expected_key = _dkim_tags(expected_txt).get("p")
        if not expected_key:
            raise ValueError("the expected DKIM record has no p= public key")
        shown = _display(name)
        lookup = self.txt_records(name)
        if lookup.status is LookupStatus.FAILED:
            return Check(CheckOutcome.UNKNOWN, lookup.detail)
        if lookup.status is LookupStatus.NOT_FOUND:
            return Check(
                CheckOutcome.MISSING, f"{lookup.detail}; expected a DKIM TXT record with p={_short(expected_key)}"
            )
        keys = [tags["p"] for tags in map(_dkim_tags, lookup.value) if "p" in tags]
        if expected_key in keys:
            return Check(CheckOutcome.VERIFIED, f"the DKIM TXT record at {shown} has the expected public key")
        expected = f"expected p={_short(expected_key)}"
        if not keys:
            found = ", ".join(repr(_short(record)) for record in lookup.value)
            return Check(
                CheckOutcome.WRONG, f"the TXT record at {shown} has no DKIM public key (found {found}; {expected})"
            )
        found = ", ".join(f"p={_short(key)}" if key else "an empty p= (revoked key)" for key in keys)
        return Check(
            CheckOutcome.WRONG, f"the DKIM TXT record at {shown} has a different public key: found {found}; {expected}"
        )

    def spf_includes(self, domain: str, include: str = SPF_INCLUDE) -> Check:
        """A domain publishes at most one SPF record (RFC 7208 §4.5); it must authorize ``include``."""
        shown = _display(domain)
        lookup = self.txt_records(domain)
        if lookup.status is LookupStatus.FAILED:
            return Check(CheckOutcome.UNKNOWN, lookup.detail)
        spf = [record for record in lookup.value if (record.split() or [""])[0].lower() == "v=spf1"]
        if not spf:
            return Check(
                CheckOutcome.MISSING, f"no SPF (v=spf1) TXT record at {shown}; expected one with include:{include}"
            )
        if len(spf) > 1:
            return Check(
                CheckOutcome.WRONG, f"{shown} publishes {len(spf)} SPF records; SPF allows one, with include:{include}"
            )
        record = spf[0]
        for term in record.split()[1:]:
            mechanism, _, value = term.lstrip("+").partition(":")
            if mechanism.lower() == "include" and _same_host(value, include):
                return Check(CheckOutcome.VERIFIED, f"the SPF record at {shown} includes {include}")
        return Check(
            CheckOutcome.WRONG, f"the SPF record at {shown} is {record!r}; expected it to contain include:{include}"
        )

    def cname_points_to(self, name: str, target: str = RETURN_PATH_TARGET) -> Check:
        shown = _display(name)
        lookup = self.cname(name)
        if lookup.status is LookupStatus.FAILED:
            return Check(CheckOutcome.UNKNOWN, lookup.detail)
        if lookup.value is None:
            return Check(CheckOutcome.MISSING, f"{lookup.detail}; expected a CNAME to {_display(target)}")
        if _same_host(lookup.value, target):
            return Check(CheckOutcome.VERIFIED, f"{shown} is a CNAME for {lookup.value}")
        return Check(CheckOutcome.WRONG, f"{shown} is a CNAME for {lookup.value}; expected {_display(target)}")
