"""FIFO realised PnL on hand-computed cases."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from borsa_reporting.fifo import Book, Trade, lots_from_json, lots_to_json
from borsa_reporting.ingest import bot_key, bot_of

pytestmark = pytest.mark.unit


def test_a_sell_closes_the_oldest_lots_first() -> None:
    book = Book()
    assert book.apply(Trade("buy", D("100"), D("1"))) == 0
    assert book.apply(Trade("buy", D("200"), D("1"))) == 0
    assert book.apply(Trade("sell", D("300"), D("1.5"))) == D("450") - D("100") - D("100")  # 1 at 100, 0.5 at 200
    assert book.position == D("0.5") and book.cost == D("100")
    assert book.unrealized(D("250")) == D("25")


def test_fees_in_quote_raise_the_cost_and_lower_the_proceeds() -> None:
    book = Book()
    book.apply(Trade("buy", D("100"), D("2"), fee_quote=D("0.2")))  # 100.1 a unit
    assert book.apply(Trade("sell", D("110"), D("2"), fee_quote=D("0.22"))) == D("219.78") - D("200.2")
    assert book.lots == []


def test_a_base_fee_leaves_less_base_and_a_sell_beyond_the_lots_gains_nothing() -> None:
    book = Book()
    book.apply(Trade("buy", D("100"), D("1"), fee_base=D("0.01")))  # 0.99 BTC for 100
    assert book.position == D("0.99")
    pnl = book.apply(Trade("sell", D("120"), D("1")))  # 0.01 BTC more than the lots hold
    assert pnl == D("120") - D("100") - D("0.01") * D("120")
    assert book.position == 0


def test_lots_survive_json() -> None:
    lots = [(D("0.5"), D("64250.10")), (D("0.00000001"), D("1E+5"))]
    assert lots_from_json(lots_to_json(lots)) == lots


def test_a_bots_orders_are_told_by_their_client_order_id() -> None:
    bot = "0b6f6c1e-9c1a-4f7e-9d47-5a7c1f0e2b11"
    assert str(bot_of("b0b6f6c1e9c1a4f7e9d475a7c1f0e2b11-12")) == bot
    assert bot_of("manual-1") is None and bot_of(None) is None and bot_of("bxyz-1") is None
    # The group key says the same, cached by the bot's prefix.
    for client_order_id in (
        "b0b6f6c1e9c1a4f7e9d475a7c1f0e2b11-12",
        "b0b6f6c1e9c1a4f7e9d475a7c1f0e2b11-13",
        "B0b6f6c1e9c1a4f7e9d475a7c1f0e2b11-1",
        "b0b6f6c1e9c1a4f7e9d475a7c1f0e2b11",
        "bzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-1",
        "b-1",
        "manual-1",
        "",
        None,
    ):
        expected = bot_of(client_order_id)
        assert bot_key(client_order_id) == (str(expected) if expected else ""), client_order_id
