"""SWITCHMAN_FLAG_BACKEND / SWITCHMAN_UNLEASH_URL / SWITCHMAN_UNLEASH_API_TOKEN and the backend factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from switchman.config import ConfigurationError, Settings, load_settings, to_async_url
from switchman.db.engine import Database
from switchman.flags.embedded import EmbeddedFlagBackend
from switchman.flags.factory import check_flag_backend, create_flag_backend
from switchman.flags.unleash import UnleashFlagBackend

SECRET = "*:*.settings-secret-token-77aa"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only what a test sets counts: no SWITCHMAN_ variables, no .env file."""
    import os

    for name in list(os.environ):
        if name.startswith("SWITCHMAN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_embedded_is_the_default() -> None:
    current = settings()
    assert current.flag_backend == "embedded"
    assert current.unleash_url is None
    assert current.unleash_api_token is None


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({}, "SWITCHMAN_UNLEASH_URL and SWITCHMAN_UNLEASH_API_TOKEN"),
        ({"unleash_url": "http://127.0.0.1:4242"}, "SWITCHMAN_UNLEASH_API_TOKEN"),
        ({"unleash_api_token": SECRET}, "SWITCHMAN_UNLEASH_URL"),
        ({"unleash_url": "  ", "unleash_api_token": SECRET}, "SWITCHMAN_UNLEASH_URL"),
    ],
)
def test_unleash_backend_requires_url_and_token(values: dict[str, str], missing: str) -> None:
    with pytest.raises(ValidationError) as caught:
        settings(flag_backend="unleash", **values)
    assert f"SWITCHMAN_FLAG_BACKEND=unleash requires {missing}" in str(caught.value)


def test_unleash_url_must_be_http() -> None:
    with pytest.raises(ValidationError, match=r"SWITCHMAN_UNLEASH_URL must be an http:// or https:// URL"):
        settings(flag_backend="unleash", unleash_url="unleash.internal:4242", unleash_api_token=SECRET)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValidationError, match="'embedded' or 'unleash'"):
        settings(flag_backend="launchdarkly")


def test_read_from_the_environment_and_token_kept_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHMAN_FLAG_BACKEND", "unleash")
    monkeypatch.setenv("SWITCHMAN_UNLEASH_URL", "https://flags.example.test/unleash")
    monkeypatch.setenv("SWITCHMAN_UNLEASH_API_TOKEN", SECRET)
    current = load_settings()
    assert current.flag_backend == "unleash"
    assert current.unleash_url == "https://flags.example.test/unleash"
    assert current.unleash_api_token == SECRET
    assert SECRET not in repr(current)


def test_load_settings_gives_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHMAN_FLAG_BACKEND", "unleash")
    monkeypatch.setenv("SWITCHMAN_UNLEASH_API_TOKEN", SECRET)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "\n" not in message
    assert "requires SWITCHMAN_UNLEASH_URL" in message
    assert SECRET not in message


async def test_factory_builds_the_unleash_backend(tmp_path: Path) -> None:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'unused.db'}"))
    try:
        backend = create_flag_backend(
            settings(flag_backend="unleash", unleash_url="http://127.0.0.1:4242", unleash_api_token=SECRET),
            db,
        )
        assert isinstance(backend, UnleashFlagBackend)
        await backend.close()
        assert isinstance(create_flag_backend(settings(), db), EmbeddedFlagBackend)
    finally:
        await db.dispose()


async def test_factory_refuses_unusable_remote_settings(tmp_path: Path) -> None:
    db = Database(to_async_url(f"sqlite:///{tmp_path / 'unused.db'}"))
    try:
        with pytest.raises(ConfigurationError) as caught:
            create_flag_backend(
                settings(
                    flag_backend="unleash",
                    unleash_url="http://admin:hunter2@127.0.0.1:4242",
                    unleash_api_token=SECRET,
                ),
                db,
            )
    finally:
        await db.dispose()
    assert "must not contain credentials" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert SECRET not in str(caught.value)


def test_remote_call_bounds_and_retries_have_defaults_and_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = settings()
    assert (defaults.unleash_timeout_seconds, defaults.unleash_retries) == (5.0, 2)
    monkeypatch.setenv("SWITCHMAN_UNLEASH_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("SWITCHMAN_UNLEASH_RETRIES", "0")
    current = load_settings()
    assert (current.unleash_timeout_seconds, current.unleash_retries) == (1.5, 0)


@pytest.mark.parametrize(
    ("name", "value"),
    [("SWITCHMAN_UNLEASH_TIMEOUT_SECONDS", "0"), ("SWITCHMAN_UNLEASH_RETRIES", "-1")],
)
def test_unusable_remote_bounds_stop_start_up(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=f"invalid configuration {name}"):
        load_settings()


async def test_the_embedded_backend_needs_no_start_up_probe() -> None:
    await check_flag_backend(settings())  # no URL, no call, no error
