"""The gateway refuses its development token secret anywhere but development, and names what is wrong."""

from __future__ import annotations

import pytest

from borsa_gateway.settings import GatewaySettings
from borsa_runtime.settings import SettingsError


def test_default_token_secret_is_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="BORSA_TOKEN_SECRET"):
        GatewaySettings.from_env(environ={"BORSA_ENV": "production", "DATABASE_URL": "postgresql://db/borsa"})
    settings = GatewaySettings.from_env(environ={"BORSA_ENV": "production", "BORSA_TOKEN_SECRET": "x" * 40})
    assert settings.token_secret.reveal() == "x" * 40
    assert "x" * 40 not in repr(settings)


def test_bad_values_name_the_variable() -> None:
    with pytest.raises((SettingsError, ValueError), match="BORSA_HTTP_PORT"):
        GatewaySettings.from_env(environ={"BORSA_HTTP_PORT": "99999"})
    assert GatewaySettings.from_env(environ={"BORSA_EXCHANGES": "kraken, kucoin"}).configured_exchanges == [
        "kraken",
        "kucoin",
    ]
