"""KuCoin's classic private push channel as far as ccxt.pro's `watch_orders` needs it.

ccxt.pro asks `POST /api/v1/bullet-private` (a signed REST call) for a token and an instance server, connects to
`<endpoint>?token=...&connectId=private`, gets `{"type": "welcome"}`, subscribes to `/spotMarket/tradeOrders`
(`privateChannel: true`, `response: true`, answered by an `ack`), keeps the socket alive with JSON
`ping`/`pong` every `pingInterval` ms, and reads `orderChange` messages (docs: "Apply connect token", "Create
connection", "Ping", "Subscribe", "Private Order Change" and its V2 `/spotMarket/tradeOrdersV2`). The engine calls
`on_order` after every change of an order; each subscribed connection of that account gets the messages of that
change, in order. `drop()` closes every connection (the admin route `/_sim/ws/drop`) and can refuse new ones for
a while, which is how tests show that a client recovers. The socket itself (queue, writer, serve loop, `drop()`,
the cut-off of a slow client) is ws.py's, shared with the other dialects; this module says what KuCoin's tokens and
messages mean.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode, web

from ..engine import Fill, Order
from . import kucoin_wire as wire
from .base import Call, dec_str, dumps
from .ws import WsChannel, WsConnection, json_object

if TYPE_CHECKING:
    from .kucoin import KucoinDialect

ENDPOINT = "/endpoint"
PING_INTERVAL_MS = 18_000  # instanceServers[].pingInterval as KuCoin hands it out today
PING_TIMEOUT_MS = 10_000
TOKEN_TTL_SECONDS = 24 * 3600  # "the token is valid for 24 hours" (Apply connect token)
ORDER_TOPICS = ("/spotMarket/tradeOrders", "/spotMarket/tradeOrdersV2")


@dataclass(eq=False)
class Connection(WsConnection):
    account_id: str = ""
    topics: set[str] = field(default_factory=set)


class KucoinPrivateStreams(WsChannel):
    path = ENDPOINT
    dialect: KucoinDialect
    connections: set[Connection]

    def __init__(self, dialect: KucoinDialect) -> None:
        super().__init__(dialect)
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (account id, monotonic expiry)

    # -- POST /api/v1/bullet-private --------------------------------------------------------------------------
    async def bullet_private(self, call: Call) -> web.Response:
        now = time.monotonic()
        self.tokens = {t: v for t, v in self.tokens.items() if v[1] > now}
        token = secrets.token_urlsafe(96)
        self.tokens[token] = (call.account.id, now + TOKEN_TTL_SECONDS)
        # The instance server is this simulator, as the client reached it (scheme and Host included).
        scheme = "wss" if call.request.scheme == "https" else "ws"
        endpoint = f"{scheme}://{call.request.host}/{self.dialect.name}{ENDPOINT}"
        server = {
            "endpoint": endpoint,
            "encrypt": True,
            "protocol": "websocket",
            "pingInterval": PING_INTERVAL_MS,
            "pingTimeout": PING_TIMEOUT_MS,
        }
        return self.dialect.ok(call, {"token": token, "instanceServers": [server]})

    # -- the socket -------------------------------------------------------------------------------------------
    async def _accept(self, request: web.Request, ws: web.WebSocketResponse) -> Connection | None:
        """The token of the URL names the account; KuCoin greets an accepted socket with `welcome`."""
        connect_id = request.query.get("connectId") or secrets.token_hex(8)
        token = request.query.get("token")
        entry = self.tokens.get(token or "")
        if entry is None or entry[1] <= time.monotonic():
            # KuCoin accepts the upgrade, says why in an error message and closes; ccxt.pro reads "token is
            # expired" as a cue to ask for a new token.
            self.dialect.sim.stats.count(self.dialect.name, f"WS {self.path}", "errors")
            data = "token is expired" if token else "token is required"
            await ws.send_str(dumps({"id": connect_id, "type": "error", "code": 401, "data": data}))
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"unauthorized")
            return None
        account = self.dialect.state.accounts.get(entry[0])
        conn = Connection(ws, account_id=entry[0])
        if account is not None:
            account.authenticated_once = True
        self._send(conn, {"id": connect_id, "type": "welcome"})
        return conn

    def _clear(self, conn: Connection) -> None:
        conn.topics.clear()

    # -- client messages --------------------------------------------------------------------------------------
    def _request(self, conn: Connection, text: str) -> dict | None:
        data = json_object(text)
        if data is None:
            return {"type": "error", "code": 400, "data": "message is not valid JSON"}
        request_id, kind = data.get("id"), data.get("type")
        self.dialect.sim.stats.count(self.dialect.name, f"WS {kind}")
        match kind:
            case "ping":
                return {"id": request_id, "type": "pong"}
            case "subscribe" | "unsubscribe":
                topic = data.get("topic")
                if topic not in ORDER_TOPICS:
                    self.dialect.sim.stats.count(self.dialect.name, f"WS {kind}", "errors")
                    return {"id": request_id, "type": "error", "code": 404, "data": f"topic {topic} is not found"}
                if kind == "subscribe":
                    conn.topics.add(topic)
                else:
                    conn.topics.discard(topic)
                return {"id": request_id, "type": "ack"} if data.get("response") else None
        self.dialect.sim.stats.count(self.dialect.name, f"WS {kind}", "errors")
        return {"id": request_id, "type": "error", "code": 415, "data": "type is not supported"}

    # -- events -----------------------------------------------------------------------------------------------
    def on_order(self, change: str, order: Order, fill: Fill | None) -> None:
        targets = [c for c in self.connections if c.account_id == order.account_id and c.topics]
        if not targets:
            return
        messages = order_changes(change, order, fill, time.time_ns())
        # The REST handler marks an order HF right after the engine placed it (and maybe filled it), with no
        # await in between: wait for that before naming the trade, whose id format depends on the family.
        asyncio.get_running_loop().call_soon(self._deliver, targets, messages, order, fill)

    def _deliver(self, targets: list[Connection], messages: list[tuple[str, dict]], order: Order, fill) -> None:
        for kind, data in messages:
            if kind == "match" and fill is not None:
                hf = bool(order.extra.get("hf"))
                data["tradeId"] = str(wire.hf_trade_id(fill)) if hf else wire.hex_id("trade", fill.trade_id, order.id)
            for conn in targets:
                for topic in sorted(conn.topics):
                    if kind == "received" and topic != "/spotMarket/tradeOrdersV2":
                        continue  # "received" exists only on the V2 topic
                    push = {"type": "message", "topic": topic, "subject": "orderChange", "channelType": "private"}
                    self._send(conn, {**push, "data": data})


def order_changes(change: str, order: Order, fill: Fill | None, now_ns: int) -> list[tuple[str, dict]]:
    """The `orderChange` messages of one engine change: (type, data), in the order KuCoin sends them."""
    if change == "new":
        out = [("received", _data(order, "received", "new", now_ns))]
        if order.type == "limit" and order.is_open:
            out.append(("open", _data(order, "open", "open", now_ns)))
        return out
    if change == "trade" and fill is not None:
        match = _data(order, "match", "match", fill.timestamp * 1_000_000)
        match.update(
            matchPrice=dec_str(fill.price),
            matchSize=dec_str(fill.amount),
            liquidity=fill.liquidity,
            feeType=f"{fill.liquidity}Fee",
        )
        out = [("match", match)]
        if order.status == "filled":
            out.append(("filled", _data(order, "filled", "done", now_ns)))
        return out
    if order.status in ("canceled", "expired"):
        canceled = _data(order, "canceled", "done", now_ns)
        remaining = (order.amount - order.filled) if order.amount is not None else None
        canceled.update(remainSize="0", canceledSize=dec_str(remaining))
        return [("canceled", canceled)]
    return []


def _data(order: Order, kind: str, status: str, ts_ns: int) -> dict:
    data = {
        "symbol": order.spec.market_id,
        "orderType": order.type,
        "side": order.side,
        "orderId": order.id,
        "type": kind,
        "orderTime": order.created_ms,
        "filledSize": dec_str(order.filled),
        "clientOid": order.client_order_id,
        "status": status,
        "ts": ts_ns,
    }
    if order.amount is not None:
        data.update(originSize=dec_str(order.amount), size=dec_str(order.amount))
        data["remainSize"] = dec_str(order.amount - order.filled if order.is_open else 0)
    else:  # a market buy by funds
        data.update(originFunds=dec_str(order.quote_amount), funds=dec_str(order.quote_amount))
    if order.price is not None:
        data["price"] = dec_str(order.price)
    return data
