"""`BaseExchangeAPI`: every exchange function the platform uses, in Borsa's own types."""

from __future__ import annotations

from abc import ABC, abstractmethod

from borsa_proto.exchange import BalanceReply, CredentialsCheckReply, Describe, Market, OhlcvReply, Ticker
from borsa_proto.orders import Order
from borsa_proto.requests import OrderCreateRequest


class BaseExchangeAPI(ABC):
    """One exchange as Borsa sees it. Symbols may be unified or native; replies carry both."""

    id: str

    @abstractmethod
    async def start(self) -> None:
        """Load markets; the connector reports ready only after this returns."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def refresh_markets(self) -> list:
        """Reload markets; returns what changed (precision, limits, active, added, removed)."""

    @abstractmethod
    def describe(self) -> Describe: ...

    @abstractmethod
    def markets(
        self, search: str | None = None, quote: str | None = None, active_only: bool = False
    ) -> list[Market]: ...

    @abstractmethod
    def market(self, symbol: str) -> Market:
        """Resolve any spelling of a symbol; UnknownSymbol with close matches otherwise."""

    @abstractmethod
    async def ticker(self, symbol: str) -> Ticker: ...

    @abstractmethod
    async def ohlcv(self, symbol: str, timeframe: str, since: int | None, limit: int | None) -> OhlcvReply: ...

    # -- trading: implemented with order tracking and rate budgets per account -------------------------------
    @abstractmethod
    async def balance(self, account: str) -> BalanceReply: ...

    @abstractmethod
    async def create_order(self, request: OrderCreateRequest) -> Order: ...

    @abstractmethod
    async def get_order(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order: ...

    @abstractmethod
    async def cancel_order(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order: ...

    @abstractmethod
    async def open_orders(self, account: str, symbol: str | None) -> list[Order]: ...

    @abstractmethod
    async def check_credentials(self, credentials: dict[str, str], mode: str) -> CredentialsCheckReply: ...
