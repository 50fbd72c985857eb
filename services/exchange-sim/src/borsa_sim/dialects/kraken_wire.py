"""Kraken's wire shapes: asset and pair tables, tickers, books, candles, orders and trades as Kraken writes them."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from ..engine import ZERO, Fill, Order
from ..markets import KRAKEN_ALT, KRAKEN_ASSET_IDS, MarketSpec
from ..walk import Candle

FIAT = frozenset({"USD", "EUR"})
COST_DECIMALS = 5  # Kraken's cost_decimals for USD and EUR quotes
HUNDRED = Decimal(100)
# Kraken Pro's volume tiers above the first (30-day USD volume, taker %, maker %): kraken.com/features/fee-schedule.
# The first tier is the market's own fee.
FEE_TIERS = (
    (10_000, "0.35", "0.20"),
    (50_000, "0.24", "0.14"),
    (100_000, "0.22", "0.12"),
    (250_000, "0.20", "0.10"),
    (500_000, "0.18", "0.08"),
    (1_000_000, "0.16", "0.06"),
    (2_500_000, "0.14", "0.04"),
    (5_000_000, "0.12", "0.02"),
    (10_000_000, "0.10", "0.00"),
)
ORDER_STATUS = {
    "open": "open",
    "filled": "closed",
    "canceled": "canceled",
    "expired": "expired",
    "rejected": "canceled",
}
CLOSE_REASON = {"canceled": "User requested", "expired": "Insufficient liquidity"}
_PREFIX = {"order": "O", "trade": "T", "position": "T"}


def _decimals(step) -> int:
    """Kraken writes a step as a count of decimals: 0.01 -> 2 (a step of 1 or more -> 0)."""
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent)


def pair_decimals(spec: MarketSpec) -> int:
    return _decimals(spec.price_tick)


def lot_decimals(spec: MarketSpec) -> int:
    return _decimals(spec.amount_step)


def kraken_id(kind: str, seed: int, seq: int) -> str:
    """`OQCLML-BW3P3-BUCMWZ`: 17 base32 characters in groups of 6-5-6, O for orders and T for trades."""
    digest = hashlib.sha256(f"{seed}/kraken/{kind}/{seq}".encode()).digest()
    chars = _PREFIX[kind] + base64.b32encode(digest).decode()[:16]
    return f"{chars[:6]}-{chars[6:11]}-{chars[11:17]}"


def is_txid(value: str) -> bool:
    parts = value.split("-")
    return [len(p) for p in parts] == [6, 5, 6] and all(c.isupper() or c in "234567" for c in "".join(parts))


def places(step: Decimal) -> int:
    return max(0, -step.as_tuple().exponent)


def fixed(value: Decimal, decimals: int) -> str:
    """At least `decimals` places, as Kraken pads them, but never drop a digit the engine holds."""
    padded = value.quantize(Decimal(1).scaleb(-decimals))
    return format(padded if padded == value else value.normalize(), "f")


def price_str(spec: MarketSpec, value: Decimal) -> str:
    return fixed(value, pair_decimals(spec))


def vol_str(spec: MarketSpec, value: Decimal) -> str:
    return fixed(value, lot_decimals(spec))


def cost_str(value: Decimal) -> str:
    return fixed(value, COST_DECIMALS)


def seconds(ms: int) -> float:
    """Kraken's timestamps are float seconds (`1706893367.4656`)."""
    return ms / 1000


def asset_id(code: str) -> str:
    return KRAKEN_ASSET_IDS.get(code, code)


def asset_decimals(code: str) -> int:
    if code in FIAT:
        return 4
    return 10 if asset_id(code) != code else 8  # the historic X-assets keep 10 places, as XXBT and XETH do


def asset_info(code: str) -> dict:
    return {
        "aclass": "currency",
        "altname": KRAKEN_ALT.get(code, code),
        "decimals": asset_decimals(code),
        "display_decimals": 2 if code in FIAT else 5,
        "status": "enabled",
    }


def amount_str(code: str, value: Decimal) -> str:
    return fixed(value, asset_decimals(code))


