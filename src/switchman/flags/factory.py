"""Choosing the FlagBackend the actions drive (`SWITCHMAN_FLAG_BACKEND`)."""

from __future__ import annotations

from switchman.config import ConfigurationError, Settings
from switchman.db.engine import Database
from switchman.flags.backend import FlagBackend


def create_flag_backend(settings: Settings, db: Database) -> FlagBackend:
    """The embedded flag store (default), or a remote Unleash server when `flag_backend` is "unleash".

    The caller owns the result and must `await backend.close()` at shutdown.
    Raises ConfigurationError (one line, no secrets) when the remote settings are unusable.
    """
    if settings.flag_backend == "unleash":
        from switchman.flags.unleash import UnleashFlagBackend

        if not settings.unleash_url or not settings.unleash_api_token:
            raise ConfigurationError(
                "SWITCHMAN_FLAG_BACKEND=unleash requires SWITCHMAN_UNLEASH_URL and SWITCHMAN_UNLEASH_API_TOKEN"
            )
        try:
            return UnleashFlagBackend(
                settings.unleash_url,
                settings.unleash_api_token,
                timeout=settings.action_timeout_seconds,
            )
        except ValueError as exc:
            raise ConfigurationError(f"invalid remote Unleash configuration: {exc}") from exc

    from switchman.flags.embedded import EmbeddedFlagBackend

    return EmbeddedFlagBackend(db)
