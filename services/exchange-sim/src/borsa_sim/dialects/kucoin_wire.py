"""KuCoin's wire shapes (symbols, tickers, candles, orders, fills, balances, errors) built from engine objects."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

from ..engine import Account, ExchangeState, Fill, Order, SimError
from ..markets import MarketSpec
from ..walk import Candle
from .base import dec_str

D = Decimal
OK = "200000"
# KuCoin's fee classes (feeCategory 1/2/3 = class A/B/C, 0.1/0.2/0.3 %); a market's rate is class x coefficient.
# Every simulated pair is class A.
FEE_CLASSES = {1: D("0.001"), 2: D("0.002"), 3: D("0.003")}
FEE_CATEGORY = 1
BASE_FEE = FEE_CLASSES[FEE_CATEGORY]
# Funds increments (`quoteIncrement`, the step of `funds` on market orders) by quote currency, as /api/v2/symbols
# lists them for BTC-USDT and ETH-BTC.
QUOTE_INCREMENT = {"USDT": D("0.000001"), "BTC": D("0.00000001")}
CURRENCY_PRECISION = {"USDT": 6}
# /api/v1/market/candles `type` -> the walk's timeframe; 1month is built from daily candles.
CANDLE_TYPES = {
    "1min": "1m",
    "3min": "3m",
    "5min": "5m",
    "15min": "15m",
    "30min": "30m",
    "1hour": "1h",
    "2hour": "2h",
    "4hour": "4h",
    "6hour": "6h",
    "8hour": "8h",
    "12hour": "12h",
    "1day": "1d",
    "1week": "1w",
    "1month": "1M",
}


def hex_id(*parts: object, length: int = 24) -> str:
    """A stable ObjectId-looking id (24 hex characters) for things the engine numbers itself."""
    return hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()[:length]


def object_id(seconds: int, machine: str, counter: int) -> str:
    """MongoDB ObjectId layout, which KuCoin's order ids follow: 4-byte time, 5-byte machine, 3-byte counter."""
    return f"{seconds & 0xFFFFFFFF:08x}{machine[:10]}{counter & 0xFFFFFF:06x}"


def quote_increment(spec: MarketSpec) -> Decimal:
    return QUOTE_INCREMENT.get(spec.quote, D("0.00000001"))


# -- market data -------------------------------------------------------------------------------------------
def fee_coefficients(spec: MarketSpec) -> tuple[Decimal, Decimal]:
    """(maker, taker) multipliers of the class rate that give the market's own fees."""
    return (spec.maker / BASE_FEE).quantize(D("0.01")), (spec.taker / BASE_FEE).quantize(D("0.01"))


def symbol_entry(spec: MarketSpec) -> dict:
    maker_coef, taker_coef = fee_coefficients(spec)
    return {
        "symbol": spec.market_id,
        "name": spec.market_id,
        "baseCurrency": spec.base_id,
        "quoteCurrency": spec.quote_id,
        "feeCurrency": spec.quote_id,
        "market": "USDS" if spec.quote == "USDT" else spec.quote,
        "baseMinSize": spec.min_amount,
        "quoteMinSize": spec.min_cost,
        "baseMaxSize": spec.max_amount,
        "quoteMaxSize": spec.max_cost,
        "baseIncrement": spec.amount_step,
        "quoteIncrement": quote_increment(spec),
        "priceIncrement": spec.price_tick,
        "minFunds": spec.min_cost,
        "isMarginEnabled": False,
        "enableTrading": spec.active,
        "feeCategory": FEE_CATEGORY,
        "makerFeeCoefficient": maker_coef,
        "takerFeeCoefficient": taker_coef,
        "st": False,
    }


def currency_entry(code: str) -> dict:
    precision = CURRENCY_PRECISION.get(code, 8)
    return {
        "currency": code,
        "name": code,
        "fullName": code,
        "precision": precision,
        "confirms": None,
        "contractAddress": None,
        "isMarginEnabled": False,
        "isDebitEnabled": False,
        "chains": [
            {
                "chainName": code,
                "chainId": code.lower(),
                "withdrawalMinSize": "0.0001",
                "depositMinSize": None,
                "withdrawFeeRate": "0",
                "withdrawalMinFee": "0.0001",
                "isWithdrawEnabled": True,
                "isDepositEnabled": True,
                "confirms": 12,
                "preConfirms": 12,
                "contractAddress": "",
                "withdrawPrecision": precision,
                "maxWithdraw": None,
                "maxDeposit": None,
                "needTag": False,
            }
        ],
    }


