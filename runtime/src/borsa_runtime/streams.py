"""The JetStream streams Borsa's services share, created by whichever service needs them first."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from borsa_proto.subjects import ORDERS_STREAM, ORDERS_STREAM_SUBJECTS

# Nats-Msg-Id duplicates are dropped within this window (JetStream's default; DESIGN section 2).
DUPLICATE_WINDOW_SECONDS = 120.0
ORDERS_MAX_AGE_SECONDS = 90 * 86_400.0


def orders_stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=ORDERS_STREAM,
        subjects=list(ORDERS_STREAM_SUBJECTS),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=ORDERS_MAX_AGE_SECONDS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


async def ensure_orders_stream(js: JetStreamContext, replicas: int = 1) -> None:
    """BORSA_ORDERS exists with its subjects; an existing stream is left as its operator configured it."""
    try:
        await js.stream_info(ORDERS_STREAM)
    except NotFoundError:
        try:
            await js.add_stream(orders_stream_config(replicas))
        except Exception:
            # Another service created it between our two calls: fine, as long as it is there now.
            await js.stream_info(ORDERS_STREAM)
