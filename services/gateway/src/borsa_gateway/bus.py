"""The gateway's view of the connectors: discovery, describe and requests, over NATS."""

from __future__ import annotations

import contextlib
import json
import time
from uuid import UUID

from nats.aio.client import Client

from borsa_proto import BotChanged, encode
from borsa_proto.exchange import CredentialsCheckReply, Describe, Market, MarketsReply, Ticker
from borsa_proto.requests import (
    CredentialsCheckRequest,
    DescribeRequest,
    MarketRequest,
    MarketsRequest,
    TickerRequest,
)
from borsa_proto.subjects import BOTS_CHANGED, SERVICE_NAME, exchange_subject
from borsa_runtime.request import request

DISCOVERY_WAIT = 0.3
# A connector that answered discovery this recently still counts as online when a busy moment makes it miss the
# wait above; one that is really gone then answers its requests with no responders (exchange_unavailable).
SEEN_RECENTLY = 15.0
DESCRIBE_TTL = 60.0


class Connectors:
    def __init__(self, nc: Client, timeout: float) -> None:
        self.nc = nc
        self.timeout = timeout
        self._describe: dict[str, tuple[float, Describe]] = {}
        self._seen: dict[str, float] = {}

    async def online(self) -> set[str]:
        """Exchanges whose connectors answer `$SRV.PING` discovery now, or answered it within `SEEN_RECENTLY`."""
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        found: set[str] = set()
        try:
            await self.nc.publish(f"$SRV.PING.{SERVICE_NAME}", b"", reply=inbox)
            deadline = time.monotonic() + DISCOVERY_WAIT
            while (left := deadline - time.monotonic()) > 0:
                try:
                    msg = await sub.next_msg(timeout=left)
                except TimeoutError:
                    break
                exchange = (json.loads(msg.data).get("metadata") or {}).get("exchange")
                if exchange:
                    found.add(exchange)
        finally:
            await sub.unsubscribe()
        now = time.monotonic()
        self._seen.update(dict.fromkeys(found, now))
        return found | {exchange for exchange, seen in self._seen.items() if now - seen < SEEN_RECENTLY}

    async def describe(self, exchange: str) -> Describe:
        cached = self._describe.get(exchange)
        if cached and time.monotonic() - cached[0] < DESCRIBE_TTL:
            return cached[1]
        reply = await request(
            self.nc, exchange_subject(exchange, "describe"), DescribeRequest(), Describe, timeout=self.timeout
        )
        self._describe[exchange] = (time.monotonic(), reply)
        return reply

    async def markets(self, exchange: str, search: str | None, quote: str | None) -> list[Market]:
        reply = await request(
            self.nc,
            exchange_subject(exchange, "markets"),
            MarketsRequest(search=search, quote=quote),
            MarketsReply,
            timeout=self.timeout,
        )
        return reply.markets

    async def market(self, exchange: str, symbol: str) -> Market:
        return await request(
            self.nc, exchange_subject(exchange, "market"), MarketRequest(symbol=symbol), Market, timeout=self.timeout
        )

    async def check_credentials(self, exchange: str, sealed: str, mode: str) -> CredentialsCheckReply:
        return await request(
            self.nc,
            exchange_subject(exchange, "credentials.check"),
            CredentialsCheckRequest(sealed_credentials=sealed, mode=mode),
            CredentialsCheckReply,
            timeout=self.timeout * 2,
        )

    async def ticker(self, exchange: str, symbol: str) -> Ticker:
        return await request(
            self.nc, exchange_subject(exchange, "ticker"), TickerRequest(symbol=symbol), Ticker, timeout=self.timeout
        )

    async def revoked(self, exchange: str, account: str) -> None:
        await self.nc.publish(f"borsa.exchange.{exchange}.account.revoked", json.dumps({"account": account}).encode())

    async def bot_changed(self, bot_id: UUID, status: str, cancel_orders: bool | None = None) -> None:
        """Tell the runners at once (they also read the table every few seconds: a lost notice only delays)."""
        notice = BotChanged(bot_id=str(bot_id), status=status, cancel_orders=cancel_orders)
        with contextlib.suppress(Exception):  # the row is the truth; the notice only makes it take effect sooner
            await self.nc.publish(BOTS_CHANGED, encode(notice))
