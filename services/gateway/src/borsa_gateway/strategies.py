"""Strategy parameter schemas (DESIGN section 3) and the checks of a bot's params against its market's rules.

The bot runner runs the strategies; the gateway only validates what a trader asks for, in Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import msgspec

from borsa_proto import BadMessage, convert, json_schema
from borsa_proto.exchange import Market
from borsa_proto.money import DecimalStr

from .errors import ApiError

Positive = Annotated[int, msgspec.Meta(ge=1)]


class DcaParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    quote_amount: DecimalStr
    interval_seconds: Annotated[int, msgspec.Meta(ge=10, le=31_536_000)]
    take_profit_pct: DecimalStr | None = None


class GridParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    low: DecimalStr
    high: DecimalStr
    levels: Annotated[int, msgspec.Meta(ge=2, le=200)]
    quote_per_level: DecimalStr


class SmaCrossParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    timeframe: Annotated[str, msgspec.Meta(pattern="^[0-9]+[mhdw]$")]
    fast: Annotated[int, msgspec.Meta(ge=2, le=500)]
    slow: Annotated[int, msgspec.Meta(ge=3, le=1000)]
    quote_amount: DecimalStr


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    params: type[msgspec.Struct]

    def schema(self) -> dict:
        schema = json_schema(self.params)
        defs = schema.pop("$defs", {})
        ref = schema.get("$ref", "").rsplit("/", 1)[-1]
        out = defs.get(ref, schema)
        for prop in out.get("properties", {}).values():
            if prop.get("type") == "string" and "pattern" not in prop and "format" not in prop:
                prop.setdefault("description", 'a decimal string, e.g. "25.50"')
        return out


STRATEGIES = {
    s.name: s
    for s in (
        Strategy("dca", "Buy a fixed quote amount every interval; optionally sell all at a take-profit.", DcaParams),
        Strategy(
            "grid",
            "Buy below and sell above, on N levels between a low and a high price; re-armed on fills.",
            GridParams,
        ),
        Strategy(
            "sma_cross",
            "Long only: buy when the fast SMA crosses above the slow one, sell on the cross down.",
            SmaCrossParams,
        ),
    )
}


def parse_params(strategy: str, params: Any) -> msgspec.Struct:
    if strategy not in STRATEGIES:
        raise ApiError("bad_request", f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}", "strategy")
    try:
        parsed = convert(params, STRATEGIES[strategy].params)
    except BadMessage as exc:
        field = f"params.{exc.field}" if getattr(exc, "field", None) else "params"
        raise ApiError("bad_request", f"{field}: {exc.reason if hasattr(exc, 'reason') else exc}", field) from exc
    _check_values(parsed)
    return parsed


def _check_values(p: msgspec.Struct) -> None:
    def positive(name: str, value: Decimal | None) -> None:
        if value is not None and value <= 0:
            raise ApiError("bad_request", f"params.{name} must be greater than 0", f"params.{name}")

    for name in ("quote_amount", "take_profit_pct", "low", "high", "quote_per_level"):
        positive(name, getattr(p, name, None))
    if isinstance(p, GridParams) and p.low >= p.high:
        raise ApiError("bad_request", "params.low must be below params.high", "params.low")
    if isinstance(p, SmaCrossParams) and p.fast >= p.slow:
        raise ApiError("bad_request", "params.fast must be smaller than params.slow", "params.fast")


def check_against_market(params: msgspec.Struct, market: Market, price: Decimal | None, exchange: str) -> None:
    """Each order the bot will place must meet the market's minimums, said in the quote currency."""
    orders: list[tuple[str, Decimal, Decimal | None]] = []
    if isinstance(params, DcaParams | SmaCrossParams):
        orders.append(("params.quote_amount", params.quote_amount, price))
    if isinstance(params, GridParams):
        orders.append(("params.quote_per_level", params.quote_per_level, params.low))
        for name, value in (("params.low", params.low), ("params.high", params.high)):
            lo, hi = market.limits.price.min, market.limits.price.max
            if (lo and value < lo) or (hi and value > hi):
                raise ApiError(
                    "invalid_order",
                    f"{name} {value} is outside {exchange}'s price range [{lo}, {hi}] for {market.symbol}",
                    name,
                )
    for field, quote_amount, at_price in orders:
        minimum = market.limits.cost.min
        if minimum and quote_amount < minimum:
            raise ApiError(
                "invalid_order",
                f"each order of {quote_amount} {market.quote} is below {exchange}'s "
                f"minimum order value of {minimum} {market.quote} for {market.symbol}",
                field,
            )
        min_amount = market.limits.amount.min
        if at_price and min_amount and quote_amount / at_price < min_amount:
            needed = (min_amount * at_price).quantize(market.precision.price)
            raise ApiError(
                "invalid_order",
                f"each order of {quote_amount} {market.quote} buys less than "
                f"{exchange}'s minimum amount of {min_amount} {market.base} for "
                f"{market.symbol} (about {needed} {market.quote} at {at_price})",
                field,
            )


def params_json(params: msgspec.Struct) -> dict:
    """Params as stored and shown: decimal strings, unset optional ones left out."""
    return {k: v for k, v in msgspec.to_builtins(params, enc_hook=str).items() if v is not None}
