"""Binance's JSON shapes: exchangeInfo symbols, 24 h tickers, books, klines, orders, trades and the account."""

from __future__ import annotations

import re
import secrets
import string
from decimal import Decimal

from ..engine import Account, ExchangeState, Fill, Order
from ..markets import MarketSpec
from ..walk import TIMEFRAMES_MS, Candle, floor_to

EIGHT = Decimal("0.00000001")
ZERO = Decimal(0)
# Binance's ids are int64 and far past 2^32 on busy books (BTCUSDT orders are ~5e10): code that keeps them in
# an int32 or a float breaks here as it would there.
ORDER_ID_BASE = 50_000_000_000
TRADE_ID_BASE = 4_000_000_000
# Binance's interval names; 1s, 3d and 1M exist on Binance but the walk has no such candles.
INTERVALS = {name: name for name in TIMEFRAMES_MS}
# Signed requests (rest-api.md "SIGNED endpoint security"; the WebSocket API checks them the same way).
API_KEY_RE = re.compile(r"^[A-Za-z0-9]{64}$")
DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
LONG_RE = re.compile(r"^[0-9]{1,20}$")
DEFAULT_RECV_WINDOW = Decimal(5000)  # ms, rest-api.md "Timing security"
MAX_RECV_WINDOW = Decimal(60000)
MAX_AHEAD_MS = 1000  # a timestamp more than 1 s ahead of the server is rejected
CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
ALNUM = string.ascii_letters + string.digits


def random_id(length: int) -> str:
    """Keys and secrets are 64 alphanumerics; ids Binance generates for orders and cancels are 22."""
    return "".join(secrets.choice(ALNUM) for _ in range(length))


def valid_client_id(value: str) -> bool:
    return bool(CLIENT_ID_RE.match(value))


def fmt(value: Decimal | None) -> str:
    """Binance prints every quantity with 8 decimals ("0.01000000"); finer ticks keep their own digits."""
    if value is None:
        value = ZERO
    if value == value.quantize(EIGHT):
        return format(value.quantize(EIGHT), "f")
    return format(value.normalize(), "f")


def symbol_info(spec: MarketSpec) -> dict:
    return {
        "symbol": spec.market_id,
        "status": "TRADING" if spec.active else "BREAK",
        "baseAsset": spec.base_id,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote_id,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        # Only what the simulator fills; ccxt refuses other types locally because of this list.
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": False,
        "amendAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(spec.min_price),
                "maxPrice": fmt(spec.max_price),
                "tickSize": fmt(spec.price_tick),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(spec.min_amount),
                "maxQty": fmt(spec.max_amount),
                "stepSize": fmt(spec.amount_step),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": fmt(spec.min_amount),
                "maxQty": fmt(spec.max_amount),
                "stepSize": fmt(spec.amount_step),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(spec.min_cost),
                "applyMinToMarket": True,
                "maxNotional": fmt(spec.max_cost),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
    }


def ticker_24hr(state: ExchangeState, spec: MarketSpec, mini: bool = False) -> dict:
    """GET /api/v3/ticker/24hr, type FULL (default) or MINI."""
    t = state.ticker(spec)
    count = max(1, int(t["volume"] / (spec.amount_step * 10)))
    stats = {
        "openPrice": fmt(t["open"]),
        "highPrice": fmt(t["high"]),
        "lowPrice": fmt(t["low"]),
        "lastPrice": fmt(t["last"]),
        "volume": fmt(t["volume"]),
        "quoteVolume": fmt(t["quote_volume"]),
        "openTime": t["open_time"],
        "closeTime": t["timestamp"],
        "firstId": TRADE_ID_BASE,
        "lastId": TRADE_ID_BASE + count - 1,
        "count": count,
    }
    if mini:
        return {"symbol": spec.market_id, **stats}
    change = t["last"] - t["open"]
    percent = (change / t["open"] * 100).quantize(Decimal("0.001")) if t["open"] else ZERO
    weighted = (t["quote_volume"] / t["volume"]).quantize(spec.price_tick) if t["volume"] else t["last"]
    bids, asks = state.walk(spec).book(1)
    return {
        "symbol": spec.market_id,
        "priceChange": fmt(change),
        "priceChangePercent": format(percent, "f"),
        "weightedAvgPrice": fmt(weighted),
        "prevClosePrice": fmt(t["open"]),
        "lastQty": fmt(spec.amount_step * 10),
        "bidPrice": fmt(bids[0][0]),
        "bidQty": fmt(bids[0][1]),
        "askPrice": fmt(asks[0][0]),
        "askQty": fmt(asks[0][1]),
        **stats,
    }


def book_ticker(state: ExchangeState, spec: MarketSpec) -> dict:
    bids, asks = state.walk(spec).book(1)
    return {
        "symbol": spec.market_id,
        "bidPrice": fmt(bids[0][0]),
        "bidQty": fmt(bids[0][1]),
        "askPrice": fmt(asks[0][0]),
        "askQty": fmt(asks[0][1]),
    }


def depth(state: ExchangeState, spec: MarketSpec, limit: int) -> dict:
    walk = state.walk(spec)
    bids, asks = walk.book(limit)
    return {
        # The book changes with each step of the walk, so the step count is its version.
        "lastUpdateId": 1_000_000_000 + walk.steps,
        "bids": [[fmt(p), fmt(q)] for p, q in bids[:limit]],
        "asks": [[fmt(p), fmt(q)] for p, q in asks[:limit]],
    }


