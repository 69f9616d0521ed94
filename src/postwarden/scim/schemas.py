"""What ``/scim/v2`` publishes: the schemas (only the attributes postwarden stores, so an
identity provider never maps one that would be dropped), the resource types and the
service provider configuration. Payloads are read and written with scim2-models."""

from __future__ import annotations

from typing import Any, Final

from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    Meta,
    Patch,
    Required,
    ResourceType,
    Schema,
    SchemaExtension,
    ScimPolicy,
    ServiceProviderConfig,
    Sort,
    User,
)

#: Group ids are ``g12``: RFC 7643 §3.1 wants an id unique among all resources, and user ids
#: are the plain numbers of ``/users``.
GROUP_ID_PREFIX: Final = "g"
#: The most resources one list or search answers with (a larger ``count`` is cut to it).
MAX_RESULTS: Final = 500

UserResource = User[EnterpriseUser]
USER_SCHEMA_ID: Final = str(User.__schema__)
ENTERPRISE_SCHEMA_ID: Final = str(EnterpriseUser.__schema__)
GROUP_SCHEMA_ID: Final = str(Group.__schema__)

#: What identity providers send that the RFC does not allow, accepted (DESIGN §4): attributes
#: postwarden does not store are ignored, Entra's remove-by-value of group members and its
#: ``add`` on an ``emails[type eq "work"]`` entry that does not exist yet are understood.
TOLERANT: Final = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

# Published attribute -> the sub-attributes kept (None: a simple attribute).
_USER_ATTRIBUTES: Final[dict[str, set[str] | None]] = {
    "userName": None,
    "name": {"formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"},
    "displayName": None,
    "active": None,
    "emails": {"value", "type", "primary"},
    "groups": {"value", "$ref", "display", "type"},
}
_ENTERPRISE_ATTRIBUTES: Final[dict[str, set[str] | None]] = {
    "employeeNumber": None,
    "costCenter": None,
    "organization": None,
    "division": None,
    "department": None,
}
# A member is written as it is read back: its ``display`` is not stored, so not offered.
_GROUP_ATTRIBUTES: Final[dict[str, set[str] | None]] = {"displayName": None, "members": {"value", "$ref", "type"}}


#: A member is active or suspended, never neither: ``active`` cannot be removed. It is still
#: accepted missing on creation (the member is then active), as identity providers expect.
_REQUIRED: Final = {"active"}


def _narrowed(schema: Schema, keep: dict[str, set[str] | None]) -> Schema:
    attributes = []
    for published in schema.attributes or []:
        if published.name not in keep:
            continue
        update: dict[str, Any] = {"required": Required.true} if published.name in _REQUIRED else {}
        wanted = keep[published.name]
        if wanted is not None and published.sub_attributes:
            update["sub_attributes"] = [sub for sub in published.sub_attributes if sub.name in wanted]
        attributes.append(published.model_copy(update=update))
    return schema.model_copy(update={"attributes": attributes})


SCHEMAS: Final[dict[str, Schema]] = {
    USER_SCHEMA_ID: _narrowed(User.to_schema(), _USER_ATTRIBUTES),
    ENTERPRISE_SCHEMA_ID: _narrowed(EnterpriseUser.to_schema(), _ENTERPRISE_ATTRIBUTES),
    GROUP_SCHEMA_ID: _narrowed(Group.to_schema(), _GROUP_ATTRIBUTES),
}
RESOURCE_TYPES: Final[dict[str, ResourceType]] = {
    "User": ResourceType(
        id="User",
        name="User",
        description="A member of the account",
        endpoint="/Users",
        schema_=URN(USER_SCHEMA_ID),
        schema_extensions=[SchemaExtension(schema_=URN(ENTERPRISE_SCHEMA_ID), required=False)],
    ),
    "Group": ResourceType(
        id="Group",
        name="Group",
        description="A set of members; the account maps each group to a role and server access",
        endpoint="/Groups",
        schema_=URN(GROUP_SCHEMA_ID),
        schema_extensions=[],
    ),
}


def service_provider_config() -> ServiceProviderConfig:
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="SCIM token",
                description="Authorization: Bearer pwscim_..., created by the account's Owner or an Admin "
                "(POST /scim-tokens)",
                primary=True,
            )
        ],
    )


def located(resource: Any, base_url: str, path: str) -> Any:
    """A discovery resource with its ``meta.location`` under this service's base URL."""
    resource_type = type(resource).__name__
    return resource.model_copy(update={"meta": Meta(resource_type=resource_type, location=f"{base_url}/{path}")})
