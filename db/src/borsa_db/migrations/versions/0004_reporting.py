"""Reporting: every order and fill from BORSA_ORDERS, and what they add up to per exchange, account, bot and symbol.

`report_orders` and `report_fills` are written idempotently (their keys are the exchange's, per account), so an
event delivered twice, out of order or after a crash before its acknowledgement leaves the same rows. Each fill keeps
its fee in the quote currency (with the rate used when it was charged in another asset) and the PnL it realised
(FIFO within its exchange, account, bot and symbol). `report_positions` holds each group's open lots; `report_daily`
sums each group per UTC day so that a summary never scans every fill.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = (
    """
CREATE TABLE report_orders (
    exchange_name   text NOT NULL,
    account_id      uuid NOT NULL,
    order_id        text NOT NULL,
    client_order_id text,
    bot_id          uuid,                   -- the bot that placed it (from its client order id), if one did
    symbol          text NOT NULL,
    market_id       text NOT NULL,
    side            text NOT NULL,
    type            text NOT NULL,
    status          text NOT NULL,
    amount          numeric NOT NULL,
    filled          numeric NOT NULL,
    price           numeric,
    average         numeric,
    cost            numeric NOT NULL,
    fee_cost        numeric,
    fee_currency    text,
    created_ms      bigint NOT NULL,
    updated_ms      bigint NOT NULL,
    PRIMARY KEY (exchange_name, account_id, order_id)
)""",
    "CREATE INDEX report_orders_account ON report_orders (account_id, created_ms)",
    "CREATE INDEX report_orders_bot ON report_orders (bot_id, created_ms) WHERE bot_id IS NOT NULL",
    """
CREATE TABLE report_fills (
    exchange_name   text NOT NULL,
    account_id      uuid NOT NULL,
    trade_id        text NOT NULL,
    order_id        text NOT NULL,
    client_order_id text,
    bot_id          uuid,
    symbol          text NOT NULL,
    base            text NOT NULL,
    quote           text NOT NULL,
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    price           numeric NOT NULL,
    amount          numeric NOT NULL,
    cost            numeric NOT NULL,          -- price times amount, in quote
    fee_cost        numeric,
    fee_currency    text,
    fee_quote       numeric,                   -- the fee in quote; NULL when no rate was known
    fee_rate        numeric,                   -- quote per unit of the fee currency used to convert it
    realized_pnl    numeric NOT NULL DEFAULT 0, -- what this fill realised (sells), FIFO, fees included
    timestamp_ms    bigint NOT NULL,
    PRIMARY KEY (exchange_name, account_id, trade_id)
)""",
    "CREATE INDEX report_fills_time ON report_fills (timestamp_ms)",
    "CREATE INDEX report_fills_account ON report_fills (account_id, timestamp_ms)",
    "CREATE INDEX report_fills_bot ON report_fills (bot_id, timestamp_ms) WHERE bot_id IS NOT NULL",
    """
CREATE TABLE report_positions (
    exchange_name text NOT NULL,
    account_id    uuid NOT NULL,
    bot_key       text NOT NULL,              -- the bot id, or '' for orders placed by no bot
    symbol        text NOT NULL,
    base          text NOT NULL,
    quote         text NOT NULL,
    lots          jsonb NOT NULL DEFAULT '[]', -- open FIFO lots: [[amount, cost per unit], ...], oldest first
    position      numeric NOT NULL DEFAULT 0,
    cost          numeric NOT NULL DEFAULT 0,  -- what the open lots cost, in quote
    last_ms       bigint NOT NULL DEFAULT 0,   -- the newest fill applied (an older one recomputes the group)
    last_trade    text NOT NULL DEFAULT '',
    PRIMARY KEY (exchange_name, account_id, bot_key, symbol)
)""",
    """
CREATE TABLE report_daily (
    exchange_name text NOT NULL,
    account_id    uuid NOT NULL,
    bot_key       text NOT NULL,
    symbol        text NOT NULL,
    day           date NOT NULL,
    quote         text NOT NULL,
    orders        bigint NOT NULL DEFAULT 0,
    fills         bigint NOT NULL DEFAULT 0,
    volume        numeric NOT NULL DEFAULT 0,  -- quote
    fees          numeric NOT NULL DEFAULT 0,  -- quote
    unconverted   bigint NOT NULL DEFAULT 0,   -- fills whose fee could not be converted
    realized_pnl  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (exchange_name, account_id, bot_key, symbol, day)
)""",
)

DOWNGRADE = (
    "DROP TABLE report_daily",
    "DROP TABLE report_positions",
    "DROP TABLE report_fills",
    "DROP TABLE report_orders",
)


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
