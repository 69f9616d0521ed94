"""What a running postwarden shares between requests: settings, database, keys, caches."""

from __future__ import annotations

from dataclasses import dataclass

from postwarden.cache import HotCache
from postwarden.config import Settings
from postwarden.db import Database
from postwarden.tokens.secrets import Keyring


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keyring: Keyring
    cache: HotCache

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            keyring=Keyring(settings.resolved_secret_key),
            cache=HotCache(settings.cache_ttl_seconds),
        )
