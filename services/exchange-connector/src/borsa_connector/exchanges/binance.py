"""Binance spot."""

from __future__ import annotations

from .ccxt_api import CcxtExchangeAPI, Quirks


class BinanceAPI(CcxtExchangeAPI):
    quirks: Quirks = {
        # Defaults also load futures (/fapi, /dapi) and, with keys, sapi currencies and margin pairs.
        # orders.open for every symbol is allowed (it costs 80 weight instead of 6; the budget counts that).
        "options": {
            "fetchMarkets": {"types": ["spot"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "fetchOpenOrders": {"warnWithoutSymbol": False},
        },
        # newClientOrderId: unique among OPEN orders only, ^[a-zA-Z0-9-_]{1,36}$ (rest-api.md, POST /api/v3/order).
        "client_order_id_max_length": 36,
        "fetch_order_by_client_id": True,  # origClientOrderId
        "ohlcv_max_limit": 1000,
        # The WebSocket API's userDataStream.subscribe.signature, which the simulator speaks too.
        "ws_orders": True,
        "notes": (
            "Fees default to 0.1% maker and taker; the fee is taken from the asset you receive.",
            "Minimum order value (NOTIONAL filter) is usually 5 USDT.",
        ),
    }

    async def subscribe_orders(self, client) -> bool:
        # ccxt.pro signs userDataStream.subscribe.signature on the WebSocket API and returns once Binance
        # acknowledges it (ccxt/pro/binance.py ensure_user_data_stream_ws_subscribe_signature).
        await client.authenticate()
        return True
