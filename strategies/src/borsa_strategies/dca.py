"""Dollar-cost averaging: buy a fixed quote amount at market every interval, optionally with one take-profit sell."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .base import Action, Cancel, Context, OrderUpdate, Place, Strategy, Tick, ceil_to_step
from .params import DcaParams

BUY, TAKE_PROFIT = "dca", "tp"


class DcaStrategy(Strategy):
    """State: `next_buy_ms`, when the next buy is due (None until the first buy: it is due at once)."""

    name = "dca"
    description = "Buy a fixed quote amount every interval; optionally sell all at a take-profit."
    Params = DcaParams

    params: DcaParams

    def __init__(self, params: DcaParams, state: Mapping[str, Any] | None = None) -> None:
        super().__init__(params, state)
        self.next_buy_ms: int | None = (state or {}).get("next_buy_ms")

    def state(self) -> dict[str, Any]:
        return {"next_buy_ms": self.next_buy_ms}

    def on_start(self, ctx: Context) -> list[Action]:
        return self._buy_if_due(ctx, ctx.price) or self._take_profit(ctx, buying=BUY in ctx.open_orders)

    def on_tick(self, ctx: Context, tick: Tick) -> list[Action]:
        return self._buy_if_due(ctx, tick.price() or ctx.price)

    def on_order(self, ctx: Context, update: OrderUpdate) -> list[Action]:
        if update.key == TAKE_PROFIT and update.status == "closed":
            self.next_buy_ms = ctx.now_ms  # the position is sold: a new cycle starts at once
            return self._buy_if_due(ctx, ctx.price)
        # A buy still filling changes the position again soon: the take-profit follows once it is done.
        buying = BUY in ctx.open_orders and not (update.key == BUY and update.done)
        return self._take_profit(ctx, buying)

    def _buy_if_due(self, ctx: Context, price: Decimal | None) -> list[Action]:
        due = self.next_buy_ms is None or ctx.now_ms >= self.next_buy_ms
        if not due or price is None or BUY in ctx.open_orders:
            return []
        self.next_buy_ms = ctx.now_ms + self.params.interval_seconds * 1000
        amount = ctx.market.amount(self.params.quote_amount / price)
        if not ctx.market.allows(amount, price):
            return []  # below the market's minimums at this price: this interval's buy is skipped
        return [Place(BUY, "buy", "market", amount)]

    def _take_profit(self, ctx: Context, buying: bool) -> list[Action]:
        """Keep one limit sell for the whole position at the target above its average entry."""
        pct, position = self.params.take_profit_pct, ctx.position
        if pct is None or buying or position.average_entry is None:
            return []
        amount = ctx.market.amount(position.amount)
        price = ceil_to_step(position.average_entry * (1 + pct / 100), ctx.market.price_step)
        current = ctx.open_orders.get(TAKE_PROFIT)
        if current is not None and (current.amount - current.filled, current.price) == (amount, price):
            return []
        if not ctx.market.allows(amount, price):
            return []  # too little to sell (or the take-profit is partly filled already): leave it as it is
        cancel: list[Action] = [Cancel(TAKE_PROFIT)] if current is not None else []
        return [*cancel, Place(TAKE_PROFIT, "sell", "limit", amount, price)]
