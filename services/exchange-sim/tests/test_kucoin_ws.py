"""KuCoin's private push channel, driven by the REAL ccxt.pro client: the bullet-private token, the welcome, the
`/spotMarket/tradeOrders` subscription and its ack, `orderChange` messages for orders made through REST, JSON
pings, errors in KuCoin's shape, and the admin drop that tests use to show a client recovering."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from ccxt.base import errors as E

from borsa_testing.sim import ccxt_client

pytestmark = [pytest.mark.integration]
EXCHANGE = "kucoin"  # conftest.py's fixtures serve this exchange alone
SYMBOL = "BTC/USDT"
TOPIC = "/spotMarket/tradeOrders"


def private_client(pro):
    (client,) = [c for url, c in pro.clients.items() if "connectId=private" in url]
    return client


async def subscribed(pro) -> asyncio.Task:
    """Start watch_orders and wait for KuCoin's ack of the subscription; returns the pending watch."""
    watch = asyncio.create_task(pro.watch_orders())
    deadline = time.monotonic() + 5
    while True:
        if watch.done():
            watch.result()  # raises what the watch failed with
        clients = [c for url, c in pro.clients.items() if "connectId=private" in url]
        if clients and TOPIC in clients[0].subscriptions:
            pending = [k for k, v in clients[0].subscriptions.items() if v == TOPIC and k != TOPIC]
            if not pending:  # the request id is forgotten once its ack arrives
                return watch
        assert time.monotonic() < deadline, "no ack for the subscription"
        await asyncio.sleep(0.02)


async def next_orders(pro, action) -> list[dict]:
    """The orders the stream reports after `action` (the watch is registered first, so nothing is missed)."""
    watch = asyncio.create_task(pro.watch_orders())
    await asyncio.sleep(0.05)
    await action()
    return await asyncio.wait_for(watch, 5)


async def last_price(rest) -> float:
    return (await rest.fetch_ticker(SYMBOL))["last"]


async def test_watch_orders_sees_a_limit_order_and_its_fill(admin, clients):
    rest, pro = clients
    pending = await subscribed(pro)
    price = await last_price(rest)
    placed = await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.99, 1), {"clientOid": "ws-fill-1"})
    (new,) = await asyncio.wait_for(pending, 5)
    assert (new["id"], new["clientOrderId"], new["status"], new["filled"]) == (placed["id"], "ws-fill-1", "open", 0)
    assert new["symbol"] == SYMBOL and new["side"] == "buy" and new["amount"] == 0.01 and new["type"] == "limit"

    filled = await next_orders(pro, lambda: admin.set_price("kucoin", SYMBOL, str(round(price * 0.97, 1))))
    await asyncio.sleep(0.2)  # "filled" follows "match"
    (order,) = [o for o in pro.orders if o["id"] == placed["id"]]
    assert filled[-1]["id"] == placed["id"]
    assert (order["status"], order["filled"]) == ("closed", 0.01)
    (trade,) = await rest.fetch_my_trades(SYMBOL)
    streamed = pro.myTrades[-1]
    # The stream's trade is the one REST lists: same id, order, price and amount.
    assert (streamed["id"], streamed["order"], streamed["price"], streamed["amount"]) == (
        trade["id"],
        trade["order"],
        trade["price"],
        trade["amount"],
    )
    assert order["cost"] == pytest.approx(trade["cost"])


async def test_a_cancel_is_pushed_with_the_orders_client_id(clients):
    rest, pro = clients
    pending = await subscribed(pro)
    price = await last_price(rest)
    await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 1), {"clientOid": "ws-cxl-1"})
    (order,) = await asyncio.wait_for(pending, 5)
    (canceled,) = await next_orders(pro, lambda: rest.cancel_order(order["id"], SYMBOL))
    assert (canceled["id"], canceled["clientOrderId"], canceled["status"]) == (order["id"], "ws-cxl-1", "canceled")


