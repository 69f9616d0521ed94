"""The one table from domain error to Postmark wire error: (HTTP status, ErrorCode).

Postmark's own codes are used wherever Postmark has one. Codes postwarden adds live in
the reserved range 9000-9999 (docs/errors.md), so they never collide with Postmark's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from starlette.responses import Response

from postwarden.errors import PostwardenError, Reason
from postwarden.surfaces.http import JSONBytesResponse

POSTMARK_CODES: Final[Mapping[Reason, tuple[int, int]]] = {
    Reason.MISSING_CREDENTIAL: (401, 10),
    Reason.BAD_CREDENTIAL: (401, 10),
    Reason.WRONG_CREDENTIAL_KIND: (401, 10),
    Reason.NOT_ALLOWED: (403, 9001),
    Reason.SERVER_DELETION_DISABLED: (422, 604),
    Reason.INVALID_JSON: (422, 402),
    Reason.INVALID_FIELD: (422, 402),
    Reason.RATE_LIMITED: (429, 429),
    Reason.ROUTE_NOT_FOUND: (404, 9404),
    Reason.METHOD_NOT_ALLOWED: (405, 9405),
    Reason.ACCOUNT_NOT_FOUND: (404, 9002),
    Reason.ACCOUNT_TOKEN_NOT_FOUND: (404, 9003),
    Reason.ACCOUNT_NAME_INVALID: (422, 9004),
    Reason.USER_EMAIL_INVALID: (422, 9005),
    Reason.USER_EMAIL_TAKEN: (422, 9006),
    Reason.PASSWORD_TOO_SHORT: (422, 9007),
    Reason.OUTBOX_MESSAGE_NOT_FOUND: (404, 9008),
    Reason.DOMAIN_NOT_FOUND: (422, 510),
    Reason.DOMAIN_QUERY_INVALID: (422, 500),
    Reason.DOMAIN_NAME_MISSING: (422, 514),
    Reason.DOMAIN_NAME_TOO_LONG: (422, 515),
    Reason.DOMAIN_NAME_INVALID: (422, 516),
    Reason.DOMAIN_TAKEN: (422, 512),
    Reason.DOMAIN_FIELD_INVALID: (422, 511),
    Reason.DKIM_RENEWAL_PENDING: (422, 505),
    Reason.RETURN_PATH_CNAME_WRONG: (422, 523),
    Reason.SENDER_QUERY_INVALID: (422, 500),
    Reason.SENDER_NOT_FOUND: (422, 501),
    Reason.SENDER_PUBLIC_DOMAIN: (422, 503),
    Reason.SENDER_TAKEN: (422, 504),
    Reason.SENDER_ALREADY_CONFIRMED: (422, 506),
    Reason.SENDER_FIELD_MISSING: (422, 520),
    Reason.SENDER_FIELD_TOO_LONG: (422, 521),
    Reason.SENDER_FIELD_INVALID: (422, 522),
    Reason.SENDER_CONFIRMATION_INVALID: (404, 9009),
    Reason.SENDER_CONFIRMATION_EXPIRED: (410, 9010),
    Reason.SERVER_NOT_FOUND: (404, 601),
    Reason.SERVER_QUERY_INVALID: (422, 600),
    Reason.SERVER_NAME_INVALID: (422, 608),
    Reason.SERVER_NAME_TAKEN: (422, 603),
    Reason.SERVER_COLOR_INVALID: (422, 607),
    Reason.SERVER_HOOK_URL_INVALID: (422, 606),
    Reason.SERVER_SPAM_THRESHOLD_INVALID: (422, 611),
    Reason.SERVER_TRACK_LINKS_INVALID: (422, 612),
    Reason.SERVER_DELIVERY_TYPE_INVALID: (422, 613),
    Reason.SERVER_INBOUND_DOMAIN_INVALID: (422, 608),
    Reason.SERVER_INBOUND_DOMAIN_TAKEN: (422, 602),
    Reason.SERVER_NO_CHANGES: (422, 609),
    Reason.SERVER_LIMIT_REACHED: (422, 614),
}


def postmark_error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONBytesResponse(
        {"ErrorCode": code, "Message": message},
        status_code=status,
        headers={"X-PM-ApiErrorCode": str(code), **(headers or {})},
    )


def postmark_error_response(error: PostwardenError) -> Response:
    status, code = POSTMARK_CODES[error.reason]
    return postmark_error(status, code, error.message)
