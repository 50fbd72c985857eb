"""API keys: checked against the exchange through its connector BEFORE anything is stored, sealed at rest,
shown back only as a hint."""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from borsa_runtime.sealing import SealingError, seal, to_wire

from ..deps import BotLists, Bus, Db, User
from ..errors import ApiError, ErrorResponse, not_found
from ..text import Text
from .exchanges import require_online

router = APIRouter(
    prefix="/api-keys",
    tags=["api-keys"],
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)

Mode = Literal["live", "sandbox", "paper"]

CURRENCY = re.compile(r"^[A-Z0-9]{1,20}$")
# Up to 30 digits before the point and 18 after: more than any balance, and no exponent or sign.
AMOUNT = re.compile(r"^[0-9]{1,30}(\.[0-9]{1,18})?$")
PAPER_BALANCES_DOC = (
    'Paper keys only: what the key starts with, as decimal strings per currency code ({"USDT": "10000"}). '
    "Left out or null: 10000 each of USD, USDT, USDC and EUR."
)


class ApiKeyIn(BaseModel):
    exchange: str = Field(pattern="^[a-z0-9]{2,32}$", examples=["kraken"])
    label: Text = Field(min_length=1, max_length=100)
    mode: Mode = "live"
    credentials: dict[Text, Annotated[Text, Field(max_length=4096)]] = Field(default_factory=dict, max_length=8)
    paper_balances: dict[Text, Text] | None = Field(
        default=None, max_length=50, description=PAPER_BALANCES_DOC, examples=[{"USDT": "10000", "BTC": "0.5"}]
    )


class ApiKeyOut(BaseModel):
    id: UUID
    exchange: str
    label: str
    mode: Mode
    key_hint: str
    status: str
    created_at: datetime
    paper_balances: dict[str, str] | None = Field(
        default=None, description="Paper keys: the starting balances set for the key; null: the default set."
    )


def key_hint(api_key: str) -> str:
    """First four and last four characters; short keys show less so the hint never is the key."""
    if len(api_key) >= 12:
        return f"{api_key[:4]}…{api_key[-4:]}"
    return f"{api_key[:2]}…" if len(api_key) > 4 else "…"


def paper_balances_of(body: ApiKeyIn) -> str | None:
    """The starting balances to store (jsonb text), checked; a 422 naming the field for anything else."""
    if body.paper_balances is None:
        return None
    if body.mode != "paper":
        raise ApiError(
            "bad_request",
            f"paper_balances is only for paper keys (mode paper); a {body.mode} key trades the balances it holds on "
            f"{body.exchange}",
            "paper_balances",
        )
    balances = {}
    for currency, amount in body.paper_balances.items():
        field = f"paper_balances.{currency}"
        if not CURRENCY.match(currency):
            raise ApiError(
                "bad_request",
                f"{field}: a currency code is 1 to 20 upper-case letters and digits (USDT, BTC), got {currency!r}",
                field,
            )
        if not AMOUNT.match(amount):
            raise ApiError(
                "bad_request",
                f'{field} must be a non-negative decimal string such as "10000" or "0.5", got {amount!r}',
                field,
            )
        balances[currency] = format(Decimal(amount), "f")
    return json.dumps(balances)


def _out(row) -> ApiKeyOut:
    balances = row["paper_balances"]
    return ApiKeyOut(
        id=row["id"],
        exchange=row["exchange_name"],
        label=row["label"],
        mode=row["mode"],
        key_hint=row["key_hint"],
        status=row["status"],
        created_at=row["created_at"],
        paper_balances=json.loads(balances) if balances is not None else None,
    )


COLUMNS = "id, exchange_name, label, mode, key_hint, status, created_at, paper_balances"


@router.post("", status_code=201, response_model=ApiKeyOut, responses={503: {"model": ErrorResponse}})
async def create(body: ApiKeyIn, user: User, pool: Db, bus: Bus, request: Request) -> ApiKeyOut:
    paper_balances = paper_balances_of(body)
    await require_online(request, bus, body.exchange, status_if_unknown=422)
    sealed, hint = None, ""
    if body.mode != "paper":
        describe = await bus.describe(body.exchange)
        if body.mode not in describe.modes:
            raise ApiError("bad_request", f"mode must be one of {', '.join(describe.modes)} on {body.exchange}", "mode")
        for field in describe.required_credentials:
            if not body.credentials.get(field.name, "").strip():
                raise ApiError(
                    "bad_request",
                    f"credentials.{field.name} ({field.label}) is required for {body.exchange}",
                    f"credentials.{field.name}",
                )
        known = {f.name for f in describe.required_credentials}
        extra = sorted(set(body.credentials) - known)
        if extra:
            raise ApiError(
                "bad_request",
                f"credentials.{extra[0]} is not used by {body.exchange}; it takes {', '.join(sorted(known))}",
                f"credentials.{extra[0]}",
            )
        public_key = request.app.state.settings.sealing_public_key
        try:
            sealed = seal(dict(body.credentials), public_key)
        except SealingError as exc:
            raise ApiError("internal", "the gateway has no usable sealing key (BORSA_SEALING_PUBLIC_KEY)") from exc
        await bus.check_credentials(body.exchange, to_wire(sealed), body.mode)  # raises auth_failed etc.
        hint = key_hint(body.credentials.get("apiKey", ""))
    row = await pool.fetchrow(
        f"INSERT INTO api_keys (user_id, exchange_name, label, mode, sealed_credentials, key_hint, paper_balances) "
        f"VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING {COLUMNS}",
        user,
        body.exchange,
        body.label,
        body.mode,
        sealed,
        hint,
        paper_balances,
    )
    return _out(row)


@router.get("", response_model=list[ApiKeyOut])
async def list_keys(user: User, pool: Db) -> list[ApiKeyOut]:
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 AND status = 'active' ORDER BY created_at", user
    )
    return [_out(r) for r in rows]


@router.delete("/{key_id}", status_code=204, response_model=None)
async def revoke(key_id: Annotated[UUID, Path()], user: User, pool: Db, bus: Bus, lists: BotLists) -> None:
    async with pool.acquire() as conn, conn.transaction():
        exchange = await conn.fetchval(
            "UPDATE api_keys SET status = 'revoked', revoked_at = now() "
            "WHERE id = $1 AND user_id = $2 AND status = 'active' RETURNING exchange_name",
            key_id,
            user,
        )
        if exchange is None:
            raise not_found("API key")
        paused = await conn.fetch(
            "UPDATE bot_configs SET status = 'paused', status_reason = 'its API key was deleted', updated_at = now() "
            "WHERE api_key_id = $1 AND status <> 'stopped' RETURNING id",
            key_id,
        )
    await lists.changed(user)  # its bots were paused
    await bus.revoked(exchange, str(key_id))
    for row in paused:
        await bus.bot_changed(row["id"], "paused")
