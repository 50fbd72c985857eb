"""The connector on the bus: a NATS micro service `exchange-connector` with one endpoint per verb of DESIGN
section 2, in a queue group per exchange so that replicas share the load."""

from __future__ import annotations

from importlib.metadata import version

import msgspec
import structlog
from nats.aio.client import Client
from nats.micro import Request, add_service
from nats.micro.service import Service

from borsa_proto import requests as rq
from borsa_proto.exchange import MarketsReply
from borsa_proto.orders import OpenOrdersReply
from borsa_proto.subjects import (
    SERVICE_METADATA_EXCHANGE,
    SERVICE_NAME,
    Op,
    account_revoked,
    connector_queue_group,
    exchange_subject,
)
from borsa_runtime.endpoints import InFlight, handler
from borsa_runtime.errors import BadRequest, Internal, respond_error

from .accounts import AccountStore
from .exchanges.ccxt_api import CcxtExchangeAPI
from .metrics import Metrics
from .watch import WatchManager

log = structlog.get_logger("borsa.connector.service")


class RevokedNotice(msgspec.Struct):
    """Body of `borsa.exchange.<ex>.account.revoked`, published by the gateway when a key is deleted."""

    account: str


class ConnectorService:
    def __init__(
        self,
        nc: Client,
        api: CcxtExchangeAPI,
        watcher: WatchManager,
        metrics: Metrics,
        accounts: AccountStore | None = None,
    ) -> None:
        self.nc = nc
        self.api = api
        self.watcher = watcher
        self.metrics = metrics
        self.accounts = accounts
        self.service: Service | None = None
        self._catch_all = None
        self._revoked = None
        # Requests are served concurrently: one slow exchange call must not hold up other accounts' orders.
        self.in_flight = InFlight()

    def _routes(self):
        api = self.api
        return {
            Op.DESCRIBE: (rq.DescribeRequest, lambda r: _now(api.describe())),
            Op.MARKETS: (
                rq.MarketsRequest,
                lambda r: _now(MarketsReply(markets=api.markets(r.search, r.quote, r.active_only))),
            ),
            Op.MARKET: (rq.MarketRequest, lambda r: _now(api.market(r.symbol))),
            Op.TICKER: (rq.TickerRequest, lambda r: api.ticker(r.symbol)),
            Op.OHLCV: (rq.OhlcvRequest, lambda r: api.ohlcv(r.symbol, r.timeframe, r.since, r.limit)),
            Op.WATCH: (rq.WatchRequest, lambda r: self.watcher.watch(r.symbol, r.lease_ms)),
            Op.BALANCE: (rq.BalanceRequest, lambda r: api.balance(r.account)),
            Op.ORDER_CREATE: (rq.OrderCreateRequest, api.create_order),
            Op.ORDER_GET: (rq.OrderGetRequest, lambda r: api.get_order(r.account, r.symbol, r.id, r.client_order_id)),
            Op.ORDER_CANCEL: (
                rq.OrderCancelRequest,
                lambda r: api.cancel_order(r.account, r.symbol, r.id, r.client_order_id),
            ),
            Op.ORDERS_OPEN: (rq.OpenOrdersRequest, lambda r: _open_orders(api, r)),
            Op.CREDENTIALS_CHECK: (rq.CredentialsCheckRequest, self._check_credentials),
        }

    async def start(self) -> None:
        exchange = self.api.id
        self.service = await add_service(
            self.nc,
            name=SERVICE_NAME,
            version=version("borsa-exchange-connector"),
            description=f"Borsa exchange connector for {exchange}",
            metadata={SERVICE_METADATA_EXCHANGE: exchange},
            queue_group=connector_queue_group(exchange),
        )
        for op, (request_type, serve) in self._routes().items():
            await self.service.add_endpoint(
                name=op.endpoint_name,
                subject=exchange_subject(exchange, op),
                handler=self.in_flight.wrap(handler(request_type, serve, self._observer(op.endpoint_name))),
                queue_group=connector_queue_group(exchange),
            )
        if self.accounts is not None:
            # Every replica drops its client of a revoked key, so no queue group here.
            self._revoked = await self.nc.subscribe(account_revoked(exchange), cb=self._on_revoked)
        # Anything else under this exchange's prefix is a verb we do not know: answer it instead of leaving the
        # caller to time out. Known verbs are ignored here: their endpoints answer them.
        self._catch_all = await self.nc.subscribe(
            f"borsa.exchange.{exchange}.>", queue=f"{connector_queue_group(exchange)}.unknown", cb=self._unknown
        )

    def _observer(self, endpoint: str):
        def observe(outcome: str, seconds: float) -> None:
            self.metrics.observe_request(self.api.id, endpoint, outcome, seconds)

        return observe

    async def _unknown(self, msg) -> None:
        verb = msg.subject.removeprefix(f"borsa.exchange.{self.api.id}.")
        if verb in Op.__members__.values() or not msg.reply:
            return
        known = ", ".join(op.value for op in Op)
        error = BadRequest(f"unknown verb {verb!r} for exchange {self.api.id}; known verbs: {known}")
        self.metrics.observe_request(self.api.id, "unknown", error.code, 0.0)
        await respond_error(Request(msg), error)

    async def _check_credentials(self, request: rq.CredentialsCheckRequest):
        if request.account is not None:
            return await self.api.check_account(request.account)
        if request.mode == rq.KeyMode.PAPER:
            return await self.api.check_credentials({}, request.mode)
        if self.accounts is None:
            raise Internal(f"the {self.api.id} connector serves no API keys", exchange=self.api.id)
        return await self.api.check_credentials(self.accounts.unseal(request.sealed_credentials), request.mode)

    async def _on_revoked(self, msg) -> None:
        try:
            account = msgspec.json.decode(msg.data, type=RevokedNotice).account
        except msgspec.DecodeError as exc:
            log.warning("revocation notice ignored", subject=msg.subject, error=str(exc))
            return
        await self.accounts.forget(account)

    async def stop(self) -> None:
        await self.in_flight.wait()  # answer what is under way before the connection drains
        if self._revoked is not None:
            await self._revoked.unsubscribe()
        if self._catch_all is not None:
            await self._catch_all.unsubscribe()
        if self.service is not None:
            await self.service.stop()


async def _now(value):
    return value


async def _open_orders(api: CcxtExchangeAPI, request: rq.OpenOrdersRequest) -> OpenOrdersReply:
    return OpenOrdersReply(orders=await api.open_orders(request.account, request.symbol))
