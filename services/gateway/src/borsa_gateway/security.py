"""Passwords (argon2), signed bearer tokens (JWT, HS256) and the login-attempt limit."""

from __future__ import annotations

import hashlib
import math
import time
from uuid import UUID

import asyncpg
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import ApiError

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Tokens:
    def __init__(self, secret: str, minutes: int) -> None:
        self._secret = secret
        self.minutes = minutes

    def issue(self, user_id: UUID) -> str:
        now = int(time.time())
        return jwt.encode({"sub": str(user_id), "iat": now, "exp": now + self.minutes * 60}, self._secret, "HS256")

    def user_of(self, token: str) -> UUID:
        try:
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["sub", "exp"]})
            return UUID(claims["sub"])
        except (jwt.PyJWTError, ValueError) as exc:
            raise ApiError(
                "unauthorized",
                "the access token is invalid or expired; log in again",
                headers={"WWW-Authenticate": "Bearer"},
            ) from exc


class LoginLimiter:
    """At most `attempts` failed logins per email in `window` seconds, then 429 until the oldest ages out.

    Counted in Postgres (`login_failures`), so every gateway replica applies the same limit. An attempt counts as failed
    from the moment it starts, under a per-email lock: concurrent guesses cannot all pass the check while their
    passwords are being verified. A successful login removes its email's count.
    """

    PRUNE_EVERY_S = 60.0

    def __init__(self, attempts: int, window: float) -> None:
        self.attempts, self.window = attempts, window
        self._pruned = 0.0

    async def begin(self, pool: asyncpg.Pool, email: str) -> None:
        """Count an attempt for `email`, or refuse it with rate_limited (and Retry-After) when the limit is reached."""
        digest = _email_digest(email)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", int.from_bytes(digest[:8], "big", signed=True))
            if time.monotonic() - self._pruned > self.PRUNE_EVERY_S:  # emails nobody tried again
                self._pruned = time.monotonic()
                await conn.execute(
                    "DELETE FROM login_failures WHERE at <= now() - make_interval(secs => $1)", float(self.window)
                )
            count, wait = await conn.fetchrow(
                """
                WITH recent AS (
                    SELECT count(*) AS n, min(at) AS oldest FROM login_failures
                    WHERE email_digest = $1 AND at > now() - make_interval(secs => $2)
                ), counted AS (
                    INSERT INTO login_failures (email_digest) SELECT $1 FROM recent WHERE n < $3 RETURNING 1
                )
                SELECT n, extract(epoch FROM oldest + make_interval(secs => $2) - now()) FROM recent
                """,
                digest,
                float(self.window),
                self.attempts,
            )
        if count >= self.attempts:
            wait_s = max(1, math.ceil(wait))
            raise ApiError(
                "rate_limited",
                f"too many failed logins for this email; try again in {wait_s} s",
                headers={"Retry-After": str(wait_s)},
            )

    async def succeeded(self, pool: asyncpg.Pool, email: str) -> None:
        await pool.execute("DELETE FROM login_failures WHERE email_digest = $1", _email_digest(email))


def _email_digest(email: str) -> bytes:
    return hashlib.sha256(email.lower().encode()).digest()
