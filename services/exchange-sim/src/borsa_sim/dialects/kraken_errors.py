"""Kraken's error vocabulary: which `E<Category>:<text>` string each simulator rule and HTTP status becomes.

Kraken answers API errors with HTTP 200 and `{"error": ["..."]}`; ccxt maps the strings (kraken.py `exceptions`).
"""

from __future__ import annotations

from decimal import Decimal

from aiohttp import web

from ..engine import SimError
from .base import json_response
from .kraken_wire import places

# Kraken parameter names for the engine's field names, for "EGeneral:Invalid arguments:<field>".
FIELDS = {"amount": "volume", "quote_amount": "volume", "side": "type", "type": "ordertype", "price": "price"}
ORDER_FIELDS = frozenset(
    {"volume", "price", "type", "ordertype", "oflags", "timeinforce", "cl_ord_id", "userref", "viqc"}
)
STATUS_TEXT = {
    400: "EGeneral:Invalid arguments",
    401: "EGeneral:Permission denied",
    403: "EGeneral:Permission denied",
    404: "EGeneral:Unknown method",
    405: "EGeneral:Unknown method",
    429: "EGeneral:Too many requests",
    503: "EService:Unavailable",
}
# Gateway failures come from Cloudflare in front of api.kraken.com as an HTML page, not as Kraken JSON; ccxt then
# goes by the status (502 and 52x: ExchangeNotAvailable, 504: RequestTimeout).
GATEWAY = {502: "Bad Gateway", 504: "Gateway Timeout", 520: "Web Server Returned an Unknown Error"}


def kraken_error(message: str, status: int = 200) -> web.Response:
    return json_response({"error": [message]}, status=status)


def ok(result) -> web.Response:
    return json_response({"error": [], "result": result})


def status_error(status: int) -> web.Response:
    if status in GATEWAY:
        title = f"{status} {GATEWAY[status]}"
        page = f"<html><head><title>{title}</title></head><body><center><h1>{title}</h1></center>"
        return web.Response(
            text=page + "<hr><center>cloudflare</center></body></html>", status=status, content_type="text/html"
        )
    return kraken_error(STATUS_TEXT.get(status, "EGeneral:Internal error"), status=status)


def message(err: SimError, pair: str) -> str:
    """The Kraken error for a broken rule; `pair` is the pair as the request named it."""
    match err.kind:
        case "unknown_symbol":
            return "EQuery:Unknown asset pair"
        case "missing_param" | "invalid_param":
            field = FIELDS.get(err.field or "", err.field)
            return f"EGeneral:Invalid arguments:{field}" if field in ORDER_FIELDS else "EGeneral:Invalid arguments"
        case "bad_amount_step" | "above_max_amount" | "above_max_cost":
            return "EGeneral:Invalid arguments:volume"
        case "bad_price_tick":
            decimals = places(err.info.get("tick", Decimal(1)))
            return f"EOrder:Invalid price:{pair} price can only be specified up to {decimals} decimals."
        case "price_out_of_range":
            return "EGeneral:Invalid arguments:price"
        case "below_min_amount":
            return "EOrder:Order minimum not met"
        case "below_min_cost":
            return "EOrder:Cost minimum not met"
        case "insufficient_balance":
            return "EOrder:Insufficient funds"
        case "duplicate_client_id":
            # Kraken's own "duplicate" text is not in ccxt's table (it would be a bare ExchangeError);
            # EOrder:Invalid order is a real Kraken message that ccxt maps to InvalidOrder.
            return "EOrder:Invalid order"
        case _:  # unknown_order, order_not_open: what CancelOrder answers for an order that is not open
            return "EOrder:Unknown order"
