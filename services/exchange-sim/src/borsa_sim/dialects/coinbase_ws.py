"""Coinbase Advanced Trade's WebSocket (`wss://advanced-trade-ws.coinbase.com`) as far as the `user` channel needs it.

ccxt.pro's `watch_orders` opens `urls['api']['ws']` (the bare host: `/coinbase` on the simulator) and sends
`{"type": "subscribe", "channel": "user", "product_ids": [...], "jwt": ...}`, the JWT a CDP key signs as for REST
but without a `uri` claim (docs: Advanced Trade WebSocket Authentication). Coinbase answers with a `subscriptions`
message, then the channel's `snapshot` (the account's open orders) and an `update` for every change of an order,
each message with the connection's next `sequence_num` (docs: WebSocket Channels, User Channel). An empty
`product_ids` means every product. `heartbeats` can be subscribed too: one message a second with a counter. A
refused token, an unknown channel or a message that is not JSON gets `{"type": "error", "message": ...}`, which
ccxt.pro raises as an ExchangeError. The socket itself (queue, writer, serve loop, `drop()`, the cut-off of a slow
client) is ws.py's, shared with the other dialects; this module says what Coinbase's messages mean.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..engine import Account, Fill, Order
from . import coinbase_wire as wire
from .base import dec_str
from .coinbase_auth import AuthFailure, parse_jwt
from .ws import WsChannel, WsConnection, json_object

if TYPE_CHECKING:
    from .coinbase import CoinbaseDialect

ENDPOINT = ""  # the host itself: wss://advanced-trade-ws.coinbase.com
CHANNELS = ("user", "heartbeats")
ORDER_TYPES = {"limit": "Limit", "market": "Market"}


@dataclass(eq=False)
class Connection(WsConnection):
    account_id: str = ""
    # channel -> the product ids subscribed (empty: all of them)
    channels: dict[str, set[str]] = field(default_factory=dict)
    sequence: int = -1
    heartbeat: asyncio.Task | None = None


class CoinbaseUserChannel(WsChannel):
    path = "/"
    dialect: CoinbaseDialect
    connections: set[Connection]

    async def _accept(self, request, ws) -> Connection:
        return Connection(ws)  # the JWT comes with each subscribe

    def _clear(self, conn: Connection) -> None:
        conn.channels.clear()

    # -- client messages --------------------------------------------------------------------------------------
    def _request(self, conn: Connection, text: str) -> dict | None:
        data = json_object(text)
        if data is None:
            return self._error("message is not valid JSON")
        kind, channel = data.get("type"), data.get("channel")
        self.dialect.sim.stats.count(self.dialect.name, f"WS {kind} {channel}")
        if kind not in ("subscribe", "unsubscribe"):
            return self._error(f"unknown message type {kind!r}", kind, channel)
        if channel not in CHANNELS:
            return self._error(f"channel {channel!r} is not supported", kind, channel)
        products = data.get("product_ids") or []
        if not isinstance(products, list) or not all(isinstance(p, str) for p in products):
            return self._error("product_ids must be a list of product ids", kind, channel)
        unknown = [p for p in products if self.dialect.state.find_market(p) is None]
        if unknown:
            return self._error(f"unknown product_ids {unknown}", kind, channel)
        try:
            account = self._authenticate(data.get("jwt"))
        except AuthFailure as failure:
            return self._error(f"authentication failure: {failure.message}", kind, channel)
        if conn.account_id and account.id != conn.account_id:
            return self._error("a connection serves one API key", kind, channel)
        conn.account_id = account.id
        if kind == "unsubscribe":
            self._unsubscribe(conn, channel, set(products))
            self._emit(conn, "subscriptions", [{"subscriptions": self._listing(conn, account)}])
            return None
        conn.channels.setdefault(channel, set()).update(products)
        if not products:
            conn.channels[channel] = set()  # every product
        self._emit(conn, "subscriptions", [{"subscriptions": self._listing(conn, account)}])
        if channel == "user":
            orders = [
                _order(o)
                for o in self.dialect.state.account_orders(account, open_only=True)
                if _wanted(conn.channels["user"], o)
            ]
            self._emit(conn, "user", [{"type": "snapshot", "orders": orders, "positions": {}}])
        elif conn.heartbeat is None:
            conn.heartbeat = asyncio.get_running_loop().create_task(self._heartbeats(conn))
            conn.tasks.append(conn.heartbeat)
        return None

    def _authenticate(self, token: object) -> Account:
        if not isinstance(token, str) or not token:
            raise AuthFailure("the user channel needs a jwt")
        jwt = parse_jwt(token)
        account = self.dialect.state.account_by_key(jwt.key_name)
        if account is None:
            raise AuthFailure("unknown API key")
        self.dialect.verify_token(jwt, account, None)
        account.authenticated_once = True
        return account

    def _unsubscribe(self, conn: Connection, channel: str, products: set[str]) -> None:
        held = conn.channels.get(channel)
        if held is None:
            return
        held -= products
        if not products or not held:
            del conn.channels[channel]

    def _listing(self, conn: Connection, account: Account) -> dict:
        """What `subscriptions` lists: the user channel by user id, the others by product."""
        out = {}
        for channel, products in conn.channels.items():
            out[channel] = [self.dialect.user_id(account)] if channel == "user" else sorted(products)
        return out

    def _error(self, message: str, kind: object = None, channel: object = None) -> dict:
        self.dialect.sim.stats.count(self.dialect.name, f"WS {kind} {channel}", "errors")
        return {"type": "error", "message": message}

    async def _heartbeats(self, conn: Connection) -> None:
        counter = 0
        while True:
            await asyncio.sleep(1.0)
            if "heartbeats" in conn.channels:
                counter += 1
                now = datetime.now(UTC)
                stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 +0000 UTC"
                self._emit(conn, "heartbeats", [{"current_time": stamp, "heartbeat_counter": str(counter)}])

    def _emit(self, conn: Connection, channel: str, events: list[dict]) -> None:
        conn.sequence += 1
        message = {
            "channel": channel,
            "client_id": "",
            "timestamp": _now_iso(),
            "sequence_num": conn.sequence,
            "events": events,
        }
        self._send(conn, message)

    # -- events -----------------------------------------------------------------------------------------------
    def on_order(self, change: str, order: Order, fill: Fill | None) -> None:
        payload = None
        for conn in list(self.connections):
            if conn.account_id != order.account_id or "user" not in conn.channels:
                continue
            if not _wanted(conn.channels["user"], order):
                continue
            payload = payload or [{"type": "update", "orders": [_order(order)]}]
            self._emit(conn, "user", payload)


def _wanted(products: set[str], order: Order) -> bool:
    return not products or order.spec.market_id in products


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def _order(order: Order) -> dict:
    """An order as the user channel shows it (fields of the docs' User Channel table)."""
    return {
        "avg_price": dec_str(order.average) if order.average else "0",
        "cancel_reason": "User requested cancel" if order.status == "canceled" else "",
        "client_order_id": order.client_order_id or "",
        "completion_percentage": dec_str(wire.completion(order)),
        "contract_expiry_type": "UNKNOWN_CONTRACT_EXPIRY_TYPE",
        "cumulative_quantity": dec_str(order.filled),
        "filled_value": dec_str(order.cost),
        "leaves_quantity": dec_str(order.remaining if order.is_open else 0),
        "limit_price": dec_str(order.price) if order.price is not None else "0",
        "number_of_fills": str(len(order.fills)),
        "order_id": order.id,
        "order_side": order.side.upper(),
        "order_type": ORDER_TYPES.get(order.type, order.type.title()),
        "outstanding_hold_amount": dec_str(order.reserved),
        "post_only": "false",
        "product_id": order.spec.market_id,
        "product_type": "SPOT",
        "reject_reason": "",
        "retail_portfolio_id": "",
        "risk_managed_by": "UNKNOWN_RISK_MANAGEMENT_TYPE",
        "status": wire.STATUSES[order.status],
        "stop_price": "",
        "time_in_force": wire.TIME_IN_FORCE.get(order.time_in_force, "GOOD_UNTIL_CANCELLED"),
        "total_fees": dec_str(order.fee),
        "total_value_after_fees": dec_str(wire.value_after_fees(order)),
        "trigger_status": "INVALID_ORDER_TYPE",
        "creation_time": wire.iso(order.created_ms),
        "end_time": "0001-01-01T00:00:00Z" if order.is_open else wire.iso(order.updated_ms),
        "start_time": "0001-01-01T00:00:00Z",
    }
