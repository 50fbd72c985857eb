"""Realised PnL, first in first out, from one group's fills (an exchange, account, bot and symbol).

A buy opens a lot: the base received (less a fee charged in base) at its cost per unit (price times amount plus a
fee charged in quote or converted to quote, over the base received). A sell closes the oldest lots first: what
leaves is the amount sold plus a fee charged in base; it realises its proceeds (less a fee in quote or converted)
minus what the closed lots cost. Base sold beyond the open lots has no cost known to Borsa (bought elsewhere): it
counts at the sale price, realising nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

ZERO = Decimal(0)

Lot = tuple[Decimal, Decimal]
"""(amount of base, cost per unit in quote)."""


class Trade(NamedTuple):
    """One fill as FIFO sees it (a tuple: ingest makes one per fill, and a frozen dataclass costs three times as
    much to build)."""

    side: str
    price: Decimal
    amount: Decimal
    fee_base: Decimal = ZERO  # the fee when charged in the base currency
    fee_quote: Decimal = ZERO  # the fee in quote when charged in quote or another asset (converted), else zero


@dataclass(slots=True)
class Book:
    lots: list[Lot] = field(default_factory=list)

    @property
    def position(self) -> Decimal:
        return sum((amount for amount, _ in self.lots), ZERO)

    @property
    def cost(self) -> Decimal:
        return sum((amount * unit for amount, unit in self.lots), ZERO)

    def apply(self, trade: Trade) -> Decimal:
        """Apply one fill; the PnL it realised."""
        if trade.side == "buy":
            received = trade.amount - trade.fee_base
            if received > 0:
                self.lots.append((received, (trade.price * trade.amount + trade.fee_quote) / received))
            return -trade.fee_quote if received <= 0 else ZERO
        leaving = trade.amount + trade.fee_base
        cost = ZERO
        while leaving > 0 and self.lots:
            amount, unit = self.lots[0]
            take = min(amount, leaving)
            cost += take * unit
            leaving -= take
            if take == amount:
                self.lots.pop(0)
            else:
                self.lots[0] = (amount - take, unit)
        cost += leaving * trade.price  # sold beyond the open lots: no gain on that part
        return trade.price * trade.amount - trade.fee_quote - cost

    def unrealized(self, price: Decimal) -> Decimal:
        return self.position * price - self.cost


def lots_to_json(lots: list[Lot]) -> list[list[str]]:
    return [[str(amount), str(unit)] for amount, unit in lots]


def lots_from_json(raw: list) -> list[Lot]:
    return [(Decimal(amount), Decimal(unit)) for amount, unit in raw or []]
