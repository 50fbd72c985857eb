"""Coinbase's public data: Advanced Trade products, tickers, books and candles, and the v2 currency calls that
ccxt's load_markets makes."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine import SimError, now_ms
from ..markets import MarketSpec
from ..walk import TIMEFRAMES_MS, floor_to
from . import coinbase_wire as wire
from .base import Call, Reject, int_param, json_response

if TYPE_CHECKING:
    from .coinbase import CoinbaseDialect

NAMES = {
    "BTC": "Bitcoin",
    "ETH": "Ethereum",
    "SOL": "Solana",
    "XRP": "XRP",
    "ADA": "Cardano",
    "DOGE": "Dogecoin",
    "DOT": "Polkadot",
    "LTC": "Litecoin",
    "LINK": "Chainlink",
    "AVAX": "Avalanche",
    "ATOM": "Cosmos",
    "UNI": "Uniswap",
    "XLM": "Stellar Lumens",
    "TRX": "TRON",
    "BCH": "Bitcoin Cash",
    "ETC": "Ethereum Classic",
    "FIL": "Filecoin",
    "NEAR": "NEAR Protocol",
    "AAVE": "Aave",
    "ALGO": "Algorand",
    "ARB": "Arbitrum",
    "OP": "Optimism",
    "SHIB": "Shiba Inu",
    "PEPE": "Pepe",
    "USDC": "USDC",
    "USD": "US Dollar",
    "EUR": "Euro",
    "GBP": "British Pound",
}
FIAT = ("USD", "EUR", "GBP")
USD_PER_FIAT = {"USD": Decimal(1), "EUR": Decimal(1) / Decimal("0.92"), "GBP": Decimal("1.27")}
DEFAULT_BOOK_DEPTH = 50
MAX_BOOK_DEPTH = 500
PRODUCT_TYPES = ("SPOT", "FUTURE", "UNKNOWN_PRODUCT_TYPE")


def enum_error(field: str, value: str) -> Reject:
    """How Advanced Trade rejects a value outside an enum: HTTP 400 with error "unknown"."""
    message = f'parsing field "{field}": "{value}" is not a valid value'
    return Reject(wire.v3_error(400, "unknown", message))


def product(dialect: CoinbaseDialect, product_id: str | None) -> MarketSpec:
    spec = dialect.state.find_market(product_id)
    if spec is None or spec.market_id != product_id:
        raise SimError("unknown_symbol", "valid product_id is required", "product_id", symbol=product_id)
    return spec


def crypto_codes(dialect: CoinbaseDialect) -> list[str]:
    codes = {s.base for s in dialect.state.specs.values()} | {s.quote for s in dialect.state.specs.values()}
    return sorted(codes - set(FIAT))


def usd_value(dialect: CoinbaseDialect, code: str) -> Decimal | None:
    if code in USD_PER_FIAT:
        return USD_PER_FIAT[code]
    if code == "USDC":
        return Decimal(1)
    spec = dialect.state.find_market(f"{code}-USD")
    return dialect.state.walk(spec).price if spec is not None else None


# -- v2 (Coinbase App) ---------------------------------------------------------------------------------------------
async def v2_time(dialect: CoinbaseDialect, call: Call) -> web.Response:
    now = now_ms()
    return json_response({"data": {"iso": wire.iso_seconds(now), "epoch": now // 1000}})


async def v2_currencies(dialect: CoinbaseDialect, call: Call) -> web.Response:
    return json_response({"data": [{"id": c, "name": NAMES[c], "min_size": "0.01"} for c in FIAT]})


async def v2_crypto(dialect: CoinbaseDialect, call: Call) -> web.Response:
    data = [
        {
            "asset_id": wire.stable_uuid("asset", code),
            "code": code,
            "name": NAMES.get(code, code),
            "color": "#0052FF",
            "sort_index": index,
            "exponent": 8,
            "type": "crypto",
            "address_regex": "",
        }
        for index, code in enumerate(crypto_codes(dialect))
    ]
    return json_response({"data": data})


async def v2_exchange_rates(dialect: CoinbaseDialect, call: Call) -> web.Response:
    currency = (call.param("currency") or "USD").upper()
    base = usd_value(dialect, currency)
    if base is None:
        raise Reject(wire.v2_error(400, "invalid_request", f"Invalid currency ({currency})"))
    rates = {}
    for code in (*FIAT, *crypto_codes(dialect)):
        value = usd_value(dialect, code)
        if value:
            rate = base / value
            rates[code] = rate.quantize(Decimal(1).scaleb(rate.adjusted() - 11)).normalize()  # 12 digits
    return json_response({"data": {"currency": currency, "rates": rates}})


# -- v3 public (Advanced Trade /market) ----------------------------------------------------------------------------
async def v3_time(dialect: CoinbaseDialect, call: Call) -> web.Response:
    now = now_ms()
    return json_response({"iso": wire.iso(now), "epochSeconds": str(now // 1000), "epochMillis": str(now)})


async def products(dialect: CoinbaseDialect, call: Call) -> web.Response:
    product_type = call.param("product_type")
    if product_type and product_type not in PRODUCT_TYPES:
        raise enum_error("product_type", product_type)
    limit = int_param(call.param("limit"), "limit", 0)
    offset = int_param(call.param("offset"), "offset", 0)
    if limit < 0 or offset < 0:
        raise SimError("invalid_param", "limit and offset must not be negative", "limit")
    wanted = set(call.request.query.getall("product_ids", []))
    # Every listed market is spot: a FUTURE listing is empty (ccxt asks for it during load_markets).
    specs = [] if product_type == "FUTURE" else list(dialect.state.specs.values())
    if wanted:
        specs = [s for s in specs if s.market_id in wanted]
    specs = specs[offset : offset + limit] if limit else specs[offset:]
    items = [wire.product_json(s, dialect.state.ticker(s), NAMES) for s in specs]
    return json_response({"products": items, "num_products": len(items)})


async def single_product(dialect: CoinbaseDialect, call: Call) -> web.Response:
    spec = product(dialect, call.match.get("product_id"))
    return json_response(wire.product_json(spec, dialect.state.ticker(spec), NAMES))


async def ticker(dialect: CoinbaseDialect, call: Call) -> web.Response:
    """Market trades, newest first, with the best bid and ask: the walk's recent closes stand in for trades."""
    spec = product(dialect, call.match.get("product_id"))
    limit = int_param(call.param("limit"), "limit", 1)
    if not 0 < limit <= 1000:
        raise SimError("invalid_param", "limit must be between 1 and 1000", "limit")
    walk = dialect.state.walk(spec)
    now = now_ms()
    closes = [walk.price] + [c.close for c in reversed(walk.minute_candles()[-limit:])]
    trades = []
    for i, price in enumerate(closes[:limit]):
        trades.append(
            {
                "trade_id": str(walk.steps * 1000 + 1000 - i),
                "product_id": spec.market_id,
                "price": price,
                "size": max(walk.step, floor_to(Decimal(25 * (1 + (walk.steps + i) % 20)) / price, walk.step)),
                "time": wire.iso(now - i * 1500),
                "side": "BUY" if (walk.steps + i) % 2 else "SELL",
                "bid": "",
                "ask": "",
                "exchange": "CBE",
            }
        )
    return json_response({"trades": trades, "best_bid": walk.best_bid(), "best_ask": walk.best_ask()})


