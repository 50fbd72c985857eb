"""Coinbase Advanced Trade's wire shapes: products, orders, fills, order configurations and error bodies."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from aiohttp import web

from ..engine import Fill, Order, SimError
from ..markets import MarketSpec
from .base import decimal_param, json_response

ZERO = Decimal(0)

# Advanced Trade candle granularities (ccxt's timeframes table) -> the engine's timeframes.
GRANULARITIES = {
    "ONE_MINUTE": "1m",
    "FIVE_MINUTE": "5m",
    "FIFTEEN_MINUTE": "15m",
    "THIRTY_MINUTE": "30m",
    "ONE_HOUR": "1h",
    "TWO_HOUR": "2h",
    "FOUR_HOUR": "4h",
    "SIX_HOUR": "6h",
    "ONE_DAY": "1d",
}
MAX_CANDLES = 350  # per request (Get Product Candles)

STATUSES = {"open": "OPEN", "filled": "FILLED", "canceled": "CANCELLED", "expired": "EXPIRED", "rejected": "FAILED"}
TIME_IN_FORCE = {
    "GTC": "GOOD_UNTIL_CANCELLED",
    "GTD": "GOOD_UNTIL_DATE_TIME",
    "IOC": "IMMEDIATE_OR_CANCEL",
    "FOK": "FILL_OR_KILL",
}
# order_configuration key -> (order type, engine time in force)
CONFIGURATIONS = {
    "market_market_ioc": ("market", "IOC"),
    "limit_limit_gtc": ("limit", "GTC"),
    "limit_limit_gtd": ("limit", "GTD"),
    "limit_limit_fok": ("limit", "FOK"),
    "sor_limit_ioc": ("limit", "IOC"),
}
UNSUPPORTED_CONFIGURATIONS = (
    "stop_limit_stop_limit_gtc",
    "stop_limit_stop_limit_gtd",
    "trigger_bracket_gtc",
    "trigger_bracket_gtd",
    "twap_limit_gtd",
)

# Why a create-order failed (a SimError kind, or a check of this dialect) -> (error, preview_failure_reason,
# message) of the failure envelope. ccxt maps only PREVIEW_INSUFFICIENT_FUND (InsufficientFunds); every other
# preview reason becomes a plain ExchangeError.
ORDER_FAILURES = {
    "insufficient_balance": (
        "INSUFFICIENT_FUND",
        "PREVIEW_INSUFFICIENT_FUND",
        "Insufficient balance in source account",
    ),
    "below_min_amount": ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_SMALL", "Base size is too small"),
    "above_max_amount": ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_BASE_SIZE_TOO_LARGE", "Base size is too large"),
    "below_min_cost": ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_QUOTE_SIZE_TOO_SMALL", "Quote size is too small"),
    "above_max_cost": ("UNKNOWN_FAILURE_REASON", "PREVIEW_INVALID_QUOTE_SIZE_TOO_LARGE", "Quote size is too large"),
    "bad_amount_step": ("INVALID_SIZE_PRECISION", "PREVIEW_INVALID_SIZE_PRECISION", "Too many decimals in order size"),
    "bad_price_tick": (
        "INVALID_PRICE_PRECISION",
        "PREVIEW_INVALID_PRICE_PRECISION",
        "Too many decimals in order price",
    ),
    "price_out_of_range": ("INVALID_LIMIT_PRICE", "PREVIEW_INVALID_LIMIT_PRICE", "Invalid limit price"),
    "unknown_symbol": ("INVALID_PRODUCT_ID", "PREVIEW_INVALID_PRODUCT_ID", "valid product_id is required"),
    "post_only": (
        "INVALID_LIMIT_PRICE_POST_ONLY",
        "PREVIEW_INVALID_LIMIT_PRICE_POST_ONLY",
        "Post-only order would cross",
    ),
    "quote_precision": (
        "INVALID_SIZE_PRECISION",
        "PREVIEW_INVALID_QUOTE_SIZE_PRECISION",
        "Too many decimals in quote size",
    ),
}


def iso(ms: int) -> str:
    """RFC 3339 with microseconds, as Advanced Trade writes times ("2023-01-16T23:37:23.947030Z")."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_uuid(*parts) -> str:
    """A v4-shaped UUID derived from `parts`: the same seed gives the same ids in every run."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


# -- errors ------------------------------------------------------------------------------------------------------
def v3_error(status: int, error: str, message: str) -> web.Response:
    return json_response({"error": error, "error_details": message, "message": message}, status=status)


def v2_error(status: int, error_id: str, message: str) -> web.Response:
    return json_response({"errors": [{"id": error_id, "message": message}]}, status=status)


def order_failure(why: str, detail: str, configuration) -> web.Response:
    error, reason, message = ORDER_FAILURES[why]
    return json_response(
        {
            "success": False,
            "failure_reason": "UNKNOWN_FAILURE_REASON",
            "order_id": "",
            "error_response": {
                "error": error,
                "message": message,
                "error_details": detail,
                "preview_failure_reason": reason,
                "new_order_failure_reason": error,
            },
            "order_configuration": configuration if isinstance(configuration, dict) else None,
        }
    )


# -- order configurations ----------------------------------------------------------------------------------------
def parse_configuration(configuration) -> dict:
    """The one order_configuration of a create request -> what the engine needs, or SimError."""
    if not isinstance(configuration, dict) or len(configuration) != 1:
        raise SimError(
            "invalid_param", "order_configuration must hold exactly one configuration", "order_configuration"
        )
    name, fields = next(iter(configuration.items()))
    if name in UNSUPPORTED_CONFIGURATIONS:
        raise SimError("invalid_param", f"{name} is not supported by this venue", "order_configuration")
    if name not in CONFIGURATIONS or not isinstance(fields, dict):
        raise SimError("invalid_param", f"unknown order configuration {name!r}", "order_configuration")
    type_, tif = CONFIGURATIONS[name]
    base = decimal_param(fields.get("base_size"), "base_size", required=False)
    quote = decimal_param(fields.get("quote_size"), "quote_size", required=False)
    price = decimal_param(fields.get("limit_price"), "limit_price", required=type_ == "limit")
    if (base is None) == (quote is None) or (quote is not None and type_ == "limit"):
        wanted = "base_size or quote_size" if type_ == "market" else "base_size"
        raise SimError("missing_param", f"{name} needs exactly one of {wanted}", "base_size")
    post_only = fields.get("post_only", False)
    if not isinstance(post_only, bool):
        raise SimError("invalid_param", "post_only must be true or false", "post_only")
    if name == "limit_limit_gtd" and not fields.get("end_time"):
        raise SimError("missing_param", "limit_limit_gtd needs end_time", "end_time")
    return {
        "name": name,
        "type": type_,
        "tif": tif,
        "base": base,
        "quote": quote,
        "price": price,
        "post_only": post_only,
    }


def configuration_of(order: Order) -> dict:
    saved = order.extra.get("cb_config")
    if saved:
        return saved
    if order.type == "market":
        size = {"quote_size": order.quote_amount} if order.quote_amount is not None else {"base_size": order.amount}
        return {"market_market_ioc": size}
    return {"limit_limit_gtc": {"base_size": order.amount, "limit_price": order.price, "post_only": False}}


def echo_configuration(parsed: dict, raw: dict) -> dict:
    """The configuration as Coinbase echoes it: the sent fields with their decimals normalised to strings."""
    fields = dict(next(iter(raw.values())))
    for key, value in (
        ("base_size", parsed["base"]),
        ("quote_size", parsed["quote"]),
        ("limit_price", parsed["price"]),
    ):
        if value is not None:
            fields[key] = value
    return {parsed["name"]: fields}


# -- resources -----------------------------------------------------------------------------------------------------
def product_json(spec: MarketSpec, ticker: dict, names: dict[str, str]) -> dict:
    last, opened = ticker["last"], ticker["open"]
    change = ((last - opened) / opened * 100).quantize(Decimal("0.00000001")) if opened else ZERO
    return {
        "product_id": spec.market_id,
        "price": last,
        "price_percentage_change_24h": change,
        "volume_24h": ticker["volume"],
        "volume_percentage_change_24h": "0",
        "base_increment": spec.amount_step,
        # Coinbase quotes in the price increment too; ccxt reads price_increment first.
        "quote_increment": spec.price_tick,
        "quote_min_size": spec.min_cost,
        "quote_max_size": spec.max_cost if spec.max_cost else None,
        "base_min_size": spec.min_amount,
        "base_max_size": spec.max_amount if spec.max_amount else None,
        "base_name": names.get(spec.base, spec.base),
        "quote_name": names.get(spec.quote, spec.quote),
        "watched": False,
        "is_disabled": False,
        "new": False,
        "status": "online" if spec.active else "offline",
        "cancel_only": False,
        "limit_only": False,
        "post_only": False,
        "trading_disabled": not spec.active,
        "auction_mode": False,
        "product_type": "SPOT",
        "quote_currency_id": spec.quote_id,
        "base_currency_id": spec.base_id,
        "fcm_trading_session_details": None,
        "mid_market_price": "",
        "alias": "",
        "alias_to": [],
        "base_display_symbol": spec.base,
        "quote_display_symbol": spec.quote,
        "view_only": False,
        "price_increment": spec.price_tick,
        "display_name": spec.market_id,
        "product_venue": "CBE",
        "approximate_quote_24h_volume": ticker["quote_volume"],
    }


def completion(order: Order) -> Decimal:
    """How much of the order is done, in percent (of its quote size for a market buy sized in quote)."""
    if order.quote_amount is not None:
        done = order.cost / order.quote_amount * 100 if order.quote_amount else ZERO
    else:
        done = order.filled / order.amount * 100 if order.amount else ZERO
    return min(done, Decimal(100))


def value_after_fees(order: Order) -> Decimal:
    """What the fills came to with the fees: paid on top for a buy, taken off for a sell."""
    return order.cost + order.fee if order.side == "buy" else order.cost - order.fee


def order_json(order: Order, user_id: str) -> dict:
    spec = order.spec
    filled_value = order.cost
    return {
        "order_id": order.id,
        "product_id": spec.market_id,
        "user_id": user_id,
        "order_configuration": configuration_of(order),
        "side": order.side.upper(),
        "client_order_id": order.client_order_id or "",
        "status": STATUSES[order.status],
        "time_in_force": TIME_IN_FORCE.get(order.time_in_force, "GOOD_UNTIL_CANCELLED"),
        "created_time": iso(order.created_ms),
        "completion_percentage": completion(order).quantize(Decimal("0.01")),
        "filled_size": order.filled,
        "average_filled_price": order.average if order.average else "0",
        "fee": "",
        "number_of_fills": str(len(order.fills)),
        "filled_value": filled_value,
        "pending_cancel": False,
        "size_in_quote": order.quote_amount is not None,
        "total_fees": order.fee,
        "size_inclusive_of_fees": False,
        "total_value_after_fees": value_after_fees(order),
        "trigger_status": "INVALID_ORDER_TYPE",
        "order_type": order.type.upper(),
        "reject_reason": "REJECT_REASON_UNSPECIFIED",
        "settled": not order.is_open,
        "product_type": "SPOT",
        "reject_message": "",
        "cancel_message": "User requested cancel" if order.status == "canceled" else "",
        "order_placement_source": "RETAIL_ADVANCED",
        "outstanding_hold_amount": order.reserved,
        "is_liquidation": False,
        "last_fill_time": iso(order.fills[-1].timestamp) if order.fills else None,
        "edit_history": [],
        "leverage": "",
        "margin_type": "UNKNOWN_MARGIN_TYPE",
        "retail_portfolio_id": user_id,
        "originating_order_id": "",
        "attached_order_id": "",
        "attached_order_configuration": None,
    }


def fill_json(fill: Fill, order: Order, trade_id: str, user_id: str) -> dict:
    # Fills of an order placed with quote_size are reported in quote (ccxt divides by the price).
    in_quote = order.quote_amount is not None
    return {
        "entry_id": hashlib.sha256(trade_id.encode()).hexdigest(),
        "trade_id": trade_id,
        "order_id": fill.order_id,
        "trade_time": iso(fill.timestamp),
        "trade_type": "FILL",
        "price": fill.price,
        "size": fill.cost if in_quote else fill.amount,
        "commission": fill.fee,
        "product_id": fill.market_id,
        "sequence_timestamp": iso(fill.timestamp),
        "liquidity_indicator": fill.liquidity.upper(),
        "size_in_quote": in_quote,
        "user_id": user_id,
        "side": fill.side.upper(),
        "retail_portfolio_id": user_id,
    }
