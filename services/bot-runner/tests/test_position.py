"""A bot's position from its fills, on hand-computed cases."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from borsa_runner.position import Holding, Trade, apply_trade

pytestmark = pytest.mark.unit


def run(*trades: Trade) -> Holding:
    holding = Holding()
    for trade in trades:
        holding = apply_trade(holding, trade, "BTC", "USDT")
    return holding


def test_buys_average_their_cost_with_quote_fees_included() -> None:
    h = run(
        Trade("buy", D("100"), D("1"), D("0.1"), "USDT"),
        Trade("buy", D("130"), D("1"), D("0.13"), "USDT"),
    )
    assert h.amount == D("2")
    assert h.average_entry == D("230.23") / 2  # (100 + 0.1 + 130 + 0.13) / 2
    assert h.realized_pnl == 0


def test_a_base_fee_on_a_buy_leaves_less_base_at_a_higher_entry() -> None:
    h = run(Trade("buy", D("100"), D("1"), D("0.001"), "BTC"))
    assert h.amount == D("0.999")
    assert h.average_entry == D("100") / D("0.999")


def test_a_sell_realises_against_the_average_entry_less_its_fee() -> None:
    h = run(
        Trade("buy", D("100"), D("2"), D("0.2"), "USDT"),  # entry 100.1
        Trade("sell", D("110"), D("1"), D("0.11"), "USDT"),
    )
    assert h.amount == D("1")
    assert h.average_entry == D("100.1")
    assert h.realized_pnl == D("110") - D("0.11") - D("100.1")  # 9.79


def test_selling_everything_closes_the_position() -> None:
    h = run(Trade("buy", D("100"), D("1"), D("0.001"), "BTC"), Trade("sell", D("120"), D("0.999"), D("0.12"), "USDT"))
    assert h.amount == 0 and h.average_entry is None
    # bought 1 BTC for 100 USDT, kept 0.999; sold it for 119.88 less 0.12
    assert h.realized_pnl == D("120") * D("0.999") - D("0.12") - D("100")


def test_a_fee_in_a_third_asset_is_left_to_reporting() -> None:
    h = run(Trade("buy", D("100"), D("1"), D("0.01"), "BNB"), Trade("sell", D("100"), D("1"), D("0.01"), "BNB"))
    assert h.amount == 0 and h.realized_pnl == 0


def test_selling_more_than_the_bot_holds_gains_nothing_on_the_excess() -> None:
    h = run(Trade("buy", D("100"), D("1")), Trade("sell", D("150"), D("1.5")))
    assert h.amount == 0
    assert h.realized_pnl == D("50")  # only the BTC the bot bought has an entry price


amounts = st.decimals(min_value=D("0.0001"), max_value=D("10"), places=4)
prices = st.decimals(min_value=D("1"), max_value=D("100000"), places=2)


@given(st.lists(st.tuples(amounts, prices), min_size=1, max_size=8), prices)
def test_buying_then_selling_all_realises_proceeds_minus_cost(buys, sell_price) -> None:
    trades = [Trade("buy", p, a) for a, p in buys]
    total = sum(a for a, _ in buys)
    h = run(*trades, Trade("sell", sell_price, total))
    cost = sum(a * p for a, p in buys)
    assert h.amount == 0
    assert abs(h.realized_pnl - (sell_price * total - cost)) < D("1e-12")
