"""Coinbase's signed calls: accounts and balances (v2 and v3), fee summary, create/cancel/get/list orders, fills."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine import Account, Order, SimError
from . import coinbase_wire as wire
from .base import Call, Reject, int_param, json_response
from .coinbase_market import FIAT, NAMES, crypto_codes, enum_error, product

if TYPE_CHECKING:
    from .coinbase import CoinbaseDialect

ORDER_STATUSES = frozenset(
    {"OPEN", "FILLED", "CANCELLED", "EXPIRED", "FAILED", "PENDING", "QUEUED", "CANCEL_QUEUED", "UNKNOWN_ORDER_STATUS"}
)
MAX_CANCEL_IDS = 100
MAX_PAGE = 1000


# -- accounts ------------------------------------------------------------------------------------------------------
def _wallets(dialect: CoinbaseDialect, account: Account) -> list[tuple[str, Decimal, Decimal]]:
    """(code, available, hold) for every currency the venue lists and every one the account holds."""
    codes = set(FIAT[:1]) | set(crypto_codes(dialect)) | set(account.balances)
    out = []
    for code in sorted(codes):
        holding = account.balances.get(code)
        out.append((code, holding.free if holding else wire.ZERO, holding.used if holding else wire.ZERO))
    # Funded wallets first, as the Coinbase app lists them.
    return sorted(out, key=lambda w: (w[1] + w[2] == 0, w[0]))


def _account_type(code: str) -> str:
    return "ACCOUNT_TYPE_FIAT" if code in FIAT else "ACCOUNT_TYPE_CRYPTO"


async def v2_accounts(dialect: CoinbaseDialect, call: Call) -> web.Response:
    account = call.account
    limit = int_param(call.param("limit"), "limit", 25)
    if not 1 <= limit <= 300:
        raise Reject(wire.v2_error(400, "invalid_request", "limit must be between 1 and 300"))
    wallets = _wallets(dialect, account)
    after = call.param("starting_after")
    ids = [dialect.wallet_id(account, code) for code, _, _ in wallets]
    first = ids.index(after) + 1 if after in ids else 0
    page = wallets[first : first + limit]
    created = wire.iso_seconds(account.created_ms)
    data = []
    for code, free, hold in page:
        wallet_id = dialect.wallet_id(account, code)
        data.append(
            {
                "id": wallet_id,
                "name": f"{code} Wallet",
                "primary": code == "BTC",
                # Real v2 wallets say "wallet" and report only the total, which ccxt shows as all free. Borsa
                # needs what open orders hold, so each wallet carries the Advanced Trade account type with
                # available_balance and hold, which ccxt's balance parser reads as free and used.
                "type": _account_type(code),
                "currency": {
                    "code": code,
                    "name": NAMES.get(code, code),
                    "type": "fiat" if code in FIAT else "crypto",
                    "exponent": 2 if code in FIAT else 8,
                    "asset_id": wire.stable_uuid("asset", code),
                },
                "balance": {"amount": free + hold, "currency": code},
                "available_balance": {"value": free, "currency": code},
                "hold": {"value": hold, "currency": code},
                "created_at": created,
                "updated_at": created,
                "resource": "account",
                "resource_path": f"/v2/accounts/{wallet_id}",
                "allow_deposits": True,
                "allow_withdrawals": True,
            }
        )
    more = first + limit < len(wallets)
    last = ids[first + limit - 1] if more else None
    pagination = {
        "ending_before": None,
        "starting_after": after,
        "previous_ending_before": None,
        "next_starting_after": last,
        "limit": limit,
        "order": "desc",
        "previous_uri": None,
        "next_uri": f"/v2/accounts?limit={limit}&starting_after={last}" if more else None,
    }
    return json_response({"pagination": pagination, "data": data})


def _v3_account(dialect: CoinbaseDialect, account: Account, code: str, free: Decimal, hold: Decimal) -> dict:
    created = wire.iso(account.created_ms)
    return {
        "uuid": dialect.wallet_id(account, code),
        "name": f"{code} Wallet",
        "currency": code,
        "available_balance": {"value": free, "currency": code},
        "default": True,
        "active": True,
        "created_at": created,
        "updated_at": created,
        "deleted_at": None,
        "type": _account_type(code),
        "ready": True,
        "hold": {"value": hold, "currency": code},
        "retail_portfolio_id": dialect.user_id(account),
        "platform": "ACCOUNT_PLATFORM_CONSUMER",
    }


async def v3_accounts(dialect: CoinbaseDialect, call: Call) -> web.Response:
    account = call.account
    limit = int_param(call.param("limit"), "limit", 49)
    offset = int_param(call.param("cursor"), "cursor", 0)
    if not 1 <= limit <= 250 or offset < 0:
        raise SimError("invalid_param", "limit must be between 1 and 250", "limit")
    wallets = _wallets(dialect, account)
    page = wallets[offset : offset + limit]
    more = offset + limit < len(wallets)
    return json_response(
        {
            "accounts": [_v3_account(dialect, account, *w) for w in page],
            "has_next": more,
            "cursor": str(offset + limit) if more else "",
            "size": len(page),
        }
    )


async def v3_account(dialect: CoinbaseDialect, call: Call) -> web.Response:
    account = call.account
    for wallet in _wallets(dialect, account):
        if dialect.wallet_id(account, wallet[0]) == call.match["account_uuid"]:
            return json_response({"account": _v3_account(dialect, account, *wallet)})
    raise Reject(wire.v3_error(404, "NOT_FOUND", "account not found"))


async def transaction_summary(dialect: CoinbaseDialect, call: Call) -> web.Response:
    fills = dialect.state.account_fills(call.account)
    volume = sum((f.cost for f in fills), wire.ZERO)
    fees = sum((f.fee for f in fills), wire.ZERO)
    # One fee tier for every product: the rates of the market table ("Advanced 1", $0-1k 30-day volume).
    spec = next(iter(dialect.state.specs.values()))
    tier = {
        "pricing_tier": "Advanced 1",
        "usd_from": "0",
        "usd_to": "1000",
        "taker_fee_rate": spec.taker,
        "maker_fee_rate": spec.maker,
        "aop_from": "",
        "aop_to": "",
    }
    return json_response(
        {
            "total_volume": volume,
            "total_fees": fees,
            "fee_tier": tier,
            "margin_rate": None,
            "goods_and_services_tax": None,
            "advanced_trade_only_volume": volume,
            "advanced_trade_only_fees": fees,
            "coinbase_pro_volume": "0",
            "coinbase_pro_fees": "0",
            "total_balance": "",
            "has_promo_fee": False,
        }
    )


# -- orders --------------------------------------------------------------------------------------------------------
def success_response(order: Order, configuration: dict) -> web.Response:
    return json_response(
        {
            "success": True,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": order.id,
            "success_response": {
                "order_id": order.id,
                "product_id": order.spec.market_id,
                "side": order.side.upper(),
                "client_order_id": order.client_order_id,
            },
            "order_configuration": configuration,
        }
    )


def _required_str(data: dict, field: str) -> str:
    value = data.get(field)
    if value is None or value == "":
        raise SimError("missing_param", f"{field} is required", field)
    if not isinstance(value, str):
        raise SimError("invalid_param", f"{field} must be a string", field)
    return value


async def create_order(dialect: CoinbaseDialect, call: Call) -> web.Response:
    account, state = call.account, dialect.state
    data = call.json()
    raw = data.get("order_configuration")
    call.request["cb_configuration"] = raw
    client_id = _required_str(data, "client_order_id")
    product_id = _required_str(data, "product_id")
    side = _required_str(data, "side")
    if side not in ("BUY", "SELL"):
        raise enum_error("side", side)
    # Coinbase create is idempotent on client_order_id: a known id returns that order, no new one is made.
    existing = state.find_by_client_id(account, client_id, open_only=False)
    if existing is not None:
        return success_response(existing, wire.configuration_of(existing))
    spec = product(dialect, product_id)
    parsed = wire.parse_configuration(raw)
    configuration = wire.echo_configuration(parsed, raw)
    if parsed["quote"] is not None and parsed["quote"] % spec.price_tick:
        detail = f"quote_size {parsed['quote']} is not a multiple of {spec.price_tick}"
        return wire.order_failure("quote_precision", detail, raw)
    walk = state.walk(spec)
    price = parsed["price"]
    if parsed["post_only"] and (
        (side == "BUY" and price >= walk.best_ask()) or (side == "SELL" and price <= walk.best_bid())
    ):
        return wire.order_failure("post_only", "the limit price would take liquidity", raw)
    dialect.check_funds(account, spec, side.lower(), parsed)
    order = state.place_order(
        account,
        spec,
        side=side.lower(),
        type=parsed["type"],
        amount=parsed["base"],
        price=price,
        client_order_id=client_id,
        quote_amount=parsed["quote"],
        time_in_force=parsed["tif"],
    )
    order.extra["cb_config"] = configuration
    return success_response(order, configuration)


async def cancel_orders(dialect: CoinbaseDialect, call: Call) -> web.Response:
    ids = call.json().get("order_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise SimError("missing_param", "order_ids must be a non-empty list of order ids", "order_ids")
    if len(ids) > MAX_CANCEL_IDS:
        raise SimError("invalid_param", f"at most {MAX_CANCEL_IDS} order ids per request", "order_ids")
    results = []
    for order_id in ids:
        order = dialect.state.orders.get(order_id)
        if order is None or order.account_id != call.account.id:
            reason = "UNKNOWN_CANCEL_ORDER"
        elif not order.is_open:
            reason = "DUPLICATE_CANCEL_REQUEST" if order.status == "canceled" else "INVALID_CANCEL_REQUEST"
        else:
            dialect.state.cancel_order(call.account, order)
            reason = None
        results.append(
            {
                "success": reason is None,
                "failure_reason": reason or "UNKNOWN_CANCEL_FAILURE_REASON",
                "order_id": order_id,
            }
        )
    return json_response({"results": results})


async def get_order(dialect: CoinbaseDialect, call: Call) -> web.Response:
    order = dialect.state.get_order(call.account, order_id=call.match["order_id"])
    return json_response({"order": wire.order_json(order, dialect.user_id(call.account))})


def _date(call: Call, field: str) -> int | None:
    value = call.param(field)
    if not value:
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError as exc:
        raise SimError("invalid_param", f"{field} must be an RFC 3339 time", field) from exc


def _ids(call: Call, plural: str, singular: str | None = None) -> set[str]:
    values = set(call.request.query.getall(plural, []))
    if singular and call.param(singular):
        values.add(call.param(singular))
    return values


def _page(call: Call, items: list, default: int) -> tuple[list, str]:
    limit = int_param(call.param("limit"), "limit", default)
    offset = int_param(call.param("cursor"), "cursor", 0)
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise SimError("invalid_param", f"limit must be between 1 and {MAX_PAGE}", "limit")
    more = offset + limit < len(items)
    return items[offset : offset + limit], str(offset + limit) if more else ""


async def list_orders(dialect: CoinbaseDialect, call: Call) -> web.Response:
    statuses = set(call.request.query.getall("order_status", []))
    unknown = sorted(statuses - ORDER_STATUSES)
    if unknown:
        raise enum_error("order_status", unknown[0])
    side = call.param("order_side")
    if side and side not in ("BUY", "SELL"):
        raise enum_error("order_side", side)
    product_type = call.param("product_type")
    if product_type and product_type not in ("SPOT", "FUTURE", "UNKNOWN_PRODUCT_TYPE"):
        raise enum_error("product_type", product_type)
    order_ids, product_ids = _ids(call, "order_ids"), _ids(call, "product_ids", "product_id")
    types = {t.upper() for t in call.request.query.getall("order_types", [])}
    start, end = _date(call, "start_date"), _date(call, "end_date")
    out = []
    for order in reversed(dialect.state.account_orders(call.account)):
        if (
            (statuses and wire.STATUSES[order.status] not in statuses)
            or (order_ids and order.id not in order_ids)
            or (product_ids and order.spec.market_id not in product_ids)
            or (types and order.type.upper() not in types)
            or (side and order.side.upper() != side)
            or (start is not None and order.created_ms < start)
            or (end is not None and order.created_ms > end)
            or product_type == "FUTURE"
        ):
            continue
        out.append(order)
    page, cursor = _page(call, out, 100)
    user = dialect.user_id(call.account)
    return json_response(
        {
            "orders": [wire.order_json(o, user) for o in page],
            "sequence": "0",
            "has_next": bool(cursor),
            "cursor": cursor,
        }
    )


async def list_fills(dialect: CoinbaseDialect, call: Call) -> web.Response:
    order_ids, product_ids = _ids(call, "order_ids", "order_id"), _ids(call, "product_ids", "product_id")
    trade_ids = _ids(call, "trade_ids")
    start, end = _date(call, "start_sequence_timestamp"), _date(call, "end_sequence_timestamp")
    out = []
    for order in dialect.state.account_orders(call.account):
        if (order_ids and order.id not in order_ids) or (product_ids and order.spec.market_id not in product_ids):
            continue
        for fill in order.fills:
            trade_id = dialect.trade_id(fill.trade_id)
            if (
                (trade_ids and trade_id not in trade_ids)
                or (start is not None and fill.timestamp < start)
                or (end is not None and fill.timestamp > end)
            ):
                continue
            out.append((fill, order, trade_id))
    out.sort(key=lambda item: (item[0].timestamp, item[0].trade_id), reverse=True)
    page, cursor = _page(call, out, 100)
    user = dialect.user_id(call.account)
    return json_response({"fills": [wire.fill_json(f, o, t, user) for f, o, t in page], "cursor": cursor})
