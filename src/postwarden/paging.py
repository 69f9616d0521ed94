"""Offset paging as Postmark's lists take it: ``count`` 1-500 and ``offset`` 0 or more."""

from __future__ import annotations

from typing import Final

from postwarden.errors import InvalidRequest, Reason

MAX_PAGE_SIZE: Final = 500


def check_page(count: int, offset: int, reason: Reason) -> None:
    """Raise ``InvalidRequest(reason)``, the list's own error family, for a page out of range."""
    if not 1 <= count <= MAX_PAGE_SIZE:
        raise InvalidRequest(reason, f"The 'count' parameter must be between 1 and {MAX_PAGE_SIZE}.")
    if offset < 0:
        raise InvalidRequest(reason, "The 'offset' parameter must be 0 or more.")
