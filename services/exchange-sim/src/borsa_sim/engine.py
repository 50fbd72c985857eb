"""The exchange-agnostic matching engine: accounts, balances, orders, fills and their rules.

Dialects (one per exchange) translate HTTP requests into calls here and `SimError`s into the exchange's own
error payloads. Everything is synchronous and runs on the event loop, so no state needs a lock.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from .markets import ASSETS, EUR_PER_USD, MarketSpec, markets_for
from .walk import TIMEFRAMES_MS, Candle, PriceWalk, floor_to

ZERO = Decimal(0)


def now_ms() -> int:
    return int(time.time() * 1000)


class SimError(Exception):
    """A rule the exchange enforces was broken. `kind` is what the dialect maps to its own error."""

    KINDS = frozenset(
        {
            "unknown_symbol",
            "missing_param",
            "invalid_param",
            "bad_amount_step",
            "bad_price_tick",
            "below_min_amount",
            "above_max_amount",
            "below_min_cost",
            "above_max_cost",
            "price_out_of_range",
            "insufficient_balance",
            "duplicate_client_id",
            "unknown_order",
            "order_not_open",
        }
    )

    def __init__(self, kind: str, message: str, field: str | None = None, **info) -> None:
        assert kind in self.KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field
        self.info = info


@dataclass(slots=True)
class Holding:
    free: Decimal = ZERO
    used: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(slots=True)
class Account:
    id: str
    exchange: str
    credentials: dict[str, str]
    balances: dict[str, Holding] = field(default_factory=dict)
    created_ms: int = field(default_factory=now_ms)
    last_nonce: int = 0  # Kraken: nonces must increase per key
    authenticated_once: bool = False

    @property
    def api_key(self) -> str:
        return self.credentials["apiKey"]

    def holding(self, asset: str) -> Holding:
        return self.balances.setdefault(asset, Holding())


@dataclass(slots=True)
class Fill:
    trade_id: int
    order_id: str
    account_id: str
    symbol: str
    market_id: str
    side: str
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str  # maker | taker
    timestamp: int


@dataclass(slots=True)
class Order:
    id: str
    exchange: str
    account_id: str
    spec: MarketSpec
    side: str  # buy | sell
    type: str  # market | limit
    amount: Decimal | None  # base amount; None for a market buy by quote funds
    price: Decimal | None
    client_order_id: str | None
    quote_amount: Decimal | None = None
    time_in_force: str = "GTC"
    status: str = "open"  # open | filled | canceled | expired | rejected
    filled: Decimal = ZERO
    cost: Decimal = ZERO
    fee: Decimal = ZERO
    fee_currency: str = ""
    created_ms: int = field(default_factory=now_ms)
    updated_ms: int = field(default_factory=now_ms)
    fills: list[Fill] = field(default_factory=list)
    reserved: Decimal = ZERO  # what is still held in `used` for this order
    reserved_asset: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def remaining(self) -> Decimal:
        return (self.amount - self.filled) if self.amount is not None else ZERO

    @property
    def average(self) -> Decimal | None:
        return (self.cost / self.filled) if self.filled else None

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def as_dict(self) -> dict:
        """The admin view (`GET /_sim/orders`): everything a test needs to audit what happened."""
        return {
            "exchange": self.exchange,
            "account": self.account_id,
            "id": self.id,
            "client_order_id": self.client_order_id,
            "symbol": self.spec.symbol,
            "market_id": self.spec.market_id,
            "side": self.side,
            "type": self.type,
            "status": self.status,
            "amount": _s(self.amount),
            "price": _s(self.price),
            "filled": _s(self.filled),
            "cost": _s(self.cost),
            "fee": _s(self.fee),
            "fee_currency": self.fee_currency or None,
            "created_at": self.created_ms,
            "updated_at": self.updated_ms,
            "fills": [
                {
                    "trade_id": f.trade_id,
                    "price": _s(f.price),
                    "amount": _s(f.amount),
                    "cost": _s(f.cost),
                    "fee": _s(f.fee),
                    "fee_currency": f.fee_currency,
                    "liquidity": f.liquidity,
                    "timestamp": f.timestamp,
                }
                for f in self.fills
            ],
        }


def _s(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def quote_usd(quote: str) -> Decimal:
    if quote in ("USD", "USDT", "USDC"):
        return Decimal(1)
    if quote == "EUR":
        return 1 / EUR_PER_USD
    return ASSETS.get(quote, Decimal(1))


@dataclass(frozen=True, slots=True)
class FeePolicy:
    # Binance takes the fee from what the trade gives you (base on a buy, quote on a sell) unless BNB pays it;
    # Kraken, Coinbase and KuCoin charge the quote currency by default.
    in_received_asset: bool = False


FEE_POLICIES = {"binance": FeePolicy(in_received_asset=True)}

# What happened to an order, for push streams: "new", "trade" (with its fill; the order may have ended with it)
# or "closed" (canceled, expired, or a market order the book could not fill completely).
OrderListener = Callable[[str, "Order", "Fill | None"], None]


class ExchangeState:
    """One simulated exchange: its markets, walks, accounts and order book of record."""

    def __init__(
        self, name: str, seed: int, start_ms: int | None = None, order_id_factory: Callable[[int], str] | None = None
    ) -> None:
        self.name = name
        self.started_ms = start_ms or now_ms()
        self.specs: dict[str, MarketSpec] = {}
        self._lookup: dict[str, MarketSpec] = {}
        self.walks: dict[str, PriceWalk] = {}
        for spec in markets_for(name):
            self.specs[spec.symbol] = spec
            for key in (spec.symbol, spec.market_id, spec.altname):
                self._lookup[key] = spec
            self.walks[spec.symbol] = PriceWalk(
                seed,
                name,
                spec.symbol,
                spec.start_price,
                spec.price_tick,
                spec.amount_step,
                self.started_ms,
                quote_usd=quote_usd(spec.quote),
            )
        self.fee_policy = FEE_POLICIES.get(name, FeePolicy())
        self.accounts: dict[str, Account] = {}
        self.accounts_by_key: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self._open_by_symbol: dict[str, dict[str, Order]] = {}
        self._orders_by_account: dict[str, list[Order]] = {}
        self._order_seq = itertools.count(1)
        self._trade_seq = itertools.count(1)
        self.order_id_factory = order_id_factory or (lambda n: str(n))
        # Called synchronously on every change of an order (websocket user streams): after the change, so the
        # order is seen as it is right then.
        self.listeners: list[OrderListener] = []

    def notify(self, change: str, order: Order, fill: Fill | None = None) -> None:
        for listener in self.listeners:
            listener(change, order, fill)

    # -- markets ---------------------------------------------------------------------------------------------
    def market(self, key: str | None) -> MarketSpec:
        spec = self._lookup.get(key or "")
        if spec is None:
            raise SimError("unknown_symbol", f"Unknown symbol {key!r}", field="symbol", symbol=key)
        return spec

    def update_market(self, key: str, **changes) -> MarketSpec:
        """Change a market's rules (tick, step, minimums, active) as exchanges sometimes do; orders already
        placed keep the rules they were placed under."""
        old = self.market(key)
        allowed = {"price_tick", "amount_step", "min_amount", "max_amount", "min_cost", "max_cost", "active"}
        unknown = set(changes) - allowed
        if unknown:
            raise SimError("invalid_param", f"cannot change {sorted(unknown)}; allowed: {sorted(allowed)}")
        new = dataclasses.replace(old, **changes)
        self.specs[new.symbol] = new
        for name, spec in list(self._lookup.items()):
            if spec is old:
                self._lookup[name] = new
        walk = self.walks[new.symbol]
        walk.tick, walk.step = new.price_tick, new.amount_step
        return new

    def find_market(self, key: str | None) -> MarketSpec | None:
        return self._lookup.get(key or "")

    def walk(self, spec: MarketSpec) -> PriceWalk:
        return self.walks[spec.symbol]

    def ticker(self, spec: MarketSpec, now: int | None = None) -> dict:
        """Last, best bid/ask and 24 h statistics from the walk's candles."""
        now = now or now_ms()
        walk = self.walk(spec)
        day = [c for c in walk.minute_candles()[-1440:] if c.ts >= now - 86_400_000] or walk.minute_candles()[-1:]
        high = max(c.high for c in day)
        low = min(c.low for c in day)
        volume = sum((c.volume for c in day), ZERO)
        return {
            "last": walk.price,
            "bid": walk.best_bid(),
            "ask": walk.best_ask(),
            "open": day[0].open,
            "high": max(high, walk.price),
            "low": min(low, walk.price),
            "volume": volume,
            "quote_volume": (volume * walk.price).quantize(spec.price_tick)
            if spec.price_tick < 1
            else volume * walk.price,
            "timestamp": now,
            "open_time": now - 86_400_000,
        }

    def ohlcv(self, spec: MarketSpec, timeframe: str, since: int | None, limit: int) -> list[Candle]:
        if timeframe not in TIMEFRAMES_MS:
            raise SimError("invalid_param", f"Invalid interval {timeframe!r}", field="interval")
        return self.walk(spec).ohlcv(timeframe, since, limit, now_ms())

    # -- accounts --------------------------------------------------------------------------------------------
    def create_account(self, account_id: str, credentials: dict[str, str], balances: dict[str, Decimal]) -> Account:
        account = Account(account_id, self.name, credentials)
        for asset, amount in balances.items():
            account.holding(asset).free = Decimal(amount)
        self.accounts[account_id] = account
        self.accounts_by_key[account.api_key] = account
        self._orders_by_account[account_id] = []
        return account

    def account_by_key(self, api_key: str | None) -> Account | None:
        return self.accounts_by_key.get(api_key or "")

    # -- orders ----------------------------------------------------------------------------------------------
    def check_order(
        self,
        account: Account,
        spec: MarketSpec,
        *,
        side: str,
        type: str,
        amount: Decimal | None,
        price: Decimal | None = None,
        client_order_id: str | None = None,
        quote_amount: Decimal | None = None,
    ) -> tuple[str, Decimal]:
        """Every rule an order must meet, in the exchange's order, without placing it (a dry run, as Kraken's
        `validate=true`). Returns the asset the order holds and the most it can consume."""
        side, type = side.lower(), type.lower()
        if side not in ("buy", "sell"):
            raise SimError("invalid_param", f"Invalid side {side!r}", field="side")
        if type not in ("market", "limit"):
            raise SimError("invalid_param", f"Invalid order type {type!r}", field="type")
        if type == "limit" and price is None:
            raise SimError("missing_param", "A limit order needs a price", field="price")
        if amount is None and quote_amount is None:
            raise SimError("missing_param", "The order needs an amount", field="amount")
        if quote_amount is not None and not (type == "market" and side == "buy"):
            raise SimError("invalid_param", "A quote amount is only allowed on a market buy", field="quote_amount")
        for name, value in (("amount", amount), ("price", price), ("quote_amount", quote_amount)):
            if value is not None and (not value.is_finite() or value <= 0):
                raise SimError("invalid_param", f"{name} must be a positive number", field=name)
        if price is not None and price % spec.price_tick != 0:
            raise SimError(
                "bad_price_tick",
                f"Price {price} is not a multiple of the tick {spec.price_tick}",
                field="price",
                tick=spec.price_tick,
            )
        if amount is not None:
            if amount % spec.amount_step != 0:
                raise SimError(
                    "bad_amount_step",
                    f"Amount {amount} is not a multiple of the step {spec.amount_step}",
                    field="amount",
                    step=spec.amount_step,
                )
            if amount < spec.min_amount:
                raise SimError(
                    "below_min_amount",
                    f"Amount {amount} is below the minimum {spec.min_amount}",
                    field="amount",
                    minimum=spec.min_amount,
                )
            if spec.max_amount and amount > spec.max_amount:
                raise SimError(
                    "above_max_amount",
                    f"Amount {amount} is above the maximum {spec.max_amount}",
                    field="amount",
                    maximum=spec.max_amount,
                )
        if price is not None and (
            (spec.min_price and price < spec.min_price) or (spec.max_price and price > spec.max_price)
        ):
            raise SimError(
                "price_out_of_range", f"Price {price} is outside [{spec.min_price}, {spec.max_price}]", field="price"
            )
        if quote_amount is not None:
            notional = quote_amount
        elif price is not None:
            notional = amount * price
        else:
            # A market order by amount costs what walking the book costs, not the best price times the amount.
            notional = self._book_cost(spec, side, amount)
        if notional < spec.min_cost:
            raise SimError(
                "below_min_cost",
                f"Order value {notional} is below the minimum {spec.min_cost}",
                field="cost",
                minimum=spec.min_cost,
            )
        if spec.max_cost and notional > spec.max_cost:
            raise SimError(
                "above_max_cost",
                f"Order value {notional} is above the maximum {spec.max_cost}",
                field="cost",
                maximum=spec.max_cost,
            )
        if client_order_id:
            dup = self.find_by_client_id(account, client_order_id, open_only=True)
            if dup is not None:
                raise SimError(
                    "duplicate_client_id",
                    f"Client order id {client_order_id!r} is already in use",
                    field="client_order_id",
                    order=dup,
                )

        # Funds: what this order can consume at worst.
        if side == "buy":
            asset = spec.quote
            fee_rate = ZERO if self.fee_policy.in_received_asset else spec.taker
            need = notional * (1 + fee_rate)
        else:
            asset = spec.base
            need = amount
        holding = account.holding(asset)
        if holding.free < need:
            raise SimError(
                "insufficient_balance",
                f"Insufficient {asset}: need {need}, free {holding.free}",
                field="amount",
                asset=asset,
                need=need,
                free=holding.free,
            )
        return asset, need

    def place_order(
        self,
        account: Account,
        spec: MarketSpec,
        *,
        side: str,
        type: str,
        amount: Decimal | None,
        price: Decimal | None = None,
        client_order_id: str | None = None,
        quote_amount: Decimal | None = None,
        time_in_force: str = "GTC",
    ) -> Order:
        """Validate against the market's rules and the account's funds, then fill what crosses the book."""
        side, type = side.lower(), type.lower()
        asset, need = self.check_order(
            account,
            spec,
            side=side,
            type=type,
            amount=amount,
            price=price,
            client_order_id=client_order_id,
            quote_amount=quote_amount,
        )
        holding = account.holding(asset)
        seq = next(self._order_seq)
        order = Order(
            id=self.order_id_factory(seq),
            exchange=self.name,
            account_id=account.id,
            spec=spec,
            side=side,
            type=type,
            amount=amount,
            price=price,
            client_order_id=client_order_id,
            quote_amount=quote_amount,
            time_in_force=time_in_force.upper(),
            fee_currency=self._fee_currency(spec, side),
        )
        order.extra["seq"] = seq
        self.orders[order.id] = order
        self._orders_by_account[account.id].append(order)
        if type == "limit":
            order.reserved_asset, order.reserved = asset, need
            holding.free -= need
            holding.used += need
            self._open_by_symbol.setdefault(spec.symbol, {})[order.id] = order
        self.notify("new", order)
        self._take(order, account)
        if type == "market" and order.is_open:
            # Whatever the book could not fill is gone: a market order never rests.
            self._close(order, account, "expired" if order.filled == 0 else "filled")
        elif type == "limit" and order.is_open and order.time_in_force in ("IOC", "FOK"):
            self._close(order, account, "canceled" if order.filled == 0 else "expired")
        return order

    def _book_cost(self, spec: MarketSpec, side: str, amount: Decimal) -> Decimal:
        bids, asks = self.walk(spec).book()
        cost, left = ZERO, amount
        for level_price, level_size in asks if side == "buy" else bids:
            size = min(level_size, left)
            cost += size * level_price
            left -= size
            if left <= 0:
                break
        return cost

    def _fee_currency(self, spec: MarketSpec, side: str) -> str:
        if self.fee_policy.in_received_asset and side == "buy":
            return spec.base
        return spec.quote

    def _take(self, order: Order, account: Account) -> None:
        """Fill against the synthetic book as taker, as far as the order's price (if any) allows."""
        walk = self.walk(order.spec)
        bids, asks = walk.book()
        levels = asks if order.side == "buy" else bids
        for level_price, level_size in levels:
            if not order.is_open:
                break
            if order.price is not None and (
                (order.side == "buy" and level_price > order.price)
                or (order.side == "sell" and level_price < order.price)
            ):
                break
            if order.quote_amount is not None:
                left = order.quote_amount - order.cost
                size = min(level_size, floor_to(left / level_price, order.spec.amount_step))
            else:
                size = min(level_size, order.remaining)
            if size <= 0:
                break
            self._fill(order, account, level_price, size, "taker")

    def _fill(self, order: Order, account: Account, price: Decimal, size: Decimal, liquidity: str) -> None:
        spec = order.spec
        rate = spec.taker if liquidity == "taker" else spec.maker
        cost = price * size
        base, quote = account.holding(spec.base), account.holding(spec.quote)
        if order.side == "buy":
            fee = size * rate if self.fee_policy.in_received_asset else cost * rate
            spend = cost if self.fee_policy.in_received_asset else cost + fee
            self._consume(order, quote, spend)
            base.free += size - (fee if self.fee_policy.in_received_asset else ZERO)
        else:
            fee = cost * rate
            self._consume(order, base, size)
            quote.free += cost - fee
        fee = fee.normalize() if fee else ZERO
        ts = now_ms()
        fill = Fill(
            next(self._trade_seq),
            order.id,
            account.id,
            spec.symbol,
            spec.market_id,
            order.side,
            price,
            size,
            cost,
            fee,
            order.fee_currency,
            liquidity,
            ts,
        )
        order.fills.append(fill)
        order.filled += size
        order.cost += cost
        order.fee += fee
        order.updated_ms = ts
        if (order.amount is not None and order.filled >= order.amount) or (
            # A buy by quote funds is done when what is left cannot buy one more step at this price.
            order.quote_amount is not None and order.quote_amount - order.cost < price * spec.amount_step
        ):
            self._close(order, account, "filled", notify=False)
        self.notify("trade", order, fill)

    def _consume(self, order: Order, holding: Holding, amount: Decimal) -> None:
        """Take `amount` out of the order's reservation first, then out of free funds."""
        from_reserved = min(order.reserved, amount)
        order.reserved -= from_reserved
        holding.used -= from_reserved
        holding.free -= amount - from_reserved

    def _close(self, order: Order, account: Account, status: str, notify: bool = True) -> None:
        order.status = status
        order.updated_ms = now_ms()
        if order.reserved:
            holding = account.holding(order.reserved_asset)
            holding.used -= order.reserved
            holding.free += order.reserved
            order.reserved = ZERO
        self._open_by_symbol.get(order.spec.symbol, {}).pop(order.id, None)
        if notify:
            self.notify("closed", order)

    def cancel_order(self, account: Account, order: Order) -> Order:
        if not order.is_open:
            raise SimError(
                "order_not_open", f"Order {order.id} is already {order.status}", field="order_id", order=order
            )
        self._close(order, account, "canceled")
        return order

    def get_order(self, account: Account, order_id: str | None = None, client_order_id: str | None = None) -> Order:
        order = None
        if order_id:
            order = self.orders.get(order_id)
        elif client_order_id:
            order = self.find_by_client_id(account, client_order_id, open_only=False)
        if order is None or order.account_id != account.id:
            raise SimError("unknown_order", "Order does not exist", field="order_id")
        return order

    def find_by_client_id(self, account: Account, client_order_id: str, open_only: bool) -> Order | None:
        """The newest order of this account with that client id (exchanges reuse ids once an order closes)."""
        for order in reversed(self._orders_by_account.get(account.id, [])):
            if order.client_order_id == client_order_id and (order.is_open or not open_only):
                return order
        return None

    def account_orders(
        self, account: Account, spec: MarketSpec | None = None, *, open_only: bool = False, closed_only: bool = False
    ) -> list[Order]:
        out = []
        for order in self._orders_by_account.get(account.id, []):
            if spec is not None and order.spec is not spec:
                continue
            if (open_only and not order.is_open) or (closed_only and order.is_open):
                continue
            out.append(order)
        return out

    def account_fills(self, account: Account, spec: MarketSpec | None = None) -> list[Fill]:
        return [f for o in self.account_orders(account, spec) for f in o.fills]

    def all_orders(self) -> Iterable[Order]:
        return self.orders.values()

    # -- time ------------------------------------------------------------------------------------------------
    def step(self, now: int | None = None) -> None:
        now = now or now_ms()
        for symbol, walk in self.walks.items():
            walk.step_walk(now)
            if self._open_by_symbol.get(symbol):
                self.match(self.specs[symbol])

    def set_price(self, spec: MarketSpec, price: Decimal) -> None:
        self.walk(spec).set_price(price, now_ms())
        self.match(spec)

    def script_closes(self, spec: MarketSpec, closes: list[Decimal]) -> list:
        return self.walk(spec).script_closes(closes, now_ms())

    def fill_part(self, order: Order, amount: Decimal) -> Fill:
        """Fill `amount` of a resting limit order at its own price, as maker, as a counterparty taking part of it
        would (the admin route `POST /_sim/orders/fill`: partial fills on demand)."""
        if not order.is_open or order.type != "limit" or order.amount is None:
            raise SimError("order_not_open", f"Order {order.id} is not a resting limit order", field="order_id")
        step = order.spec.amount_step
        if amount <= 0 or amount > order.remaining or amount % step:
            raise SimError(
                "invalid_param",
                f"amount must be a multiple of {step} above 0 and at most what is left ({order.remaining})",
                field="amount",
            )
        self._fill(order, self.accounts[order.account_id], order.price, amount, "maker")
        return order.fills[-1]

    def match(self, spec: MarketSpec) -> None:
        """Fill resting limit orders the price walked through, whole, at their own price, as maker."""
        walk = self.walk(spec)
        bid, ask = walk.best_bid(), walk.best_ask()
        for order in list(self._open_by_symbol.get(spec.symbol, {}).values()):
            crossed = (order.side == "buy" and ask <= order.price) or (order.side == "sell" and bid >= order.price)
            if crossed:
                account = self.accounts[order.account_id]
                self._fill(order, account, order.price, order.remaining, "maker")
