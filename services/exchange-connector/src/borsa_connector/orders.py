"""Orders on the exchange, each placed exactly once (DESIGN section 7).

A create is fitted to the market (precision, limits: `invalid_order` without a call), its client order id fitted to
the exchange's rules, recorded in Postgres, and only then sent. A repeated create with the same client id, whether
concurrent, after a timeout or after a restart, never sends a second order:

- in this process it waits for the create already under way;
- recorded and placed: the recorded order, fresh from the exchange;
- recorded, outcome unknown (timeout, 5xx, dropped connection, a killed connector): the order is looked up at the
  exchange, by client id where ccxt can and by scanning open and recent closed orders where it cannot (Kraken,
  Coinbase). Found: that order. Not found: sent only once its sender is known to be gone (its database session
  ended, or it has had longer than a request can take), never blindly.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt
import structlog

from borsa_proto import convert
from borsa_proto.exchange import Market
from borsa_proto.orders import Fee, Fill, Order, OrderStatus, OrderType
from borsa_proto.requests import OrderCreateRequest
from borsa_runtime import errors as E

from .order_store import Claim, OrderStore
from .precision import prepare_order

if TYPE_CHECKING:
    from .accounts import AccountStore, Lease
    from .exchanges.ccxt_api import CcxtExchangeAPI
    from .tracker import OrderTracker

log = structlog.get_logger("borsa.connector.orders")

STATUSES = {s.value: s for s in OrderStatus}
STATUS_ALIASES = {"cancelled": OrderStatus.CANCELED, "filled": OrderStatus.CLOSED, "done": OrderStatus.CLOSED}
# Refusals: the exchange did not take the order, so the claim is released and a later create with the id is sent.
REFUSALS = (
    E.InvalidOrder,
    E.InsufficientFunds,
    E.BadRequest,
    E.UnknownSymbol,
    E.AuthFailed,
    E.PermissionDenied,
    E.RateLimited,
    E.NotSupported,
)
LOOKUP_DELAYS = (0.0, 0.25, 1.0)
RECENT_ORDERS = 10_000  # placed orders remembered in memory, so get and cancel right after need no database read
DB_DRAIN_SECONDS = 5.0  # an order just accepted may take a moment to be visible
WAIT_POLL_SECONDS = 0.1


def fit_client_order_id(client_order_id: str, max_length: int, pattern: str) -> str:
    """The id as the exchange will take it: unchanged when it fits, else a digest of it that does.

    Deterministic, so a retry of the same create sends the same id; the digest is hex, which every exchange takes.
    """
    if len(client_order_id) <= max_length and re.fullmatch(pattern, client_order_id):
        return client_order_id
    return hashlib.sha256(client_order_id.encode()).hexdigest()[:max_length]


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _fee(raw: dict) -> Fee | None:
    fee = raw.get("fee") or {}
    if fee.get("cost") is not None and fee.get("currency"):
        return Fee(cost=_decimal(fee["cost"]), currency=fee["currency"])
    total: dict[str, Decimal] = {}
    for item in raw.get("fees") or ():
        if item and item.get("cost") is not None and item.get("currency"):
            total[item["currency"]] = total.get(item["currency"], Decimal(0)) + _decimal(item["cost"])
    if len(total) == 1:
        ((currency, cost),) = total.items()
        return Fee(cost=cost, currency=currency)
    return None


def status_of(raw: dict, default: OrderStatus | None) -> OrderStatus | None:
    text = str(raw.get("status") or "").lower()
    return STATUSES.get(text) or STATUS_ALIASES.get(text) or default


def order_from_ccxt(
    raw: dict,
    *,
    exchange: str,
    account: str,
    market: Market,
    client_order_id: str | None,
    sent_amount: Decimal | None = None,
    sent_price: Decimal | None = None,
    type: str | None = None,
    side: str | None = None,
    default_status: OrderStatus = OrderStatus.OPEN,
) -> Order:
    """ccxt's unified order in Borsa's shape. Create replies are often sparse (Kraken and KuCoin return an id):
    what was sent fills the gaps, and amount and price are always the values sent when they are known."""
    now = int(time.time() * 1000)
    amount = sent_amount if sent_amount is not None else _decimal(raw.get("amount")) or Decimal(0)
    filled = _decimal(raw.get("filled")) or Decimal(0)
    remaining = _decimal(raw.get("remaining"))
    if remaining is None or sent_amount is not None:
        remaining = max(amount - filled, Decimal(0))
    order_type = type or raw.get("type") or OrderType.LIMIT
    price = sent_price if sent_price is not None else _decimal(raw.get("price"))
    if order_type == OrderType.MARKET and sent_amount is not None:
        price = None  # a market order is sent without a price
    average = _decimal(raw.get("average"))
    cost = _decimal(raw.get("cost"))
    if cost is None:
        cost = filled * average if average is not None else Decimal(0)
    if average is None and filled > 0 and cost > 0:
        average = cost / filled
    status = status_of(raw, default_status)
    if status == OrderStatus.OPEN and amount > 0 and filled >= amount:
        status = OrderStatus.CLOSED
    created = int(raw.get("timestamp") or now)
    return Order(
        exchange=exchange,
        account=account,
        id=str(raw["id"]),
        client_order_id=client_order_id,
        symbol=market.symbol,
        market_id=market.market_id,
        side=side or raw.get("side"),
        type=str(order_type),
        status=status,
        amount=amount,
        filled=filled,
        remaining=remaining,
        price=price,
        average=average,
        cost=cost,
        fee=_fee(raw),
        created_at=created,
        updated_at=int(raw.get("lastUpdateTimestamp") or raw.get("lastTradeTimestamp") or created),
    )


def fills_from_trades(trades: Iterable[dict], order_id: str) -> list[Fill]:
    """ccxt's trades of one order as Borsa fills (trade id, price, amount, fee and its currency)."""
    fills = []
    for trade in trades:
        if str(trade.get("order")) != order_id or trade.get("id") is None:
            continue
        fee = trade.get("fee") or {}
        fills.append(
            Fill(
                trade_id=str(trade["id"]),
                price=_decimal(trade.get("price")),
                amount=_decimal(trade.get("amount")),
                fee_cost=_decimal(fee.get("cost")),
                fee_currency=fee.get("currency"),
                timestamp=int(trade.get("timestamp") or time.time() * 1000),
            )
        )
    return fills


