"""Fit an order to its market's steps and limits before it is sent, so no exchange rejects it for precision."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext

from borsa_proto.exchange import Market, MinMax
from borsa_runtime.errors import BadRequest, InvalidOrder

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit")


class OrderRuleError(InvalidOrder):
    """An order that breaks one of its market's rules; `field` names the order field at fault.

    BorsaError carries no field, so the message also starts with it ("amount 0.00001 is below ...").
    """

    def __init__(self, field: str, message: str, *, exchange: str | None = None) -> None:
        super().__init__(message, exchange=exchange)
        self.field = field


def round_amount(market: Market, amount: Decimal) -> Decimal:
    """`amount` truncated toward zero to the amount step, never up (ccxt issue #11765)."""
    return _to_step(_number(amount), market.precision.amount, toward="zero")


def round_price(market: Market, price: Decimal, side: str) -> Decimal:
    """`price` on the price tick, never past the user's limit: a buy rounds down, a sell up."""
    toward = "floor" if _side(side) == "buy" else "ceiling"
    return _to_step(_number(price), market.precision.price, toward=toward)


def check_order(
    market: Market,
    side: str,
    amount: Decimal,
    price: Decimal | None = None,
    reference_price: Decimal | None = None,
    *,
    exchange: str | None = None,
) -> None:
    """Raise OrderRuleError for the first rule of `market` the order breaks.

    The cost is amount × price, or amount × reference_price for a market order; without either
    it is not checked. `exchange` only makes the message say where.
    """
    _side(side)
    where = f"{market.symbol} on {exchange}" if exchange else market.symbol

    def fail(field: str, text: str) -> OrderRuleError:
        return OrderRuleError(field, f"{text} for {where}", exchange=exchange)

    given = {"amount": amount, "price": price, "reference_price": reference_price}
    for field, value in given.items():
        if value is not None and _number(value) <= 0:
            raise fail(field, f"{field} must be greater than zero, got {_plain(value)}")
    if not _on_step(amount, market.precision.amount):
        raise fail("amount", f"amount {_plain(amount)} is not a multiple of the step {_plain(market.precision.amount)}")
    if price is not None and not _on_step(price, market.precision.price):
        raise fail("price", f"price {_plain(price)} is not a multiple of the tick {_plain(market.precision.price)}")
    _check_range("amount", amount, market.limits.amount, fail)
    if price is not None:
        _check_range("price", price, market.limits.price, fail)
    cost_price = price if price is not None else reference_price
    if cost_price is not None:
        cost = _exact_product(amount, cost_price)
        label = f"cost {_plain(cost)} ({_plain(amount)} × {_plain(cost_price)})"
        _check_range("cost", cost, market.limits.cost, fail, label=label)


def prepare_order(
    market: Market,
    side: str,
    type: str,
    amount: Decimal,
    price: Decimal | None = None,
    reference_price: Decimal | None = None,
    *,
    exchange: str | None = None,
) -> tuple[Decimal, Decimal | None]:
    """The (amount, price) to send: rounded toward the user's side, then checked.

    A market order sends no price (it returns None); a price given with it stands in for a
    missing reference_price in the cost check.
    """
    side = _side(side)
    if type not in ORDER_TYPES:
        raise BadRequest(f"type must be one of {', '.join(ORDER_TYPES)}, got {type!r}", exchange=exchange)
    where = f"{market.symbol} on {exchange}" if exchange else market.symbol
    if type == "limit" and price is None:
        raise OrderRuleError("price", f"price is required for a limit order on {where}", exchange=exchange)
    # Check the raw values first so a negative or zero input is reported as given, not as rounded.
    check_order(market, side, _number(amount).copy_abs() or Decimal(1), None, None, exchange=exchange)
    check_order(market, side, market.precision.amount, None, None, exchange=exchange)
    for field, value in (("amount", amount), ("price", price), ("reference_price", reference_price)):
        if value is not None and _number(value) <= 0:
            raise OrderRuleError(
                field, f"{field} must be greater than zero, got {_plain(value)} for {where}", exchange=exchange
            )
    sent_amount = round_amount(market, amount)
    if sent_amount == 0:
        step = _plain(market.precision.amount)
        raise OrderRuleError("amount", f"amount {_plain(amount)} is smaller than the step {step} for {where}", exchange=exchange)
    if type == "market":
        check_order(market, side, sent_amount, None, reference_price or price, exchange=exchange)
        return sent_amount, None
    sent_price = round_price(market, price, side)
    if sent_price == 0:
        tick = _plain(market.precision.price)
        raise OrderRuleError("price", f"price {_plain(price)} is smaller than the tick {tick} for {where}", exchange=exchange)
    check_order(market, side, sent_amount, sent_price, exchange=exchange)
    return sent_amount, sent_price
