"""Rate-limit counters in the shapes exchanges use: fixed windows (Binance, KuCoin, Coinbase) and a decaying
counter (Kraken). `scale` shrinks every limit so tests can reach them with a handful of requests."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field


def scaled(limit: float, scale: float) -> float:
    return max(1.0, limit * scale)


@dataclass(slots=True)
class WindowCounter:
    """`limit` units per `window_s`, reset at each window boundary (as Binance's per-minute weight is)."""

    limit: float
    window_s: float
    _used: dict[str, tuple[int, float]] = field(default_factory=dict)

    def used(self, key: str, now: float | None = None) -> float:
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        current, used = self._used.get(key, (window, 0.0))
        return used if current == window else 0.0

    def hit(self, key: str, cost: float = 1.0, now: float | None = None) -> float | None:
        """Count `cost`; return None when allowed, else seconds until the window resets."""
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        current, used = self._used.get(key, (window, 0.0))
        if current != window:
            used = 0.0
        if used + cost > self.limit:
            self._used[key] = (window, used)
            return max(0.001, (window + 1) * self.window_s - now)
        self._used[key] = (window, used + cost)
        return None

    def reset(self) -> None:
        self._used.clear()


@dataclass(slots=True)
class DecayCounter:
    """Kraken's call counter: each call adds its cost, the counter decays continuously, over `maximum` fails."""

    maximum: float
    decay_per_s: float
    _state: dict[str, tuple[float, float]] = field(default_factory=dict)

    def level(self, key: str, now: float | None = None) -> float:
        now = time.time() if now is None else now
        level, at = self._state.get(key, (0.0, now))
        return max(0.0, level - (now - at) * self.decay_per_s)

    def hit(self, key: str, cost: float = 1.0, now: float | None = None) -> float | None:
        now = time.time() if now is None else now
        level = self.level(key, now)
        if level + cost > self.maximum:
            self._state[key] = (level, now)
            return math.ceil((level + cost - self.maximum) / self.decay_per_s * 1000) / 1000
        self._state[key] = (level + cost, now)
        return None

    def reset(self) -> None:
        self._state.clear()
