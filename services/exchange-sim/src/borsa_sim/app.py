"""The simulator's HTTP server: one sub-application per exchange dialect under `/<exchange>/`, plus the admin
API under `/_sim/` (accounts, orders, stats, faults, prices, health)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import defaultdict
from decimal import Decimal

import structlog
from aiohttp import web

from .dialects import load_dialect
from .dialects.base import Call, Dialect, Reject, build_call, decimal_param, json_response
from .engine import ExchangeState, SimError, now_ms
from .faults import Fault, Faults, FaultSpecError, parse_fault
from .markets import EXCHANGES

log = structlog.get_logger("borsa_sim")

TIMEOUT_FAULT_SECONDS = 120.0  # longer than any client timeout; the client gives up first


class Stats:
    """Requests, rate-limit answers and errors per exchange and endpoint (`GET /_sim/stats`)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.data: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: {"requests": 0, "rate_limited": 0, "errors": 0, "faults": 0})
        )

    def count(self, exchange: str, endpoint: str, key: str = "requests") -> None:
        self.data[exchange][endpoint][key] += 1

    def as_dict(self) -> dict:
        out = {}
        for exchange, endpoints in self.data.items():
            totals = {"requests": 0, "rate_limited": 0, "errors": 0, "faults": 0}
            for counts in endpoints.values():
                for k, v in counts.items():
                    totals[k] += v
            out[exchange] = {"totals": totals, "endpoints": {e: dict(c) for e, c in sorted(endpoints.items())}}
        return out


class Sim:
    """All simulated exchanges, their dialects, the price clock and the admin state."""

    def __init__(
        self,
        seed: int = 0,
        rate_limit_scale: float = 1.0,
        tick_interval: float = 1.0,
        exchanges: tuple[str, ...] = EXCHANGES,
        ban_seconds: float = 120.0,
        aliases: dict[str, str] | None = None,
    ) -> None:
        self.seed = seed
        self.rate_limit_scale = rate_limit_scale
        self.tick_interval = tick_interval
        self.ban_seconds = ban_seconds
        self.started_ms = now_ms()
        self.paused = False
        self.faults = Faults(seed)
        self.stats = Stats()
        self.states: dict[str, ExchangeState] = {}
        self.dialects: dict[str, Dialect] = {}
        for name in exchanges:
            state = ExchangeState(name, seed, self.started_ms)
            self.states[name] = state
            self.dialects[name] = load_dialect(name)(self, state)
        self._account_seq = itertools.count(1)
        # Other ccxt ids served by one of our dialects (binanceus speaks Binance's dialect).
        self.aliases = {alias: target for alias, target in (aliases or {}).items() if target in self.dialects}

    def step(self) -> None:
        now = now_ms()
        for state in self.states.values():
            state.step(now)

    async def run_clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            if not self.paused:
                self.step()

    def new_account_id(self, exchange: str) -> str:
        return f"{exchange}-{next(self._account_seq)}"


# -- exchange routes -----------------------------------------------------------------------------------------
def _wrap(sim: Sim, dialect: Dialect, handler, private: bool, weight: float, template: str, prefix: str | None = None):
    exchange = dialect.name
    prefix = prefix or f"/{exchange}"

    async def handle(request: web.Request) -> web.StreamResponse:
        endpoint = f"{request.method} {template}"
        sim.stats.count(exchange, endpoint)
        try:
            call = await build_call(request, prefix)
        except Exception:  # an unreadable body is the client's problem, answered in the exchange's words
            sim.stats.count(exchange, endpoint, "errors")
            return dialect.http_error(400, "Malformed request")
        fault = sim.faults.pick(exchange, request.method, call.path)
        if fault is not None:
            sim.stats.count(exchange, endpoint, "faults")
            if fault.latency_ms and fault.phase == "before":
                await asyncio.sleep(fault.latency_ms / 1000)
            if fault.phase == "before":
                spoiled = await _spoil(dialect, fault)
                if spoiled is not None:
                    return spoiled
        response = await _dispatch(sim, dialect, call, handler, private, weight, endpoint)
        if fault is not None and fault.phase == "after":
            if fault.latency_ms:  # the request took effect; its answer is late
                await asyncio.sleep(fault.latency_ms / 1000)
            spoiled = await _spoil(dialect, fault)
            if spoiled is not None:
                return spoiled
        return response

    return handle


async def _spoil(dialect: Dialect, fault: Fault) -> web.StreamResponse | None:
    if fault.timeout:
        await asyncio.sleep(TIMEOUT_FAULT_SECONDS)
        return dialect.http_error(504, "Gateway timeout")
    if fault.status is not None:
        return dialect.http_error(fault.status, "Injected fault")
    return None


