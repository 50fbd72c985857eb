"""The ccxt-backed `BaseExchangeAPI`: one implementation for every exchange, steered by per-exchange quirks."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, ClassVar, TypedDict

import ccxt.async_support as ccxt_async
import structlog

from borsa_proto.exchange import (
    BalanceReply,
    CredentialField,
    CredentialsCheckReply,
    Describe,
    Market,
    OhlcvReply,
    RateLimits,
    Ticker,
)
from borsa_proto.orders import Order
from borsa_proto.requests import OrderCreateRequest
from borsa_runtime.errors import BadRequest, NotSupported
from borsa_runtime.simurl import point_to_sim

from ..budget import RateBudget
from ..errors import translate
from ..markets import market_changes, market_from_ccxt
from ..symbols import SymbolIndex, normalize
from .base import BaseExchangeAPI

log = structlog.get_logger("borsa.connector.exchange")


class Quirks(TypedDict, total=False):
    """What differs between exchanges, as data. Every key is optional; DEFAULT_QUIRKS says what it means."""

    ccxt_id: str
    options: dict[str, Any]
    currency_aliases: dict[str, str]
    client_order_id_param: str
    client_order_id_max_length: int
    client_order_id_pattern: str
    fetch_order_by_client_id: bool
    secret_format: str
    credential_labels: dict[str, str]
    ohlcv_max_limit: int
    modes: tuple[str, ...]
    notes: tuple[str, ...]


DEFAULT_QUIRKS: Quirks = {
    # ccxt options merged into the client's: the place for "keep load_markets to spot".
    "options": {},
    # Native currency codes people still type (Kraken's XBT) -> ccxt's unified code.
    "currency_aliases": {},
    # The create_order param that carries our client order id; ccxt maps the unified one for most exchanges.
    "client_order_id_param": "clientOrderId",
    "client_order_id_max_length": 32,
    "client_order_id_pattern": r"^[A-Za-z0-9_-]+$",
    # Can ccxt fetch an order by client id? Where it cannot, the order is found by scanning open and closed orders.
    "fetch_order_by_client_id": False,
    # How the secret is written: plain text, base64 (Kraken) or a PEM private key (Coinbase CDP keys).
    "secret_format": "plain",
    "credential_labels": {},
    "ohlcv_max_limit": 500,
    "modes": ("live", "paper"),
    "notes": (),
}

CREDENTIAL_LABELS = {
    "apiKey": "API key",
    "secret": "API secret",
    "password": "Passphrase",
    "uid": "User ID",
    "login": "Login",
    "accountId": "Account ID",
    "privateKey": "Private key",
    "walletAddress": "Wallet address",
    "token": "Token",
}
SECRET_FIELDS = {"secret", "password", "privateKey", "token"}
HAS_KEYS = (
    "fetchTicker",
    "fetchTickers",
    "fetchOHLCV",
    "fetchOrderBook",
    "fetchBalance",
    "createOrder",
    "fetchOrder",
    "cancelOrder",
    "fetchOpenOrders",
    "fetchClosedOrders",
    "fetchMyTrades",
    "sandbox",
    "watchTicker",
)


def to_decimal(value: Any) -> Decimal | None:
    """ccxt's unified numbers are floats; str() gives the shortest exact decimal of the float."""
    if value is None:
        return None
    return Decimal(str(value))


