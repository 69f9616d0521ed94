"""What a running postwarden shares between requests: settings, database, keys, caches."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis, RedisError

from postwarden.cache import INVALIDATION_CHANNEL, HotCache
from postwarden.config import Settings
from postwarden.db import Database
from postwarden.tokens.secrets import Keyring

logger = logging.getLogger("postwarden.cache")


@dataclass
class Runtime:
    settings: Settings
    db: Database
    keyring: Keyring
    cache: HotCache

    @classmethod
    def start(cls, settings: Settings, *, warn: Callable[[str], None] = logger.warning) -> Runtime:
        """``warn`` hears of trouble the caller should see, such as Redis being unreachable."""
        cache = HotCache(settings.cache_ttl_seconds)
        if settings.redis_url:
            cache.publish = _redis_publisher(settings, warn)
        keyring = Keyring(settings.resolved_secret_key)
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url, audit_key=keyring.audit_key),
            keyring=keyring,
            cache=cache,
        )


def _redis_publisher(settings: Settings, warn: Callable[[str], None]) -> Callable[[str], None]:
    """Tell every other process (servers, workers, the command line) what a commit made stale.

    Called after commit, on a worker thread, so a blocking client is fine here.
    """
    redis = Redis.from_url(settings.redis_url)

    def publish(message: str) -> None:
        try:
            redis.publish(INVALIDATION_CHANNEL, message)
        except RedisError as exc:
            # The change is committed; only the other processes' caches lag behind.
            warn(
                f"could not notify running servers over Redis ({exc}); they may use what they cached "
                f"for up to {settings.cache_ttl_seconds:g} seconds"
            )

    return publish
