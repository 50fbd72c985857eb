"""Passwords (argon2), signed bearer tokens (JWT, HS256) and the login-attempt limit."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from uuid import UUID

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
    """At most `attempts` failed logins per email in `window` seconds; then 429 until the oldest ages out."""

    def __init__(self, attempts: int, window: float) -> None:
        self.attempts, self.window = attempts, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures[key]
        cutoff = time.monotonic() - self.window
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def check(self, email: str) -> None:
        failures = self._recent(email.lower())
        if len(failures) >= self.attempts:
            wait = int(failures[0] + self.window - time.monotonic()) + 1
            raise ApiError(
                "rate_limited",
                f"too many failed logins for this email; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    def failed(self, email: str) -> None:
        self._recent(email.lower()).append(time.monotonic())

    def succeeded(self, email: str) -> None:
        self._failures.pop(email.lower(), None)
