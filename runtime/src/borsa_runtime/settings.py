"""Typed settings from the environment that fail fast, naming the variable and what it accepts."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any, Self

import msgspec

from borsa_runtime.redact import MASK, mask_url_password


class SettingsError(ValueError):
    """The environment does not describe a service that can start; the message says what to set."""


class Secret:
    """A setting that must not show up in reprs or logs; `reveal()` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def secret(default: str | None = None, *, env: str | None = None) -> Any:
    """A Secret field. A default is for development only: from_env refuses it anywhere else."""
    value = Secret(default) if default is not None else None
    return msgspec.field(default=value, name=env) if env else msgspec.field(default=value)


class Env(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """What every service reads. Subclass to add fields.

    A field reads the variable given by `msgspec.field(name=...)`, or else `prefix + NAME`
    (`http_port` with prefix `BORSA_` reads `BORSA_HTTP_PORT`). An empty variable counts as unset.
    """

    nats_url: str = msgspec.field(default="nats://127.0.0.1:4222", name="NATS_URL")
    database_url: str | None = msgspec.field(default=None, name="DATABASE_URL")
    sim_url: str | None = msgspec.field(default=None, name="BORSA_SIM_URL")
    env: Env = msgspec.field(default=Env.DEVELOPMENT, name="BORSA_ENV")
    log_level: LogLevel = msgspec.field(default=LogLevel.INFO, name="LOG_LEVEL")
    log_format: LogFormat = msgspec.field(default=LogFormat.AUTO, name="LOG_FORMAT")

    @property
    def is_development(self) -> bool:
        return self.env == Env.DEVELOPMENT

    @classmethod
    def from_env(cls, prefix: str = "", environ: Mapping[str, str] | None = None) -> Self:
        environ = os.environ if environ is None else environ
        names = _variables(cls, prefix)
        raw: dict[str, Any] = {}
        for field in msgspec.structs.fields(cls):
            value = environ.get(names[field.name], "")
            if value != "":
                enum = _enum_of(field.type)
                raw[field.encode_name] = value.lower() if enum and issubclass(enum, StrEnum) else value
        try:
            settings = msgspec.convert(raw, cls, strict=False, dec_hook=_dec_hook)
        except msgspec.ValidationError as exc:
            raise SettingsError(_explain(cls, names, raw, exc)) from None
        settings._refuse_default_secrets(names)
        return settings

    def _refuse_default_secrets(self, names: Mapping[str, str]) -> None:
        if self.is_development:
            return
        for field in msgspec.structs.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Secret) and value == field.default:
                raise SettingsError(
                    f"{names[field.name]} must be set to a real secret: its built-in default is for development only, "
                    f"and BORSA_ENV is {self.env}"
                )

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{f.name}={mask_url_password(v) if isinstance(v := getattr(self, f.name), str) else v!r}"
            for f in msgspec.structs.fields(self)
        )
        return f"{type(self).__name__}({fields})"


def _variables(cls: type[Settings], prefix: str) -> dict[str, str]:
    """Field name -> environment variable."""
    return {
        f.name: f.encode_name if f.encode_name != f.name else f"{prefix}{f.name.upper()}"
        for f in msgspec.structs.fields(cls)
    }


def _dec_hook(type_: type, value: Any) -> Any:
    if type_ is Secret and isinstance(value, str):
        return Secret(value)
    raise NotImplementedError


def _union_args(t: Any) -> tuple[Any, ...]:
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        return typing.get_args(t)
    return (t,)


def _enum_of(t: Any) -> type[Enum] | None:
    return next((a for a in _union_args(t) if isinstance(a, type) and issubclass(a, Enum)), None)


def _allowed(t: Any) -> str:
    enum = _enum_of(t)
    if enum:
        return "one of " + ", ".join(str(m.value) for m in enum)
    literal = next((a for a in _union_args(t) if typing.get_origin(a) is typing.Literal), None)
    if literal is not None:
        return "one of " + ", ".join(map(str, typing.get_args(literal)))
    kinds = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Secret: "a string"}
    return " or ".join(kinds.get(a, getattr(a, "__name__", str(a))) for a in _union_args(t) if a is not type(None))


def _explain(cls: type[Settings], names: Mapping[str, str], raw: Mapping[str, Any], exc: Exception) -> str:
    text = str(exc)
    by_encode_name = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for encode_name, field in by_encode_name.items():
        if f"`$.{encode_name}`" in text:
            var = names[field.name]
            shown = "(hidden)" if _is_secret_type(field.type) else repr(raw.get(encode_name))
            return f"{var}={shown} is not valid: use {_allowed(field.type)}"
        if f"missing required field `{encode_name}`" in text:
            return f"{names[field.name]} is not set: it is required ({_allowed(field.type)})"
    return f"invalid settings: {text}"


def _is_secret_type(t: Any) -> bool:
    return Secret in _union_args(t)
