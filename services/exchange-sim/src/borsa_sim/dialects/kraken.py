"""The Kraken dialect: Kraken's REST paths under /0/public and /0/private, its API-Sign, its call counters and
its `{"error": [...], "result": ...}` envelope, answered with HTTP 200 even for errors, as Kraken does."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from decimal import Decimal

from aiohttp import web

from ..engine import Account, Order, SimError
from ..markets import MarketSpec
from ..ratelimit import DecayCounter, scaled
from . import kraken_wire as w
from .base import Call, Dialect, Reject, decimal_param, int_param
from .kraken_errors import kraken_error, message, ok, status_error
from .kraken_orders import parse_add_order, truthy
from .kraken_ws import KrakenStreams

# Rate limits (docs.kraken.com guides/rest/ratelimits, support article 360045239571), Starter tier:
REST_MAX, REST_DECAY = 15, 0.33  # call counter per API key; ledger and trade history cost 2, trading 0
REST_COSTLIEST = 2  # a scaled-down counter never drops below this, so every call stays possible
ENGINE_MAX, ENGINE_DECAY = 60, 1.0  # trading engine counter per pair and account, +1 per AddOrder [secondary]
# Public endpoints: "about one call per second per IP" with bursts; modelled as a counter of 20 decaying 1/s.
PUBLIC_MAX, PUBLIC_DECAY = 20, 1.0
PAGE = 50  # ClosedOrders and TradesHistory return 50 results per page (`ofs` pages)
INTERVALS = {1: "1m", 5: "5m", 15: "15m", 30: "30m", 60: "1h", 240: "4h", 1440: "1d", 10080: "1w", 21600: "15d"}
FIFTEEN_DAYS_MS = 15 * 86_400_000


class KrakenDialect(Dialect):
    name = "kraken"

    def find_pair(self, key: str) -> MarketSpec | None:
        """A pair by its id (XXBTZUSD) or altname (XBTUSD), as Kraken accepts both; not by unified symbol."""
        spec = self.state.find_market(key)
        return spec if spec is not None and key in (spec.market_id, spec.altname) else None

    def setup(self) -> None:
        scale = self.sim.rate_limit_scale
        self.public_counter = DecayCounter(scaled(PUBLIC_MAX, scale), PUBLIC_DECAY)
        self.rest_counter = DecayCounter(max(scaled(REST_MAX, scale), REST_COSTLIEST), REST_DECAY)
        self.engine_counter = DecayCounter(scaled(ENGINE_MAX, scale), ENGINE_DECAY)
        # Requests name a pair by its id (XXBTZUSD) or its altname (XBTUSD); both are Kraken's.
        self.codes = {w.asset_id(c): c for s in self.state.specs.values() for c in (s.base, s.quote)}
        for name, handler in (
            ("Time", self.time),
            ("SystemStatus", self.system_status),
            ("Assets", self.assets),
            ("AssetPairs", self.asset_pairs),
            ("Ticker", self.ticker),
            ("Depth", self.depth),
            ("OHLC", self.ohlc),
        ):
            # Kraken's public methods answer GET with a query and POST with a form alike.
            self.route("GET", f"/0/public/{name}", handler)
            self.route("POST", f"/0/public/{name}", handler)
        for name, handler, cost in (
            ("Balance", self.balance, 1),
            ("BalanceEx", self.balance_ex, 1),
            ("TradeVolume", self.trade_volume, 1),
            ("AddOrder", self.add_order, 0),
            ("CancelOrder", self.cancel_order, 0),
            ("CancelAll", self.cancel_all, 1),
            ("QueryOrders", self.query_orders, 1),
            ("OpenOrders", self.open_orders, 1),
            ("ClosedOrders", self.closed_orders, 1),
            ("TradesHistory", self.trades_history, 2),
            ("GetWebSocketsToken", self.websockets_token, 1),
        ):
            self.route("POST", f"/0/private/{name}", handler, private=True, weight=cost)
        self.streams = KrakenStreams(self)

    @property
    def ws_routes(self):
        # wss://ws-auth.kraken.com/v2: the authenticated WebSocket v2, where ccxt.pro watches `executions`.
        return [("/v2", self.streams.handle)]

    async def drop_ws(self, refuse_seconds: float = 0.0) -> int:
        return await self.streams.drop(refuse_seconds)

    def reset_limits(self) -> None:
        for counter in (self.public_counter, self.rest_counter, self.engine_counter):
            counter.reset()

    def order_id(self, seq: int) -> str:
        return w.kraken_id("order", self.sim.seed, seq)

    def trade_id(self, seq: int) -> str:
        return w.kraken_id("trade", self.sim.seed, seq)

    def make_credentials(self) -> dict[str, str]:
        # An API key is 56 base64 characters; the private key is base64 of 64 bytes, which ccxt decodes.
        return {
            "apiKey": base64.b64encode(secrets.token_bytes(42)).decode(),
            "secret": base64.b64encode(secrets.token_bytes(64)).decode(),
        }

    # -- the request lifecycle ---------------------------------------------------------------------------------
    def params(self, call: Call) -> dict[str, str]:
        """Query, form or JSON body fields as strings: Kraken takes JSON bodies as well as forms."""
        if call.form or not call.body or call.method == "GET":
            return {**call.query, **call.form}
        data = call.json()
        return {k: json.dumps(v) if isinstance(v, bool | list | dict) else str(v) for k, v in data.items()}

    async def rate_limit(self, call: Call, weight: float) -> None:
        if call.path.startswith("/0/public/"):
            if self.public_counter.hit(call.request.remote or "") is not None:
                raise Reject(kraken_error("EGeneral:Too many requests"))
            return
        account = self.state.account_by_key(call.header("API-Key"))
        if account is None:
            return  # authenticate answers EAPI:Invalid key
        if weight and self.rest_counter.hit(account.api_key, weight) is not None:
            raise Reject(kraken_error("EAPI:Rate limit exceeded"))
        if call.path == "/0/private/AddOrder":
            try:
                spec = self.find_pair(self.params(call).get("pair", ""))
            except SimError:
                return  # a malformed body is answered by the handler
            # Counted before validation: Kraken adds the +1 even for an order it then rejects.
            if spec is not None and self.engine_counter.hit(f"{account.id}/{spec.market_id}") is not None:
                raise Reject(kraken_error("EOrder:Rate limit exceeded"))

    async def authenticate(self, call: Call) -> Account:
        account = self.state.account_by_key(call.header("API-Key"))
        if account is None:
            raise Reject(kraken_error("EAPI:Invalid key"))
        try:
            nonce = self.params(call).get("nonce", "")
        except SimError:
            nonce = ""
        # API-Sign = base64(HMAC-SHA512(base64decode(secret), urlpath + SHA256(nonce + postdata)))
        signed = call.path.encode() + hashlib.sha256((nonce + call.body).encode()).digest()
        try:
            key = base64.b64decode(account.credentials["secret"], validate=True)
            given = base64.b64decode(call.header("API-Sign") or "", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Reject(kraken_error("EAPI:Invalid signature")) from exc
        if not hmac.compare_digest(hmac.new(key, signed, hashlib.sha512).digest(), given):
            raise Reject(kraken_error("EAPI:Invalid signature"))
        if not nonce.isdigit() or int(nonce) <= account.last_nonce:
            raise Reject(kraken_error("EAPI:Invalid nonce"))
        account.last_nonce = int(nonce)
        account.authenticated_once = True
        return account

    def error_response(self, err: SimError, call: Call) -> web.Response:
        try:
            pair = self.params(call).get("pair", "")
        except SimError:
            pair = ""
        return kraken_error(message(err, pair))

    def http_error(self, status: int, message: str) -> web.Response:
        return status_error(status)

    # -- helpers -----------------------------------------------------------------------------------------------
    def pair(self, key: str | None) -> MarketSpec:
        if not key:
            raise SimError("missing_param", "pair is required", field="pair")
        spec = self.find_pair(key)
        if spec is None:
            raise SimError("unknown_symbol", f"Unknown asset pair {key!r}", field="pair", symbol=key)
        return spec

    def pair_list(self, value: str | None) -> list[MarketSpec]:
        if value is None:
            return list(self.state.specs.values())
        return [self.pair(key) for key in value.split(",")]

    def mine(self, account: Account, txid: str) -> Order | None:
        order = self.state.orders.get(txid)
        return order if order is not None and order.account_id == account.id else None

    def order_view(self, order: Order, with_trades: bool) -> dict:
        trade_ids = [self.trade_id(f.trade_id) for f in order.fills] if with_trades else None
        return w.order_info(order, trade_ids)

    # -- public ------------------------------------------------------------------------------------------------
    async def time(self, call: Call) -> web.Response:
        now = self.now_ms()
        return ok({"unixtime": now // 1000, "rfc1123": w.rfc1123(now)})

    async def system_status(self, call: Call) -> web.Response:
        return ok({"status": "online", "timestamp": w.iso_z(self.now_ms())})

    async def assets(self, call: Call) -> web.Response:
        wanted = self.params(call).get("asset")
        by_alt = {w.asset_info(c)["altname"]: i for i, c in self.codes.items()}
        ids = list(self.codes)
        if wanted:
            ids = [a if a in self.codes else by_alt.get(a, "") for a in wanted.split(",")]
            if "" in ids:
                return kraken_error("EQuery:Unknown asset")
        return ok({i: w.asset_info(self.codes[i]) for i in ids})

    async def asset_pairs(self, call: Call) -> web.Response:
        params = self.params(call)
        info = params.get("info", "info")
        keys = {
            "info": None,
            "leverage": ("leverage_buy", "leverage_sell"),
            "fees": ("fees", "fees_maker", "fee_volume_currency"),
            "margin": ("margin_call", "margin_stop"),
        }
        if info not in keys:
            raise SimError("invalid_param", "info must be info, leverage, fees or margin", field="info")
        out = {}
        for spec in self.pair_list(params.get("pair")):
            entry = w.pair_info(spec)
            out[spec.market_id] = entry if keys[info] is None else {k: entry[k] for k in keys[info]}
        return ok(out)

    async def ticker(self, call: Call) -> web.Response:
        now = self.now_ms()
        out = {}
        for spec in self.pair_list(self.params(call).get("pair")):
            walk = self.state.walk(spec)
            bids, asks = walk.book(1)
            minutes = walk.minute_candles()[-1441:]
            out[spec.market_id] = w.ticker_info(spec, walk.price, bids[0], asks[0], minutes, now)
        return ok(out)

    async def depth(self, call: Call) -> web.Response:
        params = self.params(call)
        spec = self.pair(params.get("pair"))
        count = int_param(params.get("count"), "count", default=100)
        if not 1 <= count <= 500:
            raise SimError("invalid_param", "count must be between 1 and 500", field="count")
        bids, asks = self.state.walk(spec).book(count)
        ts = self.now_ms() // 1000
        return ok({spec.market_id: {"asks": w.book_side(spec, asks, ts), "bids": w.book_side(spec, bids, ts)}})

    async def ohlc(self, call: Call) -> web.Response:
        params = self.params(call)
        spec = self.pair(params.get("pair"))
        interval = int_param(params.get("interval"), "interval", default=1)
        since = decimal_param(params.get("since"), "since", required=False)
        if interval not in INTERVALS:
            raise SimError("invalid_param", f"Invalid interval {interval}", field="interval")
        # Kraken returns the newest 720 candles, the last one still open, then drops those not after `since`.
        if interval == 21600:
            candles = w.merge_candles(self.state.ohlcv(spec, "1d", None, 720 * 15), FIFTEEN_DAYS_MS)[-720:]
        else:
            candles = self.state.ohlcv(spec, INTERVALS[interval], None, 720)
        last = candles[-2].ts if len(candles) > 1 else candles[-1].ts
        if since is not None:
            candles = [c for c in candles if c.ts / 1000 > since]
        return ok({spec.market_id: [w.candle_row(spec, c) for c in candles], "last": last // 1000})

    # -- private -----------------------------------------------------------------------------------------------
    async def balance(self, call: Call) -> web.Response:
        holdings = call.account.balances.items()
        return ok({w.asset_id(c): w.amount_str(c, h.total) for c, h in holdings})

    async def balance_ex(self, call: Call) -> web.Response:
        out = {}
        for code, holding in call.account.balances.items():
            out[w.asset_id(code)] = {
                "balance": w.amount_str(code, holding.total),
                "hold_trade": w.amount_str(code, holding.used),
                "credit": "0.0000",
                "credit_used": "0.0000",
            }
        return ok(out)

    async def trade_volume(self, call: Call) -> web.Response:
        params = self.params(call)
        specs = self.pair_list(params.get("pair")) if params.get("pair") else []
        volume = sum((f.cost for f in self.state.account_fills(call.account)), Decimal(0))
        taker_tiers = [(v, t) for v, t, _ in w.FEE_TIERS]
        maker_tiers = [(v, m) for v, _, m in w.FEE_TIERS]
        return ok(
            {
                "currency": "ZUSD",
                "volume": w.fixed(volume, 4),
                "fees": {s.market_id: w.fee_info(s.taker, taker_tiers) for s in specs},
                "fees_maker": {s.market_id: w.fee_info(s.maker, maker_tiers) for s in specs},
            }
        )

    async def add_order(self, call: Call) -> web.Response:
        account = call.account
        r = parse_add_order(self.params(call), self.pair)
        if "post" in r.flags:
            walk = self.state.walk(r.spec)
            if (r.side == "buy" and r.price >= walk.best_ask()) or (r.side == "sell" and r.price <= walk.best_bid()):
                return kraken_error("EOrder:Post only order")
        descr = {"order": w.descr_order(r.spec, r.side, r.ordertype, r.volume, r.price)}
        if r.validate:
            self.state.check_order(
                account,
                r.spec,
                side=r.side,
                type=r.ordertype,
                amount=r.amount,
                price=r.price,
                client_order_id=r.client_order_id,
                quote_amount=r.quote_amount,
            )
            return ok({"descr": descr})
        order = self.state.place_order(
            account,
            r.spec,
            side=r.side,
            type=r.ordertype,
            amount=r.amount,
            price=r.price,
            client_order_id=r.client_order_id,
            quote_amount=r.quote_amount,
            time_in_force=r.time_in_force,
        )
        order.extra["userref"] = r.userref
        order.extra["oflags"] = r.flags
        return ok({"descr": descr, "txid": [order.id]})

    async def websockets_token(self, call: Call) -> web.Response:
        # GetWebSocketsToken: a token for the authenticated websocket, to be used within `expires` seconds.
        return ok(self.streams.issue_token(call.account))

    async def cancel_order(self, call: Call) -> web.Response:
        params, account = self.params(call), call.account
        # `txid` takes a txid, a userref (every open order with it) or a cl_ord_id; ccxt sends `cl_ord_id`.
        key = params.get("cl_ord_id") or params.get("txid")
        if not key:
            raise SimError("missing_param", "txid or cl_ord_id is required", field="txid")
        order = None if params.get("cl_ord_id") else self.mine(account, key)
        if order is None:
            order = self.state.find_by_client_id(account, key, open_only=True)
        if order is not None:
            orders = [order]
        elif key.lstrip("-").isdigit() and not params.get("cl_ord_id"):
            open_orders = self.state.account_orders(account, open_only=True)
            orders = [o for o in open_orders if o.extra.get("userref") == int(key)]
        else:
            orders = []
        if not orders or not all(o.is_open for o in orders):
            raise SimError("unknown_order", f"Unknown order {key!r}", field="txid")
        for o in orders:
            self.state.cancel_order(account, o)
        return ok({"count": len(orders)})

    async def cancel_all(self, call: Call) -> web.Response:
        orders = self.state.account_orders(call.account, open_only=True)
        for order in orders:
            self.state.cancel_order(call.account, order)
        return ok({"count": len(orders)})

    async def query_orders(self, call: Call) -> web.Response:
        params = self.params(call)
        if not params.get("txid"):
            raise SimError("missing_param", "txid is required", field="txid")
        txids = params["txid"].split(",")
        if len(txids) > 50:
            raise SimError("invalid_param", "At most 50 txids", field="txid")
        userref = int_param(params.get("userref"), "userref")
        out = {}
        for txid in txids:
            order = self.mine(call.account, txid)
            if order is None:
                # What Kraken answers for a txid that is not one of this account's orders.
                return kraken_error("EOrder:Invalid order")
            if userref is None or order.extra.get("userref") == userref:
                out[txid] = self.order_view(order, truthy(params.get("trades")))
        return ok(out)

    def _filtered(self, call: Call, orders: list[Order]) -> list[Order]:
        params = self.params(call)
        userref = int_param(params.get("userref"), "userref")
        cl_ord_id = params.get("cl_ord_id")
        return [
            o
            for o in orders
            if (userref is None or o.extra.get("userref") == userref)
            and (cl_ord_id is None or o.client_order_id == cl_ord_id)
        ]

    async def open_orders(self, call: Call) -> web.Response:
        orders = self._filtered(call, self.state.account_orders(call.account, open_only=True))
        with_trades = truthy(self.params(call).get("trades"))
        return ok({"open": {o.id: self.order_view(o, with_trades) for o in reversed(orders)}})

    async def closed_orders(self, call: Call) -> web.Response:
        params = self.params(call)
        orders = self._filtered(call, self.state.account_orders(call.account, closed_only=True))
        orders.sort(key=lambda o: o.updated_ms, reverse=True)
        closetime = params.get("closetime", "both")
        if closetime not in ("open", "close", "both"):
            raise SimError("invalid_param", "closetime must be open, close or both", field="closetime")
        start, end = self._bound(params, "start"), self._bound(params, "end")

        def stamps(o: Order) -> list[int]:
            return {"open": [o.created_ms], "close": [o.updated_ms]}.get(closetime, [o.created_ms, o.updated_ms])

        orders = [o for o in orders if any(start < t / 1000 <= end for t in stamps(o))]
        ofs = int_param(params.get("ofs"), "ofs", default=0)
        page = orders[ofs : ofs + PAGE]
        with_trades = truthy(params.get("trades"))
        return ok({"closed": {o.id: self.order_view(o, with_trades) for o in page}, "count": len(orders)})

    async def trades_history(self, call: Call) -> web.Response:
        params = self.params(call)
        start, end = self._bound(params, "start"), self._bound(params, "end")
        fills = [
            (o, f)
            for o in self.state.account_orders(call.account)
            for f in o.fills
            if start < f.timestamp / 1000 <= end
        ]
        fills.sort(key=lambda of: (of[1].timestamp, of[1].trade_id), reverse=True)
        ofs = int_param(params.get("ofs"), "ofs", default=0)
        page = fills[ofs : ofs + PAGE]
        trades = {
            self.trade_id(f.trade_id): w.trade_info(o, f, w.kraken_id("position", self.sim.seed, f.trade_id))
            for o, f in page
        }
        return ok({"trades": trades, "count": len(fills)})

    def _bound(self, params: dict[str, str], name: str) -> Decimal:
        """`start` (exclusive) and `end` (inclusive) as unix seconds; Kraken also takes a txid there."""
        value = params.get(name)
        if not value:
            return Decimal("-Infinity") if name == "start" else Decimal("Infinity")
        order = self.state.orders.get(value)
        if order is not None:
            return Decimal(order.created_ms) / 1000
        return decimal_param(value, name)
