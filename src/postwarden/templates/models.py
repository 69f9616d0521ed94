from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from postwarden.db import Base, UTCDateTime, utcnow


class Template(Base):
    """A server's email template, or a layout that templates are rendered inside.

    Deleting only deactivates: a deleted template stays readable by id, as Postmark keeps it.
    """

    __tablename__ = "templates"
    # One active template per alias and server; deleted ones give their alias up (NULL key).
    __table_args__ = (UniqueConstraint("server_id", "alias_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    alias: Mapped[str | None] = mapped_column(String(255), default=None)
    #: The lower-cased alias while the template is active: aliases are unique regardless of case.
    alias_key: Mapped[str | None] = mapped_column(String(255), default=None)
    #: ``Standard`` or ``Layout``; fixed at creation.
    template_type: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(Text, default=None)
    html_body: Mapped[str | None] = mapped_column(Text, default=None)
    text_body: Mapped[str | None] = mapped_column(Text, default=None)
    #: The layout a standard template is rendered inside; by id, so renaming its alias keeps the link.
    layout_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id"), index=True, default=None)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    layout: Mapped[Template | None] = relationship(remote_side=[id], lazy="joined")

    @property
    def layout_alias(self) -> str | None:
        return self.layout.alias if self.layout is not None else None
