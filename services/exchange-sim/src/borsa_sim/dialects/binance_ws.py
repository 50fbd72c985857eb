"""Binance's WebSocket API (`/ws-api/v3`) as far as a private user data stream needs it.

ccxt.pro's `watch_orders` (spot) opens `urls['api']['ws']['ws-api']['spot']`, sends
`userDataStream.subscribe.signature` signed like a REST call, and then reads `executionReport` events wrapped as
`{"subscriptionId": n, "event": {...}}` (websocket-api/user-data-stream-requests.md, user-data-stream.md). The
engine calls `on_order` after every change of an order, so each subscribed connection of that account gets the
report of that change, in order. `drop()` closes every connection (the admin route `/_sim/ws/drop`) and can
refuse new ones for a while, which is how tests show that a client recovers. The socket itself (queue, writer,
serve loop, `drop()`, the cut-off of a slow client) is ws.py's, shared with the other dialects; this module says
what Binance's messages mean.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine import Fill, Order
from . import binance_wire as wire
from .binance_wire import API_KEY_RE, DECIMAL_RE, DEFAULT_RECV_WINDOW, LONG_RE, MAX_AHEAD_MS, MAX_RECV_WINDOW
from .ws import WsChannel, WsConnection, json_object

if TYPE_CHECKING:
    from .binance import BinanceDialect

# websocket-api "General requests": the same REST request weights reported back, one connection limit.
RATE_LIMITS = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, "count": 2}]


class WsError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass(eq=False)
class Connection(WsConnection):
    subscriptions: dict[int, str] = field(default_factory=dict)  # subscription id -> account id


class BinanceUserStreams(WsChannel):
    path = "/ws-api/v3"
    dialect: BinanceDialect
    connections: set[Connection]

    def __init__(self, dialect: BinanceDialect) -> None:
        super().__init__(dialect)
        self._subscription_ids = itertools.count(0)

    async def _accept(self, request: web.Request, ws: web.WebSocketResponse) -> Connection:
        return Connection(ws)  # the socket is open to anyone: a subscription request is signed

    def _clear(self, conn: Connection) -> None:
        conn.subscriptions.clear()

    # -- requests ---------------------------------------------------------------------------------------------
    def _request(self, conn: Connection, text: str) -> dict | None:
        data = json_object(text)
        if data is None or not isinstance(data.get("method"), str):
            return _error(None, WsError(400, -1100, "Malformed request."))
        request_id = data.get("id")
        method = data["method"]
        params = data.get("params") or {}
        self.dialect.sim.stats.count(self.dialect.name, f"WS {method}")
        try:
            if not isinstance(params, dict):
                raise WsError(400, -1100, "Illegal characters found in parameter 'params'.")
            result = self._call(conn, method, params)
        except WsError as err:
            self.dialect.sim.stats.count(self.dialect.name, f"WS {method}", "errors")
            return _error(request_id, err)
        return {"id": request_id, "status": 200, "result": result, "rateLimits": RATE_LIMITS}

    def _call(self, conn: Connection, method: str, params: dict):
        match method:
            case "ping":
                return {}
            case "time":
                return {"serverTime": self.dialect.now_ms()}
            case "userDataStream.subscribe.signature":
                account = self._authenticate(params)
                subscription = next(self._subscription_ids)
                conn.subscriptions[subscription] = account
                return {"subscriptionId": subscription}
            case "userDataStream.unsubscribe":
                wanted = params.get("subscriptionId")
                for subscription in list(conn.subscriptions):
                    if wanted is None or str(wanted) == str(subscription):
                        del conn.subscriptions[subscription]
                return {}
            case "session.subscriptions":
                return [{"subscriptionId": s} for s in conn.subscriptions]
        raise WsError(400, -1020, "This operation is not supported.")

    def _authenticate(self, params: dict) -> str:
        """A signed ws-api request: every other parameter sorted by name, `k=v` joined with `&`, HMAC-SHA256 with
        the key's secret (websocket-api/request-security.md, "SIGNED request example (HMAC)")."""
        key = params.get("apiKey")
        if not isinstance(key, str) or not key:
            raise WsError(400, -1102, "Mandatory parameter 'apiKey' was not sent, was empty/null, or malformed.")
        if not API_KEY_RE.match(key):
            raise WsError(401, -2014, "API-key format invalid.")
        account = self.dialect.state.account_by_key(key)
        if account is None:
            raise WsError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        timestamp = _text(params.get("timestamp"))
        if not timestamp:
            raise WsError(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if not LONG_RE.match(timestamp):
            raise WsError(400, -1100, _illegal("timestamp", LONG_RE.pattern))
        window = _text(params.get("recvWindow")) or str(DEFAULT_RECV_WINDOW)
        if not DECIMAL_RE.match(window):
            raise WsError(400, -1100, _illegal("recvWindow", DECIMAL_RE.pattern))
        if Decimal(window) > MAX_RECV_WINDOW:
            raise WsError(400, -1131, "recvWindow must be less than 60000")
        signature = params.get("signature")
        if not isinstance(signature, str) or not signature:
            raise WsError(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        payload = "&".join(f"{k}={_text(v)}" for k, v in sorted(params.items()) if k != "signature")
        expected = hmac.new(account.credentials["secret"].encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise WsError(400, -1022, "Signature for this request is not valid.")
        now, sent = self.dialect.now_ms(), int(timestamp)
        if sent > now + MAX_AHEAD_MS:
            raise WsError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - sent > Decimal(window):
            raise WsError(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        account.authenticated_once = True
        return account.id

    # -- events -----------------------------------------------------------------------------------------------
    def on_order(self, change: str, order: Order, fill: Fill | None) -> None:
        targets = [
            (conn, subscription)
            for conn in self.connections
            for subscription, account in conn.subscriptions.items()
            if account == order.account_id
        ]
        if not targets:
            return
        report = execution_report(change, order, fill, self.dialect.now_ms())
        for conn, subscription in targets:
            self._send(conn, {"subscriptionId": subscription, "event": report})


def execution_report(change: str, order: Order, fill: Fill | None, now: int) -> dict:
    """user-data-stream.md "Order Update": the order as it is right after this change."""
    status = wire.order_status(order)
    execution = {"new": "NEW", "trade": "TRADE"}.get(change) or ("CANCELED" if status == "CANCELED" else "EXPIRED")
    user_cancel = execution == "CANCELED"
    when = fill.timestamp if fill is not None else order.updated_ms if change != "new" else order.created_ms
    quote = order.quote_amount if order.quote_amount is not None else order.extra.get("orig_quote_qty")
    return {
        "e": "executionReport",
        "E": now,
        "s": order.spec.market_id,
        # A cancel's report carries the cancel request's id in `c` and the order's own in `C`.
        "c": wire.random_id(22) if user_cancel else order.client_order_id,
        "S": order.side.upper(),
        "o": order.type.upper(),
        "f": order.time_in_force,
        "q": wire.fmt(order.amount if order.amount is not None else order.filled),
        "p": wire.fmt(order.price),
        "P": wire.fmt(None),
        "F": wire.fmt(None),
        "g": -1,
        "C": order.client_order_id if user_cancel else "",
        "x": execution,
        "X": status,
        "r": "NONE",
        "i": int(order.id),
        "l": wire.fmt(fill.amount if fill else None),
        "z": wire.fmt(order.filled),
        "L": wire.fmt(fill.price if fill else None),
        "n": wire.fmt(fill.fee) if fill else "0",
        "N": fill.fee_currency if fill else None,
        "T": when,
        "t": wire.TRADE_ID_BASE + fill.trade_id if fill else -1,
        "v": 0,
        "I": int(order.extra.get("seq", 0)) * 2 + (1 if fill else 0),
        "w": order.is_open,
        "m": fill.liquidity == "maker" if fill else False,
        "M": False,
        "O": order.created_ms,
        "Z": wire.fmt(order.cost),
        "Y": wire.fmt(fill.cost if fill else None),
        "Q": wire.fmt(quote),
        "W": order.created_ms,
        "V": "EXPIRE_MAKER",
    }


def _text(value) -> str:
    """A JSON parameter as it was signed: numbers and strings as written, booleans as Binance writes them."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _illegal(name: str, pattern: str) -> str:
    return f"Illegal characters found in parameter '{name}'; legal range is '{pattern}'."


def _error(request_id, err: WsError) -> dict:
    error = {"code": err.code, "msg": err.msg}
    return {"id": request_id, "status": err.status, "error": error, "rateLimits": RATE_LIMITS}