async def test_a_market_order_is_pushed_as_filled(clients):
    rest, pro = clients
    pending = await subscribed(pro)
    placed = await rest.create_order(SYMBOL, "market", "sell", 0.01)
    await asyncio.wait_for(pending, 5)
    await asyncio.sleep(0.2)
    (order,) = [o for o in pro.orders if o["id"] == placed["id"]]
    assert order["status"] == "closed" and order["filled"] == 0.01


async def test_other_accounts_orders_are_not_pushed(admin, solo_sim_url, clients):
    rest, pro = clients
    watch = await subscribed(pro)
    other = await admin.create_account("kucoin", {"USDT": "100000"})
    stranger = ccxt_client("kucoin", solo_sim_url, other["credentials"])
    try:
        await stranger.load_markets()
        price = await last_price(rest)
        await stranger.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 1))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watch), 1)
        mine = await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 1))
        (seen,) = await asyncio.wait_for(watch, 5)
        assert seen["id"] == mine["id"]
    finally:
        await stranger.close()


async def test_a_wrong_passphrase_is_refused_as_kucoin_refuses_it(solo_sim_url, account, clients):
    rest, _ = clients
    forged = {**account["credentials"], "password": "not-the-passphrase"}
    pro = ccxt_client("kucoin", solo_sim_url, forged, pro=True)
    pro.set_markets_from_exchange(rest)
    try:
        # Account mode and the token are signed REST calls: KuCoin's 400004, and no socket is opened.
        with pytest.raises(E.AuthenticationError, match="400004"):
            await pro.watch_orders()
        with pytest.raises(E.AuthenticationError, match="400004"):
            await pro.privatePostBulletPrivate()
        assert not any("connectId=private" in url for url in pro.clients)
    finally:
        await pro.close()


async def test_raw_messages_are_answered_in_kucoins_shape(solo_sim_url, account, clients):
    _, pro = clients
    bullet = await pro.privatePostBulletPrivate()
    server = bullet["data"]["instanceServers"][0]
    assert server["endpoint"] == solo_sim_url.replace("http://", "ws://") + "/kucoin/endpoint"
    assert server["pingInterval"] == 18000
    url = f"{server['endpoint']}?token={bullet['data']['token']}&connectId=c1"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            assert await ws.receive_json(timeout=5) == {"id": "c1", "type": "welcome"}
            await ws.send_str(json.dumps({"id": "p1", "type": "ping"}))
            assert await ws.receive_json(timeout=5) == {"id": "p1", "type": "pong"}
            await ws.send_str(json.dumps({"id": "s1", "type": "subscribe", "topic": TOPIC, "response": True}))
            assert await ws.receive_json(timeout=5) == {"id": "s1", "type": "ack"}
            await ws.send_str(json.dumps({"id": "s2", "type": "subscribe", "topic": "/nope", "response": True}))
            assert (await ws.receive_json(timeout=5))["code"] == 404
            await ws.send_str(json.dumps({"id": "s3", "type": "publish"}))
            assert await ws.receive_json(timeout=5) == {
                "id": "s3",
                "type": "error",
                "code": 415,
                "data": "type is not supported",
            }
        async with session.ws_connect(f"{server['endpoint']}?token=forged&connectId=c2") as ws:
            reply = await ws.receive_json(timeout=5)
            assert reply == {"id": "c2", "type": "error", "code": 401, "data": "token is expired"}
            assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE


async def test_a_dropped_stream_fails_the_watch_and_a_new_one_works(admin, clients, outage):
    rest, pro = clients
    watch = await subscribed(pro)
    await outage(watch, pro.watch_orders)
    watch = await subscribed(pro)
    price = await last_price(rest)
    await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 1))
    (seen,) = await asyncio.wait_for(watch, 5)
    assert seen["status"] == "open"
    stats = (await admin.stats())["kucoin"]["endpoints"]
    assert stats["WS /endpoint"]["faults"] >= 1
    assert stats["WS subscribe"]["requests"] >= 2
    assert stats["POST /api/v1/bullet-private"]["requests"] >= 1
