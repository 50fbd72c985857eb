"""KuCoin spot."""

from __future__ import annotations

import asyncio

from .ccxt_api import CcxtExchangeAPI, Quirks

# ccxt.pro's classic spot order channel and the message hash its watch_orders() waits on (ccxt/pro/kucoin.py).
ORDERS_TOPIC, ORDERS_HASH = "/spotMarket/tradeOrders", "orders-spot"


class KucoinAPI(CcxtExchangeAPI):
    quirks: Quirks = {
        # Defaults also load futures from another host and call allTickers for fees.
        "options": {"fetchMarkets": {"types": ["spot"], "fetchTickersFees": False}},
        # clientOid: at most 40 letters, digits, '-' and '_'; orders can be fetched by it in both order families.
        "client_order_id_max_length": 40,
        "fetch_order_by_client_id": True,
        # The passphrase chosen when the key was made goes in ccxt's `password`. Which order family an account
        # uses (classic or HF) ccxt learns per client from /api/v1/hf/accounts/opened.
        "credential_labels": {"password": "API passphrase"},
        "ohlcv_max_limit": 1500,
        # The private push channel (bullet-private token, /spotMarket/tradeOrders), which the simulator speaks too.
        "ws_orders": True,
        "notes": (
            "Fees start at 0.1% maker and taker, in the quote currency.",
            "Each market has a minimum size (baseMinSize) and minimum funds (quoteMinSize).",
        ),
    }

    async def prepare_trading(self, client) -> None:
        # Account clients share the public client's markets and never run load_markets, which is where ccxt asks
        # whether the account trades on the HF or the classic order endpoints: ask once per account client.
        await client.load_migration_status()

    async def subscribe_orders(self, client) -> bool:
        # watch_orders() returns only on an order change, but KuCoin acks the subscription: subscribe as it does
        # (same topic, message hash and request) with a subscription whose `method` ccxt.pro calls on that ack
        # (handle_subscription_status), so the stream counts as up once KuCoin confirms it.
        if await client.is_uta_enabled():
            return False  # unified accounts use ccxt's UTA channel, which has no such hook
        url = await client.negotiate(True)
        acked = asyncio.get_running_loop().create_future()

        def on_ack(*_) -> None:
            if not acked.done():
                acked.set_result(True)

        watch = asyncio.ensure_future(
            client.subscribe(url, ORDERS_HASH, ORDERS_TOPIC, {"privateChannel": True}, {"method": on_ack})
        )
        # The update it waits for is the one watch_orders() gets next; its failure is watch_orders()'s too.
        watch.add_done_callback(lambda f: f.cancelled() or f.exception())
        done = await self._confirmation(client, {acked, watch}, "ack")
        if watch in done and not watch.cancelled() and watch.exception() is not None:
            raise watch.exception()
        return True
