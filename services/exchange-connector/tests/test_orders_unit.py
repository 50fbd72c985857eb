"""The pure parts of the order path: client ids fitted to each exchange, ccxt orders and trades in Borsa's shape,
and order events whose ids depend on their content only."""

from __future__ import annotations

import contextlib
import re
from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from borsa_connector import orders
from borsa_connector.exchanges.ccxt_api import DEFAULT_QUIRKS
from borsa_connector.exchanges.registry import resolve_exchange
from borsa_connector.order_store import Claim
from borsa_connector.orders import fills_from_trades, fit_client_order_id, order_from_ccxt
from borsa_connector.tracker import event_id, kind_of, mark_of
from borsa_proto.exchange import Limits, Market, MinMax, Precision
from borsa_proto.orders import Fill, Order
from borsa_runtime import errors as E

MARKET = Market(
    symbol="BTC/USD",
    market_id="XXBTZUSD",
    base="BTC",
    quote="USD",
    active=True,
    precision=Precision(amount=Decimal("0.00000001"), price=Decimal("0.1")),
    limits=Limits(amount=MinMax(min=Decimal("0.0001")), cost=MinMax(), price=MinMax()),
    maker=Decimal("0.0016"),
    taker=Decimal("0.0026"),
)


def all_quirks(exchange: str) -> dict:
    _, cls = resolve_exchange(exchange)
    return {**DEFAULT_QUIRKS, **cls.quirks}


def quirks(exchange: str) -> tuple[int, str]:
    q = all_quirks(exchange)
    return q["client_order_id_max_length"], q["client_order_id_pattern"]


@given(st.text(min_size=1, max_size=120))
def test_every_client_id_fits_every_exchange_and_always_the_same_way(client_order_id: str) -> None:
    for exchange in ("binance", "kraken", "coinbase", "kucoin"):
        length, pattern = quirks(exchange)
        sent = fit_client_order_id(client_order_id, length, pattern)
        assert len(sent) <= length and re.fullmatch(pattern, sent)
        assert fit_client_order_id(client_order_id, length, pattern) == sent


def test_an_id_that_fits_is_sent_unchanged_and_a_long_one_is_digested() -> None:
    assert fit_client_order_id("bot-7-000042", 18, r"^[A-Za-z0-9_-]+$") == "bot-7-000042"
    long = "bot-6f1c0ad8-2f0e-4a55-9a37-1c5f4d1ab0c2-000042"
    digested = fit_client_order_id(long, 18, r"^[A-Za-z0-9_-]+$")
    assert len(digested) == 18 and digested != long[:18]
    assert fit_client_order_id(long.replace("42", "43"), 18, r"^[A-Za-z0-9_-]+$") != digested


def test_a_sparse_create_reply_is_completed_with_what_was_sent() -> None:
    """Kraken's AddOrder answer parses to an id and little else."""
    order = order_from_ccxt(
        {"id": "OABC-1", "status": None, "amount": None, "filled": None, "price": None},
        exchange="kraken",
        account="acc",
        market=MARKET,
        client_order_id="bot-1",
        sent_amount=Decimal("0.01"),
        sent_price=Decimal("50000.1"),
        type="limit",
        side="buy",
    )
    assert (order.status, order.amount, order.filled, order.remaining) == ("open", Decimal("0.01"), 0, Decimal("0.01"))
    assert order.price == Decimal("50000.1") and order.market_id == "XXBTZUSD" and order.client_order_id == "bot-1"


def test_amounts_are_never_floats_and_the_reply_keeps_the_amount_sent() -> None:
    order = order_from_ccxt(
        {
            "id": 1,
            "status": "closed",
            "amount": 0.009999,
            "filled": 0.01,
            "cost": 500.5,
            "average": 50050.0,
            "fee": {"cost": 0.5005, "currency": "USD"},
            "timestamp": 1700000000000,
        },
        exchange="kraken",
        account="acc",
        market=MARKET,
        client_order_id=None,
        sent_amount=Decimal("0.01"),
        type="market",
        side="buy",
    )
    assert order.amount == Decimal("0.01") and order.price is None  # a market order is sent without a price
    assert order.cost == Decimal("500.5") and order.fee.cost == Decimal("0.5005") and order.remaining == 0
    assert all(isinstance(v, Decimal) for v in (order.amount, order.filled, order.cost, order.average))


def test_fills_are_the_trades_of_that_order_only() -> None:
    trades = [
        {
            "id": "t1",
            "order": "o1",
            "price": 100.5,
            "amount": 0.1,
            "fee": {"cost": 0.01, "currency": "USD"},
            "timestamp": 1,
        },
        {"id": "t2", "order": "o2", "price": 101, "amount": 0.2, "fee": None, "timestamp": 2},
    ]
    assert fills_from_trades(trades, "o1") == [
        Fill(
            trade_id="t1",
            price=Decimal("100.5"),
            amount=Decimal("0.1"),
            fee_cost=Decimal("0.01"),
            fee_currency="USD",
            timestamp=1,
        )
    ]


