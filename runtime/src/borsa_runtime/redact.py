"""Keeps secrets out of logs and reprs: secret-looking keys and URL passwords are masked."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from borsa_proto import to_builtins

MASK = "**********"

# Compared after lowercasing and dropping "_" and "-": apiKey, api_key and api-key are one key.
_SECRET_PARTS = (
    "secret",
    "password",
    "passphrase",
    "passwd",
    "apikey",
    "privatekey",
    "token",
    "authorization",
    "credential",
    "cookie",
    "signature",
    "seed",
)
# Ids and hints of secrets name them without revealing them (api_key_id, key_hint).
_NOT_SECRET_SUFFIXES = ("id", "ids", "hint", "count")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@", re.IGNORECASE)


def is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower().replace("_", "").replace("-", "")
    return any(part in name for part in _SECRET_PARTS) and not name.endswith(_NOT_SECRET_SUFFIXES)


def mask_url_password(text: str) -> str:
    """`postgresql://borsa:hunter2@db/borsa` -> `postgresql://borsa:**********@db/borsa`."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)


def redact(value: Any) -> Any:
    """A copy of `value` with secret-keyed entries masked, at any depth."""
    if isinstance(value, msgspec.Struct):
        value = to_builtins(value)
    if isinstance(value, dict):
        return {k: MASK if is_secret_key(k) and v is not None else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if type(value) is tuple:
        return tuple(redact(v) for v in value)
    if isinstance(value, str):
        return mask_url_password(value)
    return value
