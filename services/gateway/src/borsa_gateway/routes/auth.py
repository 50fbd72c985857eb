"""Registration and login: argon2 password hashes, signed bearer tokens, limited login attempts."""

from __future__ import annotations

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..deps import Db
from ..errors import ApiError, ErrorResponse
from ..security import hash_password, verify_password
from ..text import Text

router = APIRouter(prefix="/auth", tags=["auth"], responses={422: {"model": ErrorResponse}})

# Printable ASCII around one @: internationalised addresses are not accepted yet.
EMAIL = r"^[!-?A-~]{1,64}@[!-?A-~]{1,190}\.[!-?A-~]{1,63}$"


class Credentials(BaseModel):
    email: str = Field(pattern=EMAIL, max_length=254, examples=["trader@example.com"])
    password: Text = Field(min_length=8, max_length=256)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


@router.post("/register", status_code=201, response_model=Token, responses={409: {"model": ErrorResponse}})
async def register(body: Credentials, request: Request, pool: Db) -> Token:
    try:
        user_id = await pool.fetchval(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id",
            body.email,
            await run_in_threadpool(hash_password, body.password),
        )
    except asyncpg.UniqueViolationError:
        raise ApiError("conflict", "an account with this email already exists; log in instead", "email") from None
    return Token(access_token=request.app.state.tokens.issue(user_id))


@router.post("/login", response_model=Token, responses={401: {"model": ErrorResponse}, 429: {"model": ErrorResponse}})
async def login(body: Credentials, request: Request, pool: Db) -> Token:
    limiter = request.app.state.login_limiter
    await limiter.begin(pool, body.email)  # counted as failed until the password is right
    row = await pool.fetchrow("SELECT id, password_hash FROM users WHERE lower(email) = lower($1)", body.email)
    # argon2 takes tens of milliseconds and 64 MiB on purpose: off the event loop.
    if row is None or not await run_in_threadpool(verify_password, row["password_hash"], body.password):
        raise ApiError("unauthorized", "wrong email or password")
    await limiter.succeeded(pool, body.email)
    return Token(access_token=request.app.state.tokens.issue(row["id"]))
