"""GET /api/v1/events: server-sent events for the signed-in user only, a heartbeat, and no subscription left
behind once the client goes away."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal

import aiohttp
import nats
import pytest

from borsa_gateway.routes import events
from borsa_proto import BotEvent, encode
from borsa_proto.orders import Fee, Fill, Order, OrderEvent, OrderStatus, Side
from borsa_proto.subjects import bot_events, order_events

pytestmark = [pytest.mark.integration]


async def call(session, url: str, method: str, path: str, token: str | None = None, body=None, expect: int = 200):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, f"{url}/api/v1{path}", json=body, headers=headers) as response:
        data = await response.json()
        assert response.status == expect, (method, path, response.status, data)
        return data


async def trader(session, url: str) -> dict:
    """A new user with a paper Kraken key and a (stopped) bot on it."""
    email = f"sse{uuid.uuid4().hex[:8]}@example.com"
    token = (
        await call(
            session, url, "POST", "/auth/register", body={"email": email, "password": "correct horse"}, expect=201
        )
    )["access_token"]
    key = await call(
        session, url, "POST", "/api-keys", token, {"exchange": "kraken", "label": "paper", "mode": "paper"}, expect=201
    )
    bot = await call(
        session,
        url,
        "POST",
        "/bots",
        token,
        {
            "api_key_id": key["id"],
            "symbol": "BTC/USD",
            "strategy": "dca",
            "params": {"quote_amount": "25", "interval_seconds": 3600},
        },
        expect=201,
    )
    return {"token": token, "key": key["id"], "bot": bot["id"]}


def bot_event(bot_id: str, position: str = "0.5") -> bytes:
    return encode(
        BotEvent(
            bot_id=bot_id,
            exchange="kraken",
            symbol="BTC/USD",
            status="running",
            position=Decimal(position),
            realized_pnl=Decimal("1.5"),
            timestamp=int(time.time() * 1000),
        )
    )


def order_event(account: str, bot_id: str, trade_id: str) -> bytes:
    now = int(time.time() * 1000)
    order = Order(
        exchange="kraken",
        account=account,
        id=f"O-{trade_id}",
        client_order_id=f"b{uuid.UUID(bot_id).hex}-1",
        symbol="BTC/USD",
        market_id="XXBTZUSD",
        side=Side.BUY,
        type="market",
        status=OrderStatus.CLOSED,
        amount=Decimal("0.001"),
        filled=Decimal("0.001"),
        remaining=Decimal("0"),
        price=None,
        average=Decimal("60000"),
        cost=Decimal("60"),
        fee=Fee(cost=Decimal("0.24"), currency="USD"),
        created_at=now,
        updated_at=now,
    )
    fill = Fill(
        trade_id=trade_id,
        price=Decimal("60000"),
        amount=Decimal("0.001"),
        fee_cost=Decimal("0.24"),
        fee_currency="USD",
        timestamp=now,
    )
    return encode(OrderEvent(event_id=f"e-{trade_id}", kind="filled", order=order, fills=[fill], timestamp=now))


class Stream:
    """The events of one open `GET /events`, parsed as a browser would."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next(self, timeout: float = 10.0) -> tuple[str, dict] | None:
        """The next event (name, data); comments are collected on the way; None if none came in `timeout`."""
        name, data = "message", []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = await asyncio.wait_for(self.response.content.readline(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return None
            text = line.decode().rstrip("\n")
            if text.startswith(":"):
                self.comments.append(text)
            elif text.startswith("event:"):
                name = text[6:].strip()
            elif text.startswith("data:"):
                data.append(text[5:].strip())
            elif text == "" and data:
                return name, json.loads("\n".join(data))


async def open_stream(session, url: str, token: str) -> Stream:
    response = await session.get(f"{url}/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    stream = Stream(response)
    # ": connected" arrives once the gateway's subscription is in place: nothing published after it is missed.
    line = await asyncio.wait_for(response.content.readline(), 10)
    while line.startswith(b"retry:"):
        line = await asyncio.wait_for(response.content.readline(), 10)
    assert line == b": connected\n"
    return stream


async def test_events_need_a_signed_in_user(stack) -> None:
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            async with session.get(f"{stack['url']}/api/v1/events", headers=headers) as response:
                assert response.status == 401
                assert (await response.json())["detail"]["code"] == "unauthorized"


async def test_only_the_callers_bot_and_order_events_are_sent(stack) -> None:
    async with aiohttp.ClientSession() as session:
        alice, bob = await trader(session, stack["url"]), await trader(session, stack["url"])
        stream = await open_stream(session, stack["url"], alice["token"])
        nc = await nats.connect(stack["nats"])
        try:
            # Bob's first, then a message no reader understands, then Alice's: only hers may come out.
            await nc.publish(bot_events("kraken", bob["bot"]), bot_event(bob["bot"]))
            await nc.publish(order_events("kraken", bob["key"]), order_event(bob["key"], bob["bot"], "T-bob"))
            await nc.publish(bot_events("kraken", alice["bot"]), b"{not json")
            await nc.publish(bot_events("kraken", str(uuid.uuid4())), bot_event(str(uuid.uuid4())))
            await nc.publish(bot_events("kraken", alice["bot"]), bot_event(alice["bot"], "0.25"))
            await nc.publish(order_events("kraken", alice["key"]), order_event(alice["key"], alice["bot"], "T-alice"))
            await nc.flush()
            received = [await stream.next(), await stream.next()]
            assert await stream.next(timeout=1.0) is None, "nothing else is for Alice"
        finally:
            await nc.drain()
            stream.response.close()
    by_name = dict(received)
    assert set(by_name) == {"bot", "order"}
    assert by_name["bot"]["bot_id"] == alice["bot"]
    assert by_name["bot"]["position"] == "0.25" and by_name["bot"]["realized_pnl"] == "1.5"
    order = by_name["order"]
    assert (order["exchange"], order["account"], order["bot_id"], order["kind"]) == (
        "kraken",
        alice["key"],
        alice["bot"],
        "filled",
    )
    assert order["fills"][0]["trade_id"] == "T-alice" and order["fills"][0]["price"] == "60000"
    assert order["order"]["symbol"] == "BTC/USD" and order["order"]["market_id"] == "XXBTZUSD"


async def test_a_change_to_the_callers_bots_is_sent_and_nobody_elses(stack) -> None:
    """Created, stopped or deleted through the API (or another tab): the caller's open pages hear `bots`."""
    async with aiohttp.ClientSession() as session:
        alice, bob = await trader(session, stack["url"]), await trader(session, stack["url"])
        stream = await open_stream(session, stack["url"], alice["token"])
        try:
            await call(session, stack["url"], "POST", f"/bots/{bob['bot']}/start", bob["token"])
            assert await stream.next(timeout=1.0) is None, "Bob's change is not Alice's business"
            await call(session, stack["url"], "POST", f"/bots/{alice['bot']}/start", alice["token"])
            assert await stream.next() == ("bots", {})
            headers = {"Authorization": f"Bearer {alice['token']}"}
            async with session.delete(f"{stack['url']}/api/v1/bots/{alice['bot']}", headers=headers) as response:
                assert response.status == 204
            assert await stream.next() == ("bots", {})
        finally:
            stream.response.close()


async def test_events_are_in_the_openapi_document(stack) -> None:
    async with aiohttp.ClientSession() as session, session.get(f"{stack['url']}/openapi.json") as response:
        spec = await response.json()
    operation = spec["paths"]["/api/v1/events"]["get"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "401" in operation["responses"]
    assert "heartbeat" in operation["description"]


# -- the hub in this process: subscriptions, heartbeat, clean-up ----------------------------------------------------
class Owners:
    """Stands in for the pool: who owns which bot or key."""

    def __init__(self, owners: dict[uuid.UUID, uuid.UUID]) -> None:
        self.owners = owners
        self.queries = 0

    async def fetchval(self, _sql: str, ident: uuid.UUID):
        self.queries += 1
        return self.owners.get(ident)


class Request:
    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


async def test_the_hub_subscribes_while_someone_listens_and_beats(stack, monkeypatch) -> None:
    monkeypatch.setattr(events, "HEARTBEAT_SECONDS", 0.1)
    user, bot = uuid.uuid4(), uuid.uuid4()
    owners = Owners({bot: user})
    nc = await nats.connect(stack["nats"])
    try:
        hub = events.EventHub(nc, owners)
        assert not hub.subscribed
        request = Request()
        stream = events._stream(request, hub, user)
        assert ": connected" in await anext(stream)
        assert hub.subscribed and hub.listeners(user) == 1

        await nc.publish(bot_events("kraken", str(bot)), bot_event(str(bot)))
        await nc.publish(bot_events("kraken", str(bot)), bot_event(str(bot), "0.75"))
        first, second = await anext(stream), await anext(stream)
        assert first.startswith("event: bot\ndata: ") and json.loads(first.split("data: ", 1)[1])["position"] == "0.5"
        assert json.loads(second.split("data: ", 1)[1])["position"] == "0.75"
        assert owners.queries == 1, "a bot's owner is read once"
        assert await asyncio.wait_for(anext(stream), 2) == ": heartbeat\n\n"

        await stream.aclose()  # the client went away: Starlette closes the generator
        assert not hub.subscribed and hub.listeners() == 0

        # A stopping gateway ends the open streams (uvicorn waits for every open response before it stops).
        stream = events._stream(Request(), hub, user)
        await anext(stream)
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(stream), 2)
        assert not hub.subscribed

        # A disconnect noticed at a heartbeat ends the stream too.
        stream = events._stream(request, hub, user)
        await anext(stream)
        request.gone = True
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(stream), 2)
        assert not hub.subscribed
    finally:
        await nc.drain()