async def _dispatch(
    sim: Sim, dialect: Dialect, call: Call, handler, private: bool, weight: float, endpoint: str
) -> web.StreamResponse:
    exchange = dialect.name
    try:
        try:
            await dialect.rate_limit(call, weight)
        except Reject:
            sim.stats.count(exchange, endpoint, "rate_limited")
            raise
        if private:
            call.account = await dialect.authenticate(call)
        response = await handler(call)
    except Reject as reject:
        response = reject.response
        sim.stats.count(exchange, endpoint, "errors")
    except SimError as err:
        response = dialect.error_response(err, call)
        sim.stats.count(exchange, endpoint, "errors")
    except Exception:
        log.exception("handler_failed", exchange=exchange, endpoint=endpoint)
        response = dialect.http_error(500, "Internal error")
        sim.stats.count(exchange, endpoint, "errors")
    return response


def _exchange_app(sim: Sim, dialect: Dialect, prefix: str | None = None) -> web.Application:
    @web.middleware
    async def unknown_routes(request: web.Request, handler):
        try:
            return await handler(request)
        except web.HTTPNotFound:
            sim.stats.count(dialect.name, "unknown", "errors")
            return dialect.http_error(404, f"Not found: {request.path}")
        except web.HTTPMethodNotAllowed:
            sim.stats.count(dialect.name, "unknown", "errors")
            return dialect.http_error(405, f"Method not allowed: {request.method} {request.path}")

    app = web.Application(middlewares=[unknown_routes])
    for method, path, handler, private, weight in dialect.routes:
        app.router.add_route(method, path, _wrap(sim, dialect, handler, private, weight, path, prefix))
    return app


# -- admin API -----------------------------------------------------------------------------------------------
def _bad(message: str, field: str | None = None, status: int = 400) -> web.Response:
    return json_response({"error": {"code": "bad_request", "message": message, "field": field}}, status=status)


async def _json_body(request: web.Request) -> dict:
    try:
        data = await request.json() if request.can_read_body else {}
    except ValueError as exc:
        raise Reject(_bad(f"body is not valid JSON: {exc}", "body")) from exc
    if not isinstance(data, dict):
        raise Reject(_bad("body must be a JSON object", "body"))
    return data


