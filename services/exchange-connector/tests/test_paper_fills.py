"""Paper-mode fill arithmetic: book walking, fees, reservations and balance moves, exact and conserved."""

from __future__ import annotations

from decimal import Decimal as D
from decimal import localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from borsa_connector import paper_fills as pf

ZERO = D(0)


def book(*levels: tuple[str, str]) -> list[pf.Level]:
    return [(D(p), D(s)) for p, s in levels]


ASKS = book(("100.5", "0.3"), ("100.1", "0.2"), ("101", "5"))  # deliberately not best first
BIDS = book(("99.8", "0.4"), ("99.9", "0.1"), ("99", "5"))


# -- examples -------------------------------------------------------------------------------------------------


def test_a_market_buy_walks_the_asks_best_first_and_pays_the_taker_fee_in_quote():
    plan = pf.plan_order("buy", "market", D("0.6"), None, ASKS, step=D("0.01"), taker=D("0.001"), maker=D("0.0005"))

    assert [(f.price, f.amount) for f in plan.fills] == [
        (D("100.1"), D("0.2")),
        (D("100.5"), D("0.3")),
        (D(101), D("0.1")),
    ]
    assert plan.cost == D("20.02") + D("30.15") + D("10.1")
    assert plan.fee == D("0.02002") + D("0.03015") + D("0.0101")
    assert plan.need == plan.cost + plan.fee and plan.reserve == 0 and plan.unfilled == 0
    assert pf.create_moves(plan, "BTC", "USDT") == {"USDT": (-(plan.cost + plan.fee), ZERO), "BTC": (D("0.6"), ZERO)}


def test_a_market_sell_receives_the_proceeds_less_the_fee():
    plan = pf.plan_order("sell", "market", D("0.45"), None, BIDS, step=D("0.01"), taker=D("0.004"), maker=D("0.0025"))

    assert [(f.price, f.amount) for f in plan.fills] == [(D("99.9"), D("0.1")), (D("99.8"), D("0.35"))]
    proceeds = D("9.99") + D("34.93")
    assert plan.cost == proceeds and plan.fee == D("0.03996") + D("0.13972")
    assert pf.create_moves(plan, "BTC", "USD") == {"BTC": (D("-0.45"), ZERO), "USD": (proceeds - plan.fee, ZERO)}


def test_a_market_order_larger_than_the_book_fills_what_is_there():
    plan = pf.plan_order("buy", "market", D(10), None, ASKS, step=D("0.1"), taker=D("0.001"), maker=D(0))

    assert plan.filled == D("5.5") and plan.unfilled == D("4.5") and plan.reserve == 0


def test_a_crossing_limit_buy_takes_up_to_its_price_and_reserves_the_rest_with_the_maker_fee():
    plan = pf.plan_order("buy", "limit", D(1), D("100.4"), ASKS, step=D("0.01"), taker=D("0.001"), maker=D("0.0005"))

    assert [(f.price, f.amount) for f in plan.fills] == [(D("100.1"), D("0.2"))]
    assert plan.rest == D("0.8")
    assert plan.reserve == D("80.32") + D("0.04016")  # 0.8 x 100.4, plus 0.05 %
    assert plan.need == D("20.02") + D("0.02002") + plan.reserve
    moves = pf.create_moves(plan, "BTC", "USDT")
    assert moves == {"USDT": (-plan.need, plan.reserve), "BTC": (D("0.2"), ZERO)}


def test_a_resting_buy_filled_as_maker_spends_exactly_its_reservation():
    reserved = pf.reservation("buy", D("0.8"), D("100.4"), D("0.0005"))
    fill = pf.maker_fill("buy", D("100.4"), D("0.8"), D("0.002"), reserved)  # the rate changed since: paid as held

    assert fill == pf.Fill(D("100.4"), D("0.8"), D("80.32"), D("0.04016"), "maker")
    assert pf.maker_moves("buy", fill, reserved, "BTC", "USDT") == {
        "USDT": (ZERO, -reserved),
        "BTC": (D("0.8"), ZERO),
    }


def test_a_resting_sell_filled_as_maker_delivers_its_base_and_pays_the_maker_fee():
    fill = pf.maker_fill("sell", D(250), D("2"), D("0.001"), D("2"))

    assert fill.cost == D(500) and fill.fee == D("0.5")
    assert pf.maker_moves("sell", fill, D(2), "ETH", "USD") == {"ETH": (ZERO, D(-2)), "USD": (D("499.5"), ZERO)}


def test_fees_are_quantized_to_1e_12_and_levels_below_one_step_are_skipped():
    assert pf.fee_for(D("0.0000000001234"), D("0.001")) == D("0")
    assert pf.fee_for(D("1.23456789"), D("0.0012")) == D("0.001481481468")
    taken, left = pf.walk_book(book(("1", "0.004"), ("2", "3")), "buy", D("0.02"), D("0.01"))
    assert taken == [(D(2), D("0.02"))] and left == 0


