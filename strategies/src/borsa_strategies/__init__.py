"""Borsa's strategies by name: build one from its params and state, and the JSON Schema of its params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from borsa_proto import json_schema

from .base import ParamsProblem, Strategy
from .dca import DcaStrategy
from .grid import GridStrategy
from .params import params_json, parse_params
from .sma_cross import SmaCrossStrategy

STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (DcaStrategy, GridStrategy, SmaCrossStrategy)}


def build(name: str, params: Mapping[str, Any] | msgspec.Struct, state: Mapping[str, Any] | None = None) -> Strategy:
    """The strategy `name` with its params (JSON builtins or a params struct, checked either way) and the state it
    returned last time (None for a new bot); raises ParamsProblem."""
    if isinstance(params, msgspec.Struct):
        params = params_json(params)
    parsed = parse_params(name, params)
    return STRATEGIES[name](parsed, state)


def schema(name: str) -> dict:
    """The JSON Schema of the strategy's params, as `GET /api/v1/strategies` shows it."""
    raw = json_schema(STRATEGIES[name].Params)
    defs = raw.pop("$defs", {})
    ref = raw.get("$ref", "").rsplit("/", 1)[-1]
    out = defs.get(ref, raw)
    for prop in out.get("properties", {}).values():
        if prop.get("type") == "string" and "pattern" not in prop and "format" not in prop:
            prop.setdefault("description", 'a decimal string, e.g. "25.50"')
    return out


__all__ = ["STRATEGIES", "ParamsProblem", "Strategy", "build", "params_json", "parse_params", "schema"]
