"""The gateway's view of borsa_strategies (DESIGN section 3): the strategies' param schemas and the checks of a
bot's params against its market, with their problems as the API's errors.

The bot runner runs the strategies; the gateway only validates what a trader asks for, with the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec

import borsa_strategies
from borsa_proto.exchange import Market
from borsa_strategies import params as strategy_params
from borsa_strategies.base import MarketRules, ParamsProblem
from borsa_strategies.params import DcaParams, GridParams, SmaCrossParams, params_json

from .errors import ApiError

__all__ = [
    "STRATEGIES",
    "DcaParams",
    "GridParams",
    "SmaCrossParams",
    "Strategy",
    "check_against_market",
    "params_json",
    "parse_params",
]


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    params: type[msgspec.Struct]

    def schema(self) -> dict:
        return borsa_strategies.schema(self.name)


STRATEGIES = {name: Strategy(name, s.description, s.Params) for name, s in borsa_strategies.STRATEGIES.items()}


@contextmanager
def _api_errors() -> Iterator[None]:
    try:
        yield
    except ParamsProblem as exc:
        raise ApiError(exc.code, exc.message, exc.field) from exc


def parse_params(strategy: str, params: Any) -> msgspec.Struct:
    with _api_errors():
        return strategy_params.parse_params(strategy, params)


def check_against_market(params: msgspec.Struct, market: Market, price: Decimal | None, exchange: str) -> None:
    """Each order the bot will place must meet the market's minimums, said in the quote currency."""
    with _api_errors():
        strategy_params.check_against_market(params, MarketRules.from_market(market), price, exchange)
