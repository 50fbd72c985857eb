"""What every exchange dialect shares: routing, request parsing, JSON with decimal strings, and the hooks the
server calls around each request (authentication, rate limits, error translation)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qsl

from aiohttp import web

from ..engine import Account, ExchangeState, SimError

if TYPE_CHECKING:
    from ..app import Sim

Handler = Callable[["Call"], Awaitable[web.StreamResponse]]


def dec_str(value: Decimal | None) -> str | None:
    """A Decimal as the plain string exchanges send ("0.00001", never "1E-5")."""
    if value is None:
        return None
    text = format(value, "f")
    return text


def _default(value):
    if isinstance(value, Decimal):
        return dec_str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(data) -> str:
    return json.dumps(data, default=_default, separators=(",", ":"))


def json_response(data, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json", headers=headers)


class Reject(Exception):
    """Stop handling and answer with this response (an auth failure, a rate limit, a bad parameter)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(slots=True)
class Call:
    """One request as the exchange sees it: path without the `/<exchange>` prefix, raw query and body."""

    request: web.Request
    method: str
    path: str  # "/api/v3/order"
    query_string: str
    body: str
    query: dict[str, str]
    form: dict[str, str]  # urlencoded body fields (Binance, Kraken)
    match: dict[str, str]  # path parameters
    account: Account | None = None

    def json(self) -> dict:
        """The JSON body (Coinbase, KuCoin); a malformed body is the caller's error, not a crash."""
        if not self.body:
            return {}
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise SimError("invalid_param", f"Malformed JSON body: {exc}", field="body") from exc
        if not isinstance(data, dict):
            raise SimError("invalid_param", "The JSON body must be an object", field="body")
        return data

    def param(self, name: str, default: str | None = None) -> str | None:
        for source in (self.form, self.query, self.match):
            if name in source:
                return source[name]
        return default

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)


def decimal_param(value, field: str, required: bool = True) -> Decimal | None:
    """Parse an exchange parameter as Decimal; anything else is the exchange's invalid-parameter error."""
    if value is None or value == "":
        if required:
            raise SimError("missing_param", f"Mandatory parameter '{field}' was not sent", field=field)
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise SimError("invalid_param", f"Illegal characters found in parameter '{field}'", field=field) from exc
    if not result.is_finite():
        raise SimError("invalid_param", f"Illegal value in parameter '{field}'", field=field)
    return result


def int_param(value, field: str, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise SimError("invalid_param", f"Parameter '{field}' must be an integer", field=field) from exc


class Dialect:
    """Base of the four dialects. Subclasses declare routes and translate engine results to their wire format.

    Lifecycle of a request (see app.py): stats -> fault (before) -> route -> `rate_limit` -> `authenticate`
    (private routes) -> handler -> fault (after). `SimError` raised anywhere becomes `error_response`, and an
    unexpected exception becomes `http_error(500)`, never a traceback.
    """

    name: ClassVar[str]

    def __init__(self, sim: Sim, state: ExchangeState) -> None:
        self.sim = sim
        self.state = state
        state.order_id_factory = self.order_id
        self._routes: list[tuple[str, str, Handler, bool, float]] = []
        self.setup()

    # -- declared by subclasses -------------------------------------------------------------------------------
    def setup(self) -> None:
        """Register routes with `self.route(...)` and create rate-limit counters."""
        raise NotImplementedError

    def order_id(self, seq: int) -> str:
        return str(seq)

    def make_credentials(self) -> dict[str, str]:
        """Credentials in the exchange's real format: keys are ccxt's fields (apiKey, secret, password)."""
        raise NotImplementedError

    async def authenticate(self, call: Call) -> Account:
        """Verify the signature as the exchange does; raise Reject with the exchange's auth error."""
        raise NotImplementedError

    async def rate_limit(self, call: Call, weight: float) -> None:
        """Count the request against the exchange's limits; raise Reject with its rate-limit answer."""

    def error_response(self, err: SimError, call: Call) -> web.Response:
        raise NotImplementedError

    def http_error(self, status: int, message: str) -> web.Response:
        """The exchange's answer for a bare HTTP status (unknown route, injected fault, internal error)."""
        raise NotImplementedError

    # -- helpers ----------------------------------------------------------------------------------------------
    def route(self, method: str, path: str, handler: Handler, *, private: bool = False, weight: float = 1) -> None:
        self._routes.append((method, path, handler, private, weight))

    @property
    def routes(self) -> list[tuple[str, str, Handler, bool, float]]:
        return self._routes

    @property
    def ws_routes(self) -> list[tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]]:
        """Websocket endpoints (path, aiohttp handler); the handler does its own authentication and errors."""
        return []

    async def drop_ws(self, refuse_seconds: float = 0.0) -> int:
        """Close this exchange's websocket connections, refusing new ones for a while; returns how many closed."""
        return 0

    def now_ms(self) -> int:
        from ..engine import now_ms

        return now_ms()


async def build_call(request: web.Request, prefix: str) -> Call:
    body = await request.text() if request.can_read_body else ""
    form = {}
    if body and "json" not in (request.content_type or ""):
        form = dict(parse_qsl(body, keep_blank_values=True))
    return Call(
        request=request,
        method=request.method,
        path=request.path[len(prefix) :] or "/",
        query_string=request.query_string,
        body=body,
        query=dict(request.query),
        form=form,
        match=dict(request.match_info),
    )
