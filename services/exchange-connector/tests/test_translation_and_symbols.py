"""ccxt exceptions become Borsa error codes in one place; symbols resolve however they are written."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from borsa_connector.errors import exchange_code_of, translate
from borsa_connector.exchanges.ccxt_api import CcxtExchangeAPI
from borsa_connector.exchanges.registry import REGISTRY, resolve_exchange
from borsa_connector.settings import ConnectorSettings
from borsa_connector.symbols import SymbolIndex
from borsa_runtime.settings import SettingsError


@pytest.mark.parametrize(
    ("exc", "code", "retryable"),
    [
        (ccxt.InsufficientFunds("binance Account has insufficient balance"), "insufficient_funds", False),
        (ccxt.OrderNotFound("kucoin order not exist."), "order_not_found", False),
        (ccxt.BadSymbol('binance {"code":-1121,"msg":"Invalid symbol."}'), "unknown_symbol", False),
        (ccxt.InvalidOrder('binance {"code":-1013,"msg":"Filter failure: LOT_SIZE"}'), "invalid_order", False),
        (ccxt.AuthenticationError("kraken EAPI:Invalid key"), "auth_failed", False),
        (ccxt.PermissionDenied("kraken EGeneral:Permission denied"), "permission_denied", False),
        (ccxt.RateLimitExceeded('kucoin {"code":"429000"}'), "rate_limited", True),
        (ccxt.DDoSProtection("binance 418"), "rate_limited", True),
        (ccxt.RequestTimeout("kraken GET timed out"), "network_error", True),
        (ccxt.ExchangeNotAvailable("coinbase 503"), "exchange_unavailable", True),
        (ccxt.OnMaintenance("kraken EService:Unavailable"), "exchange_unavailable", True),
        (ccxt.NetworkError("connection reset"), "network_error", True),
        (
            ccxt.OperationFailed('binance {"code":-1000,"msg":"An unknown error occurred"}'),
            "exchange_unavailable",
            True,
        ),
        (ccxt.NotSupported("fetchFoo() is not supported"), "not_supported", False),
        (ccxt.BadRequest("coinbase INVALID_ARGUMENT"), "bad_request", False),
        (ccxt.ExchangeError('kraken {"error":["EOrder:Cost minimum not met"]}'), "internal", False),
        (RuntimeError("boom"), "internal", False),
    ],
)
def test_every_ccxt_error_has_one_borsa_code(exc, code, retryable) -> None:
    error = translate(exc, "kraken", retry_after_ms=1500)
    assert error.code == code
    assert error.retryable is retryable
    assert error.exchange == "kraken"
    assert error.message
    assert (error.retry_after_ms == 1500) == (code == "rate_limited")


def test_exchange_codes_are_kept() -> None:
    assert exchange_code_of('binance {"code":-1121,"msg":"Invalid symbol."}') == "-1121"
    assert exchange_code_of('kraken {"error":["EOrder:Insufficient funds"],"result":{}}') == "EOrder:Insufficient funds"
    assert exchange_code_of('coinbase {"errors":[{"id":"rate_limit_exceeded"}]}') == "rate_limit_exceeded"
    assert exchange_code_of("kucoin plain text") is None


MARKETS = {
    "BTC/USD": {
        "symbol": "BTC/USD",
        "id": "XXBTZUSD",
        "base": "BTC",
        "quote": "USD",
        "baseId": "XXBT",
        "quoteId": "ZUSD",
        "info": {"altname": "XBTUSD", "wsname": "XBT/USD"},
    },
    "ETH/USD": {
        "symbol": "ETH/USD",
        "id": "XETHZUSD",
        "base": "ETH",
        "quote": "USD",
        "baseId": "XETH",
        "quoteId": "ZUSD",
        "info": {"altname": "ETHUSD"},
    },
    "DOGE/USD": {
        "symbol": "DOGE/USD",
        "id": "XDGUSD",
        "base": "DOGE",
        "quote": "USD",
        "baseId": "XXDG",
        "quoteId": "ZUSD",
        "info": {"altname": "XDGUSD"},
    },
    "BTC/EUR": {"symbol": "BTC/EUR", "id": "XXBTZEUR", "base": "BTC", "quote": "EUR", "info": {}},
}


@pytest.mark.parametrize(
    ("text", "symbol"),
    [
        ("BTC/USD", "BTC/USD"),
        ("btc/usd", "BTC/USD"),
        ("XBTUSD", "BTC/USD"),
        ("xbt/usd", "BTC/USD"),
        ("XXBTZUSD", "BTC/USD"),
        ("BTC-USD", "BTC/USD"),
        ("btc_usd", "BTC/USD"),
        (" btcusd ", "BTC/USD"),
        ("xdgusd", "DOGE/USD"),
        ("doge/usd", "DOGE/USD"),
        ("XBT/EUR", "BTC/EUR"),
    ],
)
def test_symbols_resolve_whatever_the_spelling(text, symbol) -> None:
    index = SymbolIndex(MARKETS, {"XBT": "BTC", "XDG": "DOGE"}, exchange="kraken")
    assert index.resolve(text) == symbol


def test_unknown_symbol_names_close_matches_and_the_exchange() -> None:
    index = SymbolIndex(MARKETS, {"XBT": "BTC"}, exchange="kraken")
    with pytest.raises(Exception) as err:
        index.resolve("BTCUSDT")
    assert err.value.code == "unknown_symbol"
    assert "on kraken" in err.value.message
    assert "BTC/USD" in err.value.message
    with pytest.raises(Exception) as err:
        index.resolve("   ")
    assert err.value.code == "bad_request"


def test_registry_aliases_and_fallback() -> None:
    assert resolve_exchange("Coinbase-Advanced") == ("coinbase", REGISTRY["coinbase"])
    assert resolve_exchange("bitstamp") == ("bitstamp", CcxtExchangeAPI)
    with pytest.raises(ValueError, match="did you mean kraken"):
        resolve_exchange("krakn")


def test_quirks_are_data_merged_over_defaults() -> None:
    for exchange_id, api_class in REGISTRY.items():
        api = api_class(exchange_id)
        assert api.q["client_order_id_param"]
        assert api.q["client_order_id_max_length"] > 0
        assert api.q["notes"]
    assert REGISTRY["coinbase"]("coinbase").q["client_order_id_param"] == "client_order_id"
    assert REGISTRY["kraken"]("kraken").q["secret_format"] == "base64"
    assert REGISTRY["kraken"]("kraken").q["currency_aliases"]["XBT"] == "BTC"
    kucoin = REGISTRY["kucoin"]("kucoin")
    assert [f.name for f in kucoin.credential_fields()] == ["apiKey", "secret", "password"]


def test_settings_fail_fast_naming_the_variable() -> None:
    with pytest.raises((SettingsError, ValueError), match="BORSA_WATCH_INTERVAL_MS"):
        ConnectorSettings.from_env(environ={"BORSA_WATCH_INTERVAL_MS": "5"})
    settings = ConnectorSettings.from_env(environ={"BORSA_EXCHANGE": "kraken", "BORSA_MARKETS_REFRESH_MINUTES": "2"})
    assert settings.markets_refresh_minutes == 2.0
