"""SMA cross: long only, one buy on the cross up, the whole position sold on the cross down, once per candle."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from borsa_strategies import build
from borsa_strategies.base import Candle, Context, MarketRules, OpenOrder, Place, Position
from borsa_strategies.sma_cross import SmaCrossStrategy

pytestmark = pytest.mark.unit

HOUR = 3_600_000
# fast 2, slow 3. Up: before the last candle fast (42000+41000)/2 = 41500 <= slow 42000; with it fast 43000 > slow
# 42666.67. Down: before, fast 42500 >= slow 42000; with it fast 41000 < slow 41333.33.
UP = ["43000", "42000", "41000", "45000"]
DOWN = ["41000", "42000", "43000", "39000"]


def sma_cross(state: dict | None = None) -> SmaCrossStrategy:
    strategy = build("sma_cross", {"timeframe": "1h", "fast": 2, "slow": 3, "quote_amount": "100"}, state)
    assert isinstance(strategy, SmaCrossStrategy)
    return strategy


def candles(closes: list[str], start: int = 0) -> list[Candle]:
    return [Candle(start + i * HOUR, D(c), D(c), D(c), D(c), D(1)) for i, c in enumerate(closes)]


def test_it_asks_for_the_slow_window_and_one_more_candle_of_its_timeframe() -> None:
    strategy = sma_cross()
    assert (strategy.candles_needed(), strategy.timeframe) == (4, "1h")
    assert strategy.on_start(Context(now_ms=0, market=MarketRules("B/Q", "B", "Q", D("1"), D("1")))) == []


@pytest.mark.parametrize(
    ("exchange", "amount"), [("binance", "0.00222"), ("kraken", "0.00222222"), ("kucoin", "0.00222222")]
)
def test_cross_up_buys_the_quote_amount_at_the_last_close(
    markets: dict[str, MarketRules], exchange: str, amount: str
) -> None:
    strategy = sma_cross()
    actions = strategy.on_candles(Context(now_ms=4 * HOUR, market=markets[exchange]), candles(UP))
    assert actions == [Place("sma", "buy", "market", D(amount))]  # 100 / 45000 = 0.0022222...
    assert strategy.state() == {"last_candle_ms": 3 * HOUR}


@pytest.mark.parametrize(("exchange", "amount"), [("binance", "0.00222"), ("coinbase", "0.00222222")])
def test_cross_down_sells_the_whole_position(markets: dict[str, MarketRules], exchange: str, amount: str) -> None:
    position = Position(amount=D("0.002222222999"), average_entry=D("45000"))
    ctx = Context(now_ms=4 * HOUR, market=markets[exchange], position=position)
    assert sma_cross().on_candles(ctx, candles(DOWN)) == [Place("sma", "sell", "market", D(amount))]


def test_long_only_no_buy_when_holding_no_sell_when_flat(markets: dict[str, MarketRules]) -> None:
    rules = markets["binance"]
    holding = Context(now_ms=0, market=rules, position=Position(amount=D("0.001"), average_entry=D("40000")))
    assert sma_cross().on_candles(holding, candles(UP)) == []
    assert sma_cross().on_candles(Context(now_ms=0, market=rules), candles(DOWN)) == []


def test_dust_below_the_minimum_amount_is_no_position(markets: dict[str, MarketRules]) -> None:
    dust = Position(amount=D("0.00009"), average_entry=D("40000"))  # Kraken's minimum is 0.0001 BTC
    assert len(sma_cross().on_candles(Context(now_ms=0, market=markets["kraken"], position=dust), candles(UP))) == 1
    assert sma_cross().on_candles(Context(now_ms=0, market=markets["kraken"], position=dust), candles(DOWN)) == []


def test_no_cross_no_order(markets: dict[str, MarketRules]) -> None:
    rules = markets["coinbase"]
    # fast above slow before and after the last candle: a trend, not a cross.
    assert sma_cross().on_candles(Context(now_ms=0, market=rules), candles(["40000", "41000", "42000", "43000"])) == []
    # Equal averages before the last candle count as "not above": a cross up from there.
    flat_then_up = candles(["40000", "40000", "40000", "41000"])
    assert len(sma_cross().on_candles(Context(now_ms=0, market=rules), flat_then_up)) == 1


def test_never_twice_on_the_same_candle_even_after_a_restart(markets: dict[str, MarketRules]) -> None:
    rules = markets["kucoin"]
    strategy = sma_cross()
    assert len(strategy.on_candles(Context(now_ms=0, market=rules), candles(UP))) == 1
    assert strategy.on_candles(Context(now_ms=0, market=rules), candles(UP)) == []
    restarted = sma_cross(state=strategy.state())
    assert restarted.on_candles(Context(now_ms=0, market=rules), candles(UP)) == []
    # The same shape one candle later is a new cross.
    assert len(restarted.on_candles(Context(now_ms=0, market=rules), candles(UP, start=HOUR))) == 1


def test_no_order_while_one_is_open_or_without_enough_candles(markets: dict[str, MarketRules]) -> None:
    rules = markets["binance"]
    pending = {"sma": OpenOrder("sma", "buy", "market", D("0.001"), None)}
    strategy = sma_cross()
    assert strategy.on_candles(Context(now_ms=0, market=rules, open_orders=pending), candles(UP)) == []
    assert strategy.on_candles(Context(now_ms=0, market=rules), candles(UP[1:])) == []
    assert strategy.state() == {"last_candle_ms": None}


def test_a_buy_below_the_minimums_is_skipped(markets: dict[str, MarketRules]) -> None:
    strategy = build("sma_cross", {"timeframe": "15m", "fast": 2, "slow": 3, "quote_amount": "4.99"})
    assert strategy.on_candles(Context(now_ms=0, market=markets["binance"]), candles(UP)) == []
