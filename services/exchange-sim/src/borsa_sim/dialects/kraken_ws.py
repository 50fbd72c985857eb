"""Kraken's authenticated WebSocket v2 (`wss://ws-auth.kraken.com/v2`) as far as the `executions` channel needs it.

ccxt.pro's `watch_orders` gets a token from REST `GetWebSocketsToken`, opens `urls['api']['ws']['privateV2']`,
sends `{"method": "subscribe", "params": {"channel": "executions", "token": ..., "snap_orders": true}}` and parses
`{"channel": "executions", "type": "snapshot"|"update", "data": [...], "sequence": n}` (docs.kraken.com
spot-websocket-v2/executions). ccxt hands a message to `watch_my_trades` when its first entry is a `trade` and to
`watch_orders` otherwise, so a fill is a `trade` message followed by a separate `filled` one, as Kraken sends it
("A separate exec_type: filled update reports completion"). Pings are `{"method": "ping"}` answered by `pong`; a
subscribed connection gets `{"channel": "heartbeat"}` every second. `drop()` closes every connection (the admin
route `/_sim/ws/drop`) and can refuse new ones for a while. The socket itself (queue, writer, serve loop, `drop()`,
the cut-off of a slow client) is ws.py's, shared with the other dialects; this module says what Kraken's messages
mean.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine import Account, Fill, Order
from .ws import WsChannel, WsConnection, json_object

if TYPE_CHECKING:
    from .kraken import KrakenDialect

TOKEN_SECONDS = 900  # GetWebSocketsToken: use within 15 minutes; a subscription made with it does not expire
HEARTBEAT_SECONDS = 1.0  # "every second (approx) if no other updates are sent"
MAX_RATE_COUNT = 125  # the Starter tier's trading rate counter ceiling, reported in the subscribe ack
SNAP_TRADES = 50  # snap_trades: "the last 50 order fills"
CONNECTION_IDS = 14_000_000_000_000_000_000


@dataclass(eq=False)
class Connection(WsConnection):
    account: str | None = None  # set by a successful `executions` subscription
    sequence: int = 0
    heartbeat: asyncio.Task | None = None


class WsError(Exception):
    pass


class KrakenStreams(WsChannel):
    path = "/v2"
    dialect: KrakenDialect
    connections: set[Connection]

    def __init__(self, dialect: KrakenDialect) -> None:
        super().__init__(dialect)
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (account id, monotonic issue time)

    def issue_token(self, account: Account) -> dict:
        now = time.monotonic()
        self.tokens = {t: v for t, v in self.tokens.items() if now - v[1] < TOKEN_SECONDS}
        token = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        self.tokens[token] = (account.id, now)
        return {"token": token, "expires": TOKEN_SECONDS}

    # -- the socket -------------------------------------------------------------------------------------------
    async def _accept(self, request: web.Request, ws: web.WebSocketResponse) -> Connection:
        """Anyone may connect (the token comes with the subscription); Kraken greets with its system status."""
        conn = Connection(ws)
        status = {"version": "2.0.9", "system": "online", "api_version": "v2"}
        status["connection_id"] = CONNECTION_IDS + secrets.randbelow(10**18)
        self._send(conn, {"channel": "status", "type": "update", "data": [status]})
        return conn

    def _clear(self, conn: Connection) -> None:
        conn.account = None

    async def _heartbeats(self, conn: Connection) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if conn.queue.empty():
                self._send(conn, {"channel": "heartbeat"})

    # -- requests ---------------------------------------------------------------------------------------------
    def _request(self, conn: Connection, text: str) -> None:
        """Replies are sent here, not returned: a subscription's snapshot must follow its ack."""
        time_in = _rfc3339(self.dialect.now_ms())
        data = json_object(text)
        if data is None or not isinstance(data.get("method"), str):
            self._send(conn, {"error": "Malformed request", "success": False, **_times(time_in)})
            return
        method, req_id = data["method"], data.get("req_id")
        self.dialect.sim.stats.count(self.dialect.name, f"WS {method}")
        reply: dict = {"method": method}
        if req_id is not None:
            reply["req_id"] = req_id
        try:
            params = data.get("params") or {}
            if not isinstance(params, dict):
                raise WsError("EGeneral:Invalid arguments")
            match method:
                case "ping":
                    self._send(conn, {**reply, "method": "pong", **_times(time_in)})
                    return
                case "subscribe":
                    result = self._subscribe(conn, params)
                case "unsubscribe":
                    self._channel(params)
                    conn.account = None
                    result = {"channel": "executions"}
                case _:
                    raise WsError("Method not found")
        except WsError as err:
            self.dialect.sim.stats.count(self.dialect.name, f"WS {method}", "errors")
            self._send(conn, {"error": str(err), **reply, "success": False, **_times(time_in)})
            return
        self._send(conn, {**reply, "result": result, "success": True, **_times(time_in)})
        if method == "subscribe":
            self._snapshot(conn, params)

    @staticmethod
    def _channel(params: dict) -> None:
        channel = params.get("channel")
        if not isinstance(channel, str) or not channel:
            raise WsError("EGeneral:Invalid arguments")
        if channel != "executions":  # balances and the public channels are not simulated
            raise WsError("Subscription name invalid")

    def _subscribe(self, conn: Connection, params: dict) -> dict:
        self._channel(params)
        token = params.get("token")
        if not isinstance(token, str) or not token:
            raise WsError("EGeneral:Invalid arguments")
        issued = self.tokens.get(token)
        if issued is None or time.monotonic() - issued[1] >= TOKEN_SECONDS:
            raise WsError("ESession:Invalid session")
        if conn.account is not None:
            raise WsError("Already subscribed")
        conn.account = issued[0]
        if conn.heartbeat is None:
            conn.heartbeat = asyncio.get_running_loop().create_task(self._heartbeats(conn))
            conn.tasks.append(conn.heartbeat)
        return {"channel": "executions", "maxratecount": MAX_RATE_COUNT, "snapshot": True, "warnings": []}

    def _snapshot(self, conn: Connection, params: dict) -> None:
        account = self.dialect.state.accounts.get(conn.account or "")
        if account is None:
            return
        data = []
        if params.get("snap_orders", True) is not False:
            data += [order_entry(o) for o in self.dialect.state.account_orders(account, open_only=True)]
        if params.get("snap_trades", False) is True:
            orders = self.dialect.state.account_orders(account, open_only=False)
            fills = sorted(((f, o) for o in orders for f in o.fills), key=lambda pair: pair[0].trade_id)
            data += [trade_entry(o, f, self.dialect.trade_id(f.trade_id)) for f, o in fills[-SNAP_TRADES:]]
        self._push(conn, "snapshot", data)

    def _push(self, conn: Connection, kind: str, data: list[dict]) -> None:
        conn.sequence += 1
        self._send(conn, {"channel": "executions", "type": kind, "data": data, "sequence": conn.sequence})

    # -- events -----------------------------------------------------------------------------------------------
    def on_order(self, change: str, order: Order, fill: Fill | None) -> None:
        targets = [conn for conn in self.connections if conn.account == order.account_id]
        if not targets:
            return
        entries = updates(change, order, fill, self.dialect.trade_id(fill.trade_id) if fill else "")
        # The engine reports a new order from inside AddOrder, before the handler records its userref: send once
        # the handler is done (call_soon keeps the order of changes), with the userref filled in then.
        asyncio.get_running_loop().call_soon(self._deliver, targets, order, entries)

    def _deliver(self, targets: list[Connection], order: Order, entries: list[dict]) -> None:
        userref = order.extra.get("userref") or 0
        for conn in targets:
            if conn.account != order.account_id:
                continue
            for entry in entries:
                self._push(conn, "update", [{**entry, "order_userref": userref}])


