"""Domain errors. They know nothing of HTTP; each surface translates them with one table.

    PostwardenError
    ├── NotAuthenticated   missing, unknown or revoked credential
    ├── PermissionDenied   authenticated, but policy says no
    ├── NotFound           the thing does not exist (or is not visible to the caller)
    ├── Conflict           duplicate name, plan limit reached
    └── InvalidRequest     well-formed request, invalid meaning

Every error carries a ``Reason`` (what went wrong, precisely enough for a surface to pick
its wire code) and a message that tells the caller what to do.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # authentication
    MISSING_CREDENTIAL = "missing_credential"
    BAD_CREDENTIAL = "bad_credential"
    WRONG_CREDENTIAL_KIND = "wrong_credential_kind"
    # authorisation
    NOT_ALLOWED = "not_allowed"
    SERVER_DELETION_DISABLED = "server_deletion_disabled"
    TWO_FACTOR_REQUIRED = "two_factor_required"
    PERSONAL_CREDENTIAL_NEEDED = "personal_credential_needed"
    # generic request shape
    INVALID_JSON = "invalid_json"
    INVALID_FIELD = "invalid_field"
    RATE_LIMITED = "rate_limited"
    ROUTE_NOT_FOUND = "route_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    # accounts
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNT_TOKEN_NOT_FOUND = "account_token_not_found"
    ACCOUNT_NAME_INVALID = "account_name_invalid"
    USER_EMAIL_INVALID = "user_email_invalid"
    USER_EMAIL_TAKEN = "user_email_taken"
    PASSWORD_TOO_SHORT = "password_too_short"
    # people: members, invitations, sign-in, second factor, personal tokens
    TEAM_QUERY_INVALID = "team_query_invalid"
    USER_NOT_FOUND = "user_not_found"
    ROLE_INVALID = "role_invalid"
    OWNER_PROTECTED = "owner_protected"
    OWNER_BY_TRANSFER_ONLY = "owner_by_transfer_only"
    TRANSFER_TARGET_NOT_ADMIN = "transfer_target_not_admin"
    SERVER_ACCESS_INVALID = "server_access_invalid"
    SERVER_ACCESS_FIXED_BY_ROLE = "server_access_fixed_by_role"
    INVITATION_NOT_FOUND = "invitation_not_found"
    INVITATION_FIELD_INVALID = "invitation_field_invalid"
    INVITATION_ALREADY_MEMBER = "invitation_already_member"
    INVITATION_LINK_INVALID = "invitation_link_invalid"
    INVITATION_LINK_EXPIRED = "invitation_link_expired"
    SENDING_PAUSED = "sending_paused"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    TWO_FACTOR_CODE_NEEDED = "two_factor_code_needed"
    TWO_FACTOR_CODE_INVALID = "two_factor_code_invalid"
    TWO_FACTOR_ALREADY_ENABLED = "two_factor_already_enabled"
    TWO_FACTOR_NOT_STARTED = "two_factor_not_started"
    PERSONAL_TOKEN_NOT_FOUND = "personal_token_not_found"
    PERSONAL_TOKEN_FIELD_INVALID = "personal_token_field_invalid"
    ACCOUNT_FIELD_INVALID = "account_field_invalid"
    NOTHING_TO_CHANGE = "nothing_to_change"
    PASSWORD_WRONG = "password_wrong"
    PASSWORD_RESET_LINK_INVALID = "password_reset_link_invalid"
    PASSWORD_RESET_LINK_EXPIRED = "password_reset_link_expired"
    # SCIM tokens and groups (team API)
    SCIM_TOKEN_NOT_FOUND = "scim_token_not_found"
    SCIM_TOKEN_FIELD_INVALID = "scim_token_field_invalid"
    GROUP_NOT_FOUND = "group_not_found"
    GROUP_FIELD_INVALID = "group_field_invalid"
    # SCIM provisioning (RFC 7644 §3.12 names each one's scimType)
    SCIM_RESOURCE_NOT_FOUND = "scim_resource_not_found"
    SCIM_FILTER_INVALID = "scim_filter_invalid"
    SCIM_SYNTAX_INVALID = "scim_syntax_invalid"
    SCIM_PATH_INVALID = "scim_path_invalid"
    SCIM_NO_TARGET = "scim_no_target"
    SCIM_VALUE_INVALID = "scim_value_invalid"
    SCIM_MUTABILITY = "scim_mutability"
    SCIM_UNIQUENESS = "scim_uniqueness"
    SCIM_TOO_MANY = "scim_too_many"
    SCIM_VERSION_MISMATCH = "scim_version_mismatch"
    # the audit log
    AUDIT_EVENT_NOT_FOUND = "audit_event_not_found"
    AUDIT_QUERY_INVALID = "audit_query_invalid"
    AUDIT_QUERY_COMBINATION = "audit_query_combination"
    # domains
    DOMAIN_NOT_FOUND = "domain_not_found"
    DOMAIN_QUERY_INVALID = "domain_query_invalid"
    DOMAIN_NAME_MISSING = "domain_name_missing"
    DOMAIN_NAME_TOO_LONG = "domain_name_too_long"
    DOMAIN_NAME_INVALID = "domain_name_invalid"
    DOMAIN_TAKEN = "domain_taken"
    DOMAIN_FIELD_INVALID = "domain_field_invalid"
    DKIM_RENEWAL_PENDING = "dkim_renewal_pending"
    RETURN_PATH_CNAME_WRONG = "return_path_cname_wrong"
    # sender signatures
    SENDER_QUERY_INVALID = "sender_query_invalid"
    SENDER_NOT_FOUND = "sender_not_found"
    SENDER_PUBLIC_DOMAIN = "sender_public_domain"
    SENDER_TAKEN = "sender_taken"
    SENDER_ALREADY_CONFIRMED = "sender_already_confirmed"
    SENDER_FIELD_MISSING = "sender_field_missing"
    SENDER_FIELD_TOO_LONG = "sender_field_too_long"
    SENDER_FIELD_INVALID = "sender_field_invalid"
    SENDER_CONFIRMATION_INVALID = "sender_confirmation_invalid"
    SENDER_CONFIRMATION_EXPIRED = "sender_confirmation_expired"
    # outgoing mail
    OUTBOX_MESSAGE_NOT_FOUND = "outbox_message_not_found"
    # servers
    SERVER_NOT_FOUND = "server_not_found"
    SERVER_QUERY_INVALID = "server_query_invalid"
    SERVER_NAME_INVALID = "server_name_invalid"
    SERVER_NAME_TAKEN = "server_name_taken"
    SERVER_COLOR_INVALID = "server_color_invalid"
    SERVER_HOOK_URL_INVALID = "server_hook_url_invalid"
    SERVER_SPAM_THRESHOLD_INVALID = "server_spam_threshold_invalid"
    SERVER_TRACK_LINKS_INVALID = "server_track_links_invalid"
    SERVER_DELIVERY_TYPE_INVALID = "server_delivery_type_invalid"
    SERVER_INBOUND_DOMAIN_INVALID = "server_inbound_domain_invalid"
    SERVER_INBOUND_DOMAIN_TAKEN = "server_inbound_domain_taken"
    SERVER_NO_CHANGES = "server_no_changes"
    SERVER_LIMIT_REACHED = "server_limit_reached"
    #: A server endpoint called with an account-level credential but no ``server_id``.
    SERVER_ID_REQUIRED = "server_id_required"
    # message streams (Postmark 1221-1241)
    STREAM_NOT_FOUND = "stream_not_found"
    STREAM_TYPE_INVALID = "stream_type_invalid"
    STREAM_ID_MISSING = "stream_id_missing"
    STREAM_ID_INVALID = "stream_id_invalid"
    STREAM_ID_TAKEN = "stream_id_taken"
    STREAM_ID_PM_PREFIX = "stream_id_pm_prefix"
    STREAM_ID_RESERVED = "stream_id_reserved"
    STREAM_NAME_MISSING = "stream_name_missing"
    STREAM_NAME_TOO_LONG = "stream_name_too_long"
    STREAM_DESCRIPTION_TOO_LONG = "stream_description_too_long"
    STREAM_DESCRIPTION_HTML = "stream_description_html"
    STREAM_LIMIT_REACHED = "stream_limit_reached"
    STREAM_INBOUND_EXISTS = "stream_inbound_exists"
    STREAM_DEFAULT_NOT_ARCHIVABLE = "stream_default_not_archivable"
    STREAM_PURGED = "stream_purged"
    STREAM_UNSUBSCRIBE_CUSTOM = "stream_unsubscribe_custom"
    STREAM_UNSUBSCRIBE_UNSUPPORTED = "stream_unsubscribe_unsupported"
    STREAM_UNSUBSCRIBE_INVALID = "stream_unsubscribe_invalid"
    #: A list filter other than the stream type (``IncludeArchivedStreams``) is not understood.
    STREAM_QUERY_INVALID = "stream_query_invalid"
    # suppressions (Postmark 1400-1411)
    SUPPRESSION_QUERY_INVALID = "suppression_query_invalid"
    SUPPRESSION_REASON_INVALID = "suppression_reason_invalid"
    SUPPRESSION_ORIGIN_INVALID = "suppression_origin_invalid"
    SUPPRESSION_BODY_MISSING = "suppression_body_missing"
    SUPPRESSION_TOO_MANY = "suppression_too_many"
    # templates (Postmark 1100-1131)
    TEMPLATE_QUERY_INVALID = "template_query_invalid"
    TEMPLATE_NOT_FOUND = "template_not_found"
    TEMPLATE_LIMIT_REACHED = "template_limit_reached"
    TEMPLATE_NO_DATA = "template_no_data"
    TEMPLATE_FIELD_MISSING = "template_field_missing"
    TEMPLATE_FIELD_TOO_LONG = "template_field_too_long"
    TEMPLATE_FIELD_INVALID = "template_field_invalid"
    TEMPLATE_FIELDS_CONFLICT = "template_fields_conflict"
    TEMPLATE_NOTHING_TO_PUSH = "template_nothing_to_push"
    TEMPLATE_TYPES_DIFFER = "template_types_differ"
    TEMPLATE_LAYOUT_IN_USE = "template_layout_in_use"
    TEMPLATE_LAYOUT_PLACEHOLDER = "template_layout_placeholder"
    TEMPLATE_PUSH_SERVER_NOT_FOUND = "template_push_server_not_found"
    # webhooks (Postmark 1350-1364)
    WEBHOOK_STREAM_ARCHIVED = "webhook_stream_archived"
    WEBHOOK_STREAM_INBOUND = "webhook_stream_inbound"
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    WEBHOOK_TRIGGER_UNSUPPORTED = "webhook_trigger_unsupported"
    WEBHOOK_URL_INVALID = "webhook_url_invalid"
    WEBHOOK_BODY_MISSING = "webhook_body_missing"
    WEBHOOK_ID_GIVEN = "webhook_id_given"
    WEBHOOK_IMMUTABLE_FIELD = "webhook_immutable_field"
    WEBHOOK_HEADER_NAME_INVALID = "webhook_header_name_invalid"
    WEBHOOK_LIMIT_REACHED = "webhook_limit_reached"
    WEBHOOK_FIELD_INVALID = "webhook_field_invalid"
    WEBHOOK_DELIVERY_QUERY_INVALID = "webhook_delivery_query_invalid"


class PostwardenError(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class NotAuthenticated(PostwardenError):
    pass


class PermissionDenied(PostwardenError):
    pass


class NotFound(PostwardenError):
    pass


class Conflict(PostwardenError):
    pass


class InvalidRequest(PostwardenError):
    pass
