"""A bot's position from its fills: amount held, average entry and realised PnL, all in Decimal.

Average cost: a buy adds its cost (price times amount, plus a fee charged in the quote currency) to what is held;
a fee charged in the base currency is taken from the amount received. A sell realises the difference between its
proceeds (less a quote fee) and the average entry of what it sold; a fee charged in the base currency leaves the
position too and is valued at the entry price. Fees in a third asset (BNB, KCS) are not in the PnL here: the
reporting service converts them at the rate of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Holding:
    amount: Decimal = ZERO
    average_entry: Decimal | None = None
    realized_pnl: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Trade:
    side: str
    price: Decimal
    amount: Decimal
    fee_cost: Decimal | None = None
    fee_currency: str | None = None


def apply_trade(holding: Holding, trade: Trade, base: str, quote: str) -> Holding:
    fee = trade.fee_cost or ZERO
    base_fee = fee if trade.fee_currency == base else ZERO
    quote_fee = fee if trade.fee_currency == quote else ZERO
    entry = holding.average_entry or ZERO
    if trade.side == "buy":
        received = trade.amount - base_fee
        amount = holding.amount + received
        if amount <= 0:
            return Holding(amount, None, holding.realized_pnl)
        cost = holding.amount * entry + trade.price * trade.amount + quote_fee
        return Holding(amount, cost / amount, holding.realized_pnl)
    # A sell: what leaves the position is the amount sold and a fee charged in base.
    leaving = trade.amount + base_fee
    sold_from_position = min(leaving, max(holding.amount, ZERO))
    proceeds = trade.price * trade.amount - quote_fee
    # Only what the bot held has an entry price; anything sold beyond it counts at the sale price (no gain).
    beyond = leaving - sold_from_position
    pnl = proceeds - sold_from_position * entry - beyond * trade.price
    amount = holding.amount - leaving
    if amount <= 0:
        return Holding(max(amount, ZERO), None, holding.realized_pnl + pnl)
    return Holding(amount, holding.average_entry, holding.realized_pnl + pnl)
