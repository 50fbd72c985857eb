"""Paper trading: a stand-in for a ccxt client that fills orders itself against the exchange's own market data.

A paper key's `Lease.client` is a `PaperClient`: the same async methods and unified dict shapes as a ccxt client, so
the order path (exactly-once creates, tracking, events, replies) runs unchanged. It reads the exchange's public
order book and ticker through the process's public client (on the shared rate budget) and never its private API.

- Market orders fill at once against the order book, level by level, as taker. What the book cannot fill (all of
  its levels taken) is dropped and the order ends `canceled` with what it filled, as an exchange expires it.
- A limit order that crosses the book fills as taker up to its price; the rest rests at its price and fills whole,
  as maker at its own price, when the market trades through it (buy: ask <= price, sell: bid >= price) during
  `match()`, which order tracking calls before each pass.
- Fees are charged in the QUOTE currency on every market (Binance really takes a buy's fee in the base asset; paper
  keeps one rule so a bot's quote budget is what it spends), at the market's taker or maker rate.
- A resting buy holds amount × price plus its maker fee in quote, a resting sell its amount in base (`used`).
- Balances, orders and trades live in Postgres, one transaction per change (paper_ledger.py). A key starts with
  `api_keys.paper_balances` ({"USDT": "10000"}), or with DEFAULT_STARTING_BALANCES when that is NULL.
- Canceling an order that is no longer open raises InvalidOrder ("already closed"): the order exists and can be
  fetched, so "not found" would mislead.
- The arithmetic (book walking, fees, what an order holds) is pure, in paper_fills.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
import weakref
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

import asyncpg
import structlog

from borsa_proto.exchange import Market, Ticker
from borsa_runtime.errors import BadRequest, BorsaError, InsufficientFunds, Internal, InvalidOrder, OrderNotFound

from . import paper_fills as pf
from .paper_ledger import CLOSED, OPEN, Balances, NewOrder, PaperLedger
from .precision import check_order

if TYPE_CHECKING:
    from .exchanges.ccxt_api import CcxtExchangeAPI

log = structlog.get_logger("borsa.connector.paper")

DEFAULT_STARTING_BALANCES: dict[str, Decimal] = {c: Decimal(10000) for c in ("USD", "USDT", "USDC", "EUR")}
CURRENCY_PATTERN = re.compile(r"^[A-Z0-9]{1,20}$")
# Levels asked for: deep enough for any bot's market order. A limit is required: KuCoin without one calls its
# SIGNED level2 endpoint (research/ccxt-offline.md, KuCoin), and 100 is in every exchange's cheapest weight band.
BOOK_DEPTH = 100
CLIENT_ID_MAX_LENGTH = 64


def parse_starting_balances(raw: Any, account_id: str = "") -> dict[str, Decimal] | None:
    """`api_keys.paper_balances` (jsonb text, or already decoded) as Decimals; None when the key sets none."""
    if raw is None:
        return None
    where = f"API key {account_id}" if account_id else "an API key"
    try:
        data = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError:
        raise Internal(f"{where} has paper_balances that are not JSON") from None
    if not isinstance(data, dict):
        raise Internal(f'{where} has paper_balances that are not an object of decimal strings ({{"USDT": "10000"}})')
    out = {}
    for currency, value in data.items():
        if not isinstance(currency, str) or not CURRENCY_PATTERN.match(currency):
            raise Internal(
                f"{where} has paper_balances with currency {currency!r}: codes are upper-case letters and digits"
            )
        try:
            amount = Decimal(value) if isinstance(value, str) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            raise Internal(f"{where} has paper_balances.{currency} = {value!r}: not a non-negative decimal string")
        out[currency] = amount
    return out


class _Quotes:
    """Best bid and ask per symbol, shared by every paper account of one exchange for `max_age` seconds, and one
    request at a time per symbol: matching a hundred accounts' orders on BTC/USDT costs one ticker request (and a
    resting order fills at most `max_age` late)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, Ticker]] = {}
        self._running: dict[str, asyncio.Future] = {}

    async def get(self, api: CcxtExchangeAPI, symbol: str, max_age: float) -> Ticker:
        seen = self._seen.get(symbol)
        if seen is not None and time.monotonic() - seen[0] <= max_age:
            return seen[1]
        running = self._running.get(symbol)
        if running is None:
            running = self._running[symbol] = asyncio.ensure_future(self._fetch(api, symbol))
            running.add_done_callback(lambda f, s=symbol: (self._running.pop(s, None), f.cancelled() or f.exception()))
        return await asyncio.shield(running)

    async def _fetch(self, api: CcxtExchangeAPI, symbol: str) -> Ticker:
        ticker = await api.ticker(symbol)
        self._seen[symbol] = (time.monotonic(), ticker)
        return ticker


# Keyed by the process's CcxtExchangeAPI (one per exchange), and gone with it.
_QUOTES: weakref.WeakKeyDictionary[Any, _Quotes] = weakref.WeakKeyDictionary()


