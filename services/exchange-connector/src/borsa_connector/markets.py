"""Turn ccxt's market dicts into the bus `Market` (precision always a tick size) and diff two market tables."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ccxt.base.decimal_to_precision import DECIMAL_PLACES, SIGNIFICANT_DIGITS, TICK_SIZE, number_to_string

from borsa_proto.exchange import Limits, Market, MarketEventKind, MinMax, Precision
from borsa_proto.money import parse_decimal

# What market_changes compares, in the order it reports them.
WATCHED_FIELDS = ("precision", "limits", "active")


def market_from_ccxt(market: dict[str, Any], precision_mode: int) -> Market:
    """The bus Market for one ccxt unified market; ValueError when ccxt gives it no usable precision.

    SIGNIFICANT_DIGITS (ccxt's Bitfinex and Bithumb) has no fixed tick, so:
    - amount: n counts decimal places, as both exchanges' own amount_to_precision overrides do
      (ccxt issue #7310);
    - price: the tick of n significant digits at the market's maximum price, the coarsest tick
      in its range, so every price on it up to the maximum has at most n significant digits;
      without a maximum price, n counts decimal places (the exchange may then cut extra digits).
    """
    symbol = market["symbol"]
    limits = market.get("limits") or {}
    precision = market.get("precision") or {}
    price_max = _limit_max(limits.get("price"))
    return Market(
        symbol=symbol,
        market_id=str(market["id"]),
        base=market["base"],
        quote=market["quote"],
        active=market.get("active") is not False,
        precision=Precision(
            amount=_tick(precision.get("amount"), precision_mode, symbol=symbol, field="amount"),
            price=_tick(precision.get("price"), precision_mode, symbol=symbol, field="price", range_max=price_max),
        ),
        limits=Limits(
            amount=_min_max(limits.get("amount")),
            cost=_min_max(limits.get("cost")),
            price=_min_max(limits.get("price")),
        ),
        maker=_decimal(market.get("maker")),
        taker=_decimal(market.get("taker")),
    )


def _decimal(value: Any) -> Decimal | None:
    """A ccxt number as the Decimal its shortest repr stands for: 1e-08 -> 0.00000001, never Decimal(float)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    if isinstance(value, Decimal):
        return parse_decimal(value)
    return parse_decimal(number_to_string(value))


def _tick(value: Any, mode: int, *, symbol: str, field: str, range_max: Decimal | None = None) -> Decimal:
    number = _decimal(value)
    if number is None:
        raise ValueError(f"{symbol}: ccxt gives no {field} precision")
    if mode == TICK_SIZE:
        tick = number
    elif mode == DECIMAL_PLACES:
        tick = _power_of_ten(-_digits(number, symbol, field))
    elif mode == SIGNIFICANT_DIGITS:
        digits = _digits(number, symbol, field)
        if field == "price" and range_max is not None:
            tick = _power_of_ten(range_max.adjusted() - digits + 1)
        else:
            tick = _power_of_ten(-digits)
    else:
        raise ValueError(f"unknown ccxt precisionMode {mode!r}")
    if tick <= 0:
        raise ValueError(f"{symbol}: ccxt gives a {field} precision of {value!r}, which is no tick size")
    return parse_decimal(tick)


def _digits(number: Decimal, symbol: str, field: str) -> int:
    if number != number.to_integral_value():
        raise ValueError(f"{symbol}: the {field} precision counts digits and must be whole, got {number}")
    return int(number)


def _power_of_ten(exponent: int) -> Decimal:
    # Exact whatever the decimal context (ccxt changes the thread's); 10**2 becomes "100", not "1E+2".
    return Decimal(10**exponent) if exponent >= 0 else Decimal(1).scaleb(exponent)


def _min_max(pair: dict[str, Any] | None) -> MinMax:
    pair = pair or {}
    return MinMax(min=_decimal(pair.get("min")), max=_limit_max(pair))


def _limit_max(pair: dict[str, Any] | None) -> Decimal | None:
    # Several exchanges (Kraken among them) write 0 for "no maximum".
    maximum = _decimal((pair or {}).get("max"))
    return None if maximum is None or maximum == 0 else maximum


@dataclass(frozen=True, slots=True)
class MarketChange:
    """One symbol whose market appeared, disappeared, or changed in a watched field."""

    symbol: str
    kind: MarketEventKind
    fields: tuple[str, ...] = ()
    old: Market | None = None
    new: Market | None = None


def market_changes(old: dict[str, Market], new: dict[str, Market]) -> list[MarketChange]:
    """What differs between two market tables keyed by symbol, sorted by symbol."""
    changes = []
    for symbol in sorted(old.keys() | new.keys()):
        before, after = old.get(symbol), new.get(symbol)
        if before is None:
            changes.append(MarketChange(symbol, MarketEventKind.ADDED, new=after))
        elif after is None:
            changes.append(MarketChange(symbol, MarketEventKind.REMOVED, old=before))
        elif fields := tuple(f for f in WATCHED_FIELDS if getattr(before, f) != getattr(after, f)):
            changes.append(MarketChange(symbol, MarketEventKind.CHANGED, fields, before, after))
    return changes