async def candles(dialect: CoinbaseDialect, call: Call) -> web.Response:
    spec = product(dialect, call.match.get("product_id"))
    granularity = call.param("granularity")
    if not granularity:
        raise SimError("missing_param", "granularity is required", "granularity")
    if granularity not in wire.GRANULARITIES:
        raise enum_error("granularity", granularity)
    timeframe = wire.GRANULARITIES[granularity]
    start = int_param(call.param("start"), "start")
    end = int_param(call.param("end"), "end")
    if start is None or end is None:
        raise SimError("missing_param", "start and end are required", "start")
    if start > end:
        raise SimError("invalid_param", "start must be before end", "start")
    frame_s = TIMEFRAMES_MS[timeframe] // 1000
    if (end - start) // frame_s > wire.MAX_CANDLES:
        raise SimError("invalid_param", f"number of candles requested should be less than {wire.MAX_CANDLES}", "end")
    limit = int_param(call.param("limit"), "limit", wire.MAX_CANDLES)
    if not 0 < limit <= wire.MAX_CANDLES:
        raise SimError("invalid_param", f"limit must be between 1 and {wire.MAX_CANDLES}", "limit")
    found = dialect.state.ohlcv(spec, timeframe, start * 1000, wire.MAX_CANDLES + 2)
    rows = [c for c in found if start * 1000 <= c.ts <= end * 1000]
    # Newest first, as Coinbase lists them.
    out = [
        {"start": str(c.ts // 1000), "low": c.low, "high": c.high, "open": c.open, "close": c.close, "volume": c.volume}
        for c in reversed(rows)
    ][:limit]
    return json_response({"candles": out})


def _levels(levels) -> list[dict]:
    return [{"price": price, "size": size} for price, size in levels]


async def product_book(dialect: CoinbaseDialect, call: Call) -> web.Response:
    spec = product(dialect, call.param("product_id"))
    depth = int_param(call.param("limit"), "limit", DEFAULT_BOOK_DEPTH)
    if depth < 0:
        raise SimError("invalid_param", "limit must not be negative", "limit")
    walk = dialect.state.walk(spec)
    bids, asks = walk.book(min(depth or DEFAULT_BOOK_DEPTH, MAX_BOOK_DEPTH))
    bid, ask = walk.best_bid(), walk.best_ask()
    mid = (bid + ask) / 2
    return json_response(
        {
            "pricebook": {
                "product_id": spec.market_id,
                "bids": _levels(bids),
                "asks": _levels(asks),
                "time": wire.iso(now_ms()),
            },
            "last": walk.price,
            "mid_market": mid,
            "spread_bps": ((ask - bid) / mid * 10000).quantize(Decimal("0.01")),
            "spread_absolute": ask - bid,
        }
    )


async def best_bid_ask(dialect: CoinbaseDialect, call: Call) -> web.Response:
    ids = call.request.query.getall("product_ids", [])
    specs = [product(dialect, i) for i in ids] if ids else list(dialect.state.specs.values())
    books = []
    for spec in specs:
        bids, asks = dialect.state.walk(spec).book(1)
        books.append(
            {"product_id": spec.market_id, "bids": _levels(bids), "asks": _levels(asks), "time": wire.iso(now_ms())}
        )
    return json_response({"pricebooks": books})
