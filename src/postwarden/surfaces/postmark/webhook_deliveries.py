"""Webhook deliveries: one server's, with its server token or an account-level credential and ``server_id``."""

from __future__ import annotations

from fastapi import APIRouter

from postwarden.runtime import Runtime
from postwarden.surfaces.auth import Authenticator


def webhook_deliveries_router(runtime: Runtime, auth: Authenticator) -> APIRouter:
    router = APIRouter(tags=["Webhook deliveries"])
    return router
