"""Webhooks: where a server's events are posted, and how."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class Webhook(Base):
    """One URL that a server's stream posts its events to (Postmark's Webhooks API)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    #: The stream's ``ID`` (``outbound``, ...); immutable once created.
    message_stream: Mapped[str] = mapped_column(String(30))
    url: Mapped[str] = mapped_column(Text)
    http_auth_username: Mapped[str] = mapped_column(String(255), default="")
    #: Encrypted with the keyring: Postmark echoes the password back, so it must be readable.
    http_auth_password_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    #: ``[{"Name": ..., "Value": ...}]``, replaced wholesale on edit.
    http_headers: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    #: All six triggers with all their sub-fields: ``{"Open": {"Enabled": true, ...}, ...}``.
    triggers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The per-webhook HMAC-SHA256 key that signs each delivery, encrypted with the keyring.
    signing_secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
