"""Email addresses that mail is sent to or from: one syntax for senders, reply-to addresses
and suppressions, and for the OpenAPI patterns that describe them."""

from __future__ import annotations

import re
from typing import Final

MAX_LENGTH: Final = 320
#: A dot-atom local part and a domain of letter-digit-hyphen labels with a top-level name.
PATTERN: Final = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_ADDRESS_RE: Final = re.compile(PATTERN)


def is_email_address(text: str) -> bool:
    return len(text) <= MAX_LENGTH and _ADDRESS_RE.fullmatch(text) is not None
