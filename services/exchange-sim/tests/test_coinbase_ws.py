"""Coinbase Advanced Trade's WebSocket `user` channel, driven by the REAL ccxt.pro client: the subscribe with a CDP
key's JWT (no uri claim), the `subscriptions` answer, the snapshot of open orders, an `update` for every change of
an order made through REST, product filters, heartbeats, errors in Coinbase's shape, and the admin drop that tests
use to show a client recovering."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest

from borsa_testing.sim import ccxt_client

pytestmark = [pytest.mark.integration]
EXCHANGE = "coinbase"  # conftest.py's fixtures serve this exchange alone
SYMBOL = "BTC/USD"


async def next_orders(pro, action, symbol: str | None = None) -> list[dict]:
    """The orders the stream reports after `action` (the watch is registered first, so nothing is missed)."""
    watch = asyncio.create_task(pro.watch_orders(symbol))
    await asyncio.sleep(0.05)
    await action()
    return await asyncio.wait_for(watch, 5)


async def last_price(rest) -> float:
    return (await rest.fetch_ticker(SYMBOL))["last"]


async def rest_below(rest, factor: float, client_id: str) -> dict:
    price = await last_price(rest)
    return await rest.create_order(
        SYMBOL, "limit", "buy", 0.01, round(price * factor, 2), {"client_order_id": client_id}
    )


def ws_url(sim_url: str) -> str:
    return sim_url.replace("http://", "ws://") + "/coinbase"


async def test_the_snapshot_lists_the_open_orders_then_updates_follow(admin, clients):
    rest, pro = clients
    resting = await rest_below(rest, 0.9, "ws-snap-1")
    snapshot = await asyncio.wait_for(pro.watch_orders(), 5)
    assert [(o["id"], o["clientOrderId"], o["status"]) for o in snapshot] == [(resting["id"], "ws-snap-1", "open")]
    assert snapshot[0]["symbol"] == SYMBOL and snapshot[0]["side"] == "buy" and snapshot[0]["remaining"] == 0.01

    placed = await next_orders(pro, lambda: rest_below(rest, 0.99, "ws-fill-1"))
    new = placed[-1]
    sent = (await rest.fetch_open_orders(SYMBOL))[-1]
    assert (new["id"], new["clientOrderId"], new["status"], new["filled"]) == (sent["id"], "ws-fill-1", "open", 0)
    assert new["price"] == sent["price"]
    price = await last_price(rest)
    filled = await next_orders(pro, lambda: admin.set_price("coinbase", SYMBOL, str(round(price * 0.97, 2))))
    (done,) = [o for o in filled if o["id"] == new["id"]]
    assert (done["status"], done["filled"], done["remaining"]) == ("closed", 0.01, 0)
    (trade,) = await rest.fetch_my_trades(SYMBOL)
    assert trade["order"] == new["id"]
    # The order's fees and average as REST reports them (ccxt 4.5.90 parses the channel's fee under `amount`).
    fetched = await rest.fetch_order(new["id"], SYMBOL)
    assert Decimal(done["info"]["total_fees"]) == Decimal(fetched["fee"]["cost"]) > 0
    assert done["fee"]["currency"] == "USD" and done["average"] == pytest.approx(fetched["average"])


async def test_a_cancel_and_a_market_order_are_pushed(clients):
    rest, pro = clients
    await asyncio.wait_for(pro.watch_orders(), 5)  # the (empty) snapshot
    (order,) = await next_orders(pro, lambda: rest_below(rest, 0.9, "ws-cxl-1"))
    (canceled,) = await next_orders(pro, lambda: rest.cancel_order(order["id"], SYMBOL))
    assert (canceled["id"], canceled["clientOrderId"], canceled["status"]) == (order["id"], "ws-cxl-1", "canceled")
    pushed = await next_orders(pro, lambda: rest.create_order(SYMBOL, "market", "sell", 0.01))
    await asyncio.sleep(0.2)  # the fill follows the order's arrival
    market = [o for o in pro.orders if o["id"] not in (order["id"],) and o["side"] == "sell"]
    assert pushed and market[-1]["status"] == "closed" and market[-1]["filled"] == 0.01


async def test_other_accounts_and_other_products_are_not_pushed(admin, solo_sim_url, clients):
    rest, pro = clients
    other = await admin.create_account("coinbase", {"USD": "100000", "ETH": "5"})
    stranger = ccxt_client("coinbase", solo_sim_url, other["credentials"])
    try:
        await stranger.load_markets()
        price = await last_price(rest)
        watch = asyncio.create_task(pro.watch_orders(SYMBOL))  # this product only (the empty snapshot: nothing)
        await asyncio.sleep(0.2)
        await stranger.create_order(SYMBOL, "limit", "buy", 0.01, round(price * 0.9, 2))
        eth = (await rest.fetch_ticker("ETH/USD"))["last"]
        await rest.create_order("ETH/USD", "limit", "buy", 0.1, round(eth * 0.9, 2))  # mine, another product
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watch), 1)
        mine = await rest_below(rest, 0.9, "ws-mine-1")
        (seen,) = await asyncio.wait_for(watch, 5)
        assert seen["id"] == mine["id"]
    finally:
        await stranger.close()


async def test_a_forged_or_expired_token_is_refused(admin, solo_sim_url, account, clients):
    _, pro = clients
    other = await admin.create_account("coinbase", {"USD": "1"})
    # Another key's name with this key's private key: the signature does not verify.
    forged = ccxt_client("coinbase", solo_sim_url, {**other["credentials"], "secret": account["credentials"]["secret"]})
    try:
        bad_signature = forged.create_auth_token(forged.seconds())
        expired = pro.create_auth_token(pro.seconds() - 600)
    finally:
        await forged.close()
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(solo_sim_url)) as ws:
        for jwt, why in ((bad_signature, "invalid JWT signature"), (expired, "the JWT has expired")):
            await ws.send_str(json.dumps({"type": "subscribe", "channel": "user", "product_ids": [], "jwt": jwt}))
            assert await ws.receive_json(timeout=5) == {"type": "error", "message": f"authentication failure: {why}"}
        # The same socket still serves a good token.
        jwt = pro.create_auth_token(pro.seconds())
        await ws.send_str(json.dumps({"type": "subscribe", "channel": "user", "product_ids": [], "jwt": jwt}))
        assert (await ws.receive_json(timeout=5))["channel"] == "subscriptions"


async def test_raw_messages_are_answered_in_coinbases_shape(solo_sim_url, clients):
    _, pro = clients
    jwt = pro.create_ws_auth("user", [])["jwt"]
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url(solo_sim_url)) as ws:
        await ws.send_str("not json")
        assert await ws.receive_json(timeout=5) == {"type": "error", "message": "message is not valid JSON"}
        await ws.send_str(json.dumps({"type": "subscribe", "channel": "level3", "product_ids": [], "jwt": jwt}))
        assert (await ws.receive_json(timeout=5))["message"] == "channel 'level3' is not supported"
        await ws.send_str(json.dumps({"type": "subscribe", "channel": "user", "product_ids": ["NOPE-USD"]}))
        assert (await ws.receive_json(timeout=5))["message"] == "unknown product_ids ['NOPE-USD']"
        await ws.send_str(json.dumps({"type": "subscribe", "channel": "user", "product_ids": []}))
        assert (await ws.receive_json(timeout=5))["message"] == "authentication failure: the user channel needs a jwt"

        await ws.send_str(json.dumps({"type": "subscribe", "channel": "user", "product_ids": [], "jwt": jwt}))
        listing = await ws.receive_json(timeout=5)
        assert listing["channel"] == "subscriptions" and list(listing["events"][0]["subscriptions"]) == ["user"]
        snapshot = await ws.receive_json(timeout=5)
        assert snapshot["channel"] == "user" and snapshot["events"] == [
            {"type": "snapshot", "orders": [], "positions": {}}
        ]
        assert snapshot["sequence_num"] == listing["sequence_num"] + 1

        await ws.send_str(json.dumps({"type": "subscribe", "channel": "heartbeats", "product_ids": [], "jwt": jwt}))
        listing = await ws.receive_json(timeout=5)
        assert sorted(listing["events"][0]["subscriptions"]) == ["heartbeats", "user"]
        beats = [await ws.receive_json(timeout=5) for _ in range(2)]
        assert [b["events"][0]["heartbeat_counter"] for b in beats] == ["1", "2"]
        assert beats[1]["sequence_num"] == beats[0]["sequence_num"] + 1

        await ws.send_str(json.dumps({"type": "unsubscribe", "channel": "user", "product_ids": [], "jwt": jwt}))
        while (message := await ws.receive_json(timeout=5))["channel"] != "subscriptions":
            pass  # a heartbeat may come first
        assert list(message["events"][0]["subscriptions"]) == ["heartbeats"]


async def test_a_dropped_stream_fails_the_watch_and_a_new_one_works(admin, clients, outage):
    rest, pro = clients
    await asyncio.wait_for(pro.watch_orders(), 5)
    watch = asyncio.create_task(pro.watch_orders())
    await asyncio.sleep(0.05)
    await outage(watch, pro.watch_orders)
    await asyncio.wait_for(pro.watch_orders(), 5)  # a new snapshot
    (seen,) = await next_orders(pro, lambda: rest_below(rest, 0.9, "ws-back-1"))
    assert seen["status"] == "open"
    stats = (await admin.stats())["coinbase"]["endpoints"]
    assert stats["WS /"]["faults"] >= 1
    assert stats["WS subscribe user"]["requests"] >= 2
