"""Order streams without servers: which exchanges get one, and one account's stream through update, failure,
reconnect and close, with a stand-in for the ccxt.pro client."""

from __future__ import annotations

import asyncio
import base64
from contextlib import asynccontextmanager
from decimal import Decimal
from types import SimpleNamespace

import pytest

from borsa_connector.exchanges.registry import resolve_exchange
from borsa_connector.order_streams import OrderStreams
from borsa_connector.settings import ConnectorSettings
from borsa_connector.tracker import OrderTracker
from borsa_proto.orders import Order, OrderStatus, Side
from borsa_runtime import errors as E


@pytest.mark.parametrize(
    ("exchange", "setting", "expected"),
    [
        ("binance", "auto", True),
        ("binance", "off", False),
        ("kraken", "auto", True),
        ("kraken", "off", False),
        ("kucoin", "auto", True),
        ("kucoin", "off", False),
        ("coinbase", "auto", True),
        ("coinbase", "on", True),
        ("coinbase", "off", False),
    ],
)
def test_which_exchanges_get_a_stream(exchange, setting, expected):
    exchange_id, cls = resolve_exchange(exchange)
    assert cls(exchange_id).ws_orders_enabled(setting) is expected


def test_the_setting_is_checked():
    with pytest.raises(ValueError, match="BORSA_ORDER_WS must be auto, on or off"):
        ConnectorSettings.from_env(environ={"BORSA_ORDER_WS": "sometimes"})
    with pytest.raises(ValueError, match="BORSA_ORDER_WS_LINGER_MS must be at least 0, got -1"):
        ConnectorSettings.from_env(environ={"BORSA_ORDER_WS_LINGER_MS": "-1"})
    settings = ConnectorSettings.from_env(environ={})
    assert (settings.order_ws, settings.order_ws_fallback_poll_ms) == ("auto", 15_000)
    assert settings.order_ws_linger_ms == 30_000


class FakeClient:
    def __init__(self) -> None:
        self.updates: asyncio.Queue = asyncio.Queue()
        self.trades: asyncio.Queue = asyncio.Queue()
        self.closed = False

    async def watch_orders(self):
        return await self._next(self.updates)

    async def watch_my_trades(self):
        return await self._next(self.trades)

    @staticmethod
    async def _next(queue: asyncio.Queue) -> list:
        item = await queue.get()
        if isinstance(item, Exception):
            raise item
        return [item]

    async def close(self):
        self.closed = True


class FakeApi:
    id = "binance"

    def __init__(self, ws_trades: bool = False) -> None:
        self.clients: list[FakeClient] = []
        self.q = {"ws_trades": ws_trades}

    def stream_client(self, account_client, account):
        self.clients.append(FakeClient())
        return self.clients[-1]

    async def subscribe_orders(self, client) -> bool:
        return True


class FakeAccounts:
    def __init__(self, paper: bool = False) -> None:
        self.paper = paper

    @asynccontextmanager
    async def lease(self, account):
        yield SimpleNamespace(client=SimpleNamespace(paper=self.paper))