def test_an_event_id_depends_on_the_change_only() -> None:
    base = dict(
        exchange="kraken",
        account="acc",
        market=MARKET,
        client_order_id="c",
        sent_amount=Decimal("1"),
        type="limit",
        side="buy",
        sent_price=Decimal("1"),
    )
    open_order = order_from_ccxt({"id": "o", "status": "open", "filled": 0, "timestamp": 5}, **base)
    partly = order_from_ccxt({"id": "o", "status": "open", "filled": 0.5, "timestamp": 5}, **base)
    done = order_from_ccxt({"id": "o", "status": "closed", "filled": 1, "timestamp": 5}, **base)
    fill = Fill(trade_id="t", price=Decimal(1), amount=Decimal("0.5"), fee_cost=None, fee_currency=None, timestamp=1)
    assert [kind_of(o) for o in (open_order, partly, done)] == ["created", "updated", "filled"]
    assert event_id(partly, [fill]) == event_id(partly, [fill])
    assert len({event_id(open_order, []), event_id(partly, [fill]), event_id(done, []), event_id(done, [fill])}) == 4
    assert mark_of(done) == "closed:1"


# -- a refused send taken over from a sender that is gone --------------------------------------------------------
class _Budgets:
    def check(self, account: str) -> None:
        pass


class _Api:
    """What OrderDesk._send asks of the exchange API: Kraken's quirks, no budget waits, no key lock."""

    def __init__(self) -> None:
        self.id = "kraken"
        self.q = all_quirks("kraken")  # no lookup by client id: the listings are scanned
        self.budgets = _Budgets()

    @contextlib.asynccontextmanager
    async def key_calling(self, client):
        yield

    async def prepare_trading(self, client) -> None:
        pass


class _Kraken:
    """Refuses the create as Kraken refuses a client id already open; lists that order (`placed`) or none."""

    paper = False

    def __init__(self, placed: bool) -> None:
        self.placed = placed
        self.listings = 0
        self.creates = 0

    async def create_order(self, *args) -> dict:
        self.creates += 1
        raise E.InvalidOrder("EOrder:Invalid order", exchange="kraken")

    async def fetch_open_orders(self, symbol: str) -> list[dict]:
        self.listings += 1
        if not self.placed:
            return []
        return [{"id": "OQCLML-BW3P3-BUCMWZ", "clientOrderId": "bot-1", "status": "open", "amount": 0.01,
                 "filled": 0.0, "price": 50000.1, "timestamp": 1700000000000}]  # fmt: skip

    async def fetch_closed_orders(self, symbol: str) -> list[dict]:
        return []


class _Store:
    def __init__(self) -> None:
        self.released: list[Claim] = []
        self.recorded: list[Order] = []

    async def release(self, claim: Claim) -> None:
        self.released.append(claim)

    async def record(self, order: Order, published: str | None = None) -> None:
        self.recorded.append(order)


def _claim(attempt: int) -> Claim:
    return Claim(
        exchange="kraken",
        account="acc",
        client_order_id="bot-1",
        sent_client_order_id="bot-1",
        symbol="BTC/USD",
        market_id="XXBTZUSD",
        side="buy",
        type="limit",
        amount=Decimal("0.01"),
        price=Decimal("50000.1"),
        state="sending",
        order_id=None,
        status=None,
        filled=Decimal(0),
        published=None,
        last_order=None,
        error=None,
        attempt=attempt,
        claimed_by="this-instance",
        age_seconds=0.0,
    )


async def _send(attempt: int, client: _Kraken, monkeypatch) -> tuple[_Store, Order | E.BorsaError]:
    monkeypatch.setattr(orders, "LOOKUP_DELAYS", (0.0, 0.0, 0.0))
    store = _Store()
    desk = orders.OrderDesk(_Api(), accounts=None, store=store)
    try:
        outcome = await desk._send(SimpleNamespace(client=client), MARKET, _claim(attempt), None)
    except E.BorsaError as error:
        outcome = error
    await desk.drain()
    return store, outcome


async def test_a_refused_send_taken_over_finds_the_order_its_gone_sender_placed(monkeypatch) -> None:
    """The first sender's create reached Kraken after the taker's lookup: the taker's send is refused as a repeated
    client id, and the order is found and adopted instead of its claim being forgotten (an untracked order)."""
    client = _Kraken(placed=True)  # there after all (the lookup before this send, in _create, saw nothing)
    store, outcome = await _send(2, client, monkeypatch)
    assert isinstance(outcome, Order), outcome
    assert (outcome.id, outcome.client_order_id, outcome.status) == ("OQCLML-BW3P3-BUCMWZ", "bot-1", "open")
    assert store.released == [] and [o.id for o in store.recorded] == [outcome.id]
    assert client.creates == 1


async def test_a_refused_first_send_is_released_without_a_lookup(monkeypatch) -> None:
    client = _Kraken(placed=True)  # a client id used outside Borsa: not ours to adopt
    store, outcome = await _send(1, client, monkeypatch)
    assert isinstance(outcome, E.InvalidOrder)
    assert [c.attempt for c in store.released] == [1] and client.listings == 0


async def test_a_refused_send_taken_over_is_released_when_the_order_is_not_there(monkeypatch) -> None:
    client = _Kraken(placed=False)
    store, outcome = await _send(3, client, monkeypatch)
    assert isinstance(outcome, E.InvalidOrder)
    assert [c.attempt for c in store.released] == [3]  # the attempt this sender holds, so the release applies
    assert client.listings == len(orders.LOOKUP_DELAYS)
