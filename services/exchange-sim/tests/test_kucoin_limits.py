"""KuCoin's resource pools on a fake clock: the quota resets 30 s after the first request, not on a boundary."""

from __future__ import annotations

from borsa_sim.dialects.kucoin_limits import AnchoredWindow, KucoinPools


def test_the_window_opens_at_the_first_request_and_resets_30_s_later() -> None:
    pool = AnchoredWindow(limit=10)
    first = pool.hit("uid:1", 4, now=1000.5)  # deliberately not on a multiple of 30 s
    assert first.allowed and first.remaining == 6 and first.reset_ms == 30_000
    assert pool.hit("uid:1", 4, now=1010.5).allowed
    refused = pool.hit("uid:1", 4, now=1015.5)
    assert not refused.allowed
    assert refused.remaining == 2
    assert refused.reset_ms == 15_000
    assert not pool.hit("uid:1", 4, now=1030.4).allowed  # 29.9 s after the first request: still spent
    again = pool.hit("uid:1", 4, now=1030.5)
    assert again.allowed and again.remaining == 6 and again.reset_ms == 30_000


def test_a_refused_request_does_not_use_the_quota() -> None:
    pool = AnchoredWindow(limit=10)
    assert pool.hit("ip:a", 9, now=0).allowed
    assert not pool.hit("ip:a", 2, now=1).allowed
    assert pool.hit("ip:a", 1, now=2).allowed


def test_keys_have_their_own_windows() -> None:
    pool = AnchoredWindow(limit=5)
    assert pool.hit("uid:1", 5, now=0).allowed
    assert not pool.hit("uid:1", 1, now=1).allowed
    assert pool.hit("uid:2", 5, now=1).allowed


def test_headers_carry_limit_remaining_and_reset() -> None:
    verdict = AnchoredWindow(limit=2000).hit("ip:a", 15, now=50)
    assert verdict.headers() == {
        "gw-ratelimit-limit": "2000",
        "gw-ratelimit-remaining": "1985",
        "gw-ratelimit-reset": "30000",
    }


def test_pools_scale_and_reset() -> None:
    pools = KucoinPools(scale=0.01)
    assert {name: p.limit for name, p in pools.pools.items()} == {"public": 20, "spot": 40, "management": 20}
    assert pools.hit("public", "ip:a", 15, now=0).allowed
    assert not pools.hit("public", "ip:a", 15, now=1).allowed
    assert pools.hit("spot", "ip:a", 15, now=1).allowed  # another pool, another quota
    pools.reset()
    assert pools.hit("public", "ip:a", 15, now=2).allowed
