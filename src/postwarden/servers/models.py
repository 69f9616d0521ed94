from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from postwarden.db import Base, UTCDateTime, utcnow


class ServerPin(Base):
    """A server one user keeps at the top of their console's server list."""

    __tablename__ = "server_pins"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True, index=True)
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Server(Base):
    """A Postmark server: one client or environment, with its own tokens and streams."""

    __tablename__ = "servers"
    __table_args__ = (UniqueConstraint("account_id", "name_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    #: Lower-cased name: names are unique per account regardless of case.
    name_key: Mapped[str] = mapped_column(String(255))
    color: Mapped[str] = mapped_column(String(20), default="purple")
    smtp_api_activated: Mapped[bool] = mapped_column(default=True)
    raw_email_enabled: Mapped[bool] = mapped_column(default=False)
    delivery_type: Mapped[str] = mapped_column(String(10), default="Live")
    inbound_hash: Mapped[str] = mapped_column(String(32), unique=True)
    inbound_domain: Mapped[str] = mapped_column(String(255), default="")
    inbound_hook_url: Mapped[str] = mapped_column(Text, default="")
    bounce_hook_url: Mapped[str] = mapped_column(Text, default="")
    open_hook_url: Mapped[str] = mapped_column(Text, default="")
    delivery_hook_url: Mapped[str] = mapped_column(Text, default="")
    click_hook_url: Mapped[str] = mapped_column(Text, default="")
    post_first_open_only: Mapped[bool] = mapped_column(default=False)
    inbound_spam_threshold: Mapped[int] = mapped_column(default=0)
    track_opens: Mapped[bool] = mapped_column(default=False)
    track_links: Mapped[str] = mapped_column(String(20), default="None")
    include_bounce_content_in_hook: Mapped[bool] = mapped_column(default=False)
    enable_smtp_api_error_hooks: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MessageStream(Base):
    """A server's message stream; every server starts with the three defaults."""

    __tablename__ = "message_streams"
    __table_args__ = (UniqueConstraint("server_id", "stream_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    stream_id: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    stream_type: Mapped[str] = mapped_column(String(20))
    unsubscribe_handling: Mapped[str] = mapped_column(String(20), default="None")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
