"""Settings come from the environment, typed, and refuse to start on anything doubtful."""

from __future__ import annotations

import pytest

from borsa_runtime import Env, LogFormat, LogLevel, Secret, Settings, SettingsError, secret

pytestmark = pytest.mark.unit


class GatewaySettings(Settings):
    http_port: int = 8000
    workers: int | None = None
    jwt_secret: Secret = secret("changethis")
    sealed_key: Secret | None = secret(env="BORSA_SEALING_KEY")


def test_defaults() -> None:
    settings = Settings.from_env(environ={})
    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.database_url is None
    assert settings.sim_url is None
    assert settings.env is Env.DEVELOPMENT
    assert settings.is_development
    assert settings.log_level is LogLevel.INFO
    assert settings.log_format is LogFormat.AUTO


def test_common_variables_keep_their_names_whatever_the_prefix() -> None:
    environ = {
        "NATS_URL": "nats://nats:4222",
        "DATABASE_URL": "postgresql://borsa@db/borsa",
        "BORSA_SIM_URL": "http://sim:9000",
        "BORSA_ENV": "test",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
        "BORSA_GATEWAY_HTTP_PORT": "9000",
        "BORSA_SEALING_KEY": "k",
        "BORSA_GATEWAY_JWT_SECRET": "s",
    }
    settings = GatewaySettings.from_env("BORSA_GATEWAY_", environ)
    assert settings.nats_url == "nats://nats:4222"
    assert settings.database_url == "postgresql://borsa@db/borsa"
    assert settings.sim_url == "http://sim:9000"
    assert settings.env is Env.TEST
    assert settings.log_level is LogLevel.DEBUG
    assert settings.log_format is LogFormat.JSON
    assert settings.http_port == 9000
    assert settings.sealed_key == Secret("k")


def test_empty_variables_count_as_unset() -> None:
    assert Settings.from_env(environ={"NATS_URL": "", "DATABASE_URL": ""}).nats_url == "nats://127.0.0.1:4222"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"BORSA_ENV": "staging"}, "BORSA_ENV='staging' is not valid: use one of development, test, production"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is not valid: use one of auto, json, console"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud' is not valid: use one of debug, info, warning, error, critical"),
        ({"HTTP_PORT": "eighty"}, "HTTP_PORT='eighty' is not valid: use an integer"),
        ({"WORKERS": "many"}, "WORKERS='many' is not valid: use an integer"),
    ],
)
def test_invalid_values_name_the_variable_and_what_is_allowed(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        GatewaySettings.from_env(environ=environ)
    assert str(caught.value) == message


def test_required_field() -> None:
    class Needs(Settings):
        exchange: str

    with pytest.raises(SettingsError, match=r"^EXCHANGE is not set: it is required"):
        Needs.from_env(environ={})
    assert Needs.from_env(environ={"EXCHANGE": "kraken"}).exchange == "kraken"


@pytest.mark.parametrize("env", ["test", "production"])
def test_default_secrets_are_refused_outside_development(env: str) -> None:
    with pytest.raises(
        SettingsError, match=f"^JWT_SECRET must be set to a real secret: .* development only, and BORSA_ENV is {env}"
    ):
        GatewaySettings.from_env(environ={"BORSA_ENV": env})
    with pytest.raises(SettingsError, match=r"^JWT_SECRET must be set to a real secret"):
        GatewaySettings.from_env(environ={"BORSA_ENV": env, "JWT_SECRET": "changethis"})
    settings = GatewaySettings.from_env(environ={"BORSA_ENV": env, "JWT_SECRET": "a-real-one"})
    assert settings.jwt_secret.reveal() == "a-real-one"


def test_default_secret_is_fine_in_development() -> None:
    assert GatewaySettings.from_env(environ={}).jwt_secret.reveal() == "changethis"


def test_secrets_and_url_passwords_stay_out_of_reprs() -> None:
    settings = GatewaySettings.from_env(
        environ={"JWT_SECRET": "hunter2", "DATABASE_URL": "postgresql://borsa:pa55@db:5432/borsa"}
    )
    text = repr(settings)
    assert "hunter2" not in text
    assert "pa55" not in text
    assert "postgresql://borsa:**********@db:5432/borsa" in text
    assert str(settings.jwt_secret) == "Secret('**********')"
