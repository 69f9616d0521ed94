"""A per-process read cache for the request hot path: who a token is, and a server's
rendered representation.

Every change that could make an entry wrong drops it explicitly after commit. Other
processes hear of it over Redis when ``POSTWARDEN_REDIS_URL`` is set; without Redis, an
entry lives at most ``cache_ttl_seconds`` (one process, the default, is always exact).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

Value = TypeVar("Value")

INVALIDATION_CHANNEL = "postwarden:cache-invalidation"


@dataclass(frozen=True, slots=True)
class Principal:
    """What a valid API token stands for."""

    kind: str  # identity.Credential value: account_token, server_token, personal_token, session or scim_token
    token_id: int
    account_id: int
    server_id: int | None
    can_delete_servers: bool
    #: How the audit log names this token.
    label: str
    # A person's credentials (personal token, session) carry the member's grants:
    user_id: int | None = None
    role: str | None = None
    servers_limited: bool = False
    server_access: tuple[tuple[int, str], ...] = ()
    group_roles: frozenset[str] = frozenset()
    group_server_access: tuple[tuple[int, str], ...] = ()
    scopes: frozenset[str] | None = None
    token_servers: frozenset[int] | None = None
    two_factor_missing: bool = False
    #: Seconds since the epoch after which the credential is refused.
    expires_at: float | None = None


class HotCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._principals: dict[str, tuple[float, Principal]] = {}
        #: server id -> (expires, account id, rendered server)
        self._servers: dict[int, tuple[float, int, bytes]] = {}
        #: Bumped by every invalidation, so a fill that raced a change is not kept.
        self._generation = 0
        #: Set by the app when Redis carries invalidations to the other processes.
        self.publish: Callable[[str], None] | None = None

    def get_principal(self, digest: str) -> Principal | None:
        entry = self._principals.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put_principal(self, digest: str, principal: Principal) -> None:
        self._principals[digest] = (time.monotonic() + self.ttl, principal)

    def get_server(self, server_id: int) -> tuple[int, bytes] | None:
        """(account id, rendered server) when cached."""
        entry = self._servers.get(server_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    @property
    def generation(self) -> int:
        return self._generation

    def put_server(self, server_id: int, account_id: int, rendered: bytes, *, read_at_generation: int) -> None:
        """Keep a rendering unless something was invalidated since it was read."""
        if read_at_generation == self._generation:
            self._servers[server_id] = (time.monotonic() + self.ttl, account_id, rendered)

    def invalidate_server(self, server_id: int) -> None:
        self.apply(f"server:{server_id}")
        self._broadcast(f"server:{server_id}")

    def invalidate_account(self, account_id: int) -> None:
        self.apply(f"account:{account_id}")
        self._broadcast(f"account:{account_id}")

    def invalidate_user(self, user_id: int) -> None:
        self.apply(f"user:{user_id}")
        self._broadcast(f"user:{user_id}")

    def apply(self, message: str) -> None:
        """Drop what ``message`` (``server:ID``, ``account:ID`` or ``user:ID``) makes stale."""
        self._generation += 1
        kind, _, raw_id = message.partition(":")
        if not raw_id.isdigit():
            return
        target = int(raw_id)
        if kind == "server":
            self._servers.pop(target, None)
            stale = [d for d, (_, p) in self._principals.items() if p.server_id == target]
        elif kind == "account":
            stale = [d for d, (_, p) in self._principals.items() if p.account_id == target]
            self._servers.clear()
        elif kind == "user":
            stale = [d for d, (_, p) in self._principals.items() if p.user_id == target]
        else:
            return
        for digest in stale:
            self._principals.pop(digest, None)

    def _broadcast(self, message: str) -> None:
        if self.publish is not None:
            self.publish(message)


class SingleFlight(Generic[Value]):
    """Concurrent misses for one key share one load.

    When an entry expires under load, every waiting request would otherwise query the
    database at once; here the first loads and the others await its answer (or error).
    """

    def __init__(self) -> None:
        self._inflight: dict[Hashable, asyncio.Future[Value]] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[Value]]) -> Value:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Value] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # the loader re-raises it; waiters need not retrieve it
            raise
        else:
            future.set_result(value)
            return value
        finally:
            del self._inflight[key]
