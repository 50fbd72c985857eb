"""The binance dialect: Binance spot REST (/api/v3) with its HMAC signatures, limits and error codes, for ccxt."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from decimal import Decimal

from aiohttp import web

from ..engine import Account, Order, SimError
from ..markets import MarketSpec
from . import binance_wire as wire
from .base import Call, Dialect, Reject, dumps
from .binance_handlers import routes
from .binance_limits import BinanceLimits, Limited
from .binance_wire import API_KEY_RE, DECIMAL_RE, DEFAULT_RECV_WINDOW, LONG_RE, MAX_AHEAD_MS, MAX_RECV_WINDOW
from .binance_ws import BinanceUserStreams

SYMBOL_RE = re.compile(r"^[A-Z0-9-_.]{1,20}$")
SIGNATURE_RE = re.compile(r"(^|&)signature=([^&]*)")
SIGNED = ("recvWindow", "timestamp", "signature")
Weight = Callable[[Call], float]


class BinanceDialect(Dialect):
    name = "binance"

    def setup(self) -> None:
        self.limits = BinanceLimits(self.sim.rate_limit_scale, self.sim.ban_seconds)
        self._allowed: dict[tuple[str, str], frozenset[str]] = {}
        self._weights: dict[tuple[str, str], Weight] = {}
        for method, path, handler, weight, params, private in routes(self):
            self._allowed[(method, path)] = frozenset(params) | (frozenset(SIGNED) if private else frozenset())
            if callable(weight):
                self._weights[(method, path)] = weight
                weight = 1
            self.route(method, path, self._checked(handler), private=private, weight=weight)

        self.user_streams = BinanceUserStreams(self)

    def reset_limits(self) -> None:
        self.limits.reset()

    @property
    def ws_routes(self):
        # wss://ws-api.binance.com:443/ws-api/v3: the WebSocket API, where ccxt.pro subscribes to the user stream.
        return [("/ws-api/v3", self.user_streams.handle)]

    async def drop_ws(self, refuse_seconds: float = 0.0) -> int:
        return await self.user_streams.drop(refuse_seconds)

    def order_id(self, seq: int) -> str:
        return str(wire.ORDER_ID_BASE + seq)

    def make_credentials(self) -> dict[str, str]:
        # Binance HMAC keys: 64 alphanumeric characters for the key and for the secret.
        return {"apiKey": wire.random_id(64), "secret": wire.random_id(64)}

    # -- responses --------------------------------------------------------------------------------------------
    def reply(self, call: Call, data, status: int = 200, headers: dict | None = None) -> web.Response:
        merged = {**call.request.get("binance_headers", {}), **(headers or {})}
        return web.Response(text=dumps(data), status=status, content_type="application/json", headers=merged)

    def fail(self, call: Call, code: int, msg: str, status: int = 400, headers: dict | None = None) -> Reject:
        return Reject(self.reply(call, {"code": code, "msg": msg}, status, headers))

    def limited(self, call: Call, verdict: Limited, headers: dict | None = None) -> Reject:
        return self.fail(
            call,
            verdict.code,
            verdict.msg,
            verdict.status,
            {"Retry-After": str(verdict.retry_after), **(headers or {})},
        )

    def http_error(self, status: int, message: str) -> web.Response:
        if status == 500:
            body = {"code": -1000, "msg": "An unknown error occured while processing the request."}
            return web.Response(text=dumps(body), status=500, content_type="application/json")
        if status == 400:
            body = {"code": -1100, "msg": "Illegal characters found in a parameter."}
            return web.Response(text=dumps(body), status=400, content_type="application/json")
        # Unknown paths and gateway failures (502/503/504) come from Binance's front end as a bare page.
        reason = web.Response(status=status).reason
        return web.Response(
            text=f"<html><body><h1>{status} {reason}</h1></body></html>", status=status, content_type="text/html"
        )

    def error_response(self, err: SimError, call: Call) -> web.Response:
        code, msg = _translate(err, call)
        return self.reply(call, {"code": code, "msg": msg}, 400)

    # -- rate limits ------------------------------------------------------------------------------------------
    async def rate_limit(self, call: Call, weight: float) -> None:
        dynamic = self._weights.get((call.method, call.path))
        if dynamic is not None:
            weight = dynamic(call)
        ip = call.request.remote or "unknown"
        verdict = self.limits.request(ip, weight)
        used = str(self.limits.used_weight(ip))
        call.request["binance_headers"] = {"X-MBX-USED-WEIGHT": used, "X-MBX-USED-WEIGHT-1M": used}
        if verdict is not None:
            raise self.limited(call, verdict)

    # -- authentication ---------------------------------------------------------------------------------------
    async def authenticate(self, call: Call) -> Account:
        key = call.header("X-MBX-APIKEY")
        if not key or not API_KEY_RE.match(key):
            raise self.fail(call, -2014, "API-key format invalid.", 401)
        account = self.state.account_by_key(key)
        if account is None:
            raise self.fail(call, -2015, "Invalid API-key, IP, or permissions for action.", 401)
        timestamp = call.param("timestamp")
        if not timestamp:
            raise self.fail(call, -1102, _mandatory("timestamp"))
        if not LONG_RE.match(timestamp):
            raise self.fail(call, -1100, _illegal("timestamp", "^[0-9]{1,20}$"))
        window = call.param("recvWindow") or str(DEFAULT_RECV_WINDOW)
        if not DECIMAL_RE.match(window):
            raise self.fail(call, -1100, _illegal("recvWindow", DECIMAL_RE.pattern))
        if Decimal(window) > MAX_RECV_WINDOW:
            raise self.fail(call, -1131, "recvWindow must be less than 60000")
        # Binance signs totalParams: the raw query string followed by the raw body, exactly as sent.
        total = call.request.rel_url.raw_query_string + call.body
        found = SIGNATURE_RE.search(total)
        if found is None or not found.group(2):
            raise self.fail(call, -1102, _mandatory("signature"))
        before, after = total[: found.start()], total[found.end() :]
        payload = before + after if before else after.lstrip("&")
        expected = hmac.new(account.credentials["secret"].encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, found.group(2).lower()):
            raise self.fail(call, -1022, "Signature for this request is not valid.")
        now = self.now_ms()
        sent = int(timestamp)
        if sent > now + MAX_AHEAD_MS:
            raise self.fail(call, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
        if now - sent > Decimal(window):
            raise self.fail(call, -1021, "Timestamp for this request is outside of the recvWindow.")
        account.authenticated_once = True
        return account

    # -- parameters -------------------------------------------------------------------------------------------
    def _checked(self, handler):
        async def run(call: Call) -> web.StreamResponse:
            allowed = self._allowed[(call.method, call.path)]
            sent = set(call.query) | set(call.form)
            unread = sent - allowed
            if unread:
                read = len(sent) - len(unread)
                raise self.fail(
                    call,
                    -1104,
                    f"Not all sent parameters were read; read '{read}' parameter(s) but was sent '{len(sent)}'.",
                )
            return await handler(call)

        return run

    def spec(self, call: Call, name: str = "symbol") -> MarketSpec:
        value = call.param(name)
        if not value:
            raise self.fail(call, -1102, _mandatory(name))
        if not SYMBOL_RE.match(value):
            raise self.fail(call, -1100, _illegal(name, SYMBOL_RE.pattern))
        spec = self.state.find_market(value)
        if spec is None or spec.market_id != value:
            raise self.fail(call, -1121, "Invalid symbol.")
        return spec

    def specs(self, call: Call) -> list[MarketSpec] | None:
        """`symbol=X` or `symbols=["X","Y"]` (a JSON array); None when neither: all markets."""
        if call.param("symbol") is not None:
            return [self.spec(call)]
        raw = call.param("symbols")
        if raw is None:
            return None
        try:
            names = json.loads(raw)
        except ValueError:
            names = None
        if (
            not isinstance(names, list)
            or not names
            or not all(isinstance(n, str) and SYMBOL_RE.match(n) for n in names)
        ):
            raise self.fail(
                call, -1100, _illegal("symbols", '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$')
            )
        out = []
        for name in names:
            spec = self.state.find_market(name)
            if spec is None or spec.market_id != name:
                raise self.fail(call, -1121, "Invalid symbol.")
            out.append(spec)
        return out

    def decimal(self, call: Call, name: str) -> Decimal | None:
        value = call.param(name)
        if value is None or value == "":
            return None
        if not DECIMAL_RE.match(value):
            raise self.fail(call, -1100, _illegal(name, DECIMAL_RE.pattern))
        return Decimal(value)

    def long(self, call: Call, name: str, default: int | None = None, low: int = 0) -> int | None:
        value = call.param(name)
        if value is None or value == "":
            return default
        if not LONG_RE.match(value):
            raise self.fail(call, -1100, _illegal(name, LONG_RE.pattern))
        number = int(value)
        if number < low:
            raise self.fail(call, -1130, f"Data sent for parameter '{name}' is not valid.")
        return number

    def find_order(self, call: Call, spec: MarketSpec, missing_code: int) -> Order:
        """orderId or origClientOrderId; with both, the order found by id must carry that client id."""
        order_id = self.long(call, "orderId")
        client_id = call.param("origClientOrderId")
        if order_id is None and not client_id:
            raise self.fail(
                call, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        missing = "Order does not exist." if missing_code == -2013 else "Unknown order sent."
        try:
            order = self.state.get_order(
                call.account, order_id=str(order_id) if order_id is not None else None, client_order_id=client_id
            )
        except SimError:
            raise self.fail(call, missing_code, missing) from None
        if order.spec is not spec or (order_id is not None and client_id and order.client_order_id != client_id):
            raise self.fail(call, missing_code, missing)
        return order


def _mandatory(name: str) -> str:
    return f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."


def _illegal(name: str, pattern: str) -> str:
    return f"Illegal characters found in parameter '{name}'; legal range is '{pattern}'."


# The engine's field names as Binance calls them.
PARAMS = {
    "amount": "quantity",
    "quote_amount": "quoteOrderQty",
    "client_order_id": "newClientOrderId",
    "order_id": "orderId",
}


def _translate(err: SimError, call: Call) -> tuple[int, str]:
    """A rule the engine enforced, in Binance's words (codes from errors.md; ccxt matches some messages)."""
    market = call.param("type") == "MARKET"
    lot = "MARKET_LOT_SIZE" if market else "LOT_SIZE"
    match err.kind:
        case "unknown_symbol":
            return -1121, "Invalid symbol."
        case "missing_param":
            return -1102, _mandatory(PARAMS.get(err.field or "", err.field or "parameter"))
        case "invalid_param":
            name = PARAMS.get(err.field or "", err.field or "parameter")
            if err.field == "side":
                return -1117, "Invalid side."
            if err.field == "type":
                return -1116, "Invalid orderType."
            if err.field == "interval":
                return -1120, "Invalid interval."
            if err.field in ("amount", "quote_amount"):
                return -1013, "Invalid quantity."
            if err.field == "price":
                return -1013, "Invalid price."
            return -1100, _illegal(name, DECIMAL_RE.pattern)
        case "bad_amount_step" | "below_min_amount" | "above_max_amount":
            return -1013, f"Filter failure: {lot}"
        case "bad_price_tick" | "price_out_of_range":
            return -1013, "Filter failure: PRICE_FILTER"
        case "below_min_cost" | "above_max_cost":
            return -1013, "Filter failure: NOTIONAL"
        case "insufficient_balance":
            return -2010, "Account has insufficient balance for requested action."
        case "duplicate_client_id":
            return -2010, "Duplicate order sent."
        case "unknown_order":
            return (-2011, "Unknown order sent.") if call.method == "DELETE" else (-2013, "Order does not exist.")
        case "order_not_open":
            return -2011, "Unknown order sent."
    return -1000, "An unknown error occured while processing the request."
