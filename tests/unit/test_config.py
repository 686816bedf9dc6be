"""BalanceServiceConfig: the spec's defaults, environment loading and clear errors."""

from __future__ import annotations

import pytest

from balances.config import BalanceServiceConfig, CacheTimeouts, NetworkConfig
from balances.errors import ConfigError


def test_defaults_match_the_spec() -> None:
    config = BalanceServiceConfig()
    assert config.cache_timeouts == CacheTimeouts(current=300, time_series=3600, snapshots=86400)
    assert config.max_points_per_month == 1000
    assert config.blob_cache_control == 300
    assert config.sync_concurrency == 10
    assert config.store_url == "file://./.balances"
    assert config.network == "mainnet"
    assert config.active_network.api_url == "https://api.hiro.so"
    assert config.networks["testnet"].api_url == "https://api.testnet.hiro.so"


def test_an_empty_environment_gives_the_defaults() -> None:
    assert BalanceServiceConfig.from_env({}) == BalanceServiceConfig()


def test_environment_overrides_with_prefix_and_nesting() -> None:
    config = BalanceServiceConfig.from_env(
        {
            "BALANCES_CACHE_TIMEOUTS__CURRENT": "60",
            "BALANCES_MAX_POINTS_PER_MONTH": "500",
            "BALANCES_SYNC_CONCURRENCY": "4",
            "BALANCES_STORE_URL": "memory://",
            "PATH": "/usr/bin",  # unrelated variables are ignored
        }
    )
    assert config.cache_timeouts.current == 60
    assert config.cache_timeouts.time_series == 3600  # untouched siblings keep defaults
    assert config.max_points_per_month == 500
    assert config.sync_concurrency == 4
    assert config.store_url == "memory://"


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALANCES_SYNC_CONCURRENCY", "3")
    assert BalanceServiceConfig.from_env().sync_concurrency == 3


def test_api_key_keeps_the_known_mainnet_url_and_raises_the_rate_limit() -> None:
    config = BalanceServiceConfig.from_env({"BALANCES_NETWORKS__MAINNET__API_KEY": "hiro-key-93f1"})
    mainnet = config.active_network
    assert mainnet.api_url == "https://api.hiro.so"
    assert mainnet.api_key is not None
    assert mainnet.api_key.get_secret_value() == "hiro-key-93f1"
    assert "hiro-key-93f1" not in repr(config)
    assert mainnet.rate_limit == 900
    assert config.networks["testnet"].rate_limit == 25


def test_custom_networks_by_name() -> None:
    config = BalanceServiceConfig.from_env(
        {
            "BALANCES_NETWORK": "devnet",
            "BALANCES_NETWORKS__DEVNET__API_URL": "http://127.0.0.1:3999",
            "BALANCES_NETWORKS__DEVNET__REQUESTS_PER_MINUTE": "6000",
        }
    )
    assert config.active_network == NetworkConfig(
        api_url="http://127.0.0.1:3999", requests_per_minute=6000
    )
    assert config.active_network.rate_limit == 6000
    assert set(config.networks) == {"mainnet", "testnet", "devnet"}


def test_vercel_variables_keep_their_own_names() -> None:
    config = BalanceServiceConfig.from_env(
        {"BLOB_READ_WRITE_TOKEN": "vercel_blob_rw_store1_secret", "VERCEL_BLOB_API_URL": "http://x"}
    )
    assert config.vercel_blob_token is not None
    assert config.vercel_blob_token.get_secret_value() == "vercel_blob_rw_store1_secret"
    assert config.vercel_blob_api_url == "http://x"


@pytest.mark.parametrize(
    ("environ", "fragments"),
    [
        (
            {"BALANCES_SYNC_CONCURRENCY": "abc"},
            ["BALANCES_SYNC_CONCURRENCY='abc'", "valid integer", "accepted: a positive integer"],
        ),
        (
            {"BALANCES_SYNC_CONCURRENCY": "0"},
            ["BALANCES_SYNC_CONCURRENCY='0'", "greater than 0"],
        ),
        (
            {"BALANCES_CACHE_TIMEOUTS__CURRENT": "-5"},
            ["BALANCES_CACHE_TIMEOUTS__CURRENT='-5'", "accepted: seconds"],
        ),
        (
            {"BALANCES_BLOB_CACHE_CONTROL": "10"},
            ["BALANCES_BLOB_CACHE_CONTROL='10'", "accepted: seconds >= 60"],
        ),
        ({"BALANCES_SYNC_CONCURENCY": "3"}, ["BALANCES_SYNC_CONCURENCY='3'", "Extra inputs"]),
        (
            {"BALANCES_NETWORK": "devnet"},
            ["BALANCES_NETWORK='devnet'", "known: mainnet, testnet", "NETWORKS__DEVNET__API_URL"],
        ),
        (
            {"BALANCES_NETWORKS__DEVNET__API_KEY": "k"},
            ["network 'devnet' needs an API URL", "BALANCES_NETWORKS__DEVNET__API_URL"],
        ),
        (
            {"BALANCES_NETWORKS__MAINNET__REQUESTS_PER_MINUTE": "many"},
            ["BALANCES_NETWORKS__MAINNET__REQUESTS_PER_MINUTE='many'"],
        ),
        (
            {"BALANCES_CACHE_TIMEOUTS": "5", "BALANCES_CACHE_TIMEOUTS__CURRENT": "1"},
            ["BALANCES_CACHE_TIMEOUTS"],
        ),
    ],
)
def test_invalid_values_name_the_variable(environ: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        BalanceServiceConfig.from_env(environ)
    assert isinstance(caught.value, ValueError)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_config_is_immutable() -> None:
    config = BalanceServiceConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.sync_concurrency = 5  # type: ignore[misc]
