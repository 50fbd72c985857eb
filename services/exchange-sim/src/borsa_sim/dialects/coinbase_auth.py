"""Coinbase CDP API keys: issuing them, and verifying the ES256 JWT bearer tokens signed with them."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


class AuthFailure(Exception):
    """Why a request is not authenticated; `expired` tells a stale token from a wrong one."""

    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.expired = expired


def new_credentials() -> dict[str, str]:
    """A CDP key as Coinbase issues it: a key name and an EC P-256 private key in SEC1 PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return {"apiKey": f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}", "secret": pem.decode()}


def public_key_of(secret_pem: str) -> ec.EllipticCurvePublicKey:
    key = serialization.load_pem_private_key(secret_pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC private key")
    return key.public_key()


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Token:
    header: dict
    claims: dict
    signed: bytes  # "<header>.<claims>" as sent
    signature: bytes

    @property
    def key_name(self) -> str | None:
        return self.header.get("kid")


def parse_bearer(authorization: str | None) -> Token:
    if not authorization:
        raise AuthFailure("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme != "Bearer" or not token:
        raise AuthFailure("the Authorization header must be a Bearer token")
    return parse_jwt(token)


def parse_jwt(token: str) -> Token:
    """A JWT's parts, not verified yet (`verify`)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise AuthFailure("malformed JWT")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error) as exc:
        raise AuthFailure("malformed JWT") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthFailure("malformed JWT")
    return Token(header, claims, f"{parts[0]}.{parts[1]}".encode(), signature)


def unverified_subject(authorization: str | None) -> str | None:
    """The key name a token claims to be, for per-user rate limits counted before verification."""
    try:
        return str(parse_bearer(authorization).claims.get("sub") or "") or None
    except AuthFailure:
        return None


def _strip_scheme(uri: str) -> str:
    for scheme in ("https://", "http://"):
        if uri.startswith(scheme):
            return uri[len(scheme) :]
    return uri


def verify(token: Token, public_key: ec.EllipticCurvePublicKey, target: tuple[str, str, str] | None) -> None:
    """Coinbase's checks on a CDP token: ES256 over header.claims, sub == kid, nbf <= now <= exp, and for REST
    (`target`: method, host, path) a `uri` claim naming this request's method, host and path (ccxt keeps `http://`
    against a local URL). A websocket subscription's token has no `uri` (target None)."""
    if token.header.get("alg") != "ES256":
        raise AuthFailure(f"unsupported JWT algorithm {token.header.get('alg')!r}")
    if len(token.signature) != 64:
        raise AuthFailure("malformed ES256 signature")
    der = encode_dss_signature(int.from_bytes(token.signature[:32], "big"), int.from_bytes(token.signature[32:], "big"))
    try:
        public_key.verify(der, token.signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise AuthFailure("invalid JWT signature") from exc
    claims = token.claims
    if claims.get("sub") != token.key_name:
        raise AuthFailure("the JWT sub does not match its kid")
    now = time.time()
    nbf, exp = claims.get("nbf"), claims.get("exp")
    if not isinstance(nbf, int | float) or not isinstance(exp, int | float):
        raise AuthFailure("the JWT needs nbf and exp")
    if now < nbf:
        raise AuthFailure("the JWT is not valid yet")
    if now > exp:
        raise AuthFailure("the JWT has expired", expired=True)
    if target is None:
        return
    method, host, path = target
    uri = claims.get("uri")
    if not isinstance(uri, str):
        raise AuthFailure("the JWT has no uri claim")
    uri_method, _, target = uri.partition(" ")
    if uri_method != method or _strip_scheme(target) != host + path:
        raise AuthFailure(f"the JWT is for {uri!r}, not {method} {host}{path}")
