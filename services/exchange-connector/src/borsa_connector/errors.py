"""ccxt exceptions translated to Borsa's error codes, once, at the boundary to the exchange."""

from __future__ import annotations

import json
import re

import ccxt.async_support as ccxt

from borsa_runtime import errors as borsa

# Most specific first: ccxt's hierarchy has siblings (RateLimitExceeded and DDoSProtection both sit under
# NetworkError), and InvalidNonce is an AuthenticationError only in name.
_LADDER: tuple[tuple[type[Exception], type[borsa.BorsaError]], ...] = (
    (ccxt.InsufficientFunds, borsa.InsufficientFunds),
    (ccxt.OrderNotFound, borsa.OrderNotFound),
    (ccxt.BadSymbol, borsa.UnknownSymbol),
    (ccxt.InvalidOrder, borsa.InvalidOrder),
    (ccxt.PermissionDenied, borsa.PermissionDenied),
    (ccxt.AccountSuspended, borsa.PermissionDenied),
    (ccxt.InvalidNonce, borsa.NetworkError),  # a clock or nonce hiccup: retrying with a fresh nonce works
    (ccxt.AuthenticationError, borsa.AuthFailed),
    (ccxt.RateLimitExceeded, borsa.RateLimited),
    (ccxt.DDoSProtection, borsa.RateLimited),
    (ccxt.RequestTimeout, borsa.RequestTimeout),
    (ccxt.OnMaintenance, borsa.ExchangeUnavailable),
    (ccxt.ExchangeNotAvailable, borsa.ExchangeUnavailable),
    (ccxt.NetworkError, borsa.NetworkError),
    # The exchange failed on its side (HTTP 500 with its own code): it may work a moment later.
    (ccxt.OperationFailed, borsa.ExchangeUnavailable),
    (ccxt.NotSupported, borsa.NotSupported),
    (ccxt.ArgumentsRequired, borsa.BadRequest),
    (ccxt.BadRequest, borsa.BadRequest),
)

_CODE_KEYS = ("code", "error", "error_code", "errorCode")
_JSON_TAIL = re.compile(r"(\{.*\}|\[.*\])\s*$", re.S)


def translate(exc: BaseException, exchange: str, retry_after_ms: int | None = None) -> borsa.BorsaError:
    """The Borsa error for anything a ccxt call raised; never loses the exchange's own code."""
    if isinstance(exc, borsa.BorsaError):
        return exc
    message = str(exc) or type(exc).__name__
    exchange_code = exchange_code_of(message)
    for ccxt_class, borsa_class in _LADDER:
        if isinstance(exc, ccxt_class):
            return borsa_class(
                _for_a_person(message, exchange),
                exchange=exchange,
                exchange_code=exchange_code,
                retry_after_ms=retry_after_ms if borsa_class.code == borsa.RateLimited.code else None,
            )
    if isinstance(exc, ccxt.ExchangeError):
        # An error the exchange reported that ccxt could not classify: worth a look, not a blind retry.
        return borsa.BorsaError(
            _for_a_person(message, exchange),
            code="internal",
            retryable=False,
            exchange=exchange,
            exchange_code=exchange_code,
        )
    return borsa.Internal(f"{exchange}: unexpected {type(exc).__name__}", exchange=exchange)


def exchange_code_of(message: str) -> str | None:
    """ccxt puts the exchange's raw body after the exchange id: `binance {"code":-1121,"msg":...}`."""
    match = _JSON_TAIL.search(message)
    if not match:
        return None
    try:
        body = json.loads(match.group(1))
    except ValueError:
        return None
    if isinstance(body, dict):
        for key in _CODE_KEYS:
            if body.get(key) not in (None, "", []):
                value = body[key]
                return str(value[0] if isinstance(value, list) else value)
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("id") or errors[0].get("code") or "") or None
    return None


def _for_a_person(message: str, exchange: str) -> str:
    text = message if message.lower().startswith(exchange) else f"{exchange}: {message}"
    return text[:500]
