"""Which request and reply types travel on each connector subject, for servers, clients and tests."""

from __future__ import annotations

from borsa_proto import exchange as ex
from borsa_proto import orders, requests
from borsa_proto.base import Message
from borsa_proto.subjects import Op

REQUEST_REPLY: dict[Op, tuple[type[Message], type[Message]]] = {
    Op.DESCRIBE: (requests.DescribeRequest, ex.Describe),
    Op.MARKETS: (requests.MarketsRequest, ex.MarketsReply),
    Op.MARKET: (requests.MarketRequest, ex.Market),
    Op.TICKER: (requests.TickerRequest, ex.Ticker),
    Op.OHLCV: (requests.OhlcvRequest, ex.OhlcvReply),
    Op.BALANCE: (requests.BalanceRequest, ex.BalanceReply),
    Op.ORDER_CREATE: (requests.OrderCreateRequest, orders.Order),
    Op.ORDER_GET: (requests.OrderGetRequest, orders.Order),
    Op.ORDER_CANCEL: (requests.OrderCancelRequest, orders.Order),
    Op.ORDERS_OPEN: (requests.OpenOrdersRequest, orders.OpenOrdersReply),
    Op.CREDENTIALS_CHECK: (requests.CredentialsCheckRequest, ex.CredentialsCheckReply),
    Op.WATCH: (requests.WatchRequest, ex.WatchReply),
}
"""Op -> (request type, reply type). An error reply is an ErrorReply on any of them."""
