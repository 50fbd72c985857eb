"""KuCoin's two order families, classic (/api/v1/orders) and HF (/api/v1/hf/orders): each sees only its own orders."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine import Order, SimError
from . import kucoin_wire as wire
from .base import Call, decimal_param, int_param

if TYPE_CHECKING:
    from ..engine import Fill
    from ..markets import MarketSpec

CLIENT_OID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # "max 40 characters: numbers, letters, - and _"
TIME_IN_FORCE = ("GTC", "GTT", "IOC", "FOK")
CLASSIC_PAGE = (10, 50, 500)  # pageSize: minimum, default, maximum (Get Order List / Get Trade History)
HF_LIMIT = (1, 20, 100)  # limit: minimum, default, maximum (HF Get Closed Orders / Get Trade History)


class KucoinOrders:
    """Order handlers of the kucoin dialect, mixed into KucoinDialect (whose `ok`, `fail`, `spec`, `state` and
    `_hf_opened` they use)."""

    # -- create -----------------------------------------------------------------------------------------------
    async def create_classic(self, call: Call) -> web.Response:
        order = self._create(call, hf=False)
        return self.ok(call, {"orderId": order.id})

    async def create_hf(self, call: Call) -> web.Response:
        order = self._create(call, hf=True)
        self._hf_opened.add(call.account.id)
        return self.ok(call, {"orderId": order.id, "clientOid": order.client_order_id})

    def _create(self, call: Call, hf: bool) -> Order:
        if call.body and "json" not in (call.request.content_type or ""):
            raise self.fail(call, 415, "415000", "Unsupported Media Type")
        body = call.json()
        cid = body.get("clientOid")
        if cid in (None, ""):
            if not hf:
                raise self.fail(call, 400, "400100", "validation.createOrder.clientOidIsRequired")
            cid = None
        elif not isinstance(cid, str) or not CLIENT_OID_RE.match(cid):
            raise self.fail(call, 400, "400100", "clientOid invalid")
        side = _text(body, "side")
        if side not in ("buy", "sell"):
            raise SimError("invalid_param", f"Invalid side {side!r}", field="side")
        spec = self.spec(call, _text(body, "symbol"))
        kind = _text(body, "type", "limit")
        trade_type = _text(body, "tradeType", "TRADE")
        if trade_type != "TRADE":
            raise SimError("invalid_param", "Only spot orders (tradeType TRADE)", field="tradeType")
        tif = _text(body, "timeInForce", "GTC")
        if tif not in TIME_IN_FORCE:
            raise SimError("invalid_param", f"Invalid timeInForce {tif!r}", field="timeInForce")
        post_only = body.get("postOnly", False)
        if not isinstance(post_only, bool):
            raise SimError("invalid_param", "postOnly must be true or false", field="postOnly")
        remark = body.get("remark")
        if remark is not None and (not isinstance(remark, str) or len(remark) > 100):
            raise SimError("invalid_param", "remark: at most 100 characters", field="remark")
        price = size = funds = None
        if kind == "limit":
            price = _decimal(body, "price")
            size = _decimal(body, "size")
        elif kind == "market":
            size = _decimal(body, "size", required=False)
            funds = _decimal(body, "funds", required=False)
            if (size is None) == (funds is None):
                raise self.fail(call, 400, "400100", "Either size or funds is required for a market order")
            if funds is not None and funds % wire.quote_increment(spec) != 0:
                raise self.fail(call, 400, "400100", "Funds increment invalid.")
        else:
            raise SimError("invalid_param", f"Invalid order type {kind!r}", field="type")
        if post_only and kind == "limit" and self._crosses(spec, side, price):
            # KuCoin cancels a post-only order that would take; the engine cannot book a born-cancelled order.
            raise self.fail(call, 400, "400100", "Post only order would execute immediately")
        order = self.state.place_order(
            call.account,
            spec,
            side=side,
            type=kind,
            amount=size,
            price=price,
            client_order_id=cid,
            quote_amount=funds,
            time_in_force=tif,
        )
        partner = call.header("KC-API-PARTNER")
        order.extra.update(hf=hf, post_only=post_only, remark=remark, tags=f"partner:{partner}" if partner else None)
        return order

    def _crosses(self, spec: MarketSpec, side: str, price: Decimal) -> bool:
        walk = self.state.walk(spec)
        return price >= walk.best_ask() if side == "buy" else price <= walk.best_bid()

    # -- look up ----------------------------------------------------------------------------------------------
    def _by_id(self, call: Call, hf: bool) -> Order:
        spec = self.spec(call) if hf else None  # HF lookups name the symbol and must match it
        try:
            order = self.state.get_order(call.account, order_id=call.match["orderId"])
        except SimError:
            order = None
        if order is None or bool(order.extra.get("hf")) != hf or (spec is not None and order.spec is not spec):
            raise SimError("unknown_order", "Order does not exist", field="order_id")
        return order

    def _by_cid(self, call: Call, hf: bool) -> Order:
        spec = self.spec(call) if hf else None
        cid = call.match["clientOid"]
        for order in reversed(self.state.account_orders(call.account, spec)):
            if order.client_order_id == cid and bool(order.extra.get("hf")) == hf:
                return order
        raise SimError("unknown_order", "Order does not exist", field="client_order_id")

    async def get_classic(self, call: Call) -> web.Response:
        return self.ok(call, wire.order_entry(self._by_id(call, False), hf=False))

    async def get_classic_by_cid(self, call: Call) -> web.Response:
        return self.ok(call, wire.order_entry(self._by_cid(call, False), hf=False))

    async def get_hf(self, call: Call) -> web.Response:
        return self.ok(call, wire.order_entry(self._by_id(call, True), hf=True))

    async def get_hf_by_cid(self, call: Call) -> web.Response:
        return self.ok(call, wire.order_entry(self._by_cid(call, True), hf=True))

    # -- cancel -----------------------------------------------------------------------------------------------
    def _cancel(self, call: Call, order: Order) -> Order:
        return self.state.cancel_order(self.state.accounts[order.account_id], order)

    async def cancel_classic(self, call: Call) -> web.Response:
        order = self._cancel(call, self._by_id(call, False))
        return self.ok(call, {"cancelledOrderIds": [order.id]})

    async def cancel_classic_by_cid(self, call: Call) -> web.Response:
        order = self._cancel(call, self._by_cid(call, False))
        return self.ok(call, {"cancelledOrderId": order.id, "clientOid": order.client_order_id})

    async def cancel_hf(self, call: Call) -> web.Response:
        order = self._cancel(call, self._by_id(call, True))
        return self.ok(call, {"orderId": order.id})

    async def cancel_hf_by_cid(self, call: Call) -> web.Response:
        order = self._cancel(call, self._by_cid(call, True))
        return self.ok(call, {"clientOid": order.client_order_id})

    # -- lists ------------------------------------------------------------------------------------------------
    def _orders(self, call: Call, hf: bool, spec: MarketSpec | None, status: str) -> list[Order]:
        """The account's orders of one family, newest first, filtered by the common query parameters."""
        side, kind = call.param("side"), call.param("type")
        start = int_param(call.param("startAt"), "startAt", 0)
        end = int_param(call.param("endAt"), "endAt", 0)
        out = []
        for order in reversed(self.state.account_orders(call.account, spec)):
            if bool(order.extra.get("hf")) != hf or order.is_open != (status == "active"):
                continue
            if (side and order.side != side) or (kind and order.type != kind):
                continue
            if order.created_ms < start or (end and order.created_ms > end):
                continue
            out.append(order)
        return out

    async def list_classic(self, call: Call) -> web.Response:
        status = call.param("status") or "done"
        if status not in ("active", "done"):
            raise SimError("invalid_param", f"Invalid status {status!r}", field="status")
        if (call.param("tradeType") or "TRADE") != "TRADE":
            return self.ok(call, wire.page([], 1, CLASSIC_PAGE[1]))
        current, size = self._page(call)
        orders = self._orders(call, False, self.spec(call, required=False), status)
        return self.ok(call, wire.page([wire.order_entry(o, hf=False) for o in orders], current, size))

    async def active_hf(self, call: Call) -> web.Response:
        orders = self._orders(call, True, self.spec(call), "active")
        return self.ok(call, [wire.order_entry(o, hf=True) for o in orders])

    async def done_hf(self, call: Call) -> web.Response:
        orders = self._orders(call, True, self.spec(call), "done")
        last_id = int_param(call.param("lastId"), "lastId", 0)
        if last_id:
            orders = [o for o in orders if o.extra["seq"] < last_id]
        orders = orders[: self._limit(call)]
        items = [wire.order_entry(o, hf=True) for o in orders]
        return self.ok(call, {"lastId": orders[-1].extra["seq"] if orders else 0, "items": items})

    def _fills(self, call: Call, hf: bool, spec: MarketSpec | None) -> list[tuple[Fill, Order]]:
        order_id, side, kind = call.param("orderId"), call.param("side"), call.param("type")
        start = int_param(call.param("startAt"), "startAt", 0)
        end = int_param(call.param("endAt"), "endAt", 0)
        out = []
        for order in self.state.account_orders(call.account, spec):
            if bool(order.extra.get("hf")) != hf or (order_id and order.id != order_id):
                continue
            if (side and order.side != side) or (kind and order.type != kind):
                continue
            out.extend((f, order) for f in order.fills if f.timestamp >= start and not (end and f.timestamp > end))
        out.sort(key=lambda pair: pair[0].trade_id, reverse=True)
        return out

    async def fills_classic(self, call: Call) -> web.Response:
        current, size = self._page(call)
        fills = self._fills(call, False, self.spec(call, required=False))
        return self.ok(call, wire.page([wire.fill_entry(f, o, hf=False) for f, o in fills], current, size))

    async def fills_hf(self, call: Call) -> web.Response:
        fills = self._fills(call, True, self.spec(call))
        last_id = int_param(call.param("lastId"), "lastId", 0)
        if last_id:
            fills = [(f, o) for f, o in fills if wire.hf_trade_id(f) < last_id]
        fills = fills[: self._limit(call)]
        items = [wire.fill_entry(f, o, hf=True) for f, o in fills]
        return self.ok(call, {"items": items, "lastId": wire.hf_trade_id(fills[-1][0]) if fills else 0})

    def _page(self, call: Call) -> tuple[int, int]:
        low, default, high = CLASSIC_PAGE
        current = int_param(call.param("currentPage"), "currentPage", 1)
        size = int_param(call.param("pageSize"), "pageSize", default)
        if size > high:
            raise self.fail(call, 400, "400100", f"pageSize should not greater than {high}")
        if current < 1:
            raise SimError("invalid_param", "currentPage must be at least 1", field="currentPage")
        return current, max(size, low)

    def _limit(self, call: Call) -> int:
        low, default, high = HF_LIMIT
        limit = int_param(call.param("limit"), "limit", default)
        if not low <= limit <= high:
            raise SimError("invalid_param", f"limit must be between {low} and {high}", field="limit")
        return limit


def _text(body: dict, name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is None:
        if default is None:
            raise SimError("missing_param", f"{name} is required", field=name)
        return default
    if not isinstance(value, str):
        raise SimError("invalid_param", f"{name} must be a string", field=name)
    return value


def _decimal(body: dict, name: str, required: bool = True) -> Decimal | None:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int, float, type(None))):
        raise SimError("invalid_param", f"{name} must be a number", field=name)
    return decimal_param(value, name, required)
