from __future__ import annotations

import asyncio

import pytest

from postwarden.ratelimit import MemoryBackend, Rate, RateLimiter, parse_rate


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("50/second", Rate(50, 1)),
        ("600/minute", Rate(600, 60)),
        ("1000 per 5 minutes", Rate(1000, 300)),
        ("10/Hour", Rate(10, 3600)),
        ("off", None),
        ("", None),
    ],
)
def test_parse_rate(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["banana", "0/second", "5/fortnight", "-1/minute"])
def test_parse_rate_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        parse_rate(text)


def test_memory_backend_counts_per_key_and_reports_the_tightest_limit() -> None:
    limiter = RateLimiter(MemoryBackend(), per_token=Rate(3, 60), per_ip=Rate(10, 60))

    async def run() -> list[tuple[bool, int]]:
        results = []
        for _ in range(4):
            verdict = await limiter.check(token_key="a", ip="1.2.3.4")
            assert verdict is not None
            results.append((verdict.allowed, verdict.remaining))
        other = await limiter.check(token_key="b", ip="1.2.3.4")
        assert other is not None and other.allowed and (other.limit, other.remaining) == (3, 2)
        return results

    assert asyncio.run(run()) == [(True, 2), (True, 1), (True, 0), (False, 0)]
