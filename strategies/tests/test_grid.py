"""Grid: the first buys below the price, a sell one level up after each buy, a buy again after each sell."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from borsa_strategies import build
from borsa_strategies.base import Context, MarketRules, OpenOrder, OrderUpdate, Place, Tick
from borsa_strategies.grid import GridStrategy

pytestmark = pytest.mark.unit

GRID = {"low": "40000", "high": "44000", "levels": 5, "quote_per_level": "50"}


def grid(state: dict | None = None, **params: object) -> GridStrategy:
    strategy = build("grid", {**GRID, **params}, state)
    assert isinstance(strategy, GridStrategy)
    return strategy


def opened(*places: Place) -> dict[str, OpenOrder]:
    return {p.key: OpenOrder(p.key, p.side, p.type, p.amount, p.price) for p in places}


def filled(key: str, amount: str, fee: str | None = None, fee_currency: str | None = None) -> OrderUpdate:
    side = key.split(":")[1]
    return OrderUpdate(
        key, side, "limit", "closed", D(amount), D(amount), fee_cost=fee and D(fee), fee_currency=fee_currency
    )


def test_levels_are_evenly_spaced_on_the_tick(markets: dict[str, MarketRules]) -> None:
    assert grid(low="100", high="200", levels=4).levels(markets["kraken"]) == [
        D("100"),
        D("133.3"),
        D("166.7"),
        D("200"),
    ]
    assert grid(low="100", high="200", levels=4).levels(markets["binance"])[1] == D("133.33")


@pytest.mark.parametrize(
    ("exchange", "amounts"),
    [("binance", ["0.00125", "0.00121", "0.00119"]), ("kucoin", ["0.00125", "0.00121951", "0.00119047"])],
)
def test_first_buys_on_every_level_below_the_price(
    markets: dict[str, MarketRules], exchange: str, amounts: list
) -> None:
    strategy = grid()
    # Levels 40000, 41000, 42000, 43000, 44000; 50 USDT a level: 50/41000 = 0.0012195..., 50/42000 = 0.0011904...
    actions = strategy.on_start(Context(now_ms=0, market=markets[exchange], price=D("42500")))
    assert actions == [
        Place(f"grid:buy:{i}", "buy", "limit", D(amount), D(price))
        for i, (amount, price) in enumerate(zip(amounts, ["40000", "41000", "42000"], strict=True))
    ]
    assert strategy.state() == {"started": True, "buys": [0, 1, 2], "sells": {}}


def test_no_first_buy_within_a_tick_of_the_price(markets: dict[str, MarketRules]) -> None:
    actions = grid().on_start(Context(now_ms=0, market=markets["binance"], price=D("42000.01")))
    assert [a.key for a in actions] == ["grid:buy:0", "grid:buy:1"]


def test_the_top_level_only_sells(markets: dict[str, MarketRules]) -> None:
    actions = grid().on_start(Context(now_ms=0, market=markets["binance"], price=D("50000")))
    assert [a.key for a in actions] == ["grid:buy:0", "grid:buy:1", "grid:buy:2", "grid:buy:3"]


def test_without_a_price_the_first_buys_wait_for_the_first_tick(markets: dict[str, MarketRules]) -> None:
    rules, strategy = markets["coinbase"], grid()
    assert strategy.on_start(Context(now_ms=0, market=rules)) == []
    assert strategy.state()["started"] is False
    first = strategy.on_tick(Context(now_ms=1, market=rules), Tick(D("41500"), D("41600"), None, 1))
    assert [a.key for a in first] == ["grid:buy:0", "grid:buy:1"]
    assert (
        strategy.on_tick(Context(now_ms=2, market=rules, open_orders=opened(*first)), Tick(None, None, D("1"), 2)) == []
    )


def test_a_filled_buy_is_sold_one_level_up(markets: dict[str, MarketRules]) -> None:
    rules, strategy = markets["kraken"], grid(state={"started": True, "buys": [0, 1, 2], "sells": {}})
    ctx = Context(now_ms=0, market=rules)
    assert strategy.on_order(ctx, filled("grid:buy:2", "0.00119047")) == [
        Place("grid:sell:3", "sell", "limit", D("0.00119047"), D("43000"))
    ]
    assert strategy.state() == {"started": True, "buys": [0, 1], "sells": {"3": "0.00119047"}}


@pytest.mark.parametrize(
    ("exchange", "fee", "currency", "sold"),
    [
        ("binance", "0.00000119", "BTC", "0.00118"),  # 0.00119 - 0.00000119 = 0.00118881, truncated to 0.00001
        ("kucoin", "0.00000119", "BTC", "0.00118881"),
        ("binance", "0.00012", "BNB", "0.00119"),  # a fee in another asset leaves the base alone
        ("coinbase", "0.05", "USD", "0.00119"),
    ],
)
def test_a_fee_charged_in_base_is_not_sold(
    markets: dict[str, MarketRules], exchange: str, fee: str, currency: str, sold: str
) -> None:
    strategy = grid(state={"started": True, "buys": [2], "sells": {}})
    [sell] = strategy.on_order(
        Context(now_ms=0, market=markets[exchange]), filled("grid:buy:2", "0.00119", fee, currency)
    )
    assert sell.amount == D(sold) and sell.price == D("43000")


def test_a_partly_filled_buy_canceled_sells_what_it_bought(markets: dict[str, MarketRules]) -> None:
    strategy = grid(state={"started": True, "buys": [1], "sells": {}})
    update = OrderUpdate("grid:buy:1", "buy", "limit", "canceled", D("0.00121"), D("0.0006"))
    assert strategy.on_order(Context(now_ms=0, market=markets["kraken"]), update) == [
        Place("grid:sell:2", "sell", "limit", D("0.0006"), D("42000"))
    ]


def test_a_filled_sell_rearms_the_buy_one_level_down(markets: dict[str, MarketRules]) -> None:
    strategy = grid(state={"started": True, "buys": [0], "sells": {"3": "0.00118"}})
    assert strategy.on_order(Context(now_ms=0, market=markets["binance"]), filled("grid:sell:3", "0.00118")) == [
        Place("grid:buy:2", "buy", "limit", D("0.00119"), D("42000"))
    ]
    assert strategy.state() == {"started": True, "buys": [0, 2], "sells": {}}


def test_partial_fills_wait_and_canceled_orders_are_not_rearmed(markets: dict[str, MarketRules]) -> None:
    rules = markets["binance"]
    strategy = grid(state={"started": True, "buys": [0, 1], "sells": {"3": "0.00118"}})
    ctx = Context(now_ms=0, market=rules)
    partial = OrderUpdate("grid:buy:0", "buy", "limit", "open", D("0.00125"), D("0.0005"))
    assert strategy.on_order(ctx, partial) == []
    assert strategy.on_order(ctx, OrderUpdate("grid:buy:1", "buy", "limit", "rejected", D("0.00121"), D(0))) == []
    assert strategy.on_order(ctx, OrderUpdate("grid:sell:3", "sell", "limit", "canceled", D("0.00118"), D(0))) == []
    assert strategy.on_order(ctx, OrderUpdate("dca", "buy", "market", "closed", D(1), D(1))) == []
    assert strategy.state() == {"started": True, "buys": [0], "sells": {}}
    assert strategy.on_start(ctx) == [Place("grid:buy:0", "buy", "limit", D("0.00125"), D("40000"))]


def test_a_restart_places_only_the_missing_orders(markets: dict[str, MarketRules]) -> None:
    rules = markets["kucoin"]
    before = grid(state={"started": True, "buys": [0, 1, 2], "sells": {"4": "0.00116279"}})
    state = json.loads(json.dumps(before.state()))
    still_open = opened(
        Place("grid:buy:0", "buy", "limit", D("0.00125"), D("40000")),
        Place("grid:sell:4", "sell", "limit", D("0.00116279"), D("44000")),
    )
    after = grid(state=state)
    actions = after.on_start(Context(now_ms=0, market=rules, price=D("43500"), open_orders=still_open))
    assert actions == [
        Place("grid:buy:1", "buy", "limit", D("0.00121951"), D("41000")),
        Place("grid:buy:2", "buy", "limit", D("0.00119047"), D("42000")),
    ]
    assert after.on_start(Context(now_ms=0, market=rules, open_orders={**still_open, **opened(*actions)})) == []


def test_levels_below_the_minimums_get_no_order(markets: dict[str, MarketRules]) -> None:
    # 5.1 USDT a level, truncated to 0.00001 BTC: 0.00012 at 40000 (4.80 USDT), 0.00012 at 41000 (4.92), 0.00012 at
    # 42000 (5.04) and 0.00011 at 43000 (4.73): only one level meets Binance's minimum of 5 USDT.
    strategy = grid(quote_per_level="5.1")
    actions = strategy.on_start(Context(now_ms=0, market=markets["binance"], price=D("44000")))
    assert actions == [Place("grid:buy:2", "buy", "limit", D("0.00012"), D("42000"))]
    assert strategy.state()["buys"] == [2]


# Property: whatever happens to its orders, the grid never places an order for a key that is already open.
events = st.lists(
    st.tuples(
        st.sampled_from(["fill", "partial", "cancel", "restart", "tick"]),
        st.integers(min_value=0, max_value=50),
        st.sampled_from([None, "BTC", "USDT"]),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    exchange=st.sampled_from(["binance", "kraken", "coinbase", "kucoin"]),
    levels=st.integers(min_value=2, max_value=12),
    price=st.decimals(min_value=D("39000"), max_value=D("46000"), places=2),
    events=events,
)
def test_no_grid_action_places_a_second_order_for_an_open_key(
    markets: dict[str, MarketRules], exchange: str, levels: int, price: D, events: list
) -> None:
    rules = markets[exchange]
    strategy = grid(levels=levels)
    open_: dict[str, OpenOrder] = {}

    def apply(actions: list) -> None:
        for action in actions:
            assert isinstance(action, Place)
            assert action.key not in open_, f"second order for {action.key}"
            assert action.amount > 0 and action.amount % rules.amount_step == 0
            assert action.price is not None and action.price % rules.price_step == 0
            assert rules.allows(action.amount, action.price)
            open_[action.key] = OpenOrder(action.key, action.side, action.type, action.amount, action.price)
        buys = {int(k.split(":")[2]) for k in open_ if k.startswith("grid:buy:")}
        sells = {int(k.split(":")[2]) for k in open_ if k.startswith("grid:sell:")}
        assert not buys & {j - 1 for j in sells}, "a level both buying and waiting to sell"
        assert levels - 1 not in buys

    def ctx() -> Context:
        return Context(now_ms=0, market=rules, open_orders=dict(open_), price=price)

    apply(strategy.on_start(Context(now_ms=0, market=rules)))  # no price yet
    for kind, pick, fee_currency in events:
        if kind == "restart":
            strategy = grid(state=json.loads(json.dumps(strategy.state())), levels=levels)
            apply(strategy.on_start(ctx()))
        elif kind == "tick":
            apply(strategy.on_tick(ctx(), Tick(None, None, price, 0)))
        elif open_:
            order = open_[sorted(open_)[pick % len(open_)]]
            part = rules.amount(order.amount / 3)
            fee = rules.amount(order.amount / 1000) if fee_currency else None
            if kind == "partial":
                update = OrderUpdate(order.key, order.side, order.type, "open", order.amount, part)
            elif kind == "cancel":
                update = OrderUpdate(order.key, order.side, order.type, "canceled", order.amount, part)
            else:
                update = OrderUpdate(
                    order.key,
                    order.side,
                    order.type,
                    "closed",
                    order.amount,
                    order.amount,
                    order.price,
                    order.price,
                    fee,
                    fee_currency,
                )
            if update.done:
                del open_[order.key]
            apply(strategy.on_order(ctx(), update))
