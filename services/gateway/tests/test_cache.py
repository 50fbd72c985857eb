"""The per-user bot-list cache: dropped on change, never stores a read that raced a write."""

from __future__ import annotations

import uuid

from borsa_gateway.cache import BotListCache


async def test_entries_are_per_user_and_filter_and_dropped_on_change() -> None:
    cache = BotListCache()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    cache.put(alice, None, cache.generation(alice), b"[1]")
    cache.put(alice, "kraken", cache.generation(alice), b"[2]")
    cache.put(bob, None, cache.generation(bob), b"[3]")
    assert (cache.get(alice, None), cache.get(alice, "kraken"), cache.get(bob, None)) == (b"[1]", b"[2]", b"[3]")
    await cache.changed(alice)
    assert cache.get(alice, None) is None and cache.get(alice, "kraken") is None
    assert cache.get(bob, None) == b"[3]"


async def test_a_read_that_raced_a_write_is_not_stored() -> None:
    cache = BotListCache()
    user = uuid.uuid4()
    before = cache.generation(user)  # the read starts
    await cache.changed(user)  # a write commits meanwhile
    cache.put(user, None, before, b"[stale]")  # the read finishes with old rows
    assert cache.get(user, None) is None


async def test_entries_expire(monkeypatch) -> None:
    import borsa_gateway.cache as module

    now = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: now[0])
    cache = BotListCache(ttl=5)
    user = uuid.uuid4()
    cache.put(user, None, 0, b"[]")
    now[0] += 6
    assert cache.get(user, None) is None