def stats_entry(state: ExchangeState, spec: MarketSpec, now: int) -> dict:
    """GET /api/v1/market/stats: 24 h statistics; `buy` is the best bid and `sell` the best ask."""
    t = state.ticker(spec, now)
    change = t["last"] - t["open"]
    volume = t["volume"]
    return {
        "time": now,
        "symbol": spec.market_id,
        "buy": t["bid"],
        "sell": t["ask"],
        "changeRate": (change / t["open"]).quantize(D("0.0001")) if t["open"] else D(0),
        "changePrice": change,
        "high": t["high"],
        "low": t["low"],
        "vol": volume,
        "volValue": t["quote_volume"],
        "last": t["last"],
        "averagePrice": ((t["high"] + t["low"]) / 2).quantize(spec.price_tick),
    }


def all_tickers_entry(state: ExchangeState, spec: MarketSpec, now: int) -> dict:
    """One entry of GET /api/v1/market/allTickers: the stats plus book sizes and the market's fee rates."""
    entry = stats_entry(state, spec, now)
    del entry["time"]
    bids, asks = state.walk(spec).book(1)
    maker_coef, taker_coef = fee_coefficients(spec)
    entry.update(
        symbolName=spec.market_id,
        bestBidSize=bids[0][1] if bids else D(0),
        bestAskSize=asks[0][1] if asks else D(0),
        takerFeeRate=BASE_FEE,
        makerFeeRate=BASE_FEE,
        takerCoefficient=taker_coef,
        makerCoefficient=maker_coef,
    )
    return entry


def level1_entry(state: ExchangeState, spec: MarketSpec, now: int) -> dict:
    walk = state.walk(spec)
    bids, asks = walk.book(1)
    return {
        "time": now,
        "sequence": str(walk.steps + 1),
        "price": walk.price,
        "size": spec.amount_step,
        "bestBid": bids[0][0],
        "bestBidSize": bids[0][1],
        "bestAsk": asks[0][0],
        "bestAskSize": asks[0][1],
    }


def book_entry(state: ExchangeState, spec: MarketSpec, depth: int, now: int) -> dict:
    walk = state.walk(spec)
    bids, asks = walk.book(depth)
    return {
        "time": now,
        "sequence": str(walk.steps + 1),
        "bids": [[p, s] for p, s in bids],
        "asks": [[p, s] for p, s in asks],
    }


def monthly(candles: list[Candle]) -> list[Candle]:
    """Calendar months (UTC) out of daily candles: KuCoin's 1month type."""
    out: list[Candle] = []
    for c in candles:
        day = datetime.fromtimestamp(c.ts / 1000, UTC)
        start = int(datetime(day.year, day.month, 1, tzinfo=UTC).timestamp() * 1000)
        if out and out[-1].ts == start:
            last = out[-1]
            last.high, last.low, last.close = max(last.high, c.high), min(last.low, c.low), c.close
            last.volume += c.volume
        else:
            out.append(Candle(start, c.open, c.high, c.low, c.close, c.volume))
    return out


