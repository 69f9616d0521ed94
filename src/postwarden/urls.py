"""Checks on URLs that postwarden will call later (hooks, webhooks)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


def outbound_url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` may not be called, or None when it may.

    Literal private, loopback, link-local and reserved addresses and local host names are
    refused unless the operator allows private targets. Names that resolve to such
    addresses are caught again when a delivery connects.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in {"http", "https"}:
        return "only http and https URLs are allowed"
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "it has no host"
    if port == 0:
        return "port 0 is not allowed"
    if parts.username is not None and any(ch.isspace() for ch in parts.username):
        return "it is not a valid URL"
    if any(ch.isspace() for ch in url):
        return "it must not contain spaces"
    if allow_private:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
            return "it points to a local host name"
        return None
    if not address.is_global:
        return "it points to a private, loopback, link-local or reserved address"
    return None
