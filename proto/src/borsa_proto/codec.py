"""The one JSON codec of the bus: a shared encoder and a typed decoder per message type, built once."""

from __future__ import annotations

import functools
import re
import types
import typing
from decimal import Decimal
from enum import EnumMeta
from typing import Any, TypeVar

import msgspec

from borsa_proto.money import DECIMAL_PATTERN, DecimalStr, parse_decimal

T = TypeVar("T")

_AT_PATH = re.compile(r"^(?P<reason>.*) - at `(?P<path>[^`]*)`$", re.DOTALL)
_MISSING = re.compile(r"missing required field `(?P<name>[^`]+)`")


class BadMessage(ValueError):
    """A payload that is not a valid `type_name`; `path` names the field (`$.fee.cost`)."""

    def __init__(self, type_name: str, reason: str, path: str | None = None) -> None:
        self.type_name = type_name
        self.reason = reason
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"invalid {type_name}{where}: {reason}")

    @property
    def field(self) -> str | None:
        """The dotted field name without the `$.` root (`fee.cost`), if there is one."""
        if not self.path or self.path == "$":
            return None
        return self.path.removeprefix("$.")

    @classmethod
    def from_msgspec(cls, type_: Any, exc: msgspec.DecodeError) -> BadMessage:
        type_name = getattr(type_, "__name__", repr(type_))
        text = str(exc)
        if not isinstance(exc, msgspec.ValidationError):
            return cls(type_name, f"not valid JSON ({text})")
        match = _AT_PATH.match(text)
        reason, path = (match["reason"], match["path"]) if match else (text, "$")
        missing = _MISSING.search(reason)
        if missing:
            path = f"{path}.{missing['name']}"
        if reason.startswith("Invalid enum value"):
            allowed = [e.value for e in _enums_at(type_, path)]
            if allowed:
                reason = f"{reason}; allowed: {', '.join(allowed)}"
        return cls(type_name, reason, path)


def _enums_at(type_: Any, path: str) -> list[Any]:
    """The enum members allowed at a `$.a[0].b` path, walking Struct fields and containers."""
    t = type_
    for part in path.split(".")[1:]:
        name, *indexes = part.split("[")
        t = _field_type(t, name)
        for _ in indexes:
            t = _element_type(t)
    return [member for arg in _union_args(t) if isinstance(arg, EnumMeta) for member in arg]


def _union_args(t: Any) -> tuple[Any, ...]:
    return typing.get_args(t) if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union else (t,)


def _field_type(t: Any, name: str) -> Any:
    for arg in _union_args(t):
        if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
            for f in msgspec.structs.fields(arg):
                if f.encode_name == name:
                    return f.type
    return None


def _element_type(t: Any) -> Any:
    for arg in _union_args(t):
        args = typing.get_args(arg)
        if args:
            return args[-1]
    return None


def _enc_hook(obj: Any) -> Any:
    # Messages hold money as DecimalStr, which msgspec hands here: positional notation keeps
    # "0.00000001" as written where str() would give "1E-8".
    if isinstance(obj, Decimal):
        return format(obj, "f")
    raise NotImplementedError(f"cannot encode {type(obj).__name__} on the bus")


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is DecimalStr:
        return parse_decimal(obj)
    raise NotImplementedError(f"no decoder for {type_!r}")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def encode(obj: Any) -> bytes:
    """JSON bytes of a message (money as decimal strings)."""
    return _encoder.encode(obj)


@functools.cache
def decoder(type_: type[T]) -> msgspec.json.Decoder[T]:
    """The cached typed decoder of a message type (or union)."""
    return msgspec.json.Decoder(type_, dec_hook=_dec_hook)


def decode(data: bytes | str, type_: type[T]) -> T:
    """Decode `data` into `type_`, or raise BadMessage naming the field at fault."""
    try:
        return decoder(type_).decode(data)
    except msgspec.DecodeError as exc:
        raise BadMessage.from_msgspec(type_, exc) from exc


def convert(obj: Any, type_: type[T]) -> T:
    """Build a message from Python builtins (a dict from HTTP JSON, a row), same rules as decode."""
    try:
        return msgspec.convert(obj, type_, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise BadMessage.from_msgspec(type_, exc) from exc


def to_builtins(obj: Any) -> Any:
    """The message as dicts, lists and strings, exactly as it would travel."""
    return msgspec.to_builtins(obj, enc_hook=_enc_hook)


def _schema_hook(type_: type) -> dict[str, Any]:
    if type_ is DecimalStr:
        return {"type": "string", "pattern": f"^{DECIMAL_PATTERN.pattern}$", "examples": ["0.00123"]}
    raise NotImplementedError


def json_schema(type_: Any) -> dict[str, Any]:
    """JSON Schema of a message type, money fields as decimal strings."""
    return msgspec.json.schema(type_, schema_hook=_schema_hook)
