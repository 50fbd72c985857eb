"""Paper-mode fill arithmetic, kept pure: walking an order book, fees, and what an order holds and moves.

Everything is exact Decimal arithmetic in a wide context of its own (ccxt changes the thread's context). Fill
amounts are whole multiples of the market's amount step and prices are the book's (or the order's) prices, so they
carry no more decimals than the market allows. Costs are exact products, as exchanges compute them. Fees are the
exact cost × rate quantized to 1e-12 (half-even): finer than any currency's smallest unit, so no money a person could
see is rounded away, while a fee on a SHIB-sized cost still gets a finite number of digits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

ZERO = Decimal(0)
FEE_QUANTUM = Decimal("1e-12")
# 80 digits hold any product of two market numbers exactly (a price and an amount have well under 40 each).
CONTEXT = Context(prec=80, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])

Level = tuple[Decimal, Decimal]
"""(price, size) of one order book level."""


@dataclass(frozen=True, slots=True)
class Fill:
    price: Decimal
    amount: Decimal
    cost: Decimal
    fee: Decimal
    taker_or_maker: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What a new order does at once: its taker fills against the book, and what is left of it.

    `rest` (limit orders) stays on the book holding `reserve`: the quote it will pay, maker fee included, for a
    buy; the base it will deliver for a sell. `unfilled` (market orders) is what the book could not fill: it is
    dropped, as an exchange expires the rest of a market order.
    """

    side: str
    amount: Decimal
    fills: tuple[Fill, ...]
    rest: Decimal
    unfilled: Decimal
    reserve: Decimal
    price: Decimal | None = None
    """A limit order's price; None for a market order."""

    @property
    def filled(self) -> Decimal:
        return _sum(f.amount for f in self.fills)

    @property
    def cost(self) -> Decimal:
        return _sum(f.cost for f in self.fills)

    @property
    def fee(self) -> Decimal:
        return _sum(f.fee for f in self.fills)

    @property
    def need(self) -> Decimal:
        """Free funds the order takes: quote for a buy (taker costs and fees plus the reservation), base for a
        sell (what it sells now plus what it holds for later)."""
        if self.side == "buy":
            return _sum((self.cost, self.fee, self.reserve))
        return CONTEXT.add(self.filled, self.reserve)


def fee_for(cost: Decimal, rate: Decimal) -> Decimal:
    """`cost` × `rate`, quantized to 1e-12."""
    return CONTEXT.multiply(cost, rate).quantize(FEE_QUANTUM, context=CONTEXT)


def cost_of(price: Decimal, amount: Decimal) -> Decimal:
    return CONTEXT.multiply(price, amount)


def best_first(levels: Iterable[Level], side: str) -> list[Level]:
    """The levels an order of `side` takes, best first (lowest ask for a buy, highest bid for a sell); empty or
    non-positive levels dropped."""
    usable = [(p, s) for p, s in levels if p > 0 and s > 0]
    return sorted(usable, key=lambda level: level[0], reverse=side == "sell")


def walk_book(
    levels: Iterable[Level], side: str, amount: Decimal, step: Decimal, limit: Decimal | None = None
) -> tuple[list[Level], Decimal]:
    """Take `amount` from the book's opposite side, best price first and not past `limit`.

    Returns the (price, size) taken per level, sizes on the amount step, and the amount left untaken. A level
    smaller than one step is skipped: no exchange fills a fraction of a step.
    """
    taken: list[Level] = []
    left = amount
    for price, size in best_first(levels, side):
        if left <= 0:
            break
        if limit is not None and (price > limit if side == "buy" else price < limit):
            break
        take = floor_to_step(min(size, left), step)
        if take <= 0:
            continue
        taken.append((price, take))
        left = CONTEXT.subtract(left, take)
    return taken, left


def plan_order(
    side: str,
    type: str,
    amount: Decimal,
    price: Decimal | None,
    levels: Iterable[Level],
    *,
    step: Decimal,
    taker: Decimal,
    maker: Decimal,
) -> Plan:
    """A new order against the book: a market order takes what it can; a limit order takes what is at its price
    or better, and the rest rests at its price."""
    limit = price if type == "limit" else None
    taken, left = walk_book(levels, side, amount, step, limit)
    fills = tuple(taker_fill(p, s, taker) for p, s in taken)
    if type == "market":
        return Plan(side, amount, fills, rest=ZERO, unfilled=left, reserve=ZERO)
    if limit is None:
        raise ValueError("a limit order needs a price")
    return Plan(side, amount, fills, left, ZERO, reservation(side, left, limit, maker), limit)


