from __future__ import annotations

import pytest

from postwarden.urls import outbound_url_problem


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/postmark",
        "http://example.com:8080/x?y=1",
        "https://93.184.216.34/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    ],
)
def test_public_urls_are_fine(url: str) -> None:
    assert outbound_url_problem(url, allow_private=False) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://10.0.0.5/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://localhost:8080/hook",
        "http://api.localhost/hook",
        "http://printer.local/hook",
        "http://metadata.google.internal/hook",
        "http://intranet/hook",
    ],
)
def test_private_and_local_targets_are_refused_unless_allowed(url: str) -> None:
    assert outbound_url_problem(url, allow_private=False) is not None
    assert outbound_url_problem(url, allow_private=True) is None


@pytest.mark.parametrize(
    "url", ["", "example.com/hook", "ftp://example.com/x", "javascript:alert(1)", "http://", "http://exa mple.com/"]
)
def test_malformed_urls_are_refused_even_when_private_is_allowed(url: str) -> None:
    assert outbound_url_problem(url, allow_private=True) is not None
