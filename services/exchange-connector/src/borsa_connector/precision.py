"""Fit an order to its market's steps and limits before it is sent, so no exchange rejects it for precision."""

from __future__ import annotations

from collections.abc import Callable
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


Failure = Callable[[str, str], OrderRuleError]


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
    fail = _failure(market, exchange)
    amount, price, reference_price = _positive(fail, amount=amount, price=price, reference_price=reference_price)
    step, tick = market.precision.amount, market.precision.price
    if not _on_step(amount, step):
        raise fail("amount", f"amount {_plain(amount)} is not a multiple of the step {_plain(step)}")
    if price is not None and not _on_step(price, tick):
        raise fail("price", f"price {_plain(price)} is not a multiple of the tick {_plain(tick)}")
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

    A market order sends no price (None comes back); a price given with one stands in for a
    missing reference_price in the cost check.
    """
    side = _side(side)
    if type not in ORDER_TYPES:
        raise BadRequest(f"type must be one of {', '.join(ORDER_TYPES)}, got {type!r}", exchange=exchange)
    fail = _failure(market, exchange)
    if type == "limit" and price is None:
        raise fail("price", "price is required with a limit order")
    # Report a zero or negative input as given, before rounding turns it into something else.
    amount, price, reference_price = _positive(fail, amount=amount, price=price, reference_price=reference_price)
    sent_amount = round_amount(market, amount)
    if sent_amount == 0:
        raise fail("amount", f"amount {_plain(amount)} is smaller than the step {_plain(market.precision.amount)}")
    if type == "market":
        check_order(market, side, sent_amount, None, reference_price or price, exchange=exchange)
        return sent_amount, None
    sent_price = round_price(market, price, side)
    if sent_price == 0:
        raise fail("price", f"price {_plain(price)} is smaller than the tick {_plain(market.precision.price)}")
    check_order(market, side, sent_amount, sent_price, exchange=exchange)
    return sent_amount, sent_price


def _failure(market: Market, exchange: str | None) -> Failure:
    where = f"{market.symbol} on {exchange}" if exchange else market.symbol

    def fail(field: str, text: str) -> OrderRuleError:
        return OrderRuleError(field, f"{text} for {where}", exchange=exchange)

    return fail


def _positive(fail: Failure, **values: Decimal | None) -> list[Decimal | None]:
    checked = []
    for field, value in values.items():
        if value is not None:
            value = _number(value)
            if value <= 0:
                raise fail(field, f"{field} must be greater than zero, got {_plain(value)}")
        checked.append(value)
    return checked


def _check_range(field: str, value: Decimal, limits: MinMax, fail: Failure, *, label: str | None = None) -> None:
    label = label or f"{field} {_plain(value)}"
    if limits.min is not None and value < limits.min:
        raise fail(field, f"{label} is below the minimum {_plain(limits.min)}")
    if limits.max is not None and value > limits.max:
        raise fail(field, f"{label} is above the maximum {_plain(limits.max)}")


def _to_step(value: Decimal, step: Decimal, *, toward: str) -> Decimal:
    """`value` on a multiple of `step`, rounded toward zero, floor or ceiling, with the step's decimals."""
    with localcontext(_exact_context(value, step)):
        quotient, remainder = divmod(value, step)  # quotient truncated toward zero, remainder has value's sign
        if toward == "floor" and remainder < 0:
            quotient -= 1
        elif toward == "ceiling" and remainder > 0:
            quotient += 1
        return (quotient * step).quantize(_quantum(step))


def _on_step(value: Decimal, step: Decimal) -> bool:
    with localcontext(_exact_context(value, step)):
        return value % step == 0


def _exact_product(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(_exact_context(a, b)) as context:
        context.prec += len(a.as_tuple().digits) + len(b.as_tuple().digits)
        return a * b


def _exact_context(*values: Decimal) -> Context:
    """A context wide enough that quotients, remainders and products of `values` are exact.

    Never the thread's context: ccxt's decimal_to_precision sets it to ROUND_HALF_UP and 28 digits.
    """
    high = max(0, *(v.adjusted() for v in values))
    low = min(0, *(v.as_tuple().exponent for v in values))
    return Context(
        prec=max(28, high - low + 3), rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
    )


def _quantum(step: Decimal) -> Decimal:
    # Results carry the step's decimals ("0.01230000" for a 0.00000001 step), whole numbers for steps of 1 and up.
    return Decimal(1).scaleb(min(0, step.as_tuple().exponent))


def _number(value: Decimal) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"expected a Decimal, got {type(value).__name__} {value!r}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"expected a finite decimal, got {value}")
    return value


def _side(side: str) -> str:
    if side not in SIDES:
        raise BadRequest(f"side must be buy or sell, got {side!r}")
    return str(side)


def _plain(value: Decimal) -> str:
    """A number as a person reads it: "0.00001", never "1E-5" nor "0.00001000"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
