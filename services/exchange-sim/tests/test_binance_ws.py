"""Binance's private user data stream over the WebSocket API, driven by the REAL ccxt.pro client: the signature
subscription, executionReport on every change of an order made through REST, errors in Binance's shape, and the
admin drop that tests use to show a client recovering."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from ccxt.base import errors as E

from borsa_testing.sim import ccxt_client

pytestmark = [pytest.mark.integration]
EXCHANGE = "binance"  # conftest.py's fixtures serve this exchange alone
SYMBOL = "BTC/USDT"


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
    await pro.authenticate()
    price = await last_price(rest)
    placed = {}

    async def place():
        placed.update(
            await rest.create_order(
                SYMBOL, "limit", "buy", 0.01, round(price * 0.99, 2), {"clientOrderId": "ws-fill-1"}
            )
        )

    (new,) = await next_orders(pro, place)
    assert (new["id"], new["clientOrderId"], new["status"], new["filled"]) == (placed["id"], "ws-fill-1", "open", 0)
    assert new["symbol"] == SYMBOL and new["side"] == "buy" and new["amount"] == 0.01

    (filled,) = await next_orders(pro, lambda: admin.set_price("binance", SYMBOL, str(round(price * 0.97, 2))))
    assert (filled["id"], filled["status"], filled["filled"]) == (placed["id"], "closed", 0.01)
    (trade,) = await rest.fetch_my_trades(SYMBOL)
    streamed = pro.myTrades[-1]
    # The stream's trade is the one REST lists: same id, price, amount and fee.
    assert (streamed["id"], streamed["order"], streamed["price"], streamed["amount"]) == (
        trade["id"],
        trade["order"],
        trade["price"],
        trade["amount"],
    )
    assert streamed["fee"] == trade["fee"] == {"currency": "BTC", "cost": 0.00001}
    assert filled["cost"] == pytest.approx(trade["cost"])


async def test_a_cancel_is_pushed_with_the_orders_client_id(clients):
    rest, pro = clients
    await pro.authenticate()
    price = await last_price(rest)
    (order,) = await next_orders(
        pro,
        lambda: rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 2), {"clientOrderId": "ws-cxl-1"}),
    )
    (canceled,) = await next_orders(pro, lambda: rest.cancel_order(order["id"], SYMBOL))
    assert (canceled["id"], canceled["clientOrderId"], canceled["status"]) == (order["id"], "ws-cxl-1", "canceled")


async def test_a_market_order_is_pushed_new_then_filled(clients):
    rest, pro = clients
    await pro.authenticate()
    orders = await next_orders(pro, lambda: rest.create_order(SYMBOL, "market", "sell", 0.01))
    await asyncio.sleep(0.2)  # the trade report follows the new one
    (order,) = [o for o in pro.orders if o["id"] == orders[0]["id"]]
    assert order["status"] == "closed" and order["filled"] == 0.01


async def test_other_accounts_orders_are_not_pushed(admin, solo_sim_url, clients):
    rest, pro = clients
    await pro.authenticate()
    other = await admin.create_account("binance", {"USDT": "100000"})
    stranger = ccxt_client("binance", solo_sim_url, other["credentials"])
    try:
        await stranger.load_markets()
        price = await last_price(rest)
        watch = asyncio.create_task(pro.watch_orders())
        await stranger.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 2))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watch), 1)
        mine = await rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 2))
        (seen,) = await asyncio.wait_for(watch, 5)
        assert seen["id"] == mine["id"]
    finally:
        await stranger.close()


async def test_a_wrong_secret_is_refused_as_binance_refuses_it(solo_sim_url, account):
    forged = {**account["credentials"], "secret": "x" * 64}
    pro = ccxt_client("binance", solo_sim_url, forged, pro=True)
    try:
        # ccxt 4.5.90 maps the -1022 reply to AuthenticationError, then deletes the subscription a second time in
        # ensure_user_data_stream_ws_subscribe_signature's except block, which raises KeyError('spot') instead.
        with pytest.raises((E.AuthenticationError, KeyError)):
            await pro.authenticate()
        assert "spot" not in pro.clients[pro.urls["api"]["ws"]["ws-api"]["spot"]].subscriptions
    finally:
        await pro.close()


async def test_raw_requests_are_answered_in_binances_shape(solo_sim_url, account):
    url = solo_sim_url.replace("http://", "ws://") + "/binance/ws-api/v3"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_str(json.dumps({"id": "p1", "method": "ping"}))
        assert (await ws.receive_json(timeout=5))["status"] == 200
        await ws.send_str(json.dumps({"id": "u1", "method": "order.place", "params": {}}))
        reply = await ws.receive_json(timeout=5)
        assert reply["id"] == "u1" and reply["status"] == 400 and reply["error"]["code"] == -1020
        params = {"apiKey": "A" * 64, "timestamp": 1, "signature": "00"}
        await ws.send_str(json.dumps({"id": "s1", "method": "userDataStream.subscribe.signature", "params": params}))
        reply = await ws.receive_json(timeout=5)
        assert (reply["status"], reply["error"]) == (
            401,
            {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
        )
        params = {"apiKey": account["credentials"]["apiKey"], "timestamp": 1, "signature": "00"}
        await ws.send_str(json.dumps({"id": "s2", "method": "userDataStream.subscribe.signature", "params": params}))
        assert (await ws.receive_json(timeout=5))["error"]["code"] == -1022
        pong = await ws.ping()  # protocol-level keepalive, as ccxt.pro sends it
        assert pong is None


async def test_a_dropped_stream_fails_the_watch_and_a_new_one_works(admin, clients, outage):
    rest, pro = clients
    await pro.authenticate()
    watch = asyncio.create_task(pro.watch_orders())
    await asyncio.sleep(0.05)
    await outage(watch, pro.authenticate)
    await asyncio.wait_for(pro.authenticate(), 5)
    price = await last_price(rest)
    (seen,) = await next_orders(pro, lambda: rest.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 2)))
    assert seen["status"] == "open"
    stats = (await admin.stats())["binance"]["endpoints"]
    assert stats["WS /ws-api/v3"]["faults"] >= 1
    assert stats["WS userDataStream.subscribe.signature"]["requests"] >= 2
