"""Rounding to a market's steps: amounts never round up, take-profit prices never round down."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from borsa_strategies.base import MarketRules, ceil_to_step, floor_to_step, round_to_step

pytestmark = pytest.mark.unit

values = st.decimals(min_value=D("-1000000"), max_value=D("1000000"), places=10, allow_nan=False, allow_infinity=False)
steps = st.builds(
    lambda mantissa, exponent: D(mantissa).scaleb(exponent),
    st.sampled_from([1, 2, 5, 25]),
    st.integers(min_value=-8, max_value=2),
)


def on_step(value: D, step: D) -> bool:
    return value % step == 0


@given(values, steps)
def test_floor_is_the_step_at_or_below_toward_zero(value: D, step: D) -> None:
    floored = floor_to_step(value, step)
    assert on_step(floored, step)
    assert abs(floored) <= abs(value)
    assert abs(value - floored) < step


@given(values, steps)
def test_ceil_is_the_step_at_or_above(value: D, step: D) -> None:
    ceiled = ceil_to_step(value, step)
    assert on_step(ceiled, step)
    assert value <= ceiled < value + step


@given(values, steps)
def test_round_is_the_nearest_step(value: D, step: D) -> None:
    rounded = round_to_step(value, step)
    assert on_step(rounded, step)
    assert abs(rounded - value) <= step / 2


@given(values, steps)
def test_the_three_agree_on_a_value_already_on_the_step(value: D, step: D) -> None:
    on = floor_to_step(value, step)
    assert floor_to_step(on, step) == ceil_to_step(on, step) == round_to_step(on, step) == on


def test_hand_computed_steps() -> None:
    assert floor_to_step(D("0.000231425"), D("0.00001")) == D("0.00023")
    assert ceil_to_step(D("43858.70825"), D("0.1")) == D("43858.8")
    assert round_to_step(D("43858.70825"), D("0.1")) == D("43858.7")
    assert str(floor_to_step(D("2"), D("0.01"))) == "2.00"  # quantized: the step's own number of places
    assert floor_to_step(D("1.7"), D(0)) == D("1.7")  # no step known: left alone


def test_allows_checks_the_minimum_amount_and_value(markets: dict[str, MarketRules]) -> None:
    binance, kraken = markets["binance"], markets["kraken"]
    assert binance.allows(D("0.00012"), D("43000"))  # 5.16 USDT
    assert not binance.allows(D("0.00011"), D("43000"))  # 4.73 USDT, below the minimum of 5
    assert kraken.allows(D("0.0001"), D("1"))
    assert not kraken.allows(D("0.00009999"), D("100000"))
    assert not kraken.allows(D(0), D("100000"))
