"""The simulator URL rule (DESIGN section 5) on REST and websocket URLs."""

from borsa_runtime.simurl import rewrite_api_urls


def test_rest_urls_keep_their_path_under_the_exchange_prefix():
    urls = {"public": "https://api.binance.com/api/v3", "sapi": {"v1": "https://api.binance.com/sapi/v1"}}
    assert rewrite_api_urls(urls, "http://127.0.0.1:9/", "binance") == {
        "public": "http://127.0.0.1:9/binance/api/v3",
        "sapi": {"v1": "http://127.0.0.1:9/binance/sapi/v1"},
    }


def test_websocket_urls_get_the_simulators_websocket_scheme():
    urls = {
        "ws": {"spot": "wss://stream.binance.com:9443/ws", "ws-api": {"spot": "wss://ws-api.binance.com:443/ws-api/v3"}}
    }
    assert rewrite_api_urls(urls, "http://127.0.0.1:9", "binance") == {
        "ws": {"spot": "ws://127.0.0.1:9/binance/ws", "ws-api": {"spot": "ws://127.0.0.1:9/binance/ws-api/v3"}}
    }
    assert rewrite_api_urls("ws://x/ws", "https://sim.example", "kucoin") == "wss://sim.example/kucoin/ws"


def test_other_values_are_left_alone():
    assert rewrite_api_urls({"rateLimit": 50, "doc": ["not a url"]}, "http://h", "x") == {
        "rateLimit": 50,
        "doc": ["not a url"],
    }
