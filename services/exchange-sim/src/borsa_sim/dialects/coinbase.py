"""The coinbase dialect: Coinbase Advanced Trade (/api/v3/brokerage) plus the v2 calls ccxt's coinbase class
makes, authenticated with CDP keys (ES256 JWT) and limited per user and per IP."""

from __future__ import annotations

from aiohttp import web

from ..engine import Account, SimError
from ..markets import MarketSpec
from ..ratelimit import WindowCounter, scaled
from . import coinbase_market as market
from . import coinbase_trading as trading
from . import coinbase_wire as wire
from .base import Call, Dialect, Reject, json_response
from .coinbase_auth import (
    AuthFailure,
    Token,
    new_credentials,
    parse_bearer,
    public_key_of,
    unverified_subject,
    verify,
)
from .coinbase_ws import ENDPOINT, CoinbaseUserChannel

V3 = "/api/v3/brokerage"
# Advanced Trade: 30 requests/s per user on private endpoints, 10/s per IP on public ones; the v2 (Coinbase
# App) API allows 10,000 requests/hour (ccxt coinbase.describe(); shared research, perf-reliability-anchors 3).
PRIVATE_PER_SECOND = 30
PUBLIC_PER_SECOND = 10
V2_PER_HOUR = 10_000
RATE_LIMITED = {"errors": [{"id": "rate_limit_exceeded", "message": "Too many requests"}]}
GATEWAY_PAGE = "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1></body></html>"