def updates(change: str, order: Order, fill: Fill | None, exec_id: str) -> list[dict]:
    """The `executions` entries for one change of an order, each sent in its own message."""
    if change == "new":
        live = {"timestamp": _rfc3339(order.created_ms), "order_status": "new", "exec_type": "new"}
        return [order_entry(order, pending=True), {**_ids(order), **live}]
    if change == "trade" and fill is not None:
        out = [trade_entry(order, fill, exec_id)]
        if order.status == "filled":
            out.append(closed_entry(order, "filled"))
        return out
    return [closed_entry(order, {"filled": "filled", "expired": "expired"}.get(order.status, "canceled"))]


def _ids(order: Order) -> dict:
    ids = {"order_id": order.id, "order_userref": order.extra.get("userref") or 0}
    if order.client_order_id:
        ids["cl_ord_id"] = order.client_order_id
    return ids


def _cumulative(order: Order) -> dict:
    return {
        "cum_qty": _num(order.filled),
        "cum_cost": _num(order.cost),
        "avg_price": _num(order.average or Decimal(0)),
        "fee_usd_equiv": _usd(order, order.fee),
    }


def order_entry(order: Order, pending: bool = False) -> dict:
    """An order in full: the `pending_new` event, or an open order in the snapshot."""
    status = "pending_new" if pending else ("partially_filled" if order.filled else "new")
    entry = {**_ids(order), "symbol": order.spec.symbol}
    if order.amount is not None:
        entry["order_qty"] = _num(order.amount)
    else:
        entry["cash_order_qty"] = _num(order.quote_amount)
    entry |= {
        **_cumulative(order),
        "time_in_force": order.time_in_force,
        "exec_type": status,
        "side": order.side,
        "order_type": order.type,
    }
    if order.price is not None:
        entry |= {"limit_price_type": "static", "limit_price": _num(order.price)}
    entry |= {
        "order_status": status,
        "fee_ccy_pref": "fciq",
        "post_only": "post" in order.extra.get("oflags", ()),
        "timestamp": _rfc3339(order.created_ms),
    }
    return entry


def trade_entry(order: Order, fill: Fill, exec_id: str) -> dict:
    return {
        **_ids(order),
        "exec_id": exec_id,
        "exec_type": "trade",
        "trade_id": fill.trade_id,
        "symbol": order.spec.symbol,
        "side": order.side,
        "last_qty": _num(fill.amount),
        "last_price": _num(fill.price),
        "liquidity_ind": "m" if fill.liquidity == "maker" else "t",
        "cost": _num(fill.cost),
        "order_status": "filled" if order.status == "filled" else "partially_filled",
        "order_type": order.type,
        **_cumulative(order),
        "fees": [{"asset": fill.fee_currency, "qty": _num(fill.fee)}],
        "timestamp": _rfc3339(fill.timestamp),
    }


def closed_entry(order: Order, status: str) -> dict:
    entry = {"timestamp": _rfc3339(order.updated_ms), "order_status": status, "exec_type": status, **_ids(order)}
    entry |= _cumulative(order)
    if status == "canceled":
        entry |= {"cancel_reason": "User requested", "reason": "User requested"}
    elif status == "expired":
        entry["reason"] = "Insufficient liquidity"
    return entry


def _num(value: Decimal | None) -> float | None:
    # v2 writes quantities and prices as JSON numbers.
    return float(value) if value is not None else None


def _usd(order: Order, fee: Decimal) -> float | None:
    # Fees are charged in the quote currency; only a USD quote has a known USD equivalent here.
    return _num(fee) if order.spec.quote == "USD" else None


def _rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _times(time_in: str) -> dict:
    return {"time_in": time_in, "time_out": _rfc3339(int(time.time() * 1000))}
