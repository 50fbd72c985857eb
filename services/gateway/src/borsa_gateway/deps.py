"""Request dependencies: the database pool, the connectors, and the signed-in user."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .bus import Connectors
from .cache import BotListCache
from .errors import ApiError

bearer = HTTPBearer(auto_error=False, description="The access_token from /auth/login or /auth/register")


# Async on purpose: FastAPI runs plain-function dependencies in a thread pool, a hop per request.
async def db(request: Request) -> asyncpg.Pool:
    return request.app.state.db


async def connectors(request: Request) -> Connectors:
    return request.app.state.connectors


async def bot_lists(request: Request) -> BotListCache:
    return request.app.state.bot_lists


async def current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> UUID:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            "unauthorized",
            "sign in first: send Authorization: Bearer <access_token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return request.app.state.tokens.user_of(credentials.credentials)


User = Annotated[UUID, Depends(current_user)]
Db = Annotated[asyncpg.Pool, Depends(db)]
Bus = Annotated[Connectors, Depends(connectors)]
BotLists = Annotated[BotListCache, Depends(bot_lists)]