def _exchange_of(sim: Sim, value, field: str = "exchange", required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if value not in sim.states:
        raise Reject(_bad(f"{field} must be one of {sorted(sim.states)}, not {value!r}", field))
    return value


def _admin(sim: Sim) -> web.Application:
    @web.middleware
    async def rejects(request, handler):
        try:
            return await handler(request)
        except Reject as reject:
            return reject.response

    app = web.Application(middlewares=[rejects])
    routes = web.RouteTableDef()

    @routes.post("/accounts")
    async def create_account(request: web.Request) -> web.Response:
        data = await _json_body(request)
        exchange = _exchange_of(sim, data.get("exchange"))
        balances = data.get("balances", {})
        if not isinstance(balances, dict):
            return _bad("balances must be an object of asset -> decimal string", "balances")
        parsed = {}
        for asset, amount in balances.items():
            try:
                value = Decimal(str(amount))
            except Exception:
                return _bad(f"balances.{asset} must be a decimal string, not {amount!r}", f"balances.{asset}")
            if not value.is_finite() or value < 0:
                return _bad(f"balances.{asset} must be a non-negative decimal", f"balances.{asset}")
            parsed[str(asset).upper()] = value
        dialect = sim.dialects[exchange]
        account_id = sim.new_account_id(exchange)
        credentials = dialect.make_credentials()
        account = sim.states[exchange].create_account(account_id, credentials, parsed)
        log.info("account_created", exchange=exchange, account=account_id)
        return json_response(
            {
                "account_id": account.id,
                "exchange": exchange,
                "credentials": credentials,
                "balances": _balances(account),
            },
            status=201,
        )

    @routes.get("/accounts")
    async def list_accounts(request: web.Request) -> web.Response:
        exchange = _exchange_of(sim, request.query.get("exchange"), required=False)
        out = []
        for name, state in sim.states.items():
            if exchange and name != exchange:
                continue
            for account in state.accounts.values():
                out.append(
                    {
                        "account_id": account.id,
                        "exchange": name,
                        "api_key": account.api_key,
                        "balances": _balances(account),
                    }
                )
        return json_response({"accounts": out})

    @routes.get("/orders")
    async def orders(request: web.Request) -> web.Response:
        exchange = _exchange_of(sim, request.query.get("exchange"), required=False)
        account = request.query.get("account")
        status = request.query.get("status")
        out = []
        for name, state in sim.states.items():
            if exchange and name != exchange:
                continue
            for order in state.all_orders():
                if account and order.account_id != account:
                    continue
                if status and order.status != status:
                    continue
                out.append(order.as_dict())
        return json_response({"orders": out})

    @routes.post("/orders/fill")
    async def fill_order(request: web.Request) -> web.Response:
        """Fill part (or the rest) of a resting limit order at its price now: how tests get partial fills."""
        data = await _json_body(request)
        exchange = _exchange_of(sim, data.get("exchange"))
        order = sim.states[exchange].orders.get(str(data.get("order_id")))
        if order is None:
            return _bad(f"order_id {data.get('order_id')!r} is not an order on {exchange}", "order_id", status=404)
        try:
            sim.states[exchange].fill_part(order, decimal_param(data.get("amount"), "amount"))
        except SimError as err:
            return _bad(err.message, err.field, status=409 if err.kind == "order_not_open" else 400)
        return json_response({"order": order.as_dict()})

    @routes.get("/stats")
    async def stats(_: web.Request) -> web.Response:
        return json_response({"exchanges": sim.stats.as_dict()})

    @routes.delete("/stats")
    async def reset_stats(_: web.Request) -> web.Response:
        sim.stats.reset()
        return json_response({"ok": True})

    @routes.post("/faults")
    async def add_fault(request: web.Request) -> web.Response:
        data = await _json_body(request)
        try:
            fault = parse_fault(data, tuple(sim.states))
        except (FaultSpecError, TypeError) as exc:
            return _bad(f"invalid fault: {exc}", "fault")
        sim.faults.add(fault)
        return json_response({"faults": sim.faults.list()}, status=201)

    @routes.get("/faults")
    async def list_faults(_: web.Request) -> web.Response:
        return json_response({"faults": sim.faults.list()})

    @routes.delete("/faults")
    async def clear_faults(request: web.Request) -> web.Response:
        sim.faults.clear(_exchange_of(sim, request.query.get("exchange"), required=False))
        return json_response({"faults": sim.faults.list()})

    @routes.post("/ws/drop")
    async def drop_ws(request: web.Request) -> web.Response:
        """Close the websocket connections of one exchange (or all), as a network drop would; with
        `refuse_ms` new connections are refused (HTTP 503) for that long."""
        data = await _json_body(request)
        exchange = _exchange_of(sim, data.get("exchange"), required=False)
        refuse_ms = data.get("refuse_ms", 0)
        if not isinstance(refuse_ms, int) or isinstance(refuse_ms, bool) or not 0 <= refuse_ms <= 3_600_000:
            return _bad("refuse_ms must be an integer between 0 and 3600000", "refuse_ms")
        dropped = {}
        for name, dialect in sim.dialects.items():
            if exchange is None or name == exchange:
                dropped[name] = await dialect.drop_ws(refuse_ms / 1000)
        log.info("ws_dropped", dropped=dropped, refuse_ms=refuse_ms)
        return json_response({"dropped": dropped, "refuse_ms": refuse_ms})

    @routes.post("/limits/reset")
    async def reset_limits(_: web.Request) -> web.Response:
        for dialect in sim.dialects.values():
            reset = getattr(dialect, "reset_limits", None)
            if reset:
                reset()
        return json_response({"ok": True})

    @routes.get("/prices")
    async def prices(request: web.Request) -> web.Response:
        exchange = _exchange_of(sim, request.query.get("exchange"), required=False)
        return json_response({"paused": sim.paused, "prices": _prices(sim, exchange)})

    @routes.post("/prices")
    async def set_prices(request: web.Request) -> web.Response:
        data = await _json_body(request)
        if "paused" in data:
            if not isinstance(data["paused"], bool):
                return _bad("paused must be true or false", "paused")
            sim.paused = data["paused"]
        steps = data.get("steps", 0)
        if not isinstance(steps, int) or not 0 <= steps <= 10_000:
            return _bad("steps must be an integer between 0 and 10000", "steps")
        for _ in range(steps):
            sim.step()
        if "price" in data or "symbol" in data:
            exchange = _exchange_of(sim, data.get("exchange"))
            state = sim.states[exchange]
            spec = state.find_market(data.get("symbol"))
            if spec is None:
                return _bad(f"symbol {data.get('symbol')!r} is not listed on {exchange}", "symbol")
            try:
                price = Decimal(str(data.get("price")))
            except Exception:
                return _bad("price must be a decimal string", "price")
            if not price.is_finite() or price <= 0:
                return _bad("price must be a positive decimal string", "price")
            state.set_price(spec, price)
        return json_response({"paused": sim.paused, "prices": _prices(sim, data.get("exchange"))})

    @routes.post("/candles")
    async def script_candles(request: web.Request) -> web.Response:
        """Set the closes of the last closed one-minute candles of a market (oldest first), for strategy tests."""
        data = await _json_body(request)
        exchange = _exchange_of(sim, data.get("exchange"))
        state = sim.states[exchange]
        spec = state.find_market(data.get("symbol"))
        if spec is None:
            return _bad(f"symbol {data.get('symbol')!r} is not listed on {exchange}", "symbol")
        raw = data.get("closes")
        if not isinstance(raw, list) or not 1 <= len(raw) <= 1000:
            return _bad("closes must be a list of 1 to 1000 decimal strings, oldest first", "closes")
        try:
            closes = [Decimal(str(v)) for v in raw]
        except Exception:
            return _bad("closes must be decimal strings", "closes")
        if not all(c.is_finite() and c > 0 for c in closes):
            return _bad("closes must be positive decimal strings", "closes")
        try:
            candles = state.script_closes(spec, closes)
        except ValueError as exc:
            return _bad(str(exc), "closes")
        return json_response(
            {"exchange": exchange, "symbol": spec.symbol, "candles": [[c.ts, str(c.close)] for c in candles]}
        )

    @routes.post("/markets")
    async def change_market(request: web.Request) -> web.Response:
        data = await _json_body(request)
        exchange = _exchange_of(sim, data.pop("exchange", None))
        symbol = data.pop("symbol", None)
        state = sim.states[exchange]
        if state.find_market(symbol) is None:
            return _bad(f"symbol {symbol!r} is not listed on {exchange}", "symbol")
        changes = {}
        for name, value in data.items():
            if name == "active":
                if not isinstance(value, bool):
                    return _bad("active must be true or false", "active")
                changes[name] = value
                continue
            try:
                changes[name] = Decimal(str(value))
            except Exception:
                return _bad(f"{name} must be a decimal string", name)
            if not changes[name].is_finite() or changes[name] < 0:
                return _bad(f"{name} must be a non-negative decimal string", name)
        try:
            spec = state.update_market(symbol, **changes)
        except SimError as err:
            return _bad(err.message, "market")
        return json_response(
            {
                "exchange": exchange,
                "symbol": spec.symbol,
                "price_tick": spec.price_tick,
                "amount_step": spec.amount_step,
                "min_amount": spec.min_amount,
                "min_cost": spec.min_cost,
                "active": spec.active,
            }
        )

    @routes.get("/health")
    async def health(_: web.Request) -> web.Response:
        return json_response(
            {
                "status": "ok",
                "seed": sim.seed,
                "started_at": sim.started_ms,
                "rate_limit_scale": sim.rate_limit_scale,
                "exchanges": {
                    name: {"markets": len(state.specs), "accounts": len(state.accounts)}
                    for name, state in sim.states.items()
                },
            }
        )

    app.add_routes(routes)
    return app


def _balances(account) -> dict:
    return {asset: {"free": h.free, "used": h.used, "total": h.total} for asset, h in account.balances.items()}


def _prices(sim: Sim, exchange: str | None) -> dict:
    out = {}
    for name, state in sim.states.items():
        if exchange and name != exchange:
            continue
        out[name] = {symbol: walk.price for symbol, walk in state.walks.items()}
    return out


def create_app(sim: Sim) -> web.Application:
    app = web.Application()
    app.add_subapp("/_sim", _admin(sim))
    mounts = [(name, dialect, None) for name, dialect in sim.dialects.items()]
    mounts += [(alias, sim.dialects[target], f"/{alias}") for alias, target in sim.aliases.items()]
    for name, dialect, prefix in mounts:
        # Websockets are routes of the main application by their full path, added before the REST sub-application:
        # one at the bare host (Coinbase's wss://advanced-trade-ws.coinbase.com) is `/<name>` itself, which a
        # sub-application mounted there cannot route.
        for path, handler in dialect.ws_routes:
            app.router.add_get(f"/{name}{path}", handler)
        app.add_subapp(f"/{name}", _exchange_app(sim, dialect, prefix=prefix))

    async def clock(app: web.Application):
        task = asyncio.create_task(sim.run_clock())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(clock)

    async def close_websockets(app: web.Application) -> None:
        # Open websockets would hold the shutdown for its whole timeout.
        for dialect in sim.dialects.values():
            await dialect.drop_ws()

    app.on_shutdown.append(close_websockets)
    app["sim"] = sim
    return app
