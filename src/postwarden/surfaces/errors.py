"""The one table from domain error to wire error, (HTTP status, ErrorCode), for the Postmark
and team APIs, which share their conventions.

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
    Reason.TWO_FACTOR_REQUIRED: (403, 9011),
    Reason.PERSONAL_CREDENTIAL_NEEDED: (403, 9012),
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
    Reason.TEAM_QUERY_INVALID: (422, 9013),
    Reason.USER_NOT_FOUND: (404, 9014),
    Reason.ROLE_INVALID: (422, 9015),
    Reason.OWNER_PROTECTED: (403, 9016),
    Reason.OWNER_BY_TRANSFER_ONLY: (422, 9017),
    Reason.TRANSFER_TARGET_NOT_ADMIN: (422, 9018),
    Reason.SERVER_ACCESS_INVALID: (422, 9019),
    Reason.SERVER_ACCESS_FIXED_BY_ROLE: (422, 9020),
    Reason.INVITATION_NOT_FOUND: (404, 9021),
    Reason.INVITATION_FIELD_INVALID: (422, 9022),
    Reason.INVITATION_ALREADY_MEMBER: (422, 9023),
    Reason.INVITATION_LINK_INVALID: (404, 9024),
    Reason.INVITATION_LINK_EXPIRED: (410, 9025),
    Reason.SENDING_PAUSED: (422, 9026),
    Reason.LOGIN_FAILED: (401, 9027),
    Reason.LOGIN_THROTTLED: (429, 9028),
    Reason.TWO_FACTOR_CODE_NEEDED: (401, 9029),
    Reason.TWO_FACTOR_CODE_INVALID: (422, 9030),
    Reason.TWO_FACTOR_ALREADY_ENABLED: (422, 9031),
    Reason.TWO_FACTOR_NOT_STARTED: (422, 9032),
    Reason.PERSONAL_TOKEN_NOT_FOUND: (404, 9033),
    Reason.PERSONAL_TOKEN_FIELD_INVALID: (422, 9034),
    Reason.ACCOUNT_FIELD_INVALID: (422, 9035),
    Reason.NOTHING_TO_CHANGE: (422, 9036),
    Reason.PASSWORD_WRONG: (422, 9037),
    Reason.PASSWORD_RESET_LINK_INVALID: (404, 9053),
    Reason.PASSWORD_RESET_LINK_EXPIRED: (410, 9054),
    Reason.SCIM_TOKEN_NOT_FOUND: (404, 9041),
    Reason.SCIM_TOKEN_FIELD_INVALID: (422, 9042),
    Reason.GROUP_NOT_FOUND: (404, 9043),
    Reason.GROUP_FIELD_INVALID: (422, 9044),
    # SCIM's own errors answer on /scim/v2 in SCIM's shape (surfaces/scim/errors.py); these
    # codes serve should one reach the team API.
    Reason.SCIM_RESOURCE_NOT_FOUND: (404, 9045),
    Reason.SCIM_FILTER_INVALID: (422, 9046),
    Reason.SCIM_SYNTAX_INVALID: (422, 9046),
    Reason.SCIM_PATH_INVALID: (422, 9046),
    Reason.SCIM_NO_TARGET: (422, 9046),
    Reason.SCIM_VALUE_INVALID: (422, 9046),
    Reason.SCIM_MUTABILITY: (422, 9046),
    Reason.SCIM_UNIQUENESS: (422, 9047),
    Reason.SCIM_TOO_MANY: (422, 9046),
    Reason.SCIM_VERSION_MISMATCH: (412, 9048),
    Reason.AUDIT_EVENT_NOT_FOUND: (404, 9050),
    Reason.AUDIT_QUERY_INVALID: (422, 9051),
    Reason.AUDIT_QUERY_COMBINATION: (422, 9052),
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
    Reason.SERVER_ID_REQUIRED: (422, 9038),
    # message streams
    Reason.STREAM_NOT_FOUND: (422, 1226),
    Reason.STREAM_TYPE_INVALID: (422, 1221),
    Reason.STREAM_ID_MISSING: (422, 1222),
    Reason.STREAM_ID_INVALID: (422, 1227),
    Reason.STREAM_ID_TAKEN: (422, 1230),
    Reason.STREAM_ID_PM_PREFIX: (422, 1233),
    Reason.STREAM_ID_RESERVED: (422, 1237),
    Reason.STREAM_NAME_MISSING: (422, 1223),
    Reason.STREAM_NAME_TOO_LONG: (422, 1224),
    Reason.STREAM_DESCRIPTION_TOO_LONG: (422, 1231),
    Reason.STREAM_DESCRIPTION_HTML: (422, 1234),
    Reason.STREAM_LIMIT_REACHED: (422, 1225),
    Reason.STREAM_INBOUND_EXISTS: (422, 1228),
    Reason.STREAM_DEFAULT_NOT_ARCHIVABLE: (422, 1229),
    Reason.STREAM_PURGED: (422, 1232),
    Reason.STREAM_UNSUBSCRIBE_CUSTOM: (422, 1238),
    Reason.STREAM_UNSUBSCRIBE_UNSUPPORTED: (422, 1239),
    Reason.STREAM_UNSUBSCRIBE_INVALID: (422, 1240),
    Reason.STREAM_QUERY_INVALID: (422, 9040),
    # suppressions
    Reason.SUPPRESSION_QUERY_INVALID: (422, 1400),
    Reason.SUPPRESSION_REASON_INVALID: (422, 1404),
    Reason.SUPPRESSION_ORIGIN_INVALID: (422, 1405),
    Reason.SUPPRESSION_BODY_MISSING: (422, 1409),
    Reason.SUPPRESSION_TOO_MANY: (422, 1410),
    # templates
    Reason.TEMPLATE_QUERY_INVALID: (422, 1100),
    Reason.TEMPLATE_NOT_FOUND: (422, 1101),
    Reason.TEMPLATE_LIMIT_REACHED: (422, 1105),
    Reason.TEMPLATE_NO_DATA: (422, 1109),
    Reason.TEMPLATE_FIELD_MISSING: (422, 1120),
    Reason.TEMPLATE_FIELD_TOO_LONG: (422, 1121),
    Reason.TEMPLATE_FIELD_INVALID: (422, 1122),
    Reason.TEMPLATE_FIELDS_CONFLICT: (422, 1123),
    Reason.TEMPLATE_NOTHING_TO_PUSH: (422, 1124),
    Reason.TEMPLATE_TYPES_DIFFER: (422, 1125),
    Reason.TEMPLATE_LAYOUT_IN_USE: (422, 1130),
    Reason.TEMPLATE_LAYOUT_PLACEHOLDER: (422, 1131),
    Reason.TEMPLATE_PUSH_SERVER_NOT_FOUND: (422, 601),
    # webhooks
    Reason.WEBHOOK_STREAM_ARCHIVED: (422, 1350),
    Reason.WEBHOOK_STREAM_INBOUND: (422, 1351),
    Reason.WEBHOOK_NOT_FOUND: (422, 1352),
    Reason.WEBHOOK_TRIGGER_UNSUPPORTED: (422, 1353),
    Reason.WEBHOOK_URL_INVALID: (422, 1354),
    Reason.WEBHOOK_BODY_MISSING: (422, 1355),
    Reason.WEBHOOK_ID_GIVEN: (422, 1356),
    Reason.WEBHOOK_IMMUTABLE_FIELD: (422, 1357),
    Reason.WEBHOOK_HEADER_NAME_INVALID: (422, 1358),
    Reason.WEBHOOK_LIMIT_REACHED: (422, 1359),
    Reason.WEBHOOK_FIELD_INVALID: (422, 1361),
    Reason.WEBHOOK_DELIVERY_QUERY_INVALID: (422, 9039),
}


def postmark_error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONBytesResponse(
        {"ErrorCode": code, "Message": message},
        status_code=status,
        headers={"X-PM-ApiErrorCode": str(code), **(headers or {})},
    )


#: Seconds a refused caller should wait, sent as ``Retry-After``.
RETRY_AFTER: Final[Mapping[Reason, int]] = {Reason.LOGIN_THROTTLED: 15 * 60}


def postmark_error_response(error: PostwardenError) -> Response:
    status, code = POSTMARK_CODES[error.reason]
    wait = RETRY_AFTER.get(error.reason)
    return postmark_error(status, code, error.message, {"Retry-After": str(wait)} if wait else None)
