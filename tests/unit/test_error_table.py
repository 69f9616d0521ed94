from __future__ import annotations

from pathlib import Path

from postwarden.errors import Reason
from postwarden.surfaces.errors import POSTMARK_CODES

ERRORS_DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def test_every_reason_has_a_postmark_code() -> None:
    assert set(POSTMARK_CODES) == set(Reason)


def test_every_wire_code_is_documented() -> None:
    documented = ERRORS_DOC.read_text()
    for reason, (status, code) in POSTMARK_CODES.items():
        assert f"| {status} | {code} |" in documented, f"{reason}: {status}/{code} missing from docs/errors.md"


def test_postwarden_codes_stay_in_the_reserved_range() -> None:
    sender_codes = {500, 501, 503, 504, 505, 506, 520, 521, 522}
    server_api_codes = set(range(1100, 1132)) | set(range(1220, 1242)) | set(range(1350, 1365)) | set(range(1400, 1412))
    postmark_codes = (
        {10, 402, 429, 510, 511, 512, 514, 515, 516, 523} | sender_codes | set(range(600, 616)) | server_api_codes
    )
    for reason, (_status, code) in POSTMARK_CODES.items():
        assert code in postmark_codes or 9000 <= code <= 9999, reason