def reservation(side: str, amount: Decimal, price: Decimal, maker: Decimal) -> Decimal:
    """What a resting order holds: amount × price plus the maker fee in quote for a buy, the amount for a sell."""
    if amount <= 0:
        return ZERO
    if side == "buy":
        cost = cost_of(price, amount)
        return CONTEXT.add(cost, fee_for(cost, maker))
    return amount


def taker_fill(price: Decimal, amount: Decimal, rate: Decimal) -> Fill:
    cost = cost_of(price, amount)
    return Fill(price, amount, cost, fee_for(cost, rate), "taker")


def maker_fill(side: str, price: Decimal, amount: Decimal, maker: Decimal, reserved: Decimal) -> Fill:
    """A resting order filled whole at its own price. A buy pays the fee it reserved when it was placed, so what it
    holds pays for it exactly even if the market's fee rate changed since."""
    cost = cost_of(price, amount)
    fee = max(CONTEXT.subtract(reserved, cost), ZERO) if side == "buy" else fee_for(cost, maker)
    return Fill(price, amount, cost, fee, "maker")


Moves = dict[str, tuple[Decimal, Decimal]]
"""currency -> (change of free, change of used)."""


def create_moves(plan: Plan, base: str, quote: str) -> Moves:
    """Balance changes of a new order: its taker fills settled, its reservation moved from free to used.

    The fee is always in the quote currency: a buy pays it on top of the cost, a sell out of the proceeds.
    """
    if plan.side == "buy":
        return _merge(
            {quote: (-_sum((plan.cost, plan.fee, plan.reserve)), plan.reserve)},
            {base: (plan.filled, ZERO)},
        )
    return _merge(
        {base: (-plan.need, plan.reserve)},
        {quote: (CONTEXT.subtract(plan.cost, plan.fee), ZERO)},
    )


def maker_moves(side: str, fill: Fill, reserved: Decimal, base: str, quote: str) -> Moves:
    """Balance changes when a resting order fills whole: its reservation is spent, whatever is left of it (nothing,
    unless the order was partly filled elsewhere) goes back to free."""
    if side == "buy":
        spent = CONTEXT.add(fill.cost, fill.fee)
        return _merge({quote: (CONTEXT.subtract(reserved, spent), -reserved)}, {base: (fill.amount, ZERO)})
    return _merge(
        {base: (CONTEXT.subtract(reserved, fill.amount), -reserved)},
        {quote: (CONTEXT.subtract(fill.cost, fill.fee), ZERO)},
    )


def release_moves(side: str, reserved: Decimal, base: str, quote: str) -> Moves:
    """A canceled order's reservation back to free."""
    return {quote if side == "buy" else base: (reserved, -reserved)}


def apply_moves(balances: dict[str, tuple[Decimal, Decimal]], moves: Moves) -> dict[str, tuple[Decimal, Decimal]]:
    """`balances` (currency -> (free, used)) after `moves`; currencies not held yet start at zero."""
    out = dict(balances)
    for currency, (d_free, d_used) in moves.items():
        free, used = out.get(currency, (ZERO, ZERO))
        out[currency] = (CONTEXT.add(free, d_free), CONTEXT.add(used, d_used))
    return out


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    units = CONTEXT.divide_int(value, step)
    return CONTEXT.multiply(units, step).quantize(_quantum(step), rounding=ROUND_DOWN, context=CONTEXT)


def average(cost: Decimal, filled: Decimal) -> Decimal | None:
    """Average fill price, to 12 decimals, or None before any fill."""
    if filled <= 0:
        return None
    return tidy(CONTEXT.divide(cost, filled).quantize(FEE_QUANTUM, context=CONTEXT))


def tidy(value: Decimal) -> Decimal:
    """`value` without trailing zeros ("0.5", not "0.500000000000"), never with a positive exponent ("100", not
    "1E+2")."""
    if value == 0:
        return ZERO
    normal = value.normalize(CONTEXT)
    return normal.quantize(Decimal(1), context=CONTEXT) if normal.as_tuple().exponent > 0 else normal


def _quantum(step: Decimal) -> Decimal:
    return Decimal(1).scaleb(min(0, step.as_tuple().exponent))


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = ZERO
    for value in values:
        total = CONTEXT.add(total, value)
    return total


def _merge(*parts: Moves) -> Moves:
    out: Moves = {}
    for part in parts:
        for currency, (d_free, d_used) in part.items():
            free, used = out.get(currency, (ZERO, ZERO))
            out[currency] = (CONTEXT.add(free, d_free), CONTEXT.add(used, d_used))
    return out
