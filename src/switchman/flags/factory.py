"""Choosing the FlagBackend the actions drive."""

from __future__ import annotations

from switchman.config import Settings
from switchman.db.engine import Database
from switchman.flags.backend import FlagBackend


def create_flag_backend(settings: Settings, db: Database) -> FlagBackend:
    """The embedded flag store (default)."""
    from switchman.flags.embedded import EmbeddedFlagBackend

    return EmbeddedFlagBackend(db)
