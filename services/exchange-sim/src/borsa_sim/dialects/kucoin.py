"""The kucoin dialect: KuCoin spot REST as ccxt's kucoin class speaks it, KC-API-* signatures, 30 s weight pools."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import time
import uuid

from aiohttp import web

from ..engine import Account, SimError
from ..markets import MarketSpec
from . import kucoin_wire as wire
from .base import Call, Dialect, Reject, dumps, int_param
from .kucoin_limits import KucoinPools
from .kucoin_orders import KucoinOrders
from .kucoin_ws import ENDPOINT, KucoinPrivateStreams

ALNUM = string.ascii_letters + string.digits
TIMESTAMP_WINDOW_MS = 5000  # KC-API-TIMESTAMP must be within 5 s of the server's clock (docs: "Timestamp")
MAX_CANDLES = 1500  # "For each query, the system would return at most 1500 pieces of data"
AUTH_HEADERS = ("KC-API-KEY", "KC-API-SIGN", "KC-API-TIMESTAMP", "KC-API-PASSPHRASE")
GATEWAY_PAGE = "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"


class KucoinDialect(KucoinOrders, Dialect):
    name = "kucoin"

    def setup(self) -> None:
        self.pools = KucoinPools(self.sim.rate_limit_scale)
        self._pool_of: dict[tuple[str, str], str] = {}
        self._hf_opened: set[str] = set()  # accounts that placed an HF order: /hf/accounts/opened answers true
        self._machine = wire.hex_id("kucoin", self.sim.seed)[:10]
        self.private_streams = KucoinPrivateStreams(self)
        public = [
            ("GET", "/api/v1/timestamp", self.timestamp, 3),
            ("GET", "/api/v1/status", self.status, 3),
            ("GET", "/api/v3/currencies", self.currencies, 3),
            ("GET", "/api/v2/symbols", self.symbols, 4),
            ("GET", "/api/v1/market/orderbook/level1", self.level1, 2),
            ("GET", "/api/v1/market/allTickers", self.all_tickers, 15),
            ("GET", "/api/v1/market/stats", self.stats, 15),
            ("GET", "/api/v1/market/orderbook/level2_20", self.book_20, 2),
            ("GET", "/api/v1/market/orderbook/level2_100", self.book_100, 4),
            ("GET", "/api/v1/market/candles", self.candles, 3),
        ]
        # Weights as KuCoin's endpoint pages give them, which ccxt's cost table mirrors for the Spot pool. Fixed
        # paths come before templated ones so that /hf/orders/active is not read as an order id.
        private = [
            ("GET", "/api/v3/market/orderbook/level2", self.book_full, "spot", 3),
            # Undocumented in our sources (ccxt's cost 60 is not a pool weight): kept small so that a scaled-down
            # pool still lets load_markets through.
            ("GET", "/api/ua/v1/account/mode", self.account_mode, "management", 2),
            ("GET", "/api/v3/margin/symbols", self.margin_symbols, "spot", 3),
            ("GET", "/api/v1/isolated/symbols", self.isolated_symbols, "spot", 3),
            ("GET", "/api/v1/hf/accounts/opened", self.hf_opened, "spot", 2),
            ("GET", "/api/v1/accounts", self.accounts, "management", 5),
            ("GET", "/api/v1/base-fee", self.base_fee, "spot", 3),
            ("GET", "/api/v1/trade-fees", self.trade_fees, "spot", 3),
            ("POST", "/api/v1/orders", self.create_classic, "spot", 2),
            ("GET", "/api/v1/orders", self.list_classic, "spot", 2),
            ("GET", "/api/v1/orders/{orderId}", self.get_classic, "spot", 2),
            ("DELETE", "/api/v1/orders/{orderId}", self.cancel_classic, "spot", 3),
            ("GET", "/api/v1/order/client-order/{clientOid}", self.get_classic_by_cid, "spot", 2),
            ("DELETE", "/api/v1/order/client-order/{clientOid}", self.cancel_classic_by_cid, "spot", 5),
            ("GET", "/api/v1/fills", self.fills_classic, "spot", 10),
            ("POST", "/api/v1/hf/orders", self.create_hf, "spot", 1),
            ("GET", "/api/v1/hf/orders/active", self.active_hf, "spot", 2),
            ("GET", "/api/v1/hf/orders/done", self.done_hf, "spot", 2),
            ("GET", "/api/v1/hf/orders/client-order/{clientOid}", self.get_hf_by_cid, "spot", 2),
            ("DELETE", "/api/v1/hf/orders/client-order/{clientOid}", self.cancel_hf_by_cid, "spot", 1),
            ("GET", "/api/v1/hf/orders/{orderId}", self.get_hf, "spot", 2),
            ("DELETE", "/api/v1/hf/orders/{orderId}", self.cancel_hf, "spot", 1),
            ("GET", "/api/v1/hf/fills", self.fills_hf, "spot", 2),
            ("POST", "/api/v1/bullet-private", self.private_streams.bullet_private, "spot", 10),
        ]
        for method, path, handler, weight in public:
            self._pool_of[(method, path)] = "public"
            self.route(method, path, handler, weight=weight)
        for method, path, handler, pool, weight in private:
            self._pool_of[(method, path)] = pool
            self.route(method, path, handler, private=True, weight=weight)

    def reset_limits(self) -> None:
        self.pools.reset()

    @property
    def ws_routes(self):
        # The instance server that POST /api/v1/bullet-private hands out: ccxt.pro's private push channel.
        return [(ENDPOINT, self.private_streams.handle)]

    async def drop_ws(self, refuse_seconds: float = 0.0) -> int:
        return await self.private_streams.drop(refuse_seconds)

    def order_id(self, seq: int) -> str:
        return wire.object_id(int(time.time()), self._machine, seq)

    def make_credentials(self) -> dict[str, str]:
        # A KuCoin v2 API key: a 24-hex key, a UUID secret, and the passphrase the user chose when creating it.
        return {
            "apiKey": secrets.token_hex(12),
            "secret": str(uuid.uuid4()),
            "password": "".join(secrets.choice(ALNUM) for _ in range(16)),
        }

    # -- responses --------------------------------------------------------------------------------------------
    def ok(self, call: Call, data) -> web.Response:
        return self._reply(call, {"code": wire.OK, "data": data}, 200)

    def fail(self, call: Call, status: int, code: str, msg: str) -> Reject:
        return Reject(self._reply(call, {"code": code, "msg": msg}, status))

    def _reply(self, call: Call, body: dict, status: int) -> web.Response:
        headers = call.request.get("kucoin_headers")
        return web.Response(text=dumps(body), status=status, content_type="application/json", headers=headers)

    def error_response(self, err: SimError, call: Call) -> web.Response:
        spec = self.state.find_market(call.param("symbol") or _body_symbol(call))
        status, code, msg = wire.translate(err, call.path, "/hf/" in call.path, spec.quote if spec else "")
        return self._reply(call, {"code": code, "msg": msg}, status)

    def http_error(self, status: int, message: str) -> web.Response:
        reason = web.Response(status=status).reason
        if status in (502, 503, 504):
            # Gateway failures come from KuCoin's edge as a bare page, not from the API.
            page = GATEWAY_PAGE.format(status=status, reason=reason)
            return web.Response(text=page, status=status, content_type="text/html")
        body = {
            400: {"code": "400100", "msg": message},
            401: {"code": "400001", "msg": message},
            429: {"code": "429000", "msg": "Too Many Requests"},
            500: {"code": "500000", "msg": "Internal Server Error"},
        }.get(status)
        if body is None:
            # The API gateway's own reply for unknown paths: {"code":"404","msg":"Not Found",...} (see ccxt kucoin.py).
            body = {"code": str(status), "msg": reason, "retry": False, "success": False}
        return web.Response(text=dumps(body), status=status, content_type="application/json")

    # -- rate limits ------------------------------------------------------------------------------------------
    async def rate_limit(self, call: Call, weight: float) -> None:
        template = call.request.match_info.route.resource.canonical.removeprefix(f"/{self.name}")
        pool = self._pool_of.get((call.method, template), "public")
        if pool == "public":
            who = f"ip:{call.request.remote}"
        else:
            key = call.header("KC-API-KEY") or ""
            account = self.state.account_by_key(key)
            who = f"uid:{account.id}" if account else f"key:{key or call.request.remote}"
        verdict = self.pools.hit(pool, who, weight)
        call.request["kucoin_headers"] = verdict.headers()
        if not verdict.allowed:
            raise self.fail(call, 429, "429000", "Too Many Requests")

    # -- authentication ---------------------------------------------------------------------------------------
    async def authenticate(self, call: Call) -> Account:
        key, sign, stamp, passphrase = (call.header(h) for h in AUTH_HEADERS)
        if not (key and sign and stamp and passphrase):
            raise self.fail(
                call,
                401,
                "400001",
                "Please check the header of your request for KC-API-KEY, KC-API-SIGN, KC-API-TIMESTAMP, "
                "KC-API-PASSPHRASE",
            )
        if not stamp.isdigit() or abs(self.now_ms() - int(stamp)) > TIMESTAMP_WINDOW_MS:
            raise self.fail(call, 401, "400002", "KC-API-TIMESTAMP Invalid")
        account = self.state.account_by_key(key)
        if account is None:
            raise self.fail(call, 401, "400003", "KC-API-KEY not exists")
        secret = account.credentials["secret"].encode()
        # Version 2 keys send the passphrase HMAC-ed with the secret; anything else cannot match a v2 key.
        expected = _b64_hmac(secret, account.credentials["password"])
        if call.header("KC-API-KEY-VERSION") != "2" or not hmac.compare_digest(expected, passphrase):
            raise self.fail(call, 401, "400004", "Invalid KC-API-PASSPHRASE")
        # The signed path is the one on the wire (raw, with its query), without the simulator's prefix.
        raw_path = call.request.raw_path.removeprefix(f"/{self.name}")
        if not hmac.compare_digest(_b64_hmac(secret, stamp + call.method + raw_path + call.body), sign):
            raise self.fail(call, 401, "400005", "Signature verification failed")
        account.authenticated_once = True
        return account

    # -- parameters -------------------------------------------------------------------------------------------
    def spec(self, call: Call, value: str | None = None, required: bool = True) -> MarketSpec | None:
        value = call.param("symbol") if value is None else value
        if not value:
            if required:
                raise SimError("missing_param", "symbol is required", field="symbol")
            return None
        if not isinstance(value, str):
            raise SimError("invalid_param", "symbol must be a string", field="symbol")
        spec = self.state.find_market(value)
        if spec is None or spec.market_id != value:
            raise SimError("unknown_symbol", f"Unknown symbol {value!r}", field="symbol", symbol=value)
        return spec

    # -- market data ------------------------------------------------------------------------------------------
    async def timestamp(self, call: Call) -> web.Response:
        return self.ok(call, self.now_ms())

    async def status(self, call: Call) -> web.Response:
        return self.ok(call, {"status": "open", "msg": ""})

    async def currencies(self, call: Call) -> web.Response:
        codes = sorted({c for spec in self.state.specs.values() for c in (spec.base_id, spec.quote_id)})
        return self.ok(call, [wire.currency_entry(code) for code in codes])

    async def symbols(self, call: Call) -> web.Response:
        market = call.param("market")
        entries = [wire.symbol_entry(spec) for spec in self.state.specs.values()]
        return self.ok(call, [e for e in entries if not market or e["market"] == market])

    async def level1(self, call: Call) -> web.Response:
        return self.ok(call, wire.level1_entry(self.state, self.spec(call), self.now_ms()))

    async def stats(self, call: Call) -> web.Response:
        return self.ok(call, wire.stats_entry(self.state, self.spec(call), self.now_ms()))

    async def all_tickers(self, call: Call) -> web.Response:
        now = self.now_ms()
        tickers = [wire.all_tickers_entry(self.state, spec, now) for spec in self.state.specs.values()]
        return self.ok(call, {"time": now, "ticker": tickers})

    async def book_20(self, call: Call) -> web.Response:
        return self.ok(call, wire.book_entry(self.state, self.spec(call), 20, self.now_ms()))

    async def book_100(self, call: Call) -> web.Response:
        return self.ok(call, wire.book_entry(self.state, self.spec(call), 100, self.now_ms()))

    async def book_full(self, call: Call) -> web.Response:
        return self.ok(call, wire.book_entry(self.state, self.spec(call), 100, self.now_ms()))

    async def candles(self, call: Call) -> web.Response:
        spec = self.spec(call)
        kind = call.param("type")
        if not kind:
            raise SimError("missing_param", "type is required", field="type")
        timeframe = wire.CANDLE_TYPES.get(kind)
        if timeframe is None:
            raise SimError("invalid_param", f"Unsupported type {kind!r}", field="type")
        start = int_param(call.param("startAt"), "startAt", 0)
        end = int_param(call.param("endAt"), "endAt", 0)
        if start < 0 or end < 0:
            raise SimError("invalid_param", "startAt and endAt must not be negative", field="startAt")
        if timeframe == "1M":
            candles = wire.monthly(self.state.ohlcv(spec, "1d", None, 100_000))
        else:
            candles = self.state.ohlcv(spec, timeframe, start * 1000 if start else None, 100_000)
        candles = [c for c in candles if c.ts >= start * 1000 and (not end or c.ts < end * 1000)][-MAX_CANDLES:]
        return self.ok(call, [wire.candle_row(c, spec) for c in reversed(candles)])

    # -- account ----------------------------------------------------------------------------------------------
    async def account_mode(self, call: Call) -> web.Response:
        return self.ok(call, {"selfAccountMode": "CLASSIC"})

    async def margin_symbols(self, call: Call) -> web.Response:
        return self.ok(call, {"timestamp": self.now_ms(), "items": []})

    async def isolated_symbols(self, call: Call) -> web.Response:
        return self.ok(call, [])

    async def hf_opened(self, call: Call) -> web.Response:
        return self.ok(call, call.account.id in self._hf_opened)

    async def accounts(self, call: Call) -> web.Response:
        kind = call.param("type")
        # One pool of funds serves the trading account, classic ("trade") or HF ("trade_hf").
        trading = "trade_hf" if call.account.id in self._hf_opened else "trade"
        if kind not in (None, "", "trade", "trade_hf", "main", "margin", "isolated", "pool", "contract"):
            raise SimError("invalid_param", f"Invalid account type {kind!r}", field="type")
        if kind in ("trade", "trade_hf"):
            trading = kind
        elif kind:
            return self.ok(call, [])
        return self.ok(call, wire.balance_entries(call.account, trading, call.param("currency")))

    async def base_fee(self, call: Call) -> web.Response:
        return self.ok(call, {"takerFeeRate": wire.BASE_FEE, "makerFeeRate": wire.BASE_FEE})

    async def trade_fees(self, call: Call) -> web.Response:
        names = [n for n in (call.param("symbols") or "").split(",") if n]
        if not names:
            raise SimError("missing_param", "symbols is required", field="symbols")
        if len(names) > 10:
            raise SimError("invalid_param", "At most 10 symbols", field="symbols")
        specs = [self.spec(call, name) for name in names]
        return self.ok(call, [{"symbol": s.market_id, "takerFeeRate": s.taker, "makerFeeRate": s.maker} for s in specs])


def _b64_hmac(secret: bytes, payload: str) -> str:
    return base64.b64encode(hmac.new(secret, payload.encode(), hashlib.sha256).digest()).decode()


def _body_symbol(call: Call) -> str | None:
    try:
        value = call.json().get("symbol")
    except SimError:
        return None
    return value if isinstance(value, str) else None