def candle_row(c: Candle, spec: MarketSpec) -> list[str]:
    """[start (s), open, close, high, low, volume, turnover]: KuCoin puts close before high and low."""
    turnover = (c.volume * (c.open + c.close) / 2).quantize(quote_increment(spec))
    return [str(c.ts // 1000), *(dec_str(v) for v in (c.open, c.close, c.high, c.low, c.volume, turnover))]


# -- account -----------------------------------------------------------------------------------------------
def balance_entries(account: Account, account_type: str, currency: str | None) -> list[dict]:
    out = []
    for asset, holding in sorted(account.balances.items()):
        if currency and asset != currency:
            continue
        out.append(
            {
                "id": hex_id(account.id, asset, account_type),
                "currency": asset,
                "type": account_type,
                "balance": holding.total,
                "available": holding.free,
                "holds": holding.used,
            }
        )
    return out


def order_entry(order: Order, hf: bool) -> dict:
    spec = order.spec
    closed_early = order.status in ("canceled", "expired")
    price = order.price if order.price is not None else D(0)
    size = order.amount if order.amount is not None else D(0)
    # Classic orders report funds only for orders placed by funds; HF ones also price x size.
    funds = order.quote_amount if order.quote_amount is not None else (price * size if hf else D(0))
    entry = {
        "id": order.id,
        "symbol": spec.market_id,
        "opType": "DEAL",
        "type": order.type,
        "side": order.side,
        "price": price,
        "size": size,
        "funds": funds,
        "dealFunds": order.cost,
        "dealSize": order.filled,
        "fee": order.fee,
        "feeCurrency": order.fee_currency,
        "stp": "",
        "timeInForce": order.time_in_force,
        "postOnly": bool(order.extra.get("post_only")),
        "hidden": False,
        "iceberg": False,
        "visibleSize": "0",
        "cancelAfter": 0,
        "channel": "API",
        "clientOid": order.client_order_id,
        "remark": order.extra.get("remark"),
        "tags": order.extra.get("tags"),
        "cancelExist": closed_early,
        "createdAt": order.created_ms,
        "tradeType": "TRADE",
    }
    if hf:
        remain = size - order.filled if order.amount is not None else D(0)
        entry.update(
            lastUpdatedAt=order.updated_ms,
            inOrderBook=order.is_open and order.type == "limit",
            cancelledSize=remain if closed_early else D(0),
            cancelledFunds=remain * price if closed_early else D(0),
            remainSize=remain if order.is_open else D(0),
            remainFunds=remain * price if order.is_open else D(0),
            active=order.is_open,
        )
    else:
        entry.update(stop="", stopTriggered=False, stopPrice="0", isActive=order.is_open)
    return entry


def fill_entry(fill: Fill, order: Order, hf: bool) -> dict:
    spec = order.spec
    rate = spec.taker if fill.liquidity == "taker" else spec.maker
    entry = {
        "symbol": fill.market_id,
        "orderId": fill.order_id,
        "counterOrderId": hex_id("counter", fill.trade_id),
        "side": fill.side,
        "liquidity": fill.liquidity,
        "forceTaker": False,
        "price": fill.price,
        "size": fill.amount,
        "funds": fill.cost,
        "fee": fill.fee,
        "feeRate": rate,
        "feeCurrency": fill.fee_currency,
        "stop": "",
        "tradeType": "TRADE",
        "type": order.type,
        "createdAt": fill.timestamp,
    }
    if hf:
        # HF trade ids are numbers; classic ones are ObjectIds.
        entry.update(id=hf_trade_id(fill), tradeId=hf_trade_id(fill), taxRate="0", tax="0")
    else:
        entry["tradeId"] = hex_id("trade", fill.trade_id, fill.order_id)
    return entry


def hf_trade_id(fill: Fill) -> int:
    return 11_000_000_000_000_000 + fill.trade_id


def page(items: list, current: int, size: int) -> dict:
    total = len(items)
    return {
        "currentPage": current,
        "pageSize": size,
        "totalNum": total,
        "totalPage": (total + size - 1) // size,
        "items": items[(current - 1) * size : current * size],
    }


# -- errors ------------------------------------------------------------------------------------------------
PARAM_NAMES = {"amount": "size", "quote_amount": "funds", "client_order_id": "clientOid", "interval": "type"}


def translate(err: SimError, path: str, hf: bool, quote: str = "") -> tuple[int, str, str]:
    """(HTTP status, code, msg) as KuCoin answers each broken rule. ccxt reads msg before code."""
    kind, info = err.kind, err.info
    name = PARAM_NAMES.get(err.field or "", err.field or "parameter")
    if kind == "unknown_symbol":
        if "/orders" in path:
            return 400, "400100", "Unsupported trading pair."
        return 400, "900001", "symbol not exists"
    if kind == "missing_param":
        return 400, "400100", f"{name} can not be null"
    if kind == "invalid_param":
        if err.field == "body":
            return 400, "400100", "Invalid request body: not a JSON object"
        return 400, "400100", f"{name} invalid"
    if kind == "bad_amount_step":
        return 400, "400100", "Order size increment invalid."
    if kind == "bad_price_tick":
        return 400, "400100", "Price increment invalid."
    if kind == "below_min_amount":
        return 400, "400100", "Order size below the minimum requirement."
    if kind == "above_max_amount":
        return 400, "400100", "Order size above the maximum requirement."
    if kind == "below_min_cost":
        return 400, "600101", f"The order funds should more then {dec_str(info.get('minimum'))} {quote}".rstrip() + "."
    if kind == "above_max_cost":
        return 400, "400100", "Order funds above the maximum requirement."
    if kind == "price_out_of_range":
        return 400, "400760", err.message
    if kind == "insufficient_balance":
        return 200, "200004", "Balance insufficient!"
    if kind == "duplicate_client_id":
        return 400, "126044", "clientOid duplicate"
    if kind == "unknown_order":
        return 404, "400100", "The order does not exist." if hf else "order not exist."
    if kind == "order_not_open":
        return 400, "400100", "order_not_exist_or_not_allow_to_cancel"
    return 400, "400100", err.message
