"""KuCoin spot."""

from __future__ import annotations

from .ccxt_api import CcxtExchangeAPI, Quirks


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
        "notes": (
            "Fees start at 0.1% maker and taker, in the quote currency.",
            "Each market has a minimum size (baseMinSize) and minimum funds (quoteMinSize).",
        ),
    }

    async def prepare_trading(self, client) -> None:
        # Account clients share the public client's markets and never run load_markets, which is where ccxt asks
        # whether the account trades on the HF or the classic order endpoints: ask once per account client.
        await client.load_migration_status()
