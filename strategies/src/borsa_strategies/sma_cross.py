"""Long-only moving-average cross: buy when the fast SMA of the closes crosses above the slow one, sell on the way
down."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .base import Action, Candle, Context, MarketRules, Place, Strategy
from .params import SmaCrossParams

KEY = "sma"


def sma(values: Sequence[Decimal], length: int) -> Decimal:
    """The mean of the last `length` values."""
    return sum(values[-length:], Decimal(0)) / length


class SmaCrossStrategy(Strategy):
    """State: `last_candle_ms`, the timestamp of the candle it last acted on (never twice on one candle)."""

    name = "sma_cross"
    description = "Long only: buy when the fast SMA crosses above the slow one, sell on the cross down."
    Params = SmaCrossParams

    params: SmaCrossParams

    def __init__(self, params: SmaCrossParams, state: Mapping[str, Any] | None = None) -> None:
        super().__init__(params, state)
        self.timeframe = params.timeframe
        self.last_candle_ms: int | None = (state or {}).get("last_candle_ms")

    def state(self) -> dict[str, Any]:
        return {"last_candle_ms": self.last_candle_ms}

    def candles_needed(self) -> int:
        return self.params.slow + 1  # the averages of the last candle and of the one before

    def on_start(self, ctx: Context) -> list[Action]:
        return []  # it acts on candles only

    def on_candles(self, ctx: Context, candles: list[Candle]) -> list[Action]:
        fast, slow = self.params.fast, self.params.slow
        if len(candles) < slow + 1 or KEY in ctx.open_orders or candles[-1].timestamp == self.last_candle_ms:
            return []
        closes = [c.close for c in candles]
        prev_fast, prev_slow = sma(closes[:-1], fast), sma(closes[:-1], slow)
        now_fast, now_slow = sma(closes, fast), sma(closes, slow)
        held = holds(ctx.market, ctx.position.amount)
        last = closes[-1]
        if prev_fast <= prev_slow and now_fast > now_slow and not held:
            order = Place(KEY, "buy", "market", ctx.market.amount(self.params.quote_amount / last))
        elif prev_fast >= prev_slow and now_fast < now_slow and held:
            order = Place(KEY, "sell", "market", ctx.market.amount(ctx.position.amount))
        else:
            return []
        if not ctx.market.allows(order.amount, last):
            return []
        self.last_candle_ms = candles[-1].timestamp
        return [order]


def holds(rules: MarketRules, amount: Decimal) -> bool:
    """Whether a position of `amount` is one: at least a step, and at least the market's minimum amount."""
    return rules.amount(amount) > 0 and (rules.min_amount is None or amount >= rules.min_amount)
