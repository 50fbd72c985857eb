"""Seeded price walks: one per market, the source of tickers, order books and candles.

Same seed, same prices: each market draws from its own `random.Random` seeded by (seed, exchange, symbol),
so the k-th step of a market is the same in every run whatever the other markets do.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

MINUTE_MS = 60_000
HISTORY_MINUTES = 3 * 24 * 60  # three days of one-minute candles before the simulator started
BOOK_LEVELS = 25

TIMEFRAMES_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "1w": 604_800_000,
}


def quantize(value: Decimal, step: Decimal, rounding=ROUND_HALF_UP) -> Decimal:
    """Round `value` to a multiple of `step`, keeping the step's exponent so it prints plainly."""
    units = (value / step).to_integral_value(rounding=rounding)
    return (units * step).quantize(step) if step.as_tuple().exponent < 0 else units * step


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    return quantize(value, step, ROUND_DOWN)


@dataclass(slots=True)
class Candle:
    ts: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def add(self, price: Decimal, volume: Decimal = Decimal(0)) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += volume


class PriceWalk:
    """A geometric random walk rounded to the market's tick, with candles and a synthetic book around it."""

    def __init__(
        self,
        seed: int,
        exchange: str,
        symbol: str,
        start: Decimal,
        tick: Decimal,
        step: Decimal,
        start_ms: int,
        quote_usd: Decimal = Decimal(1),
        volatility: float = 0.0008,
    ) -> None:
        self._rng = random.Random(f"{seed}/{exchange}/{symbol}")
        self._seed_key = f"{seed}/{exchange}/{symbol}"
        self.tick = tick
        self.step = step
        self.volatility = volatility
        self.quote_usd = quote_usd
        # Each exchange quotes its own price: a small seeded offset from the reference.
        jitter = Decimal(str(round(1 + self._rng.uniform(-0.004, 0.004), 6)))
        self.price = max(quantize(start * jitter, tick), tick)
        self.start_ms = start_ms
        self._history: list[Candle] | None = None
        self._live: list[Candle] = []
        self.steps = 0

    # -- the walk -------------------------------------------------------------------------------------------
    def step_walk(self, now_ms: int) -> Decimal:
        self.steps += 1
        factor = math.exp(self._rng.gauss(0.0, self.volatility))
        self.set_price(self.price * Decimal(str(round(factor, 8))), now_ms)
        return self.price

    def set_price(self, price: Decimal, now_ms: int) -> None:
        self.price = max(quantize(price, self.tick), self.tick)
        self._record(now_ms)

    def _record(self, now_ms: int) -> None:
        minute = now_ms - now_ms % MINUTE_MS
        vol = self.step * 10
        if self._live and self._live[-1].ts == minute:
            self._live[-1].add(self.price, vol)
        else:
            self._live.append(Candle(minute, self.price, self.price, self.price, self.price, vol))
            if len(self._live) > 20_000:
                del self._live[:10_000]

    # -- the book -------------------------------------------------------------------------------------------
    def spread_ticks(self) -> int:
        # A spread of about 2 basis points, at least one tick.
        return max(1, int(self.price * Decimal("0.0002") / self.tick))

    def best_bid(self) -> Decimal:
        return max(self.price - self.tick * (self.spread_ticks() // 2), self.tick)

    def best_ask(self) -> Decimal:
        return self.best_bid() + self.tick * self.spread_ticks()

    def book(self, depth: int = BOOK_LEVELS) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """Bids (best first) and asks (best first). Sizes are seeded by the price so a book is stable at a price."""
        rng = random.Random(f"{self._seed_key}/{self.price}")
        # About $40k of liquidity per level, at least ten steps.
        base_size = max(self.step * 10, floor_to(Decimal(40_000) / (self.price * self.quote_usd), self.step))
        bids, asks = [], []
        bid, ask = self.best_bid(), self.best_ask()
        for i in range(depth):
            gap = self.tick * (i * max(1, self.spread_ticks() // 2))
            size_b = max(self.step, floor_to(base_size * Decimal(str(round(rng.uniform(0.3, 1.7), 3))), self.step))
            size_a = max(self.step, floor_to(base_size * Decimal(str(round(rng.uniform(0.3, 1.7), 3))), self.step))
            if bid - gap > 0:
                bids.append((bid - gap, size_b))
            asks.append((ask + gap, size_a))
        return bids, asks

    # -- candles --------------------------------------------------------------------------------------------
    def _build_history(self) -> list[Candle]:
        """Three days of one-minute candles ending where the live walk starts, drawn backwards."""
        rng = random.Random(f"{self._seed_key}/history")
        candles: list[Candle] = []
        close = self.price
        first_minute = self.start_ms - self.start_ms % MINUTE_MS
        for i in range(1, HISTORY_MINUTES + 1):
            drift = math.exp(rng.gauss(0.0, self.volatility * 2))
            open_ = max(quantize(close / Decimal(str(round(drift, 8))), self.tick), self.tick)
            wick = Decimal(str(round(abs(rng.gauss(0.0, self.volatility)), 8)))
            high = quantize(max(open_, close) * (1 + wick), self.tick)
            low = max(quantize(min(open_, close) * (1 - wick), self.tick), self.tick)
            volume = floor_to(self.step * 100 * Decimal(str(round(rng.uniform(1, 50), 2))), self.step)
            candles.append(Candle(first_minute - i * MINUTE_MS, open_, high, low, close, volume))
            close = open_
        candles.reverse()
        return candles

    def minute_candles(self) -> list[Candle]:
        if self._history is None:
            self._history = self._build_history()
        return self._history + self._live

    def script_closes(self, closes: list[Decimal], now_ms: int) -> list[Candle]:
        """Rewrite the last `len(closes)` closed one-minute candles so that they close at `closes`, oldest first.

        Each candle opens where the one before it closed; high and low hold both. Strategies that read candles can
        so be driven to a known signal without waiting for minutes of walk. The candle still open is left alone."""
        current = now_ms - now_ms % MINUTE_MS
        closed = [c for c in self.minute_candles() if c.ts < current]
        if len(closes) > len(closed):
            raise ValueError(f"closes: at most {len(closed)} candles are closed")
        targets = closed[len(closed) - len(closes) :]
        previous = closed[-len(closes) - 1].close if len(closed) > len(closes) else None
        for candle, close in zip(targets, closes, strict=True):
            close = max(quantize(close, self.tick), self.tick)
            candle.open = previous if previous is not None else close
            candle.close = close
            candle.high, candle.low = max(candle.open, close), min(candle.open, close)
            previous = close
        return targets

    def ohlcv(self, timeframe: str, since: int | None, limit: int, now_ms: int) -> list[Candle]:
        """Candles of `timeframe` built from one-minute candles; the newest `limit` unless `since` is given."""
        frame = TIMEFRAMES_MS[timeframe]
        out: list[Candle] = []
        for c in self.minute_candles():
            bucket = c.ts - c.ts % frame
            if since is not None and bucket + frame <= since:
                continue
            if out and out[-1].ts == bucket:
                last = out[-1]
                last.high, last.low = max(last.high, c.high), min(last.low, c.low)
                last.close = c.close
                last.volume += c.volume
            else:
                out.append(Candle(bucket, c.open, c.high, c.low, c.close, c.volume))
        if since is not None:
            return [c for c in out if c.ts >= since - since % frame][:limit]
        return out[-limit:]
