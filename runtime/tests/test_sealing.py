"""Sealed credentials open only with the connectors' private key."""

from __future__ import annotations

import pytest

from borsa_runtime.sealing import (
    SealingError,
    from_wire,
    generate_keypair,
    open_sealed,
    public_key_of,
    seal,
    to_wire,
)


def test_seal_and_open_round_trip() -> None:
    private, public = generate_keypair()
    assert public_key_of(private) == public
    credentials = {"apiKey": "k" * 24, "secret": "s3cr3t", "password": "pass phrase"}
    sealed = seal(credentials, public)
    assert b"s3cr3t" not in sealed
    assert open_sealed(from_wire(to_wire(sealed)), private) == credentials


def test_another_key_cannot_open() -> None:
    _, public = generate_keypair()
    other_private, _ = generate_keypair()
    with pytest.raises(SealingError, match="do not open") as err:
        open_sealed(seal({"secret": "x"}, public), other_private)
    assert "x" not in str(err.value).replace("box", "")


@pytest.mark.parametrize("bad", ["not base64!", "AAAA"])
def test_bad_keys_are_refused_clearly(bad) -> None:
    with pytest.raises(SealingError, match="key"):
        seal({"secret": "x"}, bad)
    with pytest.raises(SealingError):
        open_sealed(b"\0" * 60, bad)