def _percent(rate: Decimal) -> float:
    # Kraken sends fee percentages as JSON numbers; this is a display rate, never money.
    return float(rate * HUNDRED)


def pair_info(spec: MarketSpec) -> dict:
    wsname = f"{KRAKEN_ALT.get(spec.base, spec.base)}/{KRAKEN_ALT.get(spec.quote, spec.quote)}"
    return {
        "altname": spec.altname,
        "wsname": wsname,
        "aclass_base": "currency",
        "base": spec.base_id,
        "aclass_quote": "currency",
        "quote": spec.quote_id,
        "lot": "unit",
        "cost_decimals": COST_DECIMALS,
        "pair_decimals": pair_decimals(spec),
        "lot_decimals": lot_decimals(spec),
        "lot_multiplier": 1,
        # Spot only: no margin, so ccxt marks the market margin=False.
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, _percent(spec.taker)]] + [[v, float(t)] for v, t, _ in FEE_TIERS],
        "fees_maker": [[0, _percent(spec.maker)]] + [[v, float(m)] for v, _, m in FEE_TIERS],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": format(spec.min_amount, "f"),
        "costmin": format(spec.min_cost, "f"),
        "tick_size": format(spec.price_tick, "f"),
        "status": "online" if spec.active else "cancel_only",
    }


def fee_info(rate: Decimal, tiers: list[tuple[int, str]]) -> dict:
    """One market's entry in TradeVolume's `fees`/`fees_maker`: the account always sits in the first tier."""
    percent = rate * HUNDRED
    return {
        "fee": fixed(percent, 4),
        "minfee": fixed(Decimal(tiers[-1][1]), 4),
        "maxfee": fixed(percent, 4),
        "nextfee": fixed(Decimal(tiers[0][1]), 4),
        "tiervolume": "0.0000",
        "nextvolume": fixed(Decimal(tiers[0][0]), 4),
    }


def window(candles: list[Candle]) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, int]:
    """(open, high, low, volume, vwap, trade count) over some one-minute candles; one trade a minute."""
    volume = sum((c.volume for c in candles), ZERO)
    turnover = sum((c.close * c.volume for c in candles), ZERO)
    vwap = turnover / volume if volume else candles[-1].close
    return candles[0].open, max(c.high for c in candles), min(c.low for c in candles), volume, vwap, len(candles)


def ticker_info(spec: MarketSpec, price: Decimal, bid: tuple, ask: tuple, minutes: list[Candle], now_ms: int) -> dict:
    midnight = now_ms - now_ms % 86_400_000
    day = [c for c in minutes if c.ts >= now_ms - 86_400_000] or minutes[-1:]
    today = [c for c in day if c.ts >= midnight] or day[-1:]
    o_t, h_t, l_t, v_t, p_t, n_t = window(today)
    _, h_d, l_d, v_d, p_d, n_d = window(day)
    tick = spec.price_tick
    return {
        # [price, whole lot volume, lot volume]
        "a": [price_str(spec, ask[0]), str(max(1, int(ask[1]))), vol_str(spec, ask[1])],
        "b": [price_str(spec, bid[0]), str(max(1, int(bid[1]))), vol_str(spec, bid[1])],
        "c": [price_str(spec, price), vol_str(spec, spec.amount_step * 10)],
        "v": [vol_str(spec, v_t), vol_str(spec, v_d)],
        "p": [price_str(spec, _round(p_t, tick)), price_str(spec, _round(p_d, tick))],
        "t": [n_t, n_d],
        "l": [price_str(spec, min(l_t, price)), price_str(spec, min(l_d, price))],
        "h": [price_str(spec, max(h_t, price)), price_str(spec, max(h_d, price))],
        "o": price_str(spec, o_t),
    }


def _round(value: Decimal, tick: Decimal) -> Decimal:
    return value.quantize(tick, rounding=ROUND_HALF_EVEN)


def book_side(spec: MarketSpec, levels: list[tuple[Decimal, Decimal]], ts: int) -> list:
    return [[price_str(spec, p), vol_str(spec, v), ts] for p, v in levels]