class OrderDesk:
    """order.create / order.get / order.cancel / orders.open for one exchange."""

    def __init__(
        self,
        api: CcxtExchangeAPI,
        accounts: AccountStore,
        store: OrderStore,
        tracker: OrderTracker | None = None,
        *,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.api = api
        self.accounts = accounts
        self.store = store
        self.tracker = tracker
        # No create can still be in flight after this long: its HTTP call has timed out and been looked up.
        self.claim_patience_s = request_timeout_s * 2 + 2
        self._inflight: dict[tuple[str, str], asyncio.Future] = {}
        self._recent: OrderedDict[tuple[str, str], Claim] = OrderedDict()
        self._recent_ids: dict[tuple[str, str], tuple[str, str]] = {}
        self._writes: dict[tuple[str, str], asyncio.Task] = {}
        self._prepared: set[int] = set()

    # -- order.create -----------------------------------------------------------------------------------------
    async def create(self, request: OrderCreateRequest) -> Order:
        api = self.api
        market = api.market(request.symbol)
        reference = await self._reference_price(market, request)
        amount, price = prepare_order(
            market, request.side, request.type, request.amount, request.price, reference, exchange=api.id
        )
        key = (request.account, request.client_order_id)
        running = self._inflight.get(key)
        if running is not None:  # the same create, already under way in this process
            return await asyncio.shield(running)
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if nobody waits
        self._inflight[key] = future
        try:
            order = await self._create(request, market, amount, price, reference)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            raise
        else:
            future.set_result(order)
            return order
        finally:
            del self._inflight[key]

    async def _create(
        self, request: OrderCreateRequest, market: Market, amount: Decimal, price: Decimal | None, reference
    ) -> Order:
        api = self.api
        async with self.accounts.lease(request.account) as lease:
            client = lease.client
            sent_id = self._fit(client, request.client_order_id)
            fields = {
                "symbol": market.symbol,
                "market_id": market.market_id,
                "side": str(request.side),
                "type": str(request.type),
                "amount": amount,
                "price": price,
            }
            deadline = time.monotonic() + self.claim_patience_s + 5
            while True:
                claim = await self.store.claim(request.account, request.client_order_id, sent_id, **fields)
                if claim is not None:
                    return await self._send(lease, market, claim, reference)
                claim = await self.store.get(request.account, request.client_order_id)
                if claim is None:
                    continue  # released between our insert and our read: claim it again
                if not claim.same_order(market.symbol, str(request.side), str(request.type), amount, price):
                    raise E.BadRequest(
                        f"client_order_id {request.client_order_id!r} was already used for another order "
                        f"({claim.side} {claim.amount} {claim.symbol} {claim.type}); use a new client_order_id",
                        exchange=api.id,
                    )
                if claim.state == "placed":
                    return await self._current(lease, market, claim)
                found = await self._find(lease, market, claim.sent_client_order_id, attempts=1)
                if found is not None:
                    return await self._adopt(request.account, market, claim, found)
                patient = claim.age_seconds < self.claim_patience_s and time.monotonic() < deadline
                if patient and claim.claimed_by != self.store.instance and await self.store.alive(claim.claimed_by):
                    await asyncio.sleep(WAIT_POLL_SECONDS)  # its sender is alive and may still be sending
                    continue
                taken = await self.store.take_over(claim)
                if taken is not None:
                    log.info("create taken over", client_order_id=request.client_order_id, previous=claim.claimed_by)
                    return await self._send(lease, market, taken, reference)

    def _fit(self, client, client_order_id: str) -> str:
        q = self.api.q
        if getattr(client, "paper", False):
            return fit_client_order_id(client_order_id, 64, r"^[\x21-\x7e]+$")
        return fit_client_order_id(client_order_id, q["client_order_id_max_length"], q["client_order_id_pattern"])

    async def _reference_price(self, market: Market, request: OrderCreateRequest) -> Decimal | None:
        """A market order's price for the minimum-cost check (and Coinbase's market buys, sized in quote)."""
        if request.type != OrderType.MARKET:
            return None
        if market.limits.cost.min is None and not self.api.q.get("market_buy_needs_price"):
            return None
        ticker = await self.api.ticker(market.symbol)
        return (ticker.ask if request.side == "buy" else ticker.bid) or ticker.last

    async def _send(self, lease: Lease, market: Market, claim: Claim, reference: Decimal | None) -> Order:
        api, client = self.api, lease.client
        params = {self._param(client): claim.sent_client_order_id}
        price = claim.price
        if claim.type == OrderType.MARKET:
            price = reference if (claim.side == "buy" and api.q.get("market_buy_needs_price")) else None
        try:
            api.budgets.check(claim.account)
            await self._prepare(client)
            async with api.key_calling(client):
                raw = await client.create_order(
                    market.symbol, claim.type, claim.side, _wire(claim.amount), _wire(price), params
                )
        except E.BorsaError as error:
            if isinstance(error, REFUSALS) and not _says_duplicate(error):
                return await self._refused(lease, market, claim, error)
            return await self._resolve(lease, market, claim, error)
        order = order_from_ccxt(
            raw,
            exchange=api.id,
            account=claim.account,
            market=market,
            client_order_id=claim.client_order_id,
            sent_amount=claim.amount,
            sent_price=claim.price,
            type=claim.type,
            side=claim.side,
        )
        if claim.type == OrderType.MARKET and raw.get("status") is None:
            order = await self._fresh(lease, market, claim, order.id, fallback=order)  # sparse: what filled?
        self._placed(claim, order)
        return order

    async def _refused(self, lease: Lease, market: Market, claim: Claim, error: E.BorsaError) -> Order:
        """The exchange refused the create: the claim is released, so a later create with the id is sent afresh.
        A send taken over from a sender that is gone looks the order up first: that sender's attempt may have reached
        the exchange after our lookup, and some exchanges answer a repeated client id with a plain "invalid order"
        (Kraken), so forgetting the claim would leave that order untracked. If the lookup fails, the claim stays
        and order tracking settles it."""
        if claim.attempt > 1:
            try:
                found = await self._find(lease, market, claim.sent_client_order_id)
            except E.BorsaError as lookup_error:
                log.warning("order lookup failed", client_order_id=claim.client_order_id, error=lookup_error.message)
                raise error from None
            if found is not None:
                return await self._adopt(claim.account, market, claim, found)
        await self.store.release(claim)
        raise error

    async def _resolve(self, lease: Lease, market: Market, claim: Claim, error: E.BorsaError) -> Order:
        """The create's outcome is unknown: the exchange may hold the order. Look it up; never re-send here."""
        log.warning(
            "create outcome unknown; looking the order up",
            client_order_id=claim.client_order_id,
            error_code=error.code,
            error=error.message,
        )
        try:
            found = await self._find(lease, market, claim.sent_client_order_id)
        except E.BorsaError as lookup_error:
            log.warning("order lookup failed", client_order_id=claim.client_order_id, error=lookup_error.message)
            found = None
        if found is not None:
            return await self._adopt(claim.account, market, claim, found)
        raise E.ExchangeUnavailable(
            f"{self.api.id} did not confirm order {claim.client_order_id} ({error.message}) and it is not there yet; "
            "send the same create again (same client_order_id): it is looked up first and never placed twice",
            exchange=self.api.id,
            exchange_code=error.exchange_code,
        )

    async def _adopt(self, account: str, market: Market, claim: Claim, raw: dict) -> Order:
        order = order_from_ccxt(
            raw,
            exchange=self.api.id,
            account=account,
            market=market,
            client_order_id=claim.client_order_id,
            sent_amount=claim.amount,
            sent_price=claim.price,
            type=claim.type,
            side=claim.side,
        )
        self._placed(claim, order)
        return order

    async def _current(self, lease: Lease, market: Market, claim: Claim) -> Order:
        """A create already placed: the order as it is now (or as last seen, if the exchange cannot say)."""
        last = claim.last_order
        fallback = _order(last) if last else None
        return await self._fresh(lease, market, claim, claim.order_id, fallback=fallback)

    async def _fresh(self, lease: Lease, market: Market, claim: Claim, order_id: str, fallback: Order | None) -> Order:
        try:
            async with self.api.key_calling(lease.client):
                raw = await lease.client.fetch_order(order_id, market.symbol)
        except E.BorsaError:
            if fallback is None:
                raise
            return fallback
        order = order_from_ccxt(
            raw,
            exchange=self.api.id,
            account=claim.account,
            market=market,
            client_order_id=claim.client_order_id,
            sent_amount=claim.amount,
            sent_price=claim.price,
            type=claim.type,
            side=claim.side,
        )
        return order

    async def _find(self, lease: Lease, market: Market, sent_id: str, attempts: int = len(LOOKUP_DELAYS)):
        """The exchange's order with this client id (as sent), or None."""
        client = lease.client
        for delay in LOOKUP_DELAYS[:attempts]:
            await asyncio.sleep(delay)
            await self._prepare(client)
            async with self.api.key_calling(client):
                if self._by_client_id(client):
                    try:
                        return await client.fetch_order(None, market.symbol, {"clientOrderId": sent_id})
                    except Exception as exc:
                        if not _not_found(exc):
                            raise
                        continue
                for fetch in (client.fetch_open_orders, client.fetch_closed_orders):
                    for raw in await fetch(market.symbol):
                        if raw.get("clientOrderId") == sent_id:
                            return raw
        return None

    def _by_client_id(self, client) -> bool:
        return bool(getattr(client, "paper", False) or self.api.q["fetch_order_by_client_id"])

    def _param(self, client) -> str:
        return "clientOrderId" if getattr(client, "paper", False) else self.api.q["client_order_id_param"]

    async def _prepare(self, client) -> None:
        """Once per client, whatever the exchange needs before trading (KuCoin: which order endpoints)."""
        if id(client) in self._prepared or getattr(client, "paper", False):
            return
        async with self.api.key_calling(client):
            await self.api.prepare_trading(client)
        self._prepared.add(id(client))

    async def settle(self, lease: Lease, claim: Claim) -> Claim:
        """A create whose outcome is unknown and that nobody is sending any more: adopt the order if the exchange
        has it. Used by order tracking; an order not found stays unknown until its create is retried."""
        if (claim.account, claim.client_order_id) in self._inflight or claim.age_seconds < self.claim_patience_s:
            return claim
        market = self.api.market(claim.symbol)
        raw = await self._find(lease, market, claim.sent_client_order_id, attempts=1)
        if raw is None:
            return claim
        await self._adopt(claim.account, market, claim, raw)
        return self._recent.get((claim.account, claim.client_order_id), claim)

    def _placed(self, claim: Claim, order: Order) -> None:
        """The exchange has the order: remember it here (a cancel right after needs no database read) and record
        it in the background. If the process dies first, the claim is still there and a lookup finds the order."""
        placed = replace(claim, state="placed", order_id=order.id, status=str(order.status), filled=order.filled)
        key = (claim.account, claim.client_order_id)
        self._recent[key] = placed
        self._recent_ids[(claim.account, order.id)] = key
        while len(self._recent) > RECENT_ORDERS:
            (account, _), old = self._recent.popitem(last=False)
            self._recent_ids.pop((account, old.order_id), None)
        self._record(order)

    def _record(self, order: Order) -> None:
        """Record what the exchange said about an order (and publish its event), after the reply and in order:
        one order's writes never overtake each other."""
        key = (order.account, order.client_order_id)
        previous = self._writes.get(key)

        async def write() -> None:
            # This task starts before the caller's reply is written (it is created on the way to the reply, and
            # nats-py writes from a task of its own): one turn of the loop first lets the reply go out.
            await asyncio.sleep(0)
            if previous is not None:
                await asyncio.wait([previous])
            try:
                if self.tracker is not None:
                    await self.tracker.record(order)
                else:
                    await self.store.record(order)
            except Exception as exc:  # the claim stays; tracking or a retried create settles it
                log.warning("order not recorded yet", order_id=order.id, error=f"{type(exc).__name__}: {exc}")

        task = asyncio.create_task(write())
        self._writes[key] = task
        task.add_done_callback(lambda t: self._writes.pop(key, None) if self._writes.get(key) is t else None)

    async def drain(self) -> None:
        """Wait for the writes in flight (at shutdown)."""
        if self._writes:
            await asyncio.wait(list(self._writes.values()), timeout=DB_DRAIN_SECONDS)

    # -- order.get / order.cancel / orders.open ---------------------------------------------------------------
    async def get(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order:
        market = self.api.market(symbol)
        async with self.accounts.lease(account) as lease:
            claim, order_id = await self._locate(lease, market, account, id, client_order_id)
            await self._prepare(lease.client)
            async with self.api.key_calling(lease.client):
                raw = await lease.client.fetch_order(order_id, market.symbol)
        order = self._from_claim(raw, market, account, claim)
        if claim is not None and (str(order.status), order.filled) != (claim.status, claim.filled):
            self._record(order)
        return order

    async def cancel(self, account: str, symbol: str, id: str | None, client_order_id: str | None) -> Order:
        market = self.api.market(symbol)
        async with self.accounts.lease(account) as lease:
            client = lease.client
            claim, order_id = await self._locate(lease, market, account, id, client_order_id)
            self.api.budgets.check(account)
            await self._prepare(client)
            async with self.api.key_calling(client):
                raw = await client.cancel_order(order_id, market.symbol)
            if raw is None or raw.get("status") is None or raw.get("amount") is None:
                # Kraken answers {"count": 1}, KuCoin an id: ask for the order as it is now.
                async with self.api.key_calling(client):
                    raw = await client.fetch_order(order_id, market.symbol)
        order = self._from_claim(raw, market, account, claim)
        if claim is not None:
            self._record(order)
        return order

    async def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        market = self.api.market(symbol) if symbol else None
        async with self.accounts.lease(account) as lease:
            await self._prepare(lease.client)
            async with self.api.key_calling(lease.client):
                raws = await lease.client.fetch_open_orders(market.symbol if market else None)
        ids = await self.store.client_ids(account, [r["clientOrderId"] for r in raws if r.get("clientOrderId")])
        orders = []
        for raw in raws:
            try:
                raw_market = market or self.api.market(raw["symbol"])
            except E.BorsaError:
                continue  # a market this connector does not serve (not spot, or delisted)
            cid = raw.get("clientOrderId")
            orders.append(
                order_from_ccxt(
                    raw, exchange=self.api.id, account=account, market=raw_market, client_order_id=ids.get(cid, cid)
                )
            )
        return orders

    async def _locate(
        self, lease: Lease, market: Market, account: str, id: str | None, client_order_id: str | None
    ) -> tuple[Claim | None, str]:
        """The exchange id of the order meant, and Borsa's record of it if Borsa placed it."""
        if id:
            key = self._recent_ids.get((account, id))
            claim = self._recent.get(key) if key else None
            return claim or await self.store.by_order_id(account, id), id
        claim = self._recent.get((account, client_order_id)) or await self.store.get(account, client_order_id)
        if claim is not None and claim.order_id:
            return claim, claim.order_id
        sent_id = claim.sent_client_order_id if claim is not None else client_order_id
        raw = await self._find(lease, market, sent_id, attempts=1)
        if raw is None:
            raise E.OrderNotFound(
                f"no order with client_order_id {client_order_id!r} on {self.api.id} for {market.symbol}",
                exchange=self.api.id,
            )
        if claim is not None:
            await self._adopt(account, market, claim, raw)
        return claim, str(raw["id"])

    def _from_claim(self, raw: dict, market: Market, account: str, claim: Claim | None) -> Order:
        if claim is None:
            return order_from_ccxt(
                raw, exchange=self.api.id, account=account, market=market, client_order_id=raw.get("clientOrderId")
            )
        return order_from_ccxt(
            raw,
            exchange=self.api.id,
            account=account,
            market=market,
            client_order_id=claim.client_order_id,
            sent_amount=claim.amount,
            sent_price=claim.price,
            type=claim.type,
            side=claim.side,
        )


def _wire(value: Decimal | None) -> str | None:
    """ccxt takes numbers as strings too, and sends them as given: no float ever carries an amount."""
    return None if value is None else format(value, "f")


def _order(data: dict) -> Order:
    return convert(data, Order)


def _says_duplicate(error: E.BorsaError) -> bool:
    """The exchange refused the create because an order with this client id exists: ours, from an attempt whose
    answer was lost. That is an unknown outcome to resolve by lookup, not a refusal."""
    return "duplicate" in error.message.lower() or "already in use" in error.message.lower()


def _not_found(exc: Exception) -> bool:
    return isinstance(exc, E.OrderNotFound | ccxt.OrderNotFound)