async def until(condition, timeout: float = 2.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def test_updates_poke_failures_fall_back_and_the_stream_comes_back():
    api, pokes = FakeApi(), []
    streams = OrderStreams(api, FakeAccounts(), pokes.append, enabled=True, backoff=(0.01,), linger_s=0)
    streams.want("acct")
    await until(lambda: streams.healthy("acct"))
    assert pokes == ["acct"]  # a pass at once for whatever changed before the subscription

    first = api.clients[0]
    first.updates.put_nowait({"id": "1"})
    await until(lambda: len(pokes) == 2)

    first.updates.put_nowait(ConnectionError("closed by the server"))
    await until(lambda: len(api.clients) == 2 and streams.healthy("acct"))
    assert first.closed
    assert pokes == ["acct"] * 4  # update, back to polling at once, then the new stream's catch-up pass

    streams.stop("acct")
    await until(lambda: api.clients[1].closed)
    assert not streams.running("acct") and not streams.healthy("acct")
    await streams.close()


async def test_where_trades_come_apart_from_orders_both_are_followed():
    api, pokes = FakeApi(ws_trades=True), []
    streams = OrderStreams(api, FakeAccounts(), pokes.append, enabled=True, backoff=(0.01,), linger_s=0)
    streams.want("acct")
    await until(lambda: streams.healthy("acct"))
    first = api.clients[0]
    first.trades.put_nowait({"id": "t1"})  # a partial fill, which ccxt hands to watch_my_trades alone
    await until(lambda: len(pokes) == 2)
    first.updates.put_nowait({"id": "1"})
    await until(lambda: len(pokes) == 3)

    first.trades.put_nowait(ConnectionError("closed by the server"))  # either watch failing ends the socket
    await until(lambda: len(api.clients) == 2 and streams.healthy("acct"))
    assert first.closed
    api.clients[1].trades.put_nowait({"id": "t2"})
    await until(lambda: len(pokes) == 6)  # back to polling, the new stream's catch-up pass, the trade
    await streams.close()


async def test_a_stream_lingers_after_the_last_order_and_an_order_in_time_keeps_it():
    api, pokes = FakeApi(), []
    streams = OrderStreams(api, FakeAccounts(), pokes.append, enabled=True, linger_s=0.2)
    streams.want("acct")
    await until(lambda: streams.healthy("acct"))
    streams.stop("acct")  # nothing left to follow
    await asyncio.sleep(0.1)
    streams.want("acct")  # an order again before the linger ran out: the same socket, no new sign-in
    await asyncio.sleep(0.2)
    assert streams.healthy("acct") and len(api.clients) == 1 and not api.clients[0].closed
    streams.stop("acct")
    streams.stop("acct")  # a second pass with nothing to follow does not push the close back
    await until(lambda: api.clients[0].closed, timeout=1.0)
    assert not streams.running("acct") and len(api.clients) == 1
    await streams.close()


async def test_paper_accounts_and_disabled_streams_open_nothing():
    api, pokes = FakeApi(), []
    paper = OrderStreams(api, FakeAccounts(paper=True), pokes.append, enabled=True)
    paper.want("p")
    await until(lambda: not paper.running("p"))
    paper.want("p")
    assert not paper.running("p") and api.clients == [] and pokes == []

    off = OrderStreams(api, FakeAccounts(), pokes.append, enabled=False)
    off.want("a")
    assert not off.running("a")


async def test_a_kraken_stream_client_shares_the_accounts_nonces_and_lock():
    """GetWebSocketsToken is signed with the account's key: its nonce must follow the account client's."""
    exchange_id, cls = resolve_exchange("kraken")
    api = cls(exchange_id)
    secret = base64.b64encode(b"k" * 64).decode()
    rest = api.account_client({"apiKey": "key", "secret": secret}, "live", "a1")
    pro = api.stream_client(rest, "a1")
    try:
        assert pro.borsa_private_lock is rest.borsa_private_lock
        nonces = [rest.nonce(), pro.nonce(), rest.nonce(), pro.nonce()]
        assert nonces == sorted(set(nonces))
    finally:
        await rest.close()
        await pro.close()


class SnapshotClient:
    """A ccxt.pro coinbase stand-in whose watch_orders() answers with `outcome`: a list, an exception, or nothing."""

    timeout = 200  # ms

    def __init__(self, outcome) -> None:
        self.outcome = outcome
        self.cancelled = False

    async def watch_orders(self):
        if isinstance(self.outcome, Exception):
            raise self.outcome
        if self.outcome is None:
            try:
                await asyncio.Event().wait()  # Coinbase refused the JWT: ccxt.pro never answers the watch
            except asyncio.CancelledError:
                self.cancelled = True
                raise
        return self.outcome


async def test_a_coinbase_stream_is_up_with_its_snapshot_and_fails_without_one():
    exchange_id, cls = resolve_exchange("coinbase")
    api = cls(exchange_id)
    assert await api.subscribe_orders(SnapshotClient([])) is True
    silent = SnapshotClient(None)
    with pytest.raises(E.RequestTimeout, match="no snapshot for the order stream subscription"):
        await api.subscribe_orders(silent)
    await asyncio.sleep(0)
    assert silent.cancelled  # nothing is left waiting
    with pytest.raises(ConnectionError):
        await api.subscribe_orders(SnapshotClient(ConnectionError("gone")))


class FakeJetStream:
    def __init__(self) -> None:
        self.published: list[str] = []

    async def publish(self, subject, payload, headers=None):
        self.published.append(headers["Nats-Msg-Id"])


def an_order(order_id: str, status: OrderStatus, filled: str = "0") -> Order:
    return Order(
        exchange="binance",
        account="acct",
        id=order_id,
        client_order_id="c-" + order_id,
        symbol="BTC/USDT",
        market_id="BTCUSDT",
        side=Side.BUY,
        type="limit",
        status=status,
        amount=Decimal("0.01"),
        filled=Decimal(filled),
        remaining=Decimal("0.01") - Decimal(filled),
        price=Decimal("50000"),
        average=None,
        cost=Decimal(0),
        fee=None,
        created_at=1,
        updated_at=1,
    )


async def test_a_stream_update_repeating_what_was_published_asks_for_no_pass():
    tracker = OrderTracker(FakeJetStream(), None, None, None)
    await tracker.publish(an_order("1", OrderStatus.OPEN), [])
    await tracker.publish(an_order("2", OrderStatus.CANCELED), [])
    # ccxt.pro's parsed orders, as watch_orders hands them over
    new, canceled = {"id": "1", "status": "open", "filled": 0.0}, {"id": "2", "status": "canceled", "filled": 0}
    assert tracker.told("acct", [new]) and tracker.told("acct", [new, canceled])
    for update in (
        [{"id": "1", "status": "open", "filled": 0.004}],  # a fill: its trades are fetched
        [{"id": "1", "status": "canceled", "filled": 0}],  # a change the connector has not published
        [{"id": "3", "status": "open", "filled": 0}],  # an order it does not know (placed elsewhere, or not yet)
        [new, {"id": "3", "status": "open", "filled": 0}],
        [{"id": "1", "status": "open", "filled": "0"}],  # anything unexpected: a pass
        [{"order": "1", "amount": 0.004}],  # a trade (Kraken's watch_my_trades)
        [],
    ):
        assert not tracker.told("acct", update), update
    assert not tracker.told("other", [new])  # another account's order of the same id


async def test_known_updates_are_counted_and_ask_for_nothing():
    api, pokes = FakeApi(), []
    streams = OrderStreams(api, FakeAccounts(), pokes.append, told=lambda _a, u: u[0]["id"] == "known", enabled=True)
    streams.want("acct")
    await until(lambda: streams.healthy("acct"))
    client = api.clients[0]
    client.updates.put_nowait({"id": "known"})
    client.updates.put_nowait({"id": "news"})
    await until(lambda: len(pokes) == 2)  # the catch-up pass when it came up, then the news
    await asyncio.sleep(0.05)
    assert pokes == ["acct", "acct"] and streams.known.labels("binance")._value.get() == 1
    await streams.close()


async def test_a_publish_that_failed_leaves_updates_asking_for_passes():
    class Failing(FakeJetStream):
        async def publish(self, subject, payload, headers=None):
            raise ConnectionError("no JetStream")

    tracker = OrderTracker(Failing(), None, None, None)
    with pytest.raises(ConnectionError):
        await tracker.publish(an_order("1", OrderStatus.OPEN), [])
    assert not tracker.told("acct", [{"id": "1", "status": "open", "filled": 0}])