class PaperClient:
    """One paper account. Numbers in returned dicts are Decimal, never float."""

    paper = True
    # What the order path reads off a ccxt client: a paper key has no credentials and no HTTP responses of its own.
    requiredCredentials: ClassVar[dict[str, bool]] = {}
    last_response_headers = None

    def __init__(
        self,
        api: CcxtExchangeAPI,
        account_id: str,
        pool: asyncpg.Pool,
        starting_balances: dict[str, Decimal] | None,
        *,
        quote_max_age_s: float = 1.0,
    ) -> None:
        self.api = api
        self.id = api.id
        self.account_id = account_id
        starting = DEFAULT_STARTING_BALANCES if starting_balances is None else starting_balances
        self.ledger = PaperLedger(pool, account_id, api.id, starting)
        self.quote_max_age_s = quote_max_age_s
        quotes = _QUOTES.get(api)
        if quotes is None:
            quotes = _QUOTES[api] = _Quotes()
        self._quotes = quotes

    async def close(self) -> None:
        """Nothing to release: the pool belongs to the account store, the public client to the process."""

    # -- orders -----------------------------------------------------------------------------------------------
    async def create_order(
        self, symbol: str, type: str, side: str, amount: Any, price: Any = None, params: dict | None = None
    ) -> dict:
        market = self.api.market(symbol)
        if side not in ("buy", "sell"):
            raise BadRequest(f"side must be buy or sell, got {side!r}", exchange=self.id)
        if type not in ("market", "limit"):
            raise BadRequest(f"type must be market or limit on a paper account, got {type!r}", exchange=self.id)
        if type == "limit" and price is None:
            raise InvalidOrder(f"price is required with a limit order ({market.symbol} on {self.id})", exchange=self.id)
        amount = _decimal("amount", amount, self.id)
        price = _decimal("price", price, self.id) if type == "limit" else None  # a market order's price is ignored
        if not market.active:
            raise InvalidOrder(f"{market.symbol} is not trading on {self.id} right now", exchange=self.id)
        client_order_id = _client_order_id(params or {}, self.id)
        levels = await self._book(market.symbol, side)
        if type == "market" and not levels:
            book_side = "asks" if side == "buy" else "bids"
            raise InvalidOrder(
                f"the {market.symbol} order book on {self.id} has no {book_side}: a market order has nothing to fill",
                exchange=self.id,
            )
        check_order(market, side, amount, price, levels[0][0] if type == "market" else None, exchange=self.id)
        taker, maker = self._rates(market)
        plan = pf.plan_order(side, type, amount, price, levels, step=market.precision.amount, taker=taker, maker=maker)
        if type == "market" and not plan.fills:
            raise InvalidOrder(
                f"the {market.symbol} order book on {self.id} has no level of at least one amount step "
                f"({market.precision.amount} {market.base}) for this market order",
                exchange=self.id,
            )
        # A market order the book could not fill whole ends canceled with what it filled, as an exchange expires it.
        status = (OPEN if plan.rest > 0 else CLOSED) if type == "limit" else ("canceled" if plan.unfilled else CLOSED)
        order = NewOrder(client_order_id, market.symbol, market.base, market.quote, side, type, amount, price)
        placed = await self.ledger.place(order, plan, status, lambda held: self._check_funds(market, plan, held))
        log.info(
            "paper order placed",
            account=self.account_id,
            order_id=placed["id"],
            symbol=market.symbol,
            side=side,
            type=type,
            status=status,
            fills=len(placed["trades"]),
        )
        return placed

    async def fetch_order(self, id: str | None, symbol: str | None = None, params: dict | None = None) -> dict:
        return await self.ledger.order(await self._order_row(id, symbol, params))

    async def cancel_order(self, id: str | None, symbol: str | None = None, params: dict | None = None) -> dict:
        row = await self._order_row(id, symbol, params)
        base, quote = _currencies(row["symbol"])
        order = await self.ledger.cancel(row["id"], base, quote)
        log.info("paper order canceled", account=self.account_id, order_id=row["id"])
        return order

    async def fetch_open_orders(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None, params: dict | None = None
    ) -> list[dict]:
        return await self.ledger.orders(self._symbol(symbol), since, limit, open_only=True)

    async def fetch_closed_orders(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None, params: dict | None = None
    ) -> list[dict]:
        """Closed and canceled orders."""
        return await self.ledger.orders(self._symbol(symbol), since, limit, open_only=False)

    async def fetch_my_trades(
        self, symbol: str | None = None, since: int | None = None, limit: int | None = None, params: dict | None = None
    ) -> list[dict]:
        """Oldest first, as ccxt lists them: the first `limit` from `since`, or the newest `limit` without it."""
        return await self.ledger.trades(self._symbol(symbol), since, limit)

    async def fetch_balance(self, params: dict | None = None) -> dict:
        out: dict[str, Any] = {"info": {"paper": True}, "free": {}, "used": {}, "total": {}}
        for currency, (free, used) in (await self.ledger.balances()).items():
            free, used = pf.tidy(free), pf.tidy(used)
            total = pf.tidy(pf.CONTEXT.add(free, used))
            out[currency] = {"free": free, "used": used, "total": total}
            out["free"][currency], out["used"][currency], out["total"][currency] = free, used, total
        return out

    # -- matching ---------------------------------------------------------------------------------------------
    async def match(self) -> list[str]:
        """Fill the resting orders the market has traded through; returns the ids of the orders that changed.

        A symbol whose ticker cannot be read is left for the next call; the others are still matched.
        """
        by_symbol: dict[str, list] = {}
        for row in await self.ledger.open_rows():
            by_symbol.setdefault(row["symbol"], []).append(row)
        changed = []
        for symbol, rows in by_symbol.items():
            try:
                ticker = await self._quotes.get(self.api, symbol, self.quote_max_age_s)
                market = self.api.market(symbol)
            except BorsaError as error:
                log.warning("paper matching skipped", account=self.account_id, symbol=symbol, error=error.message)
                continue
            _, maker = self._rates(market)
            for row in rows:
                if not _crossed(row["side"], row["price"], ticker):
                    continue
                if await self.ledger.fill_resting(row["id"], market.base, market.quote, maker):
                    log.info("paper order filled", account=self.account_id, order_id=row["id"])
                    changed.append(row["id"])
        return changed

    # -- helpers ----------------------------------------------------------------------------------------------
    def _check_funds(self, market: Market, plan: pf.Plan, balances: Balances) -> None:
        currency = market.quote if plan.side == "buy" else market.base
        free = balances.get(currency, (pf.ZERO, pf.ZERO))[0]
        if plan.need <= free:
            return
        if plan.side == "buy":
            rest_cost = pf.cost_of(plan.price, plan.rest) if plan.rest and plan.price else pf.ZERO
            cost = pf.CONTEXT.add(plan.cost, rest_cost)
            what = f"cost {_plain(cost)} + fee {_plain(pf.CONTEXT.subtract(plan.need, cost))} {currency}"
        else:
            what = f"the {market.base} it sells"
        raise InsufficientFunds(
            f"insufficient funds on paper account {self.account_id}: this {plan.side} of {_plain(plan.amount)} "
            f"{market.symbol} needs {_plain(plan.need)} {currency} ({what}) and {_plain(free)} {currency} is free",
            exchange=self.id,
        )

    def _rates(self, market: Market) -> tuple[Decimal, Decimal]:
        """The market's taker and maker rates; where the market lists none, the exchange's, else zero."""
        trading = (getattr(self.api.public, "fees", None) or {}).get("trading") or {}

        def rate(value, name: str) -> Decimal:
            if value is None:
                value = trading.get(name)
            return Decimal(str(value)) if value is not None else pf.ZERO

        return rate(market.taker, "taker"), rate(market.maker, "maker")

    async def _book(self, symbol: str, side: str) -> list[pf.Level]:
        """The side of the book an order of `side` takes, best first."""
        async with self.api.calling():
            book = await self.api.public.fetch_order_book(symbol, BOOK_DEPTH)
        raw = book.get("asks" if side == "buy" else "bids") or []
        return pf.best_first(((Decimal(str(level[0])), Decimal(str(level[1]))) for level in raw), side)

    def _symbol(self, symbol: str | None) -> str | None:
        return self.api.market(symbol).symbol if symbol else None

    async def _order_row(self, id: str | None, symbol: str | None, params: dict | None):
        client_order_id = (params or {}).get("clientOrderId")
        if not id and not client_order_id:
            raise BadRequest("an order id or params['clientOrderId'] is required", exchange=self.id)
        unified = self._symbol(symbol)
        row = await self.ledger.order_row(id, client_order_id)
        if row is None or (unified is not None and row["symbol"] != unified):
            what = f"id {id}" if id else f"clientOrderId {client_order_id!r}"
            where = f" for {unified}" if unified else ""
            raise OrderNotFound(f"no paper order with {what}{where} on this {self.id} account", exchange=self.id)
        return row


def _crossed(side: str, price: Decimal, ticker: Ticker) -> bool:
    if side == "buy":
        return ticker.ask is not None and ticker.ask <= price
    return ticker.bid is not None and ticker.bid >= price


def _currencies(symbol: str) -> tuple[str, str]:
    base, _, quote = symbol.partition("/")
    return base, quote.partition(":")[0]


def _decimal(field: str, value: Any, exchange: str) -> Decimal:
    if isinstance(value, Decimal | str | int) and not isinstance(value, bool):
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite() and number > 0:
            return number
    raise BadRequest(
        f"{field} must be a positive decimal (a Decimal or a decimal string, never a float), got {value!r}",
        exchange=exchange,
    )


def _client_order_id(params: dict, exchange: str) -> str:
    value = params.get("clientOrderId")
    if value is None:
        return uuid.uuid4().hex  # as an exchange names an order sent without one
    if not isinstance(value, str) or not 0 < len(value) <= CLIENT_ID_MAX_LENGTH:
        raise BadRequest(
            f"clientOrderId must be text of 1 to {CLIENT_ID_MAX_LENGTH} characters, got {value!r}", exchange=exchange
        )
    return value


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