def test_tidy_and_average_print_plainly():
    assert str(pf.tidy(D("0.500000000000"))) == "0.5"
    assert str(pf.tidy(D("1E+2"))) == "100"
    assert pf.average(D("61.27"), D("0.6")) == D("102.116666666667")
    assert pf.average(ZERO, ZERO) is None


# -- properties ---------------------------------------------------------------------------------------------------

STEPS = st.sampled_from([D("1"), D("0.1"), D("0.01"), D("0.00001"), D("0.00000001")])
TICKS = st.sampled_from([D("1"), D("0.1"), D("0.01"), D("0.0001"), D("0.00000001")])
RATES = st.sampled_from([ZERO, D("0.001"), D("0.0025"), D("0.004"), D("0.012")])


@st.composite
def orders(draw):
    step, tick = draw(STEPS), draw(TICKS)
    levels = draw(
        st.lists(
            st.tuples(st.integers(1, 10**7), st.integers(0, 10**5)).map(lambda t: (t[0] * tick, t[1] * step)),
            max_size=12,
        )
    )
    side = draw(st.sampled_from(["buy", "sell"]))
    type = draw(st.sampled_from(["market", "limit"]))
    amount = draw(st.integers(1, 10**6)) * step
    price = draw(st.integers(1, 10**7)) * tick if type == "limit" else None
    return side, type, amount, price, levels, step, draw(RATES), draw(RATES)


@settings(max_examples=300, deadline=None)
@given(orders())
def test_a_plan_fills_on_the_step_within_the_price_and_never_more_than_asked(order):
    side, type, amount, price, levels, step, taker, maker = order
    plan = pf.plan_order(side, type, amount, price, levels, step=step, taker=taker, maker=maker)
    with localcontext(pf.CONTEXT):
        _check_plan(side, amount, price, levels, step, taker, plan)


def _check_plan(side, amount, price, levels, step, taker, plan) -> None:
    assert plan.filled + plan.rest + plan.unfilled == amount
    assert all(f.amount > 0 and f.amount % step == 0 for f in plan.fills)
    if price is not None:
        assert all(f.price <= price if side == "buy" else f.price >= price for f in plan.fills)
    prices = [f.price for f in plan.fills]
    assert prices == sorted(prices, reverse=side == "sell")  # best price first
    for fill in plan.fills:
        assert fill.cost == fill.price * fill.amount
        assert abs(fill.fee - fill.cost * taker) <= D("0.5e-12")
        assert fill.taker_or_maker == "taker"
    # Nothing better than the worst price taken was left in the book.
    if plan.fills and plan.rest + plan.unfilled > 0:
        worst = plan.fills[-1].price
        better = [s for p, s in levels if (p < worst if side == "buy" else p > worst) and s >= step]
        assert sum((s for s in better), ZERO) <= plan.filled


@settings(max_examples=300, deadline=None)
@given(orders(), st.booleans())
def test_an_order_placed_then_filled_or_canceled_conserves_money_and_frees_every_reservation(order, fills):
    side, type, amount, price, levels, step, taker, maker = order
    plan = pf.plan_order(side, type, amount, price, levels, step=step, taker=taker, maker=maker)
    with localcontext(pf.CONTEXT):  # the test's own sums exact too
        _check_conservation(side, price, maker, plan, fills)


def _check_conservation(side, price, maker, plan, fills) -> None:
    start = {"BTC": (D(10**9), ZERO), "USDT": (D(10**15), ZERO)}

    placed = pf.apply_moves(start, pf.create_moves(plan, "BTC", "USDT"))
    held = "USDT" if side == "buy" else "BTC"
    assert placed[held][1] == plan.reserve
    assert placed[held][0] == start[held][0] - plan.need
    if fills and plan.rest > 0:
        fill = pf.maker_fill(side, price, plan.rest, maker, plan.reserve)
        done = pf.apply_moves(placed, pf.maker_moves(side, fill, plan.reserve, "BTC", "USDT"))
        all_fills = (*plan.fills, fill)
    else:
        done = pf.apply_moves(placed, pf.release_moves(side, plan.reserve, "BTC", "USDT"))
        all_fills = plan.fills
    assert done["BTC"][1] == 0 and done["USDT"][1] == 0  # nothing stays held
    bought = sum((f.amount for f in all_fills), ZERO)
    cost = sum((f.cost for f in all_fills), ZERO)
    fee = sum((f.fee for f in all_fills), ZERO)
    sign = 1 if side == "buy" else -1
    assert done["BTC"][0] - start["BTC"][0] == sign * bought
    assert done["USDT"][0] - start["USDT"][0] == -sign * cost - fee


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_a_limit_order_that_does_not_cross_takes_nothing(side):
    limit = D("100") if side == "buy" else D("100.2")
    plan = pf.plan_order(
        side, "limit", D(1), limit, ASKS if side == "buy" else BIDS, step=D("0.1"), taker=D(0), maker=D(0)
    )
    assert plan.fills == () and plan.rest == 1
