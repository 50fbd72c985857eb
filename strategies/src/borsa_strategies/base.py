"""The one small interface every strategy implements.

A strategy is pure: it is given market data, the market's rules and what happened to the bot's own orders, and
answers with actions (place an order, cancel one). It never talks to the bus or the database; the bot runner does,
and it persists `state()` with every action so that a strategy rebuilt from its state after a restart carries on
where it was. Every callback is given a `Context` with the time, the market's rules, the bot's position and the
orders it has open (by key).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any, ClassVar

import msgspec

from borsa_proto.exchange import Market


@dataclass(frozen=True, slots=True)
class MarketRules:
    """What an order must meet on the bot's market, from the connector's `Market` (precision as tick sizes)."""

    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    maker: Decimal | None = None
    taker: Decimal | None = None

    @classmethod
    def from_market(cls, market: Market) -> MarketRules:
        limits = market.limits
        return cls(
            symbol=market.symbol,
            base=market.base,
            quote=market.quote,
            amount_step=market.precision.amount,
            price_step=market.precision.price,
            min_amount=limits.amount.min,
            max_amount=limits.amount.max,
            min_cost=limits.cost.min,
            max_cost=limits.cost.max,
            min_price=limits.price.min,
            max_price=limits.price.max,
            maker=market.maker,
            taker=market.taker,
        )

    def amount(self, value: Decimal) -> Decimal:
        """An amount on the market's step, truncated toward zero (never more than asked)."""
        return floor_to_step(value, self.amount_step)

    def price(self, value: Decimal) -> Decimal:
        """A price on the market's tick, the nearest one."""
        return round_to_step(value, self.price_step)

    def allows(self, amount: Decimal, price: Decimal) -> bool:
        """Whether an order of `amount` at about `price` meets the market's minimums (amount and value)."""
        if amount <= 0:
            return False
        if self.min_amount is not None and amount < self.min_amount:
            return False
        return self.min_cost is None or amount * price >= self.min_cost


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return ((value / step).to_integral_value(rounding=ROUND_DOWN) * step).quantize(step)


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of `step` not below `value` (a sell target never rounds down)."""
    if step <= 0:
        return value
    return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(step)


def round_to_step(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return ((value / step).to_integral_value() * step).quantize(step)


@dataclass(frozen=True, slots=True)
class Tick:
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    timestamp: int

    def price(self) -> Decimal | None:
        """The price a strategy acts on: the last trade, else the middle of bid and ask."""
        if self.last is not None:
            return self.last
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.bid or self.ask


@dataclass(frozen=True, slots=True)
class Candle:
    """A closed candle."""

    timestamp: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    """The bot's holding, kept by the runner from its fills: amount in base, average entry price, realised PnL in
    quote (fees included)."""

    amount: Decimal = Decimal(0)
    average_entry: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class OpenOrder:
    key: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    filled: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One of the bot's orders changed: status open|closed|canceled|rejected|expired, cumulative filled, average
    fill price, and the fees paid on it so far (fee_currency may be base, quote or another asset)."""

    key: str
    side: str
    type: str
    status: str
    amount: Decimal
    filled: Decimal
    average: Decimal | None = None
    price: Decimal | None = None
    fee_cost: Decimal | None = None
    fee_currency: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("closed", "canceled", "rejected", "expired")


@dataclass(frozen=True, slots=True)
class Context:
    now_ms: int
    market: MarketRules
    position: Position = Position()
    open_orders: Mapping[str, OpenOrder] = field(default_factory=dict)
    """The bot's orders not yet done, by key (what the runner has sent or is sending)."""
    price: Decimal | None = None
    """The latest price the runner has seen for the symbol, if any."""


@dataclass(frozen=True, slots=True)
class Place:
    """Place an order. `key` names the slot it fills ("dca", "tp", "grid:buy:3"): at most one open order per key.
    amount is in base on the market's step; price (limit orders) on its tick."""

    key: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the open order of this key (nothing to do when none is open)."""

    key: str


Action = Place | Cancel


class ParamsProblem(ValueError):
    """Params that cannot work: `code` is a bus error code (bad_request, invalid_order), `field` the param's path
    (`params.quote_amount`), `message` written for a person."""

    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


class Strategy(ABC):
    """Built from validated params and the state it returned last time (None for a new bot)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[msgspec.Struct]]
    timeframe: ClassVar[str | None] = None
    """Candles this strategy needs (`on_candles`), or None; instances may override from their params."""

    def __init__(self, params: msgspec.Struct, state: Mapping[str, Any] | None = None) -> None:
        self.params = params

    def state(self) -> dict[str, Any]:
        """JSON-serialisable (decimals as strings); given back to __init__ after a restart."""
        return {}

    def candles_needed(self) -> int:
        """How many closed candles `on_candles` wants (0: none)."""
        return 0

    @abstractmethod
    def on_start(self, ctx: Context) -> list[Action]:
        """The bot starts or restarts: place what should be open and is not (idempotent given ctx.open_orders)."""

    def on_tick(self, ctx: Context, tick: Tick) -> list[Action]:
        return []

    def on_candles(self, ctx: Context, candles: list[Candle]) -> list[Action]:
        return []

    def on_order(self, ctx: Context, update: OrderUpdate) -> list[Action]:
        return []