def kline(candle: Candle, interval: str, spec: MarketSpec) -> list:
    """[openTime, open, high, low, close, volume, closeTime, quoteVolume, trades, takerBase, takerQuote, "0"]."""
    quote_volume = candle.volume * candle.close
    taker_base = floor_to(candle.volume / 2, spec.amount_step)
    return [
        candle.ts,
        fmt(candle.open),
        fmt(candle.high),
        fmt(candle.low),
        fmt(candle.close),
        fmt(candle.volume),
        candle.ts + TIMEFRAMES_MS[interval] - 1,
        fmt(quote_volume.quantize(EIGHT)),
        max(1, int(candle.volume / (spec.amount_step * 10))),
        fmt(taker_base),
        fmt((taker_base * candle.close).quantize(EIGHT)),
        "0",
    ]


def order_status(order: Order) -> str:
    if order.status == "open":
        return "PARTIALLY_FILLED" if order.filled else "NEW"
    if order.status == "filled":
        # A market order the book could not fill completely ends EXPIRED with what it got.
        return "EXPIRED" if order.amount is not None and order.filled < order.amount else "FILLED"
    if order.status == "canceled":
        # IOC/FOK leftovers are expired by the exchange; only a user's cancel reads CANCELED.
        return "CANCELED" if order.extra.get("canceled_by_user") else "EXPIRED"
    return order.status.upper()


def _orig_qty(order: Order) -> Decimal:
    # A quoteOrderQty market buy reports the quantity it ended up buying.
    return order.amount if order.amount is not None else order.filled


def _orig_quote(order: Order) -> Decimal | None:
    return order.quote_amount if order.quote_amount is not None else order.extra.get("orig_quote_qty")


def order_ack(order: Order) -> dict:
    return {
        "symbol": order.spec.market_id,
        "orderId": int(order.id),
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.created_ms,
    }


def order_result(order: Order) -> dict:
    return {
        **order_ack(order),
        "price": fmt(order.price),
        "origQty": fmt(_orig_qty(order)),
        "executedQty": fmt(order.filled),
        "origQuoteOrderQty": fmt(_orig_quote(order)),
        "cummulativeQuoteQty": fmt(order.cost),
        "status": order_status(order),
        "timeInForce": order.time_in_force,
        "type": order.type.upper(),
        "side": order.side.upper(),
        "workingTime": order.created_ms,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def order_full(order: Order) -> dict:
    return {
        **order_result(order),
        "fills": [
            {
                "price": fmt(f.price),
                "qty": fmt(f.amount),
                "commission": fmt(f.fee),
                "commissionAsset": f.fee_currency,
                "tradeId": TRADE_ID_BASE + f.trade_id,
            }
            for f in order.fills
        ],
    }


def order_query(order: Order) -> dict:
    """GET /api/v3/order, openOrders and allOrders."""
    return {
        "symbol": order.spec.market_id,
        "orderId": int(order.id),
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(_orig_qty(order)),
        "executedQty": fmt(order.filled),
        "cummulativeQuoteQty": fmt(order.cost),
        "status": order_status(order),
        "timeInForce": order.time_in_force,
        "type": order.type.upper(),
        "side": order.side.upper(),
        "stopPrice": fmt(ZERO),
        "icebergQty": fmt(ZERO),
        "time": order.created_ms,
        "updateTime": order.updated_ms,
        "isWorking": True,
        "workingTime": order.created_ms,
        "origQuoteOrderQty": fmt(_orig_quote(order)),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def order_canceled(order: Order, cancel_client_id: str, now: int) -> dict:
    """DELETE /api/v3/order: clientOrderId is the cancel's own id, the order's is origClientOrderId."""
    return {
        "symbol": order.spec.market_id,
        "origClientOrderId": order.client_order_id,
        "orderId": int(order.id),
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": now,
        "price": fmt(order.price),
        "origQty": fmt(_orig_qty(order)),
        "executedQty": fmt(order.filled),
        "origQuoteOrderQty": fmt(_orig_quote(order)),
        "cummulativeQuoteQty": fmt(order.cost),
        "status": order_status(order),
        "timeInForce": order.time_in_force,
        "type": order.type.upper(),
        "side": order.side.upper(),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def my_trade(fill: Fill) -> dict:
    return {
        "symbol": fill.market_id,
        "id": TRADE_ID_BASE + fill.trade_id,
        "orderId": int(fill.order_id),
        "orderListId": -1,
        "price": fmt(fill.price),
        "qty": fmt(fill.amount),
        "quoteQty": fmt(fill.cost),
        "commission": fmt(fill.fee),
        "commissionAsset": fill.fee_currency,
        "time": fill.timestamp,
        "isBuyer": fill.side == "buy",
        "isMaker": fill.liquidity == "maker",
        "isBestMatch": True,
    }


def account_info(account: Account, state: ExchangeState, omit_zero: bool, now: int) -> dict:
    spec = next(iter(state.specs.values()))
    assets = {a for s in state.specs.values() for a in (s.base_id, s.quote_id)} | set(account.balances)
    balances = []
    for asset in sorted(assets):
        holding = account.balances.get(asset)
        free, used = (holding.free, holding.used) if holding else (ZERO, ZERO)
        if omit_zero and not free and not used:
            continue
        balances.append({"asset": asset, "free": fmt(free), "locked": fmt(used)})
    return {
        # Commissions in basis points * 100 as Binance writes them: 10 = 0.1 %.
        "makerCommission": int(spec.maker * 10_000),
        "takerCommission": int(spec.taker * 10_000),
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt(spec.maker),
            "taker": fmt(spec.taker),
            "buyer": fmt(ZERO),
            "seller": fmt(ZERO),
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": now,
        "accountType": "SPOT",
        "balances": balances,
        "permissions": ["SPOT"],
        "uid": 100_000_000 + int("".join(c for c in account.id if c.isdigit()) or 0),
    }