def candle_row(spec: MarketSpec, c: Candle) -> list:
    """[time s, open, high, low, close, vwap, volume, count]"""
    vwap = _round((c.high + c.low + c.close) / 3, spec.price_tick)
    count = int(c.volume / spec.amount_step) // 1000 + 1
    return [
        c.ts // 1000,
        price_str(spec, c.open),
        price_str(spec, c.high),
        price_str(spec, c.low),
        price_str(spec, c.close),
        price_str(spec, vwap),
        vol_str(spec, c.volume),
        count,
    ]


def merge_candles(candles: list[Candle], frame_ms: int) -> list[Candle]:
    """Coarser candles from finer ones, aligned to the epoch (Kraken's 15-day interval is not in the walk)."""
    out: list[Candle] = []
    for c in candles:
        bucket = c.ts - c.ts % frame_ms
        if out and out[-1].ts == bucket:
            last = out[-1]
            last.high, last.low, last.close = max(last.high, c.high), min(last.low, c.low), c.close
            last.volume += c.volume
        else:
            out.append(Candle(bucket, c.open, c.high, c.low, c.close, c.volume))
    return out


def order_volume(order: Order) -> Decimal:
    # A market buy by quote funds (oflags=viqc) has no base amount; once done, its volume is what it bought.
    return order.amount if order.amount is not None else order.filled


def descr_order(spec: MarketSpec, side: str, ordertype: str, volume: Decimal, price: Decimal | None) -> str:
    """`buy 0.00015000 XBTUSD @ limit 48640.0`, the sentence ccxt parses when nothing else is sent."""
    text = f"{side} {vol_str(spec, volume)} {spec.altname} @ {ordertype}"
    return f"{text} {price_str(spec, price)}" if price is not None else text


def order_info(order: Order, trade_ids: list[str] | None) -> dict:
    spec = order.spec
    volume = order_volume(order)
    flags = ["fciq", *order.extra.get("oflags", [])]
    info: dict = {"refid": None, "userref": order.extra.get("userref")}
    if order.client_order_id:
        info["cl_ord_id"] = order.client_order_id
    info |= {
        "status": ORDER_STATUS[order.status],
        "reason": CLOSE_REASON.get(order.status),
        "opentm": seconds(order.created_ms),
        "starttm": 0,
        "expiretm": 0,
        "descr": {
            "pair": spec.altname,
            "type": order.side,
            "ordertype": order.type,
            "price": price_str(spec, order.price) if order.price is not None else "0",
            "price2": "0",
            "leverage": "none",
            "order": descr_order(spec, order.side, order.type, volume, order.price),
            "close": "",
        },
        "vol": vol_str(spec, volume),
        "vol_exec": vol_str(spec, order.filled),
        "cost": cost_str(order.cost),
        "fee": cost_str(order.fee),
        "price": price_str(spec, _round(order.average, spec.price_tick)) if order.average else "0.00000",
        "stopprice": "0.00000",
        "limitprice": "0.00000",
        "misc": "",
        "oflags": ",".join(flags),
    }
    if not order.is_open:
        info["closetm"] = seconds(order.updated_ms)
    if trade_ids:
        info["trades"] = trade_ids
    return info


def trade_info(order: Order, fill: Fill, postxid: str) -> dict:
    spec = order.spec
    return {
        "ordertxid": order.id,
        "postxid": postxid,
        "pair": spec.market_id,
        "time": seconds(fill.timestamp),
        "type": fill.side,
        "ordertype": order.type,
        "price": price_str(spec, fill.price),
        "cost": cost_str(fill.cost),
        "fee": cost_str(fill.fee),
        "vol": vol_str(spec, fill.amount),
        "margin": "0.00000",
        "leverage": "0",
        "misc": "",
        "trade_id": fill.trade_id,
        "maker": fill.liquidity == "maker",
    }


def rfc1123(ms: int) -> str:
    """Kraken's `rfc1123` in Time: `Sun, 21 Mar 21 14:23:14 +0000` (two-digit year, as Kraken writes it)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%a, %d %b %y %H:%M:%S +0000")


def iso_z(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