class CoinbaseDialect(Dialect):
    name = "coinbase"

    def setup(self) -> None:
        scale = self.sim.rate_limit_scale
        self.private_limit = WindowCounter(scaled(PRIVATE_PER_SECOND, scale), 1.0)
        self.public_limit = WindowCounter(scaled(PUBLIC_PER_SECOND, scale), 1.0)
        self.v2_limit = WindowCounter(scaled(V2_PER_HOUR, scale), 3600.0)
        self._public_keys: dict[str, object] = {}
        public = [
            ("GET", "/v2/time", market.v2_time),
            ("GET", "/v2/currencies", market.v2_currencies),
            ("GET", "/v2/currencies/crypto", market.v2_crypto),
            ("GET", "/v2/exchange-rates", market.v2_exchange_rates),
            ("GET", f"{V3}/time", market.v3_time),
            ("GET", f"{V3}/market/products", market.products),
            ("GET", f"{V3}/market/products/{{product_id}}", market.single_product),
            ("GET", f"{V3}/market/products/{{product_id}}/ticker", market.ticker),
            ("GET", f"{V3}/market/products/{{product_id}}/candles", market.candles),
            ("GET", f"{V3}/market/product_book", market.product_book),
        ]
        private = [
            ("GET", "/v2/accounts", trading.v2_accounts),
            ("GET", f"{V3}/accounts", trading.v3_accounts),
            ("GET", f"{V3}/accounts/{{account_uuid}}", trading.v3_account),
            ("GET", f"{V3}/transaction_summary", trading.transaction_summary),
            ("POST", f"{V3}/orders", trading.create_order),
            ("POST", f"{V3}/orders/batch_cancel", trading.cancel_orders),
            # batch and fills before {order_id}: aiohttp matches routes in the order they were added.
            ("GET", f"{V3}/orders/historical/batch", trading.list_orders),
            ("GET", f"{V3}/orders/historical/fills", trading.list_fills),
            ("GET", f"{V3}/orders/historical/{{order_id}}", trading.get_order),
            # The signed twins of the /market calls (ccxt's usePrivate options).
            ("GET", f"{V3}/products", market.products),
            ("GET", f"{V3}/products/{{product_id}}", market.single_product),
            ("GET", f"{V3}/products/{{product_id}}/ticker", market.ticker),
            ("GET", f"{V3}/products/{{product_id}}/candles", market.candles),
            ("GET", f"{V3}/product_book", market.product_book),
            ("GET", f"{V3}/best_bid_ask", market.best_bid_ask),
        ]
        for is_private, table in ((False, public), (True, private)):
            for method, path, handler in table:
                self.route(method, path, self._bind(handler), private=is_private)
        self.user_channel = CoinbaseUserChannel(self)

    @property
    def ws_routes(self):
        # wss://advanced-trade-ws.coinbase.com, the bare host, where ccxt.pro subscribes to the `user` channel.
        return [(ENDPOINT, self.user_channel.handle)]

    async def drop_ws(self, refuse_seconds: float = 0.0) -> int:
        return await self.user_channel.drop(refuse_seconds)

    def _bind(self, handler):
        async def handle(call: Call) -> web.StreamResponse:
            return await handler(self, call)

        return handle

    # -- ids --------------------------------------------------------------------------------------------------
    def order_id(self, seq: int) -> str:
        return wire.stable_uuid(self.sim.seed, "order", seq)

    def trade_id(self, seq: int) -> str:
        return wire.stable_uuid(self.sim.seed, "trade", seq)

    def user_id(self, account: Account) -> str:
        return wire.stable_uuid(self.sim.seed, "user", account.id)

    def wallet_id(self, account: Account, code: str) -> str:
        return wire.stable_uuid(self.sim.seed, "wallet", account.id, code)

    def make_credentials(self) -> dict[str, str]:
        return new_credentials()

    # -- rules of this dialect --------------------------------------------------------------------------------
    def check_funds(self, account: Account, spec: MarketSpec, side: str, parsed: dict) -> None:
        """Funds are checked before the size limits, so that an order too big for the account reports the
        funds (PREVIEW_INSUFFICIENT_FUND) even where it is also above base_max_size. Coinbase does not document
        the order of its preview checks; this one is the simulator's choice."""
        base, quote, price = parsed["base"], parsed["quote"], parsed["price"]
        if side == "sell":
            asset, need = spec.base, base
        elif quote is not None:
            asset, need = spec.quote, quote * (1 + spec.taker)
        elif price is not None:
            asset, need = spec.quote, base * price * (1 + spec.taker)
        else:
            return  # a market buy by base size: the engine prices it against the book
        if need is None or need <= 0:
            return
        free = account.holding(asset).free
        if free < need:
            raise SimError(
                "insufficient_balance", f"Insufficient {asset}: need {need}, free {free}", "amount", asset=asset
            )

    # -- errors -----------------------------------------------------------------------------------------------
    def http_error(self, status: int, message: str) -> web.Response:
        if status == 401:
            return wire.v3_error(401, "unauthorized", message)
        if status == 429:
            return json_response(RATE_LIMITED, status=429)
        if status == 400:
            return wire.v3_error(400, "INVALID_ARGUMENT", message)
        if status == 500:
            return wire.v3_error(500, "INTERNAL", "internal error")
        if status in (404, 405):
            # Unknown paths get the Go gateway's plain-text answer, not a JSON error.
            text = "404 page not found\n" if status == 404 else "Method Not Allowed\n"
            return web.Response(text=text, status=status, content_type="text/plain")
        if status == 403:
            return wire.v3_error(403, "PERMISSION_DENIED", message)
        # Gateway failures (502/503/504) come from the edge in front of the API as an HTML page.
        reason = web.Response(status=status).reason
        return web.Response(
            text=GATEWAY_PAGE.format(status=status, reason=reason), status=status, content_type="text/html"
        )

    def error_response(self, err: SimError, call: Call) -> web.Response:
        if call.path.startswith("/v2/"):
            not_found = err.kind in ("unknown_symbol", "unknown_order")
            error_id = (
                "not_found" if not_found else "param_required" if err.kind == "missing_param" else "invalid_request"
            )
            return wire.v2_error(404 if not_found else 400, error_id, err.message)
        if call.method == "POST" and call.path == f"{V3}/orders":
            if err.kind == "duplicate_client_id":
                order = err.info["order"]
                return trading.success_response(order, wire.configuration_of(order))
            if err.kind in wire.ORDER_FAILURES:
                return wire.order_failure(err.kind, err.message, call.request.get("cb_configuration"))
        if err.kind == "unknown_symbol":
            return wire.v3_error(404, "NOT_FOUND", "valid product_id is required")
        if err.kind == "unknown_order":
            # The real wording; ccxt's broad match says "self" (a transpiler artefact), so this is an ExchangeError.
            return wire.v3_error(404, "NOT_FOUND", "order with this orderID was not found")
        return wire.v3_error(400, "INVALID_ARGUMENT", err.message)

    # -- rate limits --------------------------------------------------------------------------------------------
    async def rate_limit(self, call: Call, weight: float) -> None:
        ip = call.request.remote or "unknown"
        subject = unverified_subject(call.header("Authorization"))
        if call.path.startswith("/v2/"):
            counter, key = self.v2_limit, subject or ip
        elif call.path.startswith((f"{V3}/market/", f"{V3}/time")):
            counter, key = self.public_limit, ip
        else:
            counter, key = self.private_limit, subject or ip
        if counter.hit(key) is not None:
            raise Reject(json_response(RATE_LIMITED, status=429))

    def reset_limits(self) -> None:
        for counter in (self.private_limit, self.public_limit, self.v2_limit):
            counter.reset()

    # -- authentication -------------------------------------------------------------------------------------------
    async def authenticate(self, call: Call) -> Account:
        try:
            return self._verify(call)
        except AuthFailure as failure:
            if call.path.startswith("/v2/"):
                error_id = "expired_token" if failure.expired else "authentication_error"
                raise Reject(wire.v2_error(401, error_id, failure.message)) from failure
            raise Reject(
                json_response(
                    {"error": "unauthorized", "error_details": failure.message, "message": "Unauthorized"},
                    status=401,
                )
            ) from failure

    def _verify(self, call: Call) -> Account:
        authorization = call.header("Authorization")
        if not authorization and call.header("CB-ACCESS-KEY"):
            # The simulator issues CDP keys only, so it has no HMAC secret to check a legacy signature against.
            raise AuthFailure("legacy API keys are not supported, use a CDP API key")
        token = parse_bearer(authorization)
        account = self.state.account_by_key(token.key_name)
        if account is None:
            raise AuthFailure("unknown API key")
        # The uri claim names the URL the client called: host and full path, `/coinbase` prefix included.
        self.verify_token(token, account, (call.method, call.request.host, call.request.path))
        return account

    def verify_token(self, token: Token, account: Account, target: tuple[str, str, str] | None) -> None:
        """`token` checked against the account's key; `target` (method, host, path) for REST, None for the
        websocket (coinbase_ws.py)."""
        public_key = self._public_keys.get(account.api_key)
        if public_key is None:
            public_key = self._public_keys[account.api_key] = public_key_of(account.credentials["secret"])
        verify(token, public_key, target)
