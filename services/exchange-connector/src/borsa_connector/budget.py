"""The process's request budget for one exchange, shared by every ccxt client it creates (public and per account).

ccxt's own limiter belongs to one client instance, so N account clients would spend N budgets (ccxt issues
#3994, #22530); and it sleeps at least a millisecond per call once it has gone into debt. This bucket refills
continuously, lets a call through at once while there is budget, and queues callers by reserving ahead.
Costs are ccxt's per-endpoint costs, so exchange weights (Binance REQUEST_WEIGHT) are respected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RateBudget:
    def __init__(
        self, rate_per_second: float, burst: float | None = None, on_wait: Callable[[float], None] | None = None
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = rate_per_second
        # About one second of budget may be spent at once: exchanges count in windows, not per call.
        self.capacity = max(1.0, burst if burst is not None else rate_per_second)
        self.tokens = self.capacity
        self._at = time.monotonic()
        self.on_wait = on_wait

    @classmethod
    def for_ccxt(cls, rate_limit_ms: float, scale: float = 1.0, on_wait=None) -> RateBudget:
        """ccxt's `rateLimit` is the milliseconds one cost unit takes to refill."""
        return cls(1000.0 / rate_limit_ms * scale, on_wait=on_wait)

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate)
        self._at = now

    async def acquire(self, cost: float | None = None) -> float:
        """Spend `cost` units; returns the seconds waited (0 while the budget lasts)."""
        cost = 1.0 if cost is None else float(cost)
        self._refill()
        self.tokens -= cost  # reserve now, so later callers queue behind this one
        wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            await asyncio.sleep(wait)
        if self.on_wait is not None:
            self.on_wait(wait)
        return wait

    def attach(self, client) -> None:
        """Make a ccxt client spend this budget instead of its own (ccxt calls `throttle(cost)` per request)."""
        client.enableRateLimit = True

        async def throttle(cost=None):
            await self.acquire(cost)

        client.throttle = throttle
