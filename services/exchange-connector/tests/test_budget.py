"""The shared request budget, on a fake clock: calls pass at once while budget lasts, then queue in order."""

from __future__ import annotations

import pytest

from borsa_connector import budget as budget_module
from borsa_connector.budget import RateBudget


@pytest.fixture
def clock(monkeypatch):
    state = {"now": 1000.0, "slept": []}

    async def sleep(seconds: float) -> None:
        state["slept"].append(seconds)
        state["now"] += seconds

    monkeypatch.setattr(budget_module.time, "monotonic", lambda: state["now"])
    monkeypatch.setattr(budget_module.asyncio, "sleep", sleep)
    return state


async def test_calls_within_the_burst_do_not_wait(clock) -> None:
    waits = []
    bucket = RateBudget(rate_per_second=10, on_wait=waits.append)
    for _ in range(10):
        assert await bucket.acquire() == 0
    assert clock["slept"] == []
    assert waits == [0.0] * 10


async def test_over_budget_calls_wait_for_their_share_in_order(clock) -> None:
    bucket = RateBudget(rate_per_second=10, burst=2)
    assert await bucket.acquire() == 0
    assert await bucket.acquire() == 0
    assert await bucket.acquire() == pytest.approx(0.1)
    assert await bucket.acquire(cost=2) == pytest.approx(0.2)


async def test_weights_spend_more_budget(clock) -> None:
    bucket = RateBudget(rate_per_second=100)  # Binance: 6000 weight a minute
    assert await bucket.acquire(cost=80) == 0  # ticker/24hr for every symbol
    assert await bucket.acquire(cost=40) == pytest.approx(0.2)


async def test_budget_refills_with_time(clock) -> None:
    bucket = RateBudget(rate_per_second=1, burst=1)
    await bucket.acquire()
    clock["now"] += 5
    assert await bucket.acquire() == 0


def test_ccxt_rate_limit_becomes_a_rate(clock) -> None:
    assert RateBudget.for_ccxt(50).rate == 20  # Binance: rateLimit 50 ms
    assert RateBudget.for_ccxt(1000, scale=0.5).rate == 0.5  # half the budget for one of two replicas
    with pytest.raises(ValueError, match="positive"):
        RateBudget(0)
