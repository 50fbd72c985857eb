"""DCA: a market buy every interval, and one take-profit sell for the whole position, replaced Cancel first."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from borsa_strategies import build
from borsa_strategies.base import Cancel, Context, MarketRules, OpenOrder, OrderUpdate, Place, Position, Tick
from borsa_strategies.dca import DcaStrategy

pytestmark = pytest.mark.unit

MINUTE = 60_000


def dca(take_profit_pct: str | None = None, quote_amount: str = "10", state: dict | None = None) -> DcaStrategy:
    params = {"quote_amount": quote_amount, "interval_seconds": 60}
    if take_profit_pct:
        params["take_profit_pct"] = take_profit_pct
    strategy = build("dca", params, state)
    assert isinstance(strategy, DcaStrategy)
    return strategy


def tick(price: str) -> Tick:
    return Tick(bid=None, ask=None, last=D(price), timestamp=0)


def open_orders(*places: Place) -> dict[str, OpenOrder]:
    return {p.key: OpenOrder(p.key, p.side, p.type, p.amount, p.price) for p in places}


def done(key: str, side: str, filled: str, status: str = "closed") -> OrderUpdate:
    return OrderUpdate(key, side, "market" if key == "dca" else "limit", status, D(filled), D(filled))


@pytest.mark.parametrize(
    ("exchange", "amount"),
    [("binance", "0.00023"), ("kraken", "0.00023142"), ("coinbase", "0.00023142"), ("kucoin", "0.00023142")],
)
def test_the_first_buy_is_at_start_truncated_to_the_step(
    markets: dict[str, MarketRules], exchange: str, amount: str
) -> None:
    strategy = dca()
    actions = strategy.on_start(Context(now_ms=0, market=markets[exchange], price=D("43210.55")))
    assert actions == [Place("dca", "buy", "market", D(amount))]  # 10 / 43210.55 = 0.000231424...
    assert D(amount) * D("43210.55") <= 10
    assert strategy.state() == {"next_buy_ms": MINUTE}


def test_without_a_price_the_buy_waits_for_the_first_tick(rules: MarketRules) -> None:
    strategy = dca()
    assert strategy.on_start(Context(now_ms=0, market=rules)) == []
    assert strategy.state() == {"next_buy_ms": None}
    [buy] = strategy.on_tick(Context(now_ms=5_000, market=rules), tick("40000"))
    assert buy == Place("dca", "buy", "market", rules.amount(D("0.00025")))
    assert strategy.state() == {"next_buy_ms": 5_000 + MINUTE}


def test_buys_every_interval_and_never_while_a_buy_is_open(markets: dict[str, MarketRules]) -> None:
    rules = markets["binance"]
    strategy = dca()
    [first] = strategy.on_start(Context(now_ms=0, market=rules, price=D("40000")))
    assert strategy.on_tick(Context(now_ms=MINUTE - 1, market=rules), tick("40000")) == []
    pending = open_orders(first)
    assert strategy.on_tick(Context(now_ms=MINUTE, market=rules, open_orders=pending), tick("40000")) == []
    assert strategy.on_tick(Context(now_ms=MINUTE + 1, market=rules), tick("50000")) == [
        Place("dca", "buy", "market", D("0.0002"))
    ]
    assert strategy.state() == {"next_buy_ms": 2 * MINUTE + 1}


def test_a_restart_keeps_the_schedule(rules: MarketRules) -> None:
    strategy = dca(state={"next_buy_ms": MINUTE})
    assert strategy.on_start(Context(now_ms=30_000, market=rules, price=D("40000"))) == []
    assert len(strategy.on_tick(Context(now_ms=MINUTE, market=rules), tick("40000"))) == 1


def test_a_buy_below_the_minimums_is_skipped_until_the_next_interval(markets: dict[str, MarketRules]) -> None:
    strategy = dca(quote_amount="4.99")  # below Binance's minimum order value of 5 USDT at any price
    assert strategy.on_start(Context(now_ms=0, market=markets["binance"], price=D("40000"))) == []
    assert strategy.state() == {"next_buy_ms": MINUTE}
    # Kraken's minimum is an amount: 20 USD buys 0.0001 BTC up to 200000 USD, and not above.
    strategy = dca(quote_amount="20")
    assert strategy.on_start(Context(now_ms=0, market=markets["kraken"], price=D("200000.1"))) == []
    assert strategy.on_tick(Context(now_ms=MINUTE, market=markets["kraken"]), tick("200000")) == [
        Place("dca", "buy", "market", D("0.0001"))
    ]


@pytest.mark.parametrize(("exchange", "target"), [("binance", "43858.71"), ("kraken", "43858.8")])
def test_take_profit_after_the_buy_is_done_on_the_tick_never_below_the_target(
    markets: dict[str, MarketRules], exchange: str, target: str
) -> None:
    rules = markets[exchange]
    strategy = dca(take_profit_pct="1.5", state={"next_buy_ms": MINUTE})
    bought = Position(amount=D("0.00023"), average_entry=D("43210.55"))
    # 43210.55 * 1.015 = 43858.70825: rounded up to the tick, as the nearest tick on Kraken (43858.7) is below it.
    still_buying = Context(
        now_ms=0,
        market=rules,
        position=bought,
        open_orders={"dca": OpenOrder("dca", "buy", "market", D("0.00046"), None)},
    )
    assert (
        strategy.on_order(still_buying, OrderUpdate("dca", "buy", "market", "open", D("0.00046"), D("0.00023"))) == []
    )
    ctx = Context(now_ms=0, market=rules, position=bought)
    assert strategy.on_order(ctx, done("dca", "buy", "0.00023")) == [
        Place("tp", "sell", "limit", D("0.00023"), D(target))
    ]


def test_take_profit_is_replaced_cancel_first_when_the_position_grows(markets: dict[str, MarketRules]) -> None:
    rules = markets["binance"]
    strategy = dca(take_profit_pct="1.5", state={"next_buy_ms": MINUTE})
    first_tp = Place("tp", "sell", "limit", D("0.00023"), D("43858.71"))
    # A second buy of 10 USDT at 42000 (0.00023 BTC): the average entry is 42605.275, the target 43244.354125.
    grown = Position(amount=D("0.00046"), average_entry=D("42605.275"))
    ctx = Context(now_ms=MINUTE, market=rules, position=grown, open_orders=open_orders(first_tp))
    assert strategy.on_order(ctx, done("dca", "buy", "0.00023")) == [
        Cancel("tp"),
        Place("tp", "sell", "limit", D("0.00046"), D("43244.36")),
    ]


def test_an_unchanged_take_profit_is_left_alone(markets: dict[str, MarketRules]) -> None:
    rules = markets["kraken"]
    strategy = dca(take_profit_pct="2", state={"next_buy_ms": MINUTE})
    position = Position(amount=D("0.00050000"), average_entry=D("40000"))
    tp = OpenOrder("tp", "sell", "limit", D("0.00080000"), D("40800.0"), filled=D("0.0003"))  # partly sold already
    ctx = Context(now_ms=0, market=rules, position=position, open_orders={"tp": tp})
    assert strategy.on_order(ctx, OrderUpdate("tp", "sell", "limit", "open", D("0.0008"), D("0.0003"))) == []
    assert strategy.on_start(ctx) == []


def test_a_restart_places_a_missing_take_profit(markets: dict[str, MarketRules]) -> None:
    strategy = dca(take_profit_pct="1", state={"next_buy_ms": MINUTE})
    position = Position(amount=D("0.001234567891"), average_entry=D("50000"))
    assert strategy.on_start(Context(now_ms=0, market=markets["coinbase"], position=position)) == [
        Place("tp", "sell", "limit", D("0.00123456"), D("50500.00"))
    ]


def test_a_position_too_small_to_sell_gets_no_take_profit(markets: dict[str, MarketRules]) -> None:
    strategy = dca(take_profit_pct="1", state={"next_buy_ms": MINUTE})
    dust = Position(amount=D("0.00009"), average_entry=D("50000"))  # below Kraken's minimum of 0.0001 BTC
    assert strategy.on_start(Context(now_ms=0, market=markets["kraken"], position=dust)) == []


def test_a_filled_take_profit_starts_the_next_cycle_at_once(markets: dict[str, MarketRules]) -> None:
    rules = markets["kucoin"]
    strategy = dca(take_profit_pct="1.5", state={"next_buy_ms": 10 * MINUTE})
    ctx = Context(now_ms=3 * MINUTE, market=rules, price=D("44000"))
    assert strategy.on_order(ctx, done("tp", "sell", "0.00023142")) == [
        Place("dca", "buy", "market", D("0.00022727"))  # 10 / 44000 = 0.000227272...
    ]
    assert strategy.state() == {"next_buy_ms": 4 * MINUTE}


def test_a_canceled_take_profit_does_not_restart_the_cycle(markets: dict[str, MarketRules]) -> None:
    strategy = dca(take_profit_pct="1.5", state={"next_buy_ms": 10 * MINUTE})
    ctx = Context(now_ms=0, market=markets["kucoin"], price=D("44000"))
    assert strategy.on_order(ctx, done("tp", "sell", "0", status="canceled")) == []
    assert strategy.state() == {"next_buy_ms": 10 * MINUTE}