class CcxtExchangeAPI(BaseExchangeAPI):
    """Any ccxt exchange. Subclasses only declare `quirks`; a method override is the exception and says why."""

    quirks: ClassVar[Quirks] = {}

    def __init__(
        self,
        exchange_id: str,
        *,
        sim_url: str | None = None,
        timeout_ms: int = 10_000,
        rate_limit_scale: float = 1.0,
        on_throttle: Callable[[str, float], None] | None = None,
        ccxt_id: str | None = None,
    ) -> None:
        self.id = exchange_id
        self.q: Quirks = {**DEFAULT_QUIRKS, **self.quirks}
        self.ccxt_id = ccxt_id or self.q.get("ccxt_id") or exchange_id
        if self.ccxt_id not in ccxt_async.exchanges:
            raise ValueError(f"ccxt has no exchange {self.ccxt_id!r}")
        self.sim_url = sim_url
        self.timeout_ms = timeout_ms
        self.rate_limit_scale = rate_limit_scale
        self.on_throttle = on_throttle
        self.public = self.new_client()
        self._markets: dict[str, Market] = {}
        self.index = SymbolIndex({}, exchange=exchange_id)
        self.loaded_at: float | None = None

    # -- clients ----------------------------------------------------------------------------------------------
    def new_client(self, credentials: dict[str, str] | None = None):
        """A ccxt client pointed where this connector points (the simulator under BORSA_SIM_URL), sharing the
        process's loaded markets so no account client ever calls load_markets itself."""
        cls = getattr(ccxt_async, self.ccxt_id)
        client = cls(
            {
                "enableRateLimit": True,
                "timeout": self.timeout_ms,
                "options": dict(self.q["options"]),
                **(credentials or {}),
            }
        )
        if self.sim_url:
            point_to_sim(client, self.sim_url)
        if not hasattr(self, "budget"):
            report = self.on_throttle
            self.budget = RateBudget.for_ccxt(
                client.rateLimit,
                self.rate_limit_scale,
                on_wait=(lambda seconds: report(self.id, seconds)) if report else None,
            )
        self.budget.attach(client)
        public = getattr(self, "public", None)
        if public is not None and public.markets:
            client.set_markets(public.markets, public.currencies)
        return client

    @asynccontextmanager
    async def calling(self, client=None):
        """Translate whatever the exchange call raises, once, with Retry-After when the exchange sent one."""
        try:
            yield
        except Exception as exc:
            headers = getattr(client or self.public, "last_response_headers", None) or {}
            retry_after = headers.get("Retry-After") or headers.get("retry-after")
            retry_ms = int(float(retry_after) * 1000) if retry_after and str(retry_after).isdigit() else None
            raise translate(exc, self.id, retry_ms) from exc

    async def close(self) -> None:
        await self.public.close()

    # -- markets ----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.refresh_markets()

    async def refresh_markets(self) -> list:
        async with self.calling():
            raw = await self.public.load_markets(reload=True)
        new = {}
        for symbol, market in raw.items():
            if market.get("spot", True) is False:
                continue
            try:
                new[symbol] = market_from_ccxt(market, self.public.precisionMode)
            except ValueError as exc:  # a market without usable precision cannot be traded safely: leave it out
                log.warning("market skipped", symbol=symbol, reason=str(exc))
        changes = market_changes(self._markets, new) if self._markets else []
        self._markets = new
        self.index = SymbolIndex({s: raw[s] for s in new}, self.q["currency_aliases"], exchange=self.id)
        self.loaded_at = time.time()
        return changes

    @property
    def ready(self) -> bool:
        return self.loaded_at is not None

    def markets(self, search: str | None = None, quote: str | None = None, active_only: bool = False) -> list[Market]:
        key = normalize(search) if search else ""
        quote_key = quote.upper() if quote else None
        out = []
        for market in self._markets.values():
            if active_only and not market.active:
                continue
            if quote_key and market.quote.upper() != quote_key:
                continue
            if key and key not in normalize(market.symbol) and key not in normalize(market.market_id):
                continue
            out.append(market)
        return sorted(out, key=lambda m: m.symbol)

    def market(self, symbol: str) -> Market:
        return self._markets[self.index.resolve(symbol)]

    # -- market data ------------------------------------------------------------------------------------------
    async def ticker(self, symbol: str) -> Ticker:
        market = self.market(symbol)
        async with self.calling():
            raw = await self.public.fetch_ticker(market.symbol)
        return Ticker(
            symbol=market.symbol,
            market_id=market.market_id,
            bid=to_decimal(raw.get("bid")),
            ask=to_decimal(raw.get("ask")),
            last=to_decimal(raw.get("last") or raw.get("close")),
            timestamp=int(raw.get("timestamp") or time.time() * 1000),
        )

    async def ohlcv(self, symbol: str, timeframe: str, since: int | None, limit: int | None) -> OhlcvReply:
        market = self.market(symbol)
        timeframes = self.public.timeframes or {}
        if timeframe not in timeframes:
            raise BadRequest(f"timeframe {timeframe!r} is not offered by {self.id}; use one of {', '.join(timeframes)}")
        maximum = self.q["ohlcv_max_limit"]
        if limit is not None and limit > maximum:
            raise BadRequest(f"limit must be at most {maximum} candles on {self.id}, got {limit}")
        async with self.calling():
            rows = await self.public.fetch_ohlcv(market.symbol, timeframe, since, limit)
        candles = [(int(r[0]), *(to_decimal(v) if v is not None else Decimal(0) for v in r[1:6])) for r in rows]
        return OhlcvReply(candles=candles, symbol=market.symbol, market_id=market.market_id, timeframe=timeframe)

    # -- about the exchange -----------------------------------------------------------------------------------
    def credential_fields(self) -> list[CredentialField]:
        labels = {**CREDENTIAL_LABELS, **self.q["credential_labels"]}
        required = self.public.requiredCredentials or {}
        return [
            CredentialField(name=name, label=labels.get(name, name), secret=name in SECRET_FIELDS)
            for name, needed in required.items()
            if needed
        ]

    def describe(self) -> Describe:
        has = self.public.has or {}
        modes = list(self.q["modes"])
        if has.get("sandbox") and "sandbox" not in modes:
            modes.insert(1, "sandbox")
        return Describe(
            id=self.id,
            name=self.public.name,
            mode="sim" if self.sim_url else "live",
            required_credentials=self.credential_fields(),
            has={key: bool(has.get(key)) for key in HAS_KEYS},
            rate_limits=RateLimits(interval_ms=max(1, int(1000 / self.budget.rate))),
            markets_count=len(self._markets),
            status="ok" if self.ready else "unknown",
            modes=modes,
            notes=list(self.q["notes"]),
        )

    # -- trading: built with per-account clients, order tracking and budgets ----------------------------------
    def _trading(self, verb: str) -> NotSupported:
        return NotSupported(f"{verb} is not served by this connector build yet", exchange=self.id)

    async def balance(self, account: str) -> BalanceReply:
        raise self._trading("balance")

    async def create_order(self, request: OrderCreateRequest) -> Order:
        raise self._trading("order.create")

    async def get_order(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order:
        raise self._trading("order.get")

    async def cancel_order(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order:
        raise self._trading("order.cancel")

    async def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        raise self._trading("orders.open")

    async def check_credentials(self, credentials: dict[str, str], mode: str) -> CredentialsCheckReply:
        raise self._trading("credentials.check")
