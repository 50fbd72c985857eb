"""The params contract: parsing with messages a person understands, the market checks, and the registry."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

import borsa_strategies
from borsa_strategies import STRATEGIES, ParamsProblem, build, schema
from borsa_strategies.base import MarketRules
from borsa_strategies.params import PARAMS, DcaParams, check_against_market, params_json, parse_params

pytestmark = pytest.mark.unit

DCA = {"quote_amount": "10", "interval_seconds": 60}
GRID = {"low": "40000", "high": "44000", "levels": 5, "quote_per_level": "50"}
SMA = {"timeframe": "1h", "fast": 2, "slow": 3, "quote_amount": "100"}


def problem(fn, *args) -> tuple[str, str | None, str]:
    with pytest.raises(ParamsProblem) as info:
        fn(*args)
    return info.value.code, info.value.field, info.value.message


@pytest.mark.parametrize(
    ("strategy", "params", "field", "message"),
    [
        ("hodl", DCA, "strategy", "strategy must be one of dca, grid, sma_cross, not 'hodl'"),
        ("dca", {"interval_seconds": 60}, "params.quote_amount", "Object missing required field `quote_amount`"),
        ("dca", {**DCA, "quote_amount": 10}, "params.quote_amount", "got the JSON number 10"),
        ("dca", {**DCA, "interval_seconds": 5}, "params.interval_seconds", "Expected `int` >= 10"),
        ("dca", {**DCA, "quote_amount": "0"}, "params.quote_amount", "params.quote_amount must be greater than 0"),
        ("dca", {**DCA, "take_profit_pct": "-1"}, "params.take_profit_pct", "must be greater than 0"),
        ("dca", {**DCA, "every": 1}, "params", "params: Object contains unknown field `every`"),
        ("grid", {**GRID, "low": "44000"}, "params.low", "params.low must be below params.high"),
        ("grid", {**GRID, "levels": 1}, "params.levels", "Expected `int` >= 2"),
        ("sma_cross", {**SMA, "fast": 3}, "params.fast", "params.fast must be smaller than params.slow"),
        ("sma_cross", {**SMA, "timeframe": "hourly"}, "params.timeframe", "Expected `str` matching regex"),
        ("sma_cross", [], "params", "params: Expected `object`, got `array`"),
    ],
)
def test_bad_params_name_the_field(strategy: str, params: object, field: str, message: str) -> None:
    code, got_field, got_message = problem(parse_params, strategy, params)
    assert (code, got_field) == ("bad_request", field)
    assert message in got_message


def test_params_json_keeps_decimal_strings_and_leaves_out_unset_ones() -> None:
    parsed = parse_params("dca", {"quote_amount": "10.50", "interval_seconds": 60})
    assert parsed == DcaParams(quote_amount=D("10.50"), interval_seconds=60)
    assert params_json(parsed) == {"quote_amount": "10.50", "interval_seconds": 60}


@pytest.mark.parametrize(
    ("given", "stored"),
    [("0.0000005", "0.0000005"), ("5e-7", "0.0000005"), ("1E+1", "10"), ("0.00000001000", "0.00000001000")],
)
def test_params_json_writes_decimals_in_positional_notation(given: str, stored: str) -> None:
    grid = parse_params("grid", {"low": given, "high": "100", "levels": 5, "quote_per_level": given})
    assert params_json(grid) == {"low": stored, "high": "100", "levels": 5, "quote_per_level": stored}


def test_check_against_market_says_the_minimum_in_the_quote_currency(markets: dict[str, MarketRules]) -> None:
    dca = parse_params("dca", {**DCA, "quote_amount": "0.05"})
    code, field, message = problem(check_against_market, dca, markets["kucoin"], D("60000"), "kucoin")
    assert (code, field) == ("invalid_order", "params.quote_amount")
    assert message == "each order of 0.05 USDT is below kucoin's minimum order value of 0.1 USDT for BTC/USDT"

    dca = parse_params("dca", {**DCA, "quote_amount": "5"})
    _, field, message = problem(check_against_market, dca, markets["kraken"], D("60000"), "kraken")
    assert message == (
        "each order of 5 USD buys less than kraken's minimum amount of 0.0001 BTC for BTC/USD (about 6.0 USD at 60000)"
    )
    check_against_market(dca, markets["kraken"], None, "kraken")  # no price yet: only the value can be checked


def test_check_against_market_checks_grid_prices_and_each_level(markets: dict[str, MarketRules]) -> None:
    bounded = MarketRules("BTC/USD", "BTC", "USD", D("0.00000001"), D("0.1"), min_price=D("1"), max_price=D("1000000"))
    grid = parse_params("grid", {**GRID, "high": "2000000"})
    code, field, message = problem(check_against_market, grid, bounded, None, "kraken")
    assert (code, field) == ("invalid_order", "params.high")
    assert message == "params.high 2000000 is outside kraken's price range [1, 1000000] for BTC/USD"

    grid = parse_params("grid", {**GRID, "quote_per_level": "3.99"})
    _, field, message = problem(check_against_market, grid, markets["kraken"], D("43000"), "kraken")
    assert field == "params.quote_per_level"
    assert message.endswith("(about 4.0 USD at 40000)")  # checked at the grid's low
    check_against_market(parse_params("grid", GRID), markets["binance"], None, "binance")


def test_the_registry_names_each_strategy_once_with_its_params() -> None:
    assert list(STRATEGIES) == list(PARAMS) == ["dca", "grid", "sma_cross"]
    for name, cls in STRATEGIES.items():
        assert cls.name == name and cls.Params is PARAMS[name] and cls.description


@pytest.mark.parametrize(("name", "params"), [("dca", DCA), ("grid", GRID), ("sma_cross", SMA)])
def test_build_from_json_or_a_struct_and_state_is_json(name: str, params: dict) -> None:
    from_json = build(name, params)
    from_struct = build(name, parse_params(name, params), from_json.state())
    assert type(from_json) is type(from_struct) is STRATEGIES[name]
    assert from_json.params == from_struct.params
    assert json.loads(json.dumps(from_struct.state())) == from_json.state()


def test_build_refuses_unknown_strategies_and_bad_params() -> None:
    assert problem(build, "hodl", DCA)[1] == "strategy"
    assert problem(build, "grid", DCA)[1] == "params"  # DCA's fields are unknown to a grid
    assert problem(build, "grid", parse_params("dca", DCA))[1] == "params"


def test_schema_is_the_json_schema_of_the_params() -> None:
    grid = schema("grid")
    assert set(grid["required"]) == {"low", "high", "levels", "quote_per_level"}
    assert grid["properties"]["levels"] == {"type": "integer", "minimum": 2, "maximum": 200}
    assert grid["properties"]["low"]["type"] == "string" and "$defs" not in grid
    assert set(schema("dca")["required"]) == {"quote_amount", "interval_seconds"}
    assert "take_profit_pct" in schema("dca")["properties"]
    assert schema("sma_cross")["properties"]["timeframe"]["pattern"] == "^[0-9]+[mhdw]$"
    assert borsa_strategies.schema is schema


def test_grid_levels_closer_than_the_price_step_are_refused(markets: dict[str, MarketRules]) -> None:
    grid = parse_params("grid", {"low": "100", "high": "100.3", "levels": 5, "quote_per_level": "50"})
    code, field, message = problem(check_against_market, grid, markets["kucoin"], D("100.1"), "kucoin")
    assert (code, field) == ("invalid_order", "params.levels")
    assert message == (
        "5 levels between 100 and 100.3 are closer than kucoin's price step of 0.1 USDT for BTC/USDT: "
        "at most 4 levels fit"
    )
    four = parse_params("grid", {"low": "100", "high": "100.3", "levels": 4, "quote_per_level": "50"})
    check_against_market(four, markets["kucoin"], D("100.1"), "kucoin")


def test_an_order_smaller_than_one_amount_step_is_refused_where_no_minimum_amount_is_set() -> None:
    whole_units = MarketRules("DOT/EUR", "DOT", "EUR", amount_step=D("1"), price_step=D("0.001"))
    dca = parse_params("dca", {**DCA, "quote_amount": "5"})
    code, field, message = problem(check_against_market, dca, whole_units, D("6.5"), "bitvavo")
    assert (code, field) == ("invalid_order", "params.quote_amount")
    assert message == "each order of 5 EUR buys less than bitvavo's amount step of 1 DOT for DOT/EUR at 6.5"
    check_against_market(parse_params("dca", {**DCA, "quote_amount": "7"}), whole_units, D("6.5"), "bitvavo")
    check_against_market(dca, whole_units, None, "bitvavo")  # no price yet: nothing to divide by
