"""The ccxt-backed `BaseExchangeAPI`: one implementation for every exchange, steered by per-exchange quirks."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
import weakref
from collections.abc import Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import structlog

from borsa_proto.exchange import (
    Balance,
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
from borsa_runtime.errors import AuthFailed, BadRequest, BorsaError, Internal, NotSupported, RequestTimeout
from borsa_runtime.redact import MASK
from borsa_runtime.simurl import point_to_sim

from ..budget import Budgets
from ..errors import translate
from ..markets import market_changes, market_from_ccxt
from ..symbols import SymbolIndex, normalize
from .base import BaseExchangeAPI

if TYPE_CHECKING:
    from ..accounts import AccountStore
    from ..orders import OrderDesk

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
    market_buy_needs_price: bool
    market_options: tuple[str, ...]
    secret_format: str
    credential_labels: dict[str, str]
    ohlcv_max_limit: int
    modes: tuple[str, ...]
    notes: tuple[str, ...]
    key_refusals: tuple[str, ...]
    ws_orders: bool
    ws_trades: bool


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
    # ccxt options that load_markets fills and parsing needs: copied from the public client to account clients.
    "market_options": (),
    # A market buy is sized in the quote currency, so ccxt needs a price to turn the amount into a cost.
    "market_buy_needs_price": False,
    # How the secret is written: plain text, base64 (Kraken) or a PEM private key (Coinbase CDP keys).
    "secret_format": "plain",
    "credential_labels": {},
    "ohlcv_max_limit": 500,
    "modes": ("live", "paper"),
    "notes": (),
    # Exchange error texts that mean "this key was refused" where ccxt maps them to a generic error.
    "key_refusals": (),
    # Does the account's private order stream (ccxt.pro watch_orders) work here, the simulator included? Decides
    # BORSA_ORDER_WS=auto; "on" tries every exchange whose ccxt.pro class has watchOrders.
    "ws_orders": False,
    # Does ccxt.pro hand some order changes of that stream to watch_my_trades instead (Kraken's partial fills)?
    # Then the stream follows both.
    "ws_trades": False,
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
KEY_MODES = ("live", "sandbox", "paper")
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
        rate_share: float = 1.0,
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
        self.rate_share = rate_share
        self.on_throttle = on_throttle
        self._clients: weakref.WeakSet = weakref.WeakSet()
        self.public = self.new_client()
        self._markets: dict[str, Market] = {}
        self.index = SymbolIndex({}, exchange=exchange_id)
        self.loaded_at: float | None = None

    # -- clients ----------------------------------------------------------------------------------------------
    def new_client(
        self,
        credentials: dict[str, str] | None = None,
        *,
        sandbox: bool = False,
        account: str | None = None,
        pro: bool = False,
    ):
        """A ccxt client pointed where this connector points (the simulator under BORSA_SIM_URL), sharing the
        process's loaded markets so no account client ever calls load_markets itself. `pro`: the ccxt.pro class,
        for websocket streams (its REST calls spend the same budgets)."""
        cls = getattr(ccxt_pro if pro else ccxt_async, self.ccxt_id)
        client = cls(
            {
                "enableRateLimit": True,
                "timeout": self.timeout_ms,
                "options": dict(self.q["options"]),
                **(credentials or {}),
            }
        )
        if sandbox:
            # Swaps urls['api'] for the testnet's: before the simulator rewrite, which it would otherwise undo.
            client.set_sandbox_mode(True)
        if self.sim_url:
            point_to_sim(client, self.sim_url)
        if not hasattr(self, "budgets"):
            report = self.on_throttle
            self.budgets = Budgets(
                self.id,
                client.rateLimit,
                scale=self.rate_limit_scale,
                share=self.rate_share,
                on_wait=(lambda seconds: report(self.id, seconds)) if report else None,
                max_wait_s=self.timeout_ms / 1000,
            )
        self.budgets.attach(client, account)
        public = getattr(self, "public", None)
        if public is not None:
            # One TLS context (and CA bundle) for the process instead of one per key: most of a client's memory.
            client.ssl_context = public.ssl_context
            if public.markets:
                self._share_markets(client)
        self._clients.add(client)
        return client

    def _share_markets(self, client) -> None:
        """The public client's loaded markets, by reference: one table in the process however many keys."""
        public = self.public
        if client is public:
            return
        client.set_markets_from_exchange(public)
        for key in self.q["market_options"]:  # tables load_markets keeps in options, not in markets
            if key in public.options:
                client.options[key] = public.options[key]

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

    # -- private order streams (order_streams.py) -------------------------------------------------------------
    def ws_orders_enabled(self, setting: str) -> bool:
        """BORSA_ORDER_WS applied to this exchange: never without ccxt.pro's watchOrders."""
        if setting == "off":
            return False
        cls = getattr(ccxt_pro, self.ccxt_id, None)
        if cls is None or not (cls().has or {}).get("watchOrders"):
            return False
        return setting == "on" or bool(self.q["ws_orders"])

    def stream_client(self, account_client, account: str):
        """A ccxt.pro client holding the same key as `account_client`, for that account's order stream only."""
        credentials = {
            name: value
            for name, needed in (account_client.requiredCredentials or {}).items()
            if needed and isinstance(value := getattr(account_client, name, None), str) and value
        }
        sandbox = bool(getattr(account_client, "isSandboxModeEnabled", False))
        return self.new_client(credentials, sandbox=sandbox, account=account, pro=True)

    async def subscribe_orders(self, client) -> bool:
        """Open the account's private stream and wait until the exchange confirms it. True when confirmed; False
        where ccxt has no separate step, and the stream counts as up once its first update arrives."""
        return False

    async def _confirmation(self, client, waits: set, what: str) -> set:
        """The first of `waits` (futures of the subscription) to finish within the client's timeout; none is a
        RequestTimeout saying `what` did not come, with every one of them cancelled."""
        done, _ = await asyncio.wait(waits, timeout=client.timeout / 1000, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            for waiting in waits:
                waiting.cancel()
            raise RequestTimeout(f"no {what} for the order stream subscription", exchange=self.id)
        return done

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
        for client in list(self._clients):  # account clients follow the reloaded table
            self._share_markets(client)
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
            if key and not self.index.matches(market.symbol, key):
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
            rate_limits=RateLimits(interval_ms=max(1, int(1000 / self.budgets.rate))),
            markets_count=len(self._markets),
            status="ok" if self.ready else "unknown",
            modes=modes,
            notes=list(self.q["notes"]),
        )

    # -- trading: orders.OrderDesk (exactly once, tracked); the connector sets `desk` when it has a database ------
    desk: OrderDesk | None = None

    def _desk(self) -> OrderDesk:
        if self.desk is None:
            raise NotSupported(
                f"the {self.id} connector has no DATABASE_URL, so it cannot record orders; it serves market data only",
                exchange=self.id,
            )
        return self.desk

    async def prepare_trading(self, client) -> None:
        """Run once per account client before its first order call; exchanges that must learn something about the
        account first override it."""

    async def create_order(self, request: OrderCreateRequest) -> Order:
        return await self._desk().create(request)

    async def get_order(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order:
        return await self._desk().get(account, symbol, id, client_order_id)

    async def cancel_order(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order:
        return await self._desk().cancel(account, symbol, id, client_order_id)

    async def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        return await self._desk().open_orders(account, symbol)

    # -- API keys: checks and balances (accounts.py keeps one client per stored key) --------------------------
    accounts: AccountStore | None = None
    """Stored keys and their clients; the connector sets it when it starts."""

    def credentials_from(self, raw: object) -> dict[str, str]:
        """A key's ccxt credential fields, checked: each field this exchange requires and no other. Only known
        fields reach ccxt's constructor, which would take `urls` or `options` from the same dict."""
        if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
            raise BadRequest(f"credentials for {self.id} must be an object of text fields", exchange=self.id)
        fields = self.credential_fields()
        known = set(self.public.requiredCredentials or {})
        extra = sorted(set(raw) - known)
        if extra:
            takes = ", ".join(f.name for f in fields)
            raise BadRequest(f"{extra[0]} is not a credential {self.id} uses; it takes {takes}", exchange=self.id)
        credentials = {name: value.strip() for name, value in raw.items() if value.strip()}
        missing = [f"{f.name} ({f.label})" for f in fields if f.name not in credentials]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise BadRequest(f"{', '.join(missing)} {verb} required for {self.id}", exchange=self.id)
        if self.q["secret_format"] == "base64" and not _is_base64(credentials.get("secret", "")):
            raise BadRequest(f"secret for {self.id} must be base64, exactly as the exchange shows it", exchange=self.id)
        return credentials

    def account_client(self, credentials: dict[str, str], mode: str, account: str | None = None):
        """A ccxt client holding one key; a sandbox key talks to the exchange's testnet."""
        if mode not in KEY_MODES or mode == "paper":
            raise BadRequest(f"a {mode} key has no exchange client; modes with one are live and sandbox")
        if mode == "sandbox" and not (self.public.urls or {}).get("test"):
            raise NotSupported(
                f"{self.id} has no sandbox (ccxt knows no testnet for it); use a live or paper key", exchange=self.id
            )
        client = self.new_client(credentials, sandbox=mode == "sandbox", account=account)
        exact = client.exceptions.setdefault("exact", {})  # each ccxt instance holds its own copy
        for code in self.q["key_refusals"]:
            exact[code] = ccxt_async.AuthenticationError
        return client

    @asynccontextmanager
    async def key_calling(self, client):
        """`calling` for a client holding a key: a refusal says the key was refused, and no credential value is
        ever repeated in the error, whatever the exchange echoed."""
        try:
            async with self.calling(client):
                yield
        except BorsaError as error:
            message = error.message
            for name in client.requiredCredentials or {}:
                value = getattr(client, name, None)
                if isinstance(value, str) and len(value) >= 4:
                    message = message.replace(value, MASK)
            if isinstance(error, AuthFailed):
                detail = error.exchange_code or message.removeprefix(self.id).lstrip(" :")
                message = f"{self.id} refused this API key: {detail}"
            error.message, error.args = message, (message,)
            raise error from None

    def _store(self) -> AccountStore:
        if self.accounts is None:
            raise Internal(f"the {self.id} connector serves no stored API keys", exchange=self.id)
        return self.accounts

    async def check_credentials(self, credentials: dict[str, str], mode: str) -> CredentialsCheckReply:
        """A key about to be stored: a balance call is the check. Paper keys need no credentials."""
        if mode not in KEY_MODES:
            raise BadRequest(f"mode must be one of {', '.join(KEY_MODES)}, got {mode!r}")
        if mode == "paper":
            return CredentialsCheckReply(ok=True)
        client = self.account_client(self.credentials_from(credentials), mode)
        try:
            async with self.key_calling(client):
                await client.fetch_balance()
        finally:
            await client.close()
        return CredentialsCheckReply(ok=True, balances_visible=True)

    async def check_account(self, account: str) -> CredentialsCheckReply:
        """A stored key, through its cached client."""
        async with self._store().lease(account) as lease:
            if getattr(lease.client, "paper", False):
                return CredentialsCheckReply(ok=True)
            async with self.key_calling(lease.client):
                await lease.client.fetch_balance()
        return CredentialsCheckReply(ok=True, balances_visible=True)

    async def balance(self, account: str) -> BalanceReply:
        async with self._store().lease(account) as lease, self.key_calling(lease.client):
            raw = await lease.client.fetch_balance()
        return balance_reply(raw)


def balance_reply(raw: dict) -> BalanceReply:
    """ccxt's free/used/total per currency as decimal strings; currencies with nothing in them are left out."""
    free, used, total = (raw.get(key) or {} for key in ("free", "used", "total"))
    balances = {}
    for code in sorted({*free, *used, *total}):
        f, u, t = to_decimal(free.get(code)), to_decimal(used.get(code)), to_decimal(total.get(code))
        # Some exchanges report two of the three: the third follows from total = free + used.
        if t is None:
            t = (f or Decimal(0)) + (u or Decimal(0))
        if f is None:
            f = t - (u or Decimal(0))
        if u is None:
            u = t - f
        if f or u or t:
            balances[code] = Balance(free=f, used=u, total=t)
    return BalanceReply(balances=balances)


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
