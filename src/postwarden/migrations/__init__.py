"""Alembic migrations; ``upgrade()`` runs them from code (the CLI and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, audit_key: bytes | None = None) -> None:
    """``audit_key`` chains audit events already recorded (see revision 0011)."""
    config = alembic_config(database_url)
    config.attributes["audit_key"] = audit_key
    command.upgrade(config, revision)
