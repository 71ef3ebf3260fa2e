"""Start-up and shutdown of the signal components (group committer, rate limiter, retention)."""

from __future__ import annotations

from switchman.context import AppContext


async def start(ctx: AppContext) -> None:
    """Create the long-lived ingestion components and register them in `ctx.components`."""


async def stop(ctx: AppContext) -> None:
    """Flush and stop what `start` created."""
