"""A SCIM token of the ``account`` fixture's account, as its identity provider holds it."""

from __future__ import annotations

import pytest

from postwarden.accounts.service import NewAccount
from postwarden.runtime import Runtime
from tests.surfaces.scim.helpers import IssuedToken, issue_token


@pytest.fixture
def scim_token(runtime: Runtime, account: NewAccount) -> IssuedToken:
    return issue_token(runtime, account, "okta")


@pytest.fixture
def scim(scim_token: IssuedToken) -> dict[str, str]:
    """The headers of a SCIM request."""
    return scim_token.headers
