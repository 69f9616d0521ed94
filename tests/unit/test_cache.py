from __future__ import annotations

import asyncio

from postwarden.cache import HotCache, Principal, SingleFlight


def principal(token_id: int, account_id: int, server_id: int | None) -> Principal:
    return Principal(
        kind="server_token" if server_id else "account_token",
        token_id=token_id,
        account_id=account_id,
        server_id=server_id,
        can_delete_servers=False,
        label="t",
    )


def test_invalidating_a_server_drops_its_rendering_and_its_tokens_only() -> None:
    cache = HotCache(ttl_seconds=60)
    cache.put_principal("a", principal(1, 1, 10))
    cache.put_principal("b", principal(2, 1, 11))
    cache.put_server(10, 1, b"ten", read_at_generation=cache.generation)
    cache.put_server(11, 1, b"eleven", read_at_generation=cache.generation)
    cache.invalidate_server(10)
    assert cache.get_principal("a") is None and cache.get_server(10) is None
    assert cache.get_principal("b") is not None and cache.get_server(11) == (1, b"eleven")


def test_invalidating_an_account_drops_its_tokens() -> None:
    cache = HotCache(ttl_seconds=60)
    cache.put_principal("a", principal(1, 1, None))
    cache.put_principal("b", principal(2, 2, None))
    cache.invalidate_account(1)
    assert cache.get_principal("a") is None and cache.get_principal("b") is not None


def test_a_fill_that_raced_an_invalidation_is_not_kept() -> None:
    cache = HotCache(ttl_seconds=60)
    read_at = cache.generation
    cache.invalidate_server(10)  # a change committed while the fill was reading
    cache.put_server(10, 1, b"stale", read_at_generation=read_at)
    assert cache.get_server(10) is None


def test_entries_expire_after_the_ttl() -> None:
    cache = HotCache(ttl_seconds=-1)
    cache.put_principal("a", principal(1, 1, None))
    cache.put_server(10, 1, b"x", read_at_generation=cache.generation)
    assert cache.get_principal("a") is None and cache.get_server(10) is None


def test_invalidations_are_published_for_other_processes() -> None:
    sent: list[str] = []
    cache = HotCache(ttl_seconds=60)
    cache.publish = sent.append
    cache.invalidate_server(3)
    cache.invalidate_account(4)
    cache.apply("garbage")
    assert sent == ["server:3", "account:4"]


def test_single_flight_shares_one_load_between_concurrent_misses() -> None:
    loads: list[int] = []

    async def load() -> str:
        loads.append(1)
        await asyncio.sleep(0.01)
        return "value"

    async def run() -> list[str]:
        flight: SingleFlight[str] = SingleFlight()
        first = await asyncio.gather(*(flight.run("k", load) for _ in range(20)))
        second = await flight.run("k", load)  # the key is free again afterwards
        return [*first, second]

    assert asyncio.run(run()) == ["value"] * 21
    assert len(loads) == 2


def test_single_flight_gives_every_waiter_the_loaders_error() -> None:
    async def fail() -> str:
        await asyncio.sleep(0.01)
        raise LookupError("gone")

    async def run() -> list[BaseException | str]:
        flight: SingleFlight[str] = SingleFlight()
        return await asyncio.gather(*(flight.run("k", fail) for _ in range(3)), return_exceptions=True)

    results = asyncio.run(run())
    assert all(isinstance(r, LookupError) for r in results)
