"""Fixed-window rate limits per token and per client address.

In memory by default (one process); in Redis when several processes share the limits.
The window is fixed (a counter per key per period): cheap on the request path, and a
burst at a window edge can reach at most twice the limit, which is fine for abuse control.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from redis.asyncio import Redis

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period_seconds: int


def parse_rate(text: str) -> Rate | None:
    """``"50/second"``, ``"600/minute"``, ``"1000 per 5 minutes"``; ``"off"`` gives None."""
    if text.strip().lower() in {"", "off"}:
        return None
    match = _RATE_RE.match(text)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"not a rate limit such as '50/second' or 'off': {text!r}")
    multiple = int(match.group(2) or 1)
    return Rate(int(match.group(1)), multiple * _UNITS[match.group(3).lower()])


class Verdict(NamedTuple):
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int


class Backend(Protocol):
    async def hit(self, key: str, rate: Rate) -> Verdict: ...


class MemoryBackend:
    def __init__(self) -> None:
        #: key -> (window number, hits, when the window ends)
        self._windows: dict[str, tuple[int, int, float]] = {}
        self._next_sweep = 0.0

    async def hit(self, key: str, rate: Rate) -> Verdict:
        now = time.time()
        window = int(now // rate.period_seconds)
        ends = (window + 1) * rate.period_seconds
        previous = self._windows.get(key)
        count = previous[1] + 1 if previous is not None and previous[0] == window else 1
        self._windows[key] = (window, count, ends)
        if now >= self._next_sweep:
            self._sweep(now)
        limit = rate.limit
        reset = int(ends - now) + 1  # whole seconds, rounded up, at least 1
        return Verdict(count <= limit, limit, limit - count if count < limit else 0, reset)

    def _sweep(self, now: float) -> None:
        # Forget finished windows, so memory stays bounded by recent callers.
        self._next_sweep = now + 10
        for key in [k for k, (_, _, ends) in self._windows.items() if ends <= now]:
            self._windows.pop(key, None)


_HIT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""


class RedisBackend:
    def __init__(self, url: str) -> None:
        self._redis = Redis.from_url(url)
        self._script = self._redis.register_script(_HIT_SCRIPT)

    async def hit(self, key: str, rate: Rate) -> Verdict:
        window = int(time.time() // rate.period_seconds)
        count, ttl_ms = await self._script(
            keys=[f"postwarden:rl:{key}:{rate.period_seconds}:{window}"], args=[rate.period_seconds * 1000]
        )
        reset = max(math.ceil(int(ttl_ms) / 1000), 1)
        return Verdict(int(count) <= rate.limit, rate.limit, max(rate.limit - int(count), 0), reset)

    async def close(self) -> None:
        await self._redis.aclose()


class RateLimiter:
    def __init__(self, backend: Backend, *, per_token: Rate | None, per_ip: Rate | None) -> None:
        self.backend = backend
        self.per_token = per_token
        self.per_ip = per_ip

    async def check(self, *, token_key: str | None, ip: str) -> Verdict | None:
        """The tightest verdict among the limits that apply; None when none does."""
        by_token = await self.backend.hit("t:" + token_key, self.per_token) if self.per_token and token_key else None
        by_ip = await self.backend.hit("i:" + ip, self.per_ip) if self.per_ip else None
        if by_token is None or by_ip is None:
            return by_token or by_ip
        if not by_token.allowed or not by_ip.allowed:
            refused = [v for v in (by_token, by_ip) if not v.allowed]
            return max(refused, key=lambda v: v.reset_seconds)
        return by_token if by_token.remaining <= by_ip.remaining else by_ip
