"""The binance dialect's endpoints: each parses Binance's parameters, asks the engine, answers in Binance's shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine import Order
from ..markets import MarketSpec
from ..walk import floor_to
from . import binance_wire as wire
from .base import Call

if TYPE_CHECKING:
    from .binance import BinanceDialect

DAY_MS = 86_400_000
RESPONSE_TYPES = {"ACK": wire.order_ack, "RESULT": wire.order_result, "FULL": wire.order_full}
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
UNSUPPORTED_ORDER_PARAMS = ("stopPrice", "icebergQty", "trailingDelta")
ORDER_PARAMS = (
    "symbol",
    "side",
    "type",
    "timeInForce",
    "quantity",
    "quoteOrderQty",
    "price",
    "newClientOrderId",
    "newOrderRespType",
    "selfTradePreventionMode",
    "strategyId",
    "strategyType",
    *UNSUPPORTED_ORDER_PARAMS,
)


# Request weights from rest-api.md (REQUEST_WEIGHT per IP).
def _ticker_weight(call: Call) -> float:
    """ticker/24hr: 2 for one symbol; 2, 40 or 80 for 1-20, 21-100 or more symbols; 80 for all."""
    if call.param("symbol"):
        return 2
    symbols = call.param("symbols")
    if symbols:
        count = symbols.count(",") + 1
        return 2 if count <= 20 else 40 if count <= 100 else 80
    return 80


def _price_weight(call: Call) -> float:
    """ticker/price and ticker/bookTicker: 2 for one symbol, 4 otherwise."""
    return 2 if call.param("symbol") else 4


def _depth_weight(call: Call) -> float:
    """depth: 5 up to 100 levels, 25 up to 500, 50 up to 1000, 250 beyond."""
    limit = call.param("limit") or "100"
    levels = int(limit) if limit.isdigit() else 100
    return 5 if levels <= 100 else 25 if levels <= 500 else 50 if levels <= 1000 else 250


def routes(d: BinanceDialect) -> list[tuple]:
    """(method, path, handler, weight, parameters besides the signed ones, private)."""
    h = Handlers(d)
    listing = ("symbol", "symbols", "symbolStatus")
    return [
        ("GET", "/api/v3/ping", h.ping, 1, (), False),
        ("GET", "/api/v3/time", h.time, 1, (), False),
        ("GET", "/api/v3/exchangeInfo", h.exchange_info, 20, (*listing, "permissions", "showPermissionSets"), False),
        ("GET", "/api/v3/ticker/24hr", h.ticker_24hr, _ticker_weight, (*listing, "type"), False),
        ("GET", "/api/v3/ticker/price", h.ticker_price, _price_weight, listing, False),
        ("GET", "/api/v3/ticker/bookTicker", h.book_ticker, _price_weight, listing, False),
        ("GET", "/api/v3/avgPrice", h.avg_price, 2, ("symbol",), False),
        ("GET", "/api/v3/depth", h.depth, _depth_weight, ("symbol", "limit", "symbolStatus"), False),
        (
            "GET",
            "/api/v3/klines",
            h.klines,
            2,
            ("symbol", "interval", "startTime", "endTime", "timeZone", "limit"),
            False,
        ),
        ("GET", "/api/v3/account", h.account, 20, ("omitZeroBalances",), True),
        ("POST", "/api/v3/order", h.new_order, 1, ORDER_PARAMS, True),
        ("GET", "/api/v3/order", h.get_order, 4, ("symbol", "orderId", "origClientOrderId"), True),
        (
            "DELETE",
            "/api/v3/order",
            h.cancel_order,
            1,
            ("symbol", "orderId", "origClientOrderId", "newClientOrderId", "cancelRestrictions"),
            True,
        ),
        ("GET", "/api/v3/openOrders", h.open_orders, lambda c: 6 if c.param("symbol") else 80, ("symbol",), True),
        ("DELETE", "/api/v3/openOrders", h.cancel_open_orders, 1, ("symbol",), True),
        ("GET", "/api/v3/allOrders", h.all_orders, 20, ("symbol", "orderId", "startTime", "endTime", "limit"), True),
        (
            "GET",
            "/api/v3/myTrades",
            h.my_trades,
            lambda c: 5 if c.param("orderId") else 20,
            ("symbol", "orderId", "startTime", "endTime", "fromId", "limit"),
            True,
        ),
    ]


class Handlers:
    def __init__(self, dialect: BinanceDialect) -> None:
        self.d = dialect
        self.state = dialect.state

    # -- market data ------------------------------------------------------------------------------------------
    async def ping(self, call: Call) -> web.Response:
        return self.d.reply(call, {})

    async def time(self, call: Call) -> web.Response:
        return self.d.reply(call, {"serverTime": self.d.now_ms()})

    def _listed(self, call: Call) -> list[MarketSpec]:
        specs = self.d.specs(call)
        specs = list(self.state.specs.values()) if specs is None else specs
        status = call.param("symbolStatus")
        if status is not None:
            if status not in ("TRADING", "HALT", "BREAK"):
                raise self.d.fail(call, -1130, "Data sent for parameter 'symbolStatus' is not valid.")
            specs = [s for s in specs if ("TRADING" if s.active else "BREAK") == status]
        return specs

    async def exchange_info(self, call: Call) -> web.Response:
        return self.d.reply(
            call,
            {
                "timezone": "UTC",
                "serverTime": self.d.now_ms(),
                "rateLimits": self.d.limits.rate_limits(),
                "exchangeFilters": [],
                "symbols": [wire.symbol_info(s) for s in self._listed(call)],
            },
        )

    async def ticker_24hr(self, call: Call) -> web.Response:
        kind = call.param("type") or "FULL"
        if kind not in ("FULL", "MINI"):
            raise self.d.fail(call, -1100, "Illegal characters found in parameter 'type'; legal range is 'FULL, MINI'.")
        tickers = [wire.ticker_24hr(self.state, s, kind == "MINI") for s in self._listed(call)]
        return self.d.reply(call, tickers[0] if call.param("symbol") else tickers)

    async def ticker_price(self, call: Call) -> web.Response:
        prices = [{"symbol": s.market_id, "price": wire.fmt(self.state.walk(s).price)} for s in self._listed(call)]
        return self.d.reply(call, prices[0] if call.param("symbol") else prices)

    async def book_ticker(self, call: Call) -> web.Response:
        books = [wire.book_ticker(self.state, s) for s in self._listed(call)]
        return self.d.reply(call, books[0] if call.param("symbol") else books)

    async def avg_price(self, call: Call) -> web.Response:
        spec = self.d.spec(call)
        candles = self.state.ohlcv(spec, "1m", None, 5)
        average = sum((c.close for c in candles), Decimal(0)) / len(candles)
        body = {"mins": 5, "price": wire.fmt(average.quantize(wire.EIGHT)), "closeTime": candles[-1].ts + 59_999}
        return self.d.reply(call, body)

    async def depth(self, call: Call) -> web.Response:
        spec = self.d.spec(call)
        # Default 100 levels; Binance truncates anything above 5000.
        limit = min(self.d.long(call, "limit", 100, low=1), 5000)
        return self.d.reply(call, wire.depth(self.state, spec, limit))

    async def klines(self, call: Call) -> web.Response:
        spec = self.d.spec(call)
        interval = call.param("interval")
        if not interval:
            raise self.d.fail(call, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in wire.INTERVALS:
            raise self.d.fail(call, -1120, "Invalid interval.")
        limit = min(self.d.long(call, "limit", 500, low=1), 1000)  # default 500, max 1000
        start = self.d.long(call, "startTime")
        end = self.d.long(call, "endTime")
        zone = call.param("timeZone")
        if zone not in (None, "", "0", "+0", "-0", "00:00", "+00:00", "-00:00"):
            # Candles are cut in UTC only: an offset would move every bucket.
            raise self.d.fail(call, -1130, "Data sent for parameter 'timeZone' is not valid.")
        if end is None:
            candles = self.state.ohlcv(spec, interval, start, limit)
        elif start is None:
            everything = self.state.ohlcv(spec, interval, 0, 1_000_000)
            candles = [c for c in everything if c.ts <= end][-limit:]
        else:
            candles = [c for c in self.state.ohlcv(spec, interval, start, limit) if c.ts <= end]
        return self.d.reply(call, [wire.kline(c, interval, spec) for c in candles])

    # -- account ----------------------------------------------------------------------------------------------
    async def account(self, call: Call) -> web.Response:
        omit = _boolean(self.d, call, "omitZeroBalances")
        return self.d.reply(call, wire.account_info(call.account, self.state, omit, self.d.now_ms()))

    # -- orders -----------------------------------------------------------------------------------------------
    async def new_order(self, call: Call) -> web.Response:
        d, account = self.d, call.account
        spec = d.spec(call)
        side, kind = _required(d, call, "side"), _required(d, call, "type")
        if side not in ("BUY", "SELL"):
            raise d.fail(call, -1117, "Invalid side.")
        if kind not in ("LIMIT", "MARKET"):
            raise d.fail(call, -1116, "Invalid orderType.")
        for name in UNSUPPORTED_ORDER_PARAMS:
            if call.param(name):
                raise d.fail(call, -1106, f"Parameter '{name}' sent when not required.")
        quantity, quote, price = d.decimal(call, "quantity"), d.decimal(call, "quoteOrderQty"), d.decimal(call, "price")
        tif = call.param("timeInForce") or None
        if kind == "LIMIT":
            for name, value in (("timeInForce", tif), ("quantity", quantity), ("price", price)):
                if value is None:
                    raise d.fail(
                        call, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
                    )
            if tif not in TIME_IN_FORCE:
                raise d.fail(call, -1115, "Invalid timeInForce.")
            if quote is not None:
                raise d.fail(call, -1106, "Parameter 'quoteOrderQty' sent when not required.")
        else:
            for name, value in (("price", price), ("timeInForce", tif)):
                if value is not None:
                    raise d.fail(call, -1106, f"Parameter '{name}' sent when not required.")
            if quantity is None and quote is None:
                raise d.fail(call, -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty!")
            if quantity is not None and quote is not None:
                raise d.fail(call, -1128, "Combination of optional parameters invalid.")
        client_id = call.param("newClientOrderId") or None
        if client_id is not None and not wire.valid_client_id(client_id):
            raise d.fail(
                call,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            )
        respond = RESPONSE_TYPES.get(call.param("newOrderRespType") or "FULL")
        if respond is None:
            raise d.fail(
                call,
                -1100,
                "Illegal characters found in parameter 'newOrderRespType'; legal range is 'ACK, RESULT, FULL'.",
            )
        stp = call.param("selfTradePreventionMode")
        if stp is not None and stp not in STP_MODES:
            raise d.fail(call, -1130, "Data sent for parameter 'selfTradePreventionMode' is not valid.")
        verdict = d.limits.order_limited(account.id)
        if verdict is not None:
            raise d.limited(call, verdict, d.limits.order_counts(account.id))
        sell_funds = None
        if quote is not None and side == "SELL":
            # A market sell by quoteOrderQty sells what the bids pay for those funds.
            sell_funds, quantity, quote = quote, _amount_for_funds(self.state, spec, quote), None
            if not quantity:
                raise d.fail(call, -1013, "Filter failure: NOTIONAL")
        order = self.state.place_order(
            account,
            spec,
            side=side.lower(),
            type=kind.lower(),
            amount=quantity,
            price=price,
            client_order_id=client_id or wire.random_id(22),
            quote_amount=quote,
            time_in_force=tif or "GTC",
        )
        if sell_funds is not None:
            order.extra["orig_quote_qty"] = sell_funds
        d.limits.count_order(account.id, traded=bool(order.fills))
        return d.reply(call, respond(order), headers=d.limits.order_counts(account.id))

    async def get_order(self, call: Call) -> web.Response:
        spec = self.d.spec(call)
        return self.d.reply(call, wire.order_query(self.d.find_order(call, spec, -2013)))

    async def cancel_order(self, call: Call) -> web.Response:
        d = self.d
        spec = d.spec(call)
        cancel_id = call.param("newClientOrderId") or None
        if cancel_id is not None and not wire.valid_client_id(cancel_id):
            raise d.fail(
                call,
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_]{1,36}$'.",
            )
        restriction = call.param("cancelRestrictions")
        if restriction not in (None, "ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise d.fail(call, -1145, "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED.")
        order = d.find_order(call, spec, -2011)
        if not order.is_open:
            raise d.fail(call, -2011, "Unknown order sent.")
        wanted = {"ONLY_NEW": "NEW", "ONLY_PARTIALLY_FILLED": "PARTIALLY_FILLED"}.get(restriction or "")
        if wanted and wire.order_status(order) != wanted:
            raise d.fail(call, -2011, "Order was not canceled due to cancel restrictions.")
        self._cancel(call, order)
        return d.reply(call, wire.order_canceled(order, cancel_id or wire.random_id(22), d.now_ms()))

    def _cancel(self, call: Call, order: Order) -> None:
        order.extra["canceled_by_user"] = True
        self.state.cancel_order(call.account, order)

    async def cancel_open_orders(self, call: Call) -> web.Response:
        spec = self.d.spec(call)
        orders = self.state.account_orders(call.account, spec, open_only=True)
        if not orders:
            raise self.d.fail(call, -2011, "Unknown order sent.")
        out = []
        for order in orders:
            self._cancel(call, order)
            out.append(wire.order_canceled(order, wire.random_id(22), self.d.now_ms()))
        return self.d.reply(call, out)

    async def open_orders(self, call: Call) -> web.Response:
        spec = self.d.spec(call) if call.param("symbol") is not None else None
        orders = self.state.account_orders(call.account, spec, open_only=True)
        return self.d.reply(call, [wire.order_query(o) for o in orders])

    async def all_orders(self, call: Call) -> web.Response:
        spec = self.d.spec(call)
        from_id = self.d.long(call, "orderId")
        limit = self._limit(call)
        start, end = self._window(call)
        orders = self.state.account_orders(call.account, spec)
        if from_id is not None:
            # From that order on, oldest first; otherwise the most recent ones.
            orders = [o for o in orders if int(o.id) >= from_id][:limit]
        else:
            orders = [
                o for o in orders if (start is None or o.created_ms >= start) and (end is None or o.created_ms <= end)
            ]
            orders = orders[:limit] if start is not None else orders[-limit:]
        return self.d.reply(call, [wire.order_query(o) for o in orders])

    async def my_trades(self, call: Call) -> web.Response:
        d = self.d
        spec = d.spec(call)
        order_id = d.long(call, "orderId")
        from_id = d.long(call, "fromId")
        limit = self._limit(call)
        start, end = self._window(call)
        if from_id is not None and (start is not None or end is not None):
            raise d.fail(call, -1128, "Combination of optional parameters invalid.")
        fills = sorted(self.state.account_fills(call.account, spec), key=lambda f: f.trade_id)
        if order_id is not None:
            fills = [f for f in fills if f.order_id == str(order_id)]
        if from_id is not None:
            fills = [f for f in fills if wire.TRADE_ID_BASE + f.trade_id >= from_id][:limit]
        else:
            fills = [
                f for f in fills if (start is None or f.timestamp >= start) and (end is None or f.timestamp <= end)
            ]
            fills = fills[:limit] if start is not None else fills[-limit:]
        return d.reply(call, [wire.my_trade(f) for f in fills])

    def _limit(self, call: Call) -> int:
        return min(self.d.long(call, "limit", 500, low=1), 1000)  # default 500, max 1000

    def _window(self, call: Call) -> tuple[int | None, int | None]:
        start, end = self.d.long(call, "startTime"), self.d.long(call, "endTime")
        if start is not None and end is not None and end - start > DAY_MS:
            raise self.d.fail(call, -1127, "More than 24 hours between startTime and endTime.")
        return start, end


def _required(d: BinanceDialect, call: Call, name: str) -> str:
    value = call.param(name)
    if not value:
        raise d.fail(call, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _boolean(d: BinanceDialect, call: Call, name: str) -> bool:
    value = call.param(name)
    if value in (None, "", "false", "FALSE", "False"):
        return False
    if value in ("true", "TRUE", "True"):
        return True
    raise d.fail(call, -1130, f"Data sent for parameter '{name}' is not valid.")


def _amount_for_funds(state, spec: MarketSpec, funds: Decimal) -> Decimal:
    """The base amount whose sale into the current bids yields at most `funds`."""
    bids, _ = state.walk(spec).book()
    amount, left = Decimal(0), funds
    for price, size in bids:
        take = min(size, floor_to(left / price, spec.amount_step))
        amount += take
        left -= take * price
        if take < size:
            break
    return amount
