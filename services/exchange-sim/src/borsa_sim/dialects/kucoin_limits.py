"""KuCoin's resource pools: weight per 30 s per pool, the window opening at the first request after a reset."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..ratelimit import scaled

# kucoin.com/docs-new/rate-limit (VIP0): every pool is measured over 30 s and "resets 30 s after the first
# request". Public is counted per IP, the others per account (UID).
WINDOW_S = 30.0
POOL_LIMITS = {"public": 2000, "spot": 4000, "management": 2000}


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_ms: int  # until the pool's quota is refilled

    def headers(self) -> dict[str, str]:
        return {
            "gw-ratelimit-limit": str(self.limit),
            "gw-ratelimit-remaining": str(self.remaining),
            "gw-ratelimit-reset": str(self.reset_ms),
        }


@dataclass(slots=True)
class AnchoredWindow:
    """`limit` weight per `window_s`, the window starting with the first request of a key, not on a clock
    boundary (ratelimit.WindowCounter aligns windows to multiples of window_s, which KuCoin does not)."""

    limit: float
    window_s: float = WINDOW_S
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (window start, weight used)

    def hit(self, key: str, cost: float, now: float | None = None) -> Verdict:
        now = time.time() if now is None else now
        start, used = self._state.get(key, (now, 0.0))
        if now - start >= self.window_s:
            start, used = now, 0.0
        allowed = used + cost <= self.limit
        if allowed:
            used += cost
        self._state[key] = (start, used)
        reset_ms = max(0, round((start + self.window_s - now) * 1000))
        return Verdict(allowed, int(self.limit), max(0, int(self.limit - used)), reset_ms)

    def reset(self) -> None:
        self._state.clear()


class KucoinPools:
    """One window per pool; `scale` shrinks every limit (`--rate-limit-scale`)."""

    def __init__(self, scale: float) -> None:
        self.pools = {name: AnchoredWindow(scaled(limit, scale)) for name, limit in POOL_LIMITS.items()}

    def hit(self, pool: str, key: str, weight: float, now: float | None = None) -> Verdict:
        return self.pools[pool].hit(key, weight, now)

    def reset(self) -> None:
        for pool in self.pools.values():
            pool.reset()
