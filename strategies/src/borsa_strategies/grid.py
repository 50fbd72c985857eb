"""A grid: limit buys on evenly spaced levels below the price, each bought level sold one level up, and re-armed."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .base import Action, Context, MarketRules, OrderUpdate, Place, Strategy, Tick
from .params import GridParams, grid_levels


def buy_key(level: int) -> str:
    return f"grid:buy:{level}"


def sell_key(level: int) -> str:
    return f"grid:sell:{level}"


def _parse_key(key: str) -> tuple[str, int] | None:
    """("buy", 3) from "grid:buy:3"; None for any other key."""
    prefix, _, rest = key.rpartition(":")
    if prefix in ("grid:buy", "grid:sell") and rest.isdigit():
        return prefix.removeprefix("grid:"), int(rest)
    return None


class GridStrategy(Strategy):
    """Level i buys and level i+1 sells what it bought, so the top level only ever sells.

    State: `started` (the first buys are placed), `buys` (levels with a buy armed) and `sells` (sell level -> the
    amount it sells, the base bought one level down net of fees). An armed order is one that should be open: on a
    restart, `on_start` places the armed ones that are not open. A canceled or rejected order is disarmed.
    """

    name = "grid"
    description = "Buy below and sell above, on N levels between a low and a high price; re-armed on fills."
    Params = GridParams

    params: GridParams

    def __init__(self, params: GridParams, state: Mapping[str, Any] | None = None) -> None:
        super().__init__(params, state)
        state = state or {}
        self.started: bool = state.get("started", False)
        self.buys: set[int] = set(state.get("buys", ()))
        self.sells: dict[int, Decimal] = {
            int(level): Decimal(amount) for level, amount in state.get("sells", {}).items()
        }

    def state(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "buys": sorted(self.buys),
            "sells": {str(level): str(amount) for level, amount in sorted(self.sells.items())},
        }

    def levels(self, rules: MarketRules) -> list[Decimal]:
        """The level prices from low to high, each on the tick."""
        return grid_levels(self.params, rules)

    def on_start(self, ctx: Context) -> list[Action]:
        return self._missing(ctx) if self.started else self._first_buys(ctx, ctx.price)

    def on_tick(self, ctx: Context, tick: Tick) -> list[Action]:
        return [] if self.started else self._first_buys(ctx, tick.price() or ctx.price)

    def on_order(self, ctx: Context, update: OrderUpdate) -> list[Action]:
        parsed = _parse_key(update.key)
        if parsed is None or not update.done:
            return []
        side, level = parsed
        levels = self.levels(ctx.market)
        if side == "buy":
            self.buys.discard(level)
            if update.filled > 0 and level + 1 < len(levels):
                self.sells[level + 1] = self._net_bought(ctx.market, update)
                return self._arm(ctx, self._sell(ctx, levels, level + 1))
        else:
            self.sells.pop(level, None)
            if update.status == "closed" and level >= 1:
                self.buys.add(level - 1)
                return self._arm(ctx, self._buy(ctx, levels, level - 1))
        return []

    def _first_buys(self, ctx: Context, price: Decimal | None) -> list[Action]:
        """A buy on every level more than a tick below the price (one at the price would fill at once)."""
        if price is None:
            return []
        self.started = True
        levels = self.levels(ctx.market)
        self.buys = {i for i, level in enumerate(levels[:-1]) if level < price - ctx.market.price_step}
        return self._missing(ctx)

    def _missing(self, ctx: Context) -> list[Action]:
        """The armed orders that are not open."""
        levels = self.levels(ctx.market)
        buys = [self._buy(ctx, levels, i) for i in sorted(self.buys) if buy_key(i) not in ctx.open_orders]
        sells = [self._sell(ctx, levels, j) for j in sorted(self.sells) if sell_key(j) not in ctx.open_orders]
        return [action for action in (*buys, *sells) if action is not None]

    def _arm(self, ctx: Context, place: Place | None) -> list[Action]:
        return [] if place is None or place.key in ctx.open_orders else [place]

    def _buy(self, ctx: Context, levels: list[Decimal], level: int) -> Place | None:
        price = levels[level]
        amount = ctx.market.amount(self.params.quote_per_level / price)
        if not ctx.market.allows(amount, price):
            self.buys.discard(level)  # never placeable at this price: not armed
            return None
        return Place(buy_key(level), "buy", "limit", amount, price)

    def _sell(self, ctx: Context, levels: list[Decimal], level: int) -> Place | None:
        price, amount = levels[level], self.sells[level]
        if not ctx.market.allows(amount, price):
            del self.sells[level]  # too little to sell on this market: the base stays in the position
            return None
        return Place(sell_key(level), "sell", "limit", amount, price)

    @staticmethod
    def _net_bought(rules: MarketRules, update: OrderUpdate) -> Decimal:
        fee = update.fee_cost if update.fee_currency == rules.base and update.fee_cost else Decimal(0)
        return rules.amount(update.filled - fee)
