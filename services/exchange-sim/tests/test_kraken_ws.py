"""Kraken's authenticated WebSocket v2 `executions` channel, driven by the REAL ccxt.pro client: the REST token,
the subscription and its snapshot, updates for every change of an order made through REST (a fill as `trade`
then `filled`), errors in Kraken's shape, and the admin drop that tests use to show a client recovering."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from ccxt.base import errors as E

from borsa_testing.sim import ccxt_client

pytestmark = [pytest.mark.integration]
EXCHANGE = "kraken"  # conftest.py's fixtures serve this exchange alone
SYMBOL = "BTC/USD"


async def subscribed(pro) -> asyncio.Task:
    """A running watch_orders whose subscription (and its snapshot of no open orders) has been answered."""
    watch = asyncio.create_task(pro.watch_orders())
    url = pro.urls["api"]["ws"]["privateV2"]
    for _ in range(250):
        client = pro.clients.get(url)
        if client is not None and "executions" in client.subscriptions and client.connected.done():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    return watch


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
    watch = await subscribed(pro)
    price = await last_price(rest)
    placed = await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.99, 1))
    (pending,) = await asyncio.wait_for(watch, 5)
    assert (pending["id"], pending["status"], pending["symbol"], pending["side"]) == (
        placed["id"],
        "open",
        SYMBOL,
        "buy",
    )
    assert pending["amount"] == 0.01 and pending["type"] == "limit"
    await asyncio.sleep(0.2)  # `new` follows `pending_new`

    (filled,) = await next_orders(pro, lambda: admin.set_price("kraken", SYMBOL, str(round(price * 0.97, 1))))
    assert (filled["id"], filled["status"]) == (placed["id"], "closed")
    (trade,) = await rest.fetch_my_trades(SYMBOL)
    streamed = pro.myTrades[-1]
    # The stream's trade is the REST one: same order, price and amount.
    assert (streamed["order"], streamed["price"], streamed["amount"]) == (trade["order"], trade["price"], 0.01)
    assert filled["cost"] == pytest.approx(trade["cost"])


async def test_open_orders_come_in_the_snapshot(clients):
    rest, pro = clients
    price = await last_price(rest)
    placed = await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 1))
    (snap,) = await asyncio.wait_for(pro.watch_orders(), 5)
    assert (snap["id"], snap["status"], snap["price"]) == (placed["id"], "open", round(price * 0.9, 1))


async def test_a_cancel_is_pushed(clients):
    rest, pro = clients
    watch = await subscribed(pro)
    price = await last_price(rest)
    placed = await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 1))
    await asyncio.wait_for(watch, 5)
    await asyncio.sleep(0.2)
    (canceled,) = await next_orders(pro, lambda: rest.cancel_order(placed["id"], SYMBOL))
    assert (canceled["id"], canceled["status"]) == (placed["id"], "canceled")
    assert canceled["info"]["reason"] == "User requested"


async def test_a_market_order_ends_filled(clients):
    rest, pro = clients
    watch = await subscribed(pro)
    placed = await rest.create_order(SYMBOL, "market", "sell", 0.01)
    await asyncio.wait_for(watch, 5)
    await asyncio.sleep(0.3)  # pending_new, new, trade, filled
    # ccxt files the sparse `new`/`filled` entries (no symbol, as Kraken sends them) apart from the full one.
    seen = [o for o in pro.orders if o["id"] == placed["id"]]
    assert [o["info"]["exec_type"] for o in seen][-1] == "filled"
    assert seen[-1]["status"] == "closed" and seen[-1]["info"]["cum_qty"] == 0.01


async def test_other_accounts_orders_are_not_pushed(admin, solo_sim_url, clients):
    rest, pro = clients
    watch = await subscribed(pro)
    other = await admin.create_account("kraken", {"USD": "100000"})
    stranger = ccxt_client("kraken", solo_sim_url, other["credentials"])
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


async def test_a_wrong_key_gets_no_token(solo_sim_url, account):
    forged = {**account["credentials"], "apiKey": "A" * 56}
    pro = ccxt_client("kraken", solo_sim_url, forged, pro=True)
    try:
        with pytest.raises(E.AuthenticationError, match="EAPI:Invalid key"):
            await pro.authenticate()
    finally:
        await pro.close()


async def test_raw_requests_are_answered_in_krakens_shape(solo_sim_url):
    url = solo_sim_url.replace("http://", "ws://") + "/kraken/v2"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        status = await ws.receive_json(timeout=5)
        assert status["channel"] == "status" and status["data"][0]["system"] == "online"
        await ws.send_str(json.dumps({"method": "ping", "req_id": 7}))
        pong = await ws.receive_json(timeout=5)
        assert (pong["method"], pong["req_id"]) == ("pong", 7) and "time_in" in pong
        subscribe = {"method": "subscribe", "params": {"channel": "executions", "token": "nope"}, "req_id": 8}
        await ws.send_str(json.dumps(subscribe))
        reply = await ws.receive_json(timeout=5)
        assert (reply["method"], reply["req_id"], reply["success"], reply["error"]) == (
            "subscribe",
            8,
            False,
            "ESession:Invalid session",
        )
        await ws.send_str(json.dumps({"method": "add_order", "params": {}, "req_id": 9}))
        assert (await ws.receive_json(timeout=5))["success"] is False


async def test_a_subscription_is_acked_then_snapshot_then_heartbeats(solo_sim_url, clients):
    rest, _ = clients
    token = (await rest.privatePostGetWebSocketsToken())["result"]
    assert token["expires"] == 900 and len(token["token"]) >= 40
    url = solo_sim_url.replace("http://", "ws://") + "/kraken/v2"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert (await ws.receive_json(timeout=5))["channel"] == "status"
        params = {"channel": "executions", "token": token["token"], "snap_trades": True}
        await ws.send_str(json.dumps({"method": "subscribe", "params": params, "req_id": 1}))
        ack = await ws.receive_json(timeout=5)
        assert (ack["method"], ack["req_id"], ack["success"], ack["result"]["channel"]) == (
            "subscribe",
            1,
            True,
            "executions",
        )
        snapshot = await ws.receive_json(timeout=5)
        assert (snapshot["channel"], snapshot["type"], snapshot["data"], snapshot["sequence"]) == (
            "executions",
            "snapshot",
            [],
            1,
        )
        await ws.send_str(json.dumps({"method": "subscribe", "params": params, "req_id": 2}))
        assert (await ws.receive_json(timeout=5))["error"] == "Already subscribed"
        # Heartbeats once a second while nothing else is sent (ccxt 4.5.90 reads and ignores them).
        assert await ws.receive_json(timeout=3) == {"channel": "heartbeat"}


async def test_a_dropped_stream_fails_the_watch_and_a_new_one_works(admin, clients, outage):
    rest, pro = clients
    watch = await subscribed(pro)
    await outage(watch, pro.watch_orders)
    watch = await subscribed(pro)
    price = await last_price(rest)
    placed = await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 1))
    (seen,) = await asyncio.wait_for(watch, 5)
    assert (seen["id"], seen["status"]) == (placed["id"], "open")
    stats = (await admin.stats())["kraken"]["endpoints"]
    assert stats["WS /v2"]["faults"] >= 1
    assert stats["WS subscribe"]["requests"] >= 2
