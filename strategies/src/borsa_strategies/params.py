"""The strategies' parameters (DESIGN section 3, a public contract) and the checks a bot's params must pass.

The gateway checks them when a trader creates a bot, the bot runner when it builds one: the same rules, one place.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec

from borsa_proto import BadMessage, convert, to_builtins
from borsa_proto.money import DecimalStr

from .base import MarketRules, ParamsProblem


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


PARAMS: dict[str, type[msgspec.Struct]] = {"dca": DcaParams, "grid": GridParams, "sma_cross": SmaCrossParams}
"""Each strategy's params by strategy name (the registry in `borsa_strategies` names the same ones)."""

_POSITIVE = ("quote_amount", "take_profit_pct", "low", "high", "quote_per_level")


def parse_params(strategy_name: str, params: Any) -> msgspec.Struct:
    """The params of `strategy_name` from JSON builtins (or raises ParamsProblem, code bad_request)."""
    if strategy_name not in PARAMS:
        names = ", ".join(PARAMS)
        raise ParamsProblem("bad_request", "strategy", f"strategy must be one of {names}, not {strategy_name!r}")
    try:
        parsed = convert(params, PARAMS[strategy_name])
    except BadMessage as exc:
        field = f"params.{exc.field}" if exc.field else "params"
        raise ParamsProblem("bad_request", field, f"{field}: {exc.reason}") from exc
    _check_values(parsed)
    return parsed


def _check_values(p: msgspec.Struct) -> None:
    for name in _POSITIVE:
        value = getattr(p, name, None)
        if value is not None and value <= 0:
            raise ParamsProblem("bad_request", f"params.{name}", f"params.{name} must be greater than 0")
    if isinstance(p, GridParams) and p.low >= p.high:
        raise ParamsProblem("bad_request", "params.low", "params.low must be below params.high")
    if isinstance(p, SmaCrossParams) and p.fast >= p.slow:
        raise ParamsProblem("bad_request", "params.fast", "params.fast must be smaller than params.slow")


def params_json(params: msgspec.Struct) -> dict:
    """Params as stored and shown: decimal strings in positional notation as on the bus ("0.0000005", never
    "5E-7"), unset optional ones left out."""
    return {k: v for k, v in to_builtins(params).items() if v is not None}


def check_against_market(params: msgspec.Struct, rules: MarketRules, price: Decimal | None, exchange: str) -> None:
    """Each order the bot will place must meet the market's minimums, said in the quote currency (or raises
    ParamsProblem, code invalid_order)."""
    orders: list[tuple[str, Decimal, Decimal | None]] = []
    if isinstance(params, DcaParams | SmaCrossParams):
        orders.append(("params.quote_amount", params.quote_amount, price))
    if isinstance(params, GridParams):
        orders.append(("params.quote_per_level", params.quote_per_level, params.low))
        for name, value in (("params.low", params.low), ("params.high", params.high)):
            _check_price(name, value, rules, exchange)
        _check_levels(params, rules, exchange)
    for field, quote_amount, at_price in orders:
        _check_order(field, quote_amount, at_price, rules, exchange)


def grid_levels(params: GridParams, rules: MarketRules) -> list[Decimal]:
    """A grid's level prices from low to high, evenly spaced, each on the market's tick."""
    low, high, n = params.low, params.high, params.levels
    return [rules.price(low + i * (high - low) / (n - 1)) for i in range(n)]


def _check_levels(params: GridParams, rules: MarketRules, exchange: str) -> None:
    """Levels closer than the price tick would round onto each other: two orders at one price."""
    levels = grid_levels(params, rules)
    if len(set(levels)) < len(levels):
        fit = int((params.high - params.low) / rules.price_step) + 1
        raise ParamsProblem(
            "invalid_order",
            "params.levels",
            f"{params.levels} levels between {params.low} and {params.high} are closer than {exchange}'s price step "
            f"of {rules.price_step} {rules.quote} for {rules.symbol}: at most {fit} levels fit",
        )


def _check_price(field: str, value: Decimal, rules: MarketRules, exchange: str) -> None:
    lo, hi = rules.min_price, rules.max_price
    if (lo and value < lo) or (hi and value > hi):
        raise ParamsProblem(
            "invalid_order",
            field,
            f"{field} {value} is outside {exchange}'s price range [{lo}, {hi}] for {rules.symbol}",
        )


def _check_order(
    field: str, quote_amount: Decimal, at_price: Decimal | None, rules: MarketRules, exchange: str
) -> None:
    minimum = rules.min_cost
    if minimum and quote_amount < minimum:
        raise ParamsProblem(
            "invalid_order",
            field,
            f"each order of {quote_amount} {rules.quote} is below {exchange}'s "
            f"minimum order value of {minimum} {rules.quote} for {rules.symbol}",
        )
    min_amount = rules.min_amount
    if at_price and not min_amount and rules.amount(quote_amount / at_price) <= 0:
        raise ParamsProblem(
            "invalid_order",
            field,
            f"each order of {quote_amount} {rules.quote} buys less than {exchange}'s amount step of "
            f"{rules.amount_step} {rules.base} for {rules.symbol} at {at_price}",
        )
    if at_price and min_amount and quote_amount / at_price < min_amount:
        needed = (min_amount * at_price).quantize(rules.price_step)
        raise ParamsProblem(
            "invalid_order",
            field,
            f"each order of {quote_amount} {rules.quote} buys less than "
            f"{exchange}'s minimum amount of {min_amount} {rules.base} for "
            f"{rules.symbol} (about {needed} {rules.quote} at {at_price})",
        )
