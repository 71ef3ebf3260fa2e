"""Choosing the FlagBackend the actions drive (`SWITCHMAN_FLAG_BACKEND`), and the start-up probe."""

from __future__ import annotations

import logging

from switchman.config import ConfigurationError, Settings
from switchman.db.engine import Database
from switchman.flags.backend import FlagBackend

log = logging.getLogger(__name__)


def create_flag_backend(settings: Settings, db: Database) -> FlagBackend:
    """The embedded flag store (default), or a remote Unleash server when `flag_backend` is "unleash".

    The caller owns the result and must `await backend.close()` at shutdown.
    Raises ConfigurationError (one line, no secrets) when the remote settings are unusable.
    """
    if settings.flag_backend == "unleash":
        return _create_remote(settings)

    from switchman.flags.embedded import EmbeddedFlagBackend

    return EmbeddedFlagBackend(db)


def _create_remote(settings: Settings) -> FlagBackend:
    from switchman.flags.unleash import UnleashFlagBackend

    if not settings.unleash_url or not settings.unleash_api_token:
        raise ConfigurationError(
            "SWITCHMAN_FLAG_BACKEND=unleash requires SWITCHMAN_UNLEASH_URL and SWITCHMAN_UNLEASH_API_TOKEN"
        )
    try:
        return UnleashFlagBackend(
            settings.unleash_url,
            settings.unleash_api_token,
            timeout=settings.unleash_timeout_seconds,
            deadline=settings.action_timeout_seconds,
            retries=settings.unleash_retries,
        )
    except ValueError as exc:
        raise ConfigurationError(f"invalid remote Unleash configuration: {exc}") from exc


async def check_flag_backend(settings: Settings) -> None:
    """Start-up probe of a remote Unleash: one call checking the URL and the token (ADR 0010).

    A wrong URL or a refused token raises ConfigurationError naming which (never the token); an
    unreachable or failing server is only logged as a warning, so switchman still starts, accepts
    signals, and reports each action that cannot reach Unleash as `failed`. Nothing to do when embedded.
    """
    if settings.flag_backend != "unleash":
        return
    from switchman.flags.unleash import UnleashCheckError, UnleashFlagBackend

    backend = _create_remote(settings)
    assert isinstance(backend, UnleashFlagBackend)
    try:
        await backend.check()
    except UnleashCheckError as exc:
        if not exc.transient:
            raise ConfigurationError(str(exc)) from exc
        log.warning("%s; starting anyway: actions fail until it answers", exc)
    else:
        log.info("flag backend: the Unleash server at %s accepted the API token", backend.url)
    finally:
        await backend.close()
