"""Cells of the trades CSV: a text cell a spreadsheet would run as a formula is quoted; numbers stay numbers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from borsa_gateway.routes.reports import _csv_cell

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx"])
def test_text_that_starts_a_formula_is_quoted(text) -> None:
    assert _csv_cell({"client_order_id": text}, "client_order_id") == "'" + text


def test_plain_text_and_numbers_are_left_alone() -> None:
    row = {"symbol": "BTC/USD", "realized_pnl": Decimal("-1.50"), "timestamp_ms": 1700000000000, "bot_id": None}
    assert _csv_cell(row, "symbol") == "BTC/USD"
    assert _csv_cell(row, "realized_pnl") == "-1.50"
    assert _csv_cell(row, "timestamp_ms") == "1700000000000"
    assert _csv_cell(row, "bot_id") == ""
    assert _csv_cell(row, "time") == "2023-11-14T22:13:20.000Z"
