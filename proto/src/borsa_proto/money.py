"""Decimal fields that travel as decimal strings and refuse JSON numbers."""

from __future__ import annotations

import re
import types
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

# Exactly what str(Decimal) writes for finite values: no NaN, no Infinity, no "1_000", no spaces.
DECIMAL_PATTERN = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")

if TYPE_CHECKING:
    # Type checkers see a plain Decimal so callers build messages with Decimal("1.5").
    DecimalStr = Decimal
else:

    class DecimalStr(Decimal):
        """A Decimal field of a message; msgspec only hands custom types to our dec_hook.

        msgspec decodes a JSON number into a plain Decimal field even in strict mode, so money
        fields use this subclass, which the codec's dec_hook accepts from strings only.
        """

        __slots__ = ()


def parse_decimal(value: Any) -> Decimal:
    """The Decimal a wire value stands for; ValueError (named for a person) for anything else."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"expected a finite decimal, got {value}")
        return DecimalStr(value)
    if isinstance(value, bool | int | float):
        raise ValueError(f'expected a decimal string like "0.00123", got the JSON number {value!r}')
    if not isinstance(value, str):
        raise ValueError(f'expected a decimal string like "0.00123", got {type(value).__name__}')
    if not DECIMAL_PATTERN.fullmatch(value):
        raise ValueError(f'expected a decimal string like "0.00123", got {value!r}')
    try:
        return DecimalStr(value)
    except InvalidOperation:  # pragma: no cover - the pattern already rules these out
        raise ValueError(f"expected a decimal string, got {value!r}") from None


def is_money_type(annotation: Any) -> bool:
    """Whether a field holds a DecimalStr directly (`DecimalStr` or `DecimalStr | None`)."""
    if isinstance(annotation, types.UnionType):
        return DecimalStr in annotation.__args__
    return annotation is DecimalStr
