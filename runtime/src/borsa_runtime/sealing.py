"""API credentials sealed at rest: the gateway seals to the connectors' public key; only connectors can open.

PyNaCl sealed boxes (X25519 + XSalsa20-Poly1305, anonymous sender). Keys travel as base64 in settings
(`BORSA_SEALING_PUBLIC_KEY` for the gateway, `BORSA_SEALING_KEY` for connectors).
"""

from __future__ import annotations

import base64
import binascii
import json

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox


class SealingError(ValueError):
    """A key or a sealed value that cannot be used; the message never contains secret material."""


def generate_keypair() -> tuple[str, str]:
    """(private key, public key), both base64."""
    private = PrivateKey.generate()
    return _b64(bytes(private)), _b64(bytes(private.public_key))


def public_key_of(private_b64: str) -> str:
    return _b64(bytes(_private(private_b64).public_key))


def seal(credentials: dict[str, str], public_b64: str) -> bytes:
    """Seal a credentials object (ccxt field names) for the connectors."""
    try:
        key = PublicKey(_unb64(public_b64, "public key"))
    except (ValueError, TypeError) as exc:
        raise SealingError("the sealing public key is not a base64 X25519 key") from exc
    return SealedBox(key).encrypt(json.dumps(credentials, separators=(",", ":")).encode())


def open_sealed(ciphertext: bytes, private_b64: str) -> dict[str, str]:
    try:
        plain = SealedBox(_private(private_b64)).decrypt(ciphertext)
    except CryptoError as exc:
        raise SealingError("sealed credentials do not open with this connector's key") from exc
    data = json.loads(plain)
    if not isinstance(data, dict):
        raise SealingError("sealed credentials are not an object")
    return data


def to_wire(ciphertext: bytes) -> str:
    """Sealed bytes as they travel on the bus (base64)."""
    return _b64(ciphertext)


def from_wire(text: str) -> bytes:
    return _unb64(text, "sealed_credentials")


def _private(private_b64: str) -> PrivateKey:
    try:
        return PrivateKey(_unb64(private_b64, "private key"))
    except (ValueError, TypeError) as exc:
        raise SealingError("the sealing private key is not a base64 X25519 key") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise SealingError(f"{what} is not valid base64") from exc
