"""The signal worker: claim pending signals, match action sets, run their actions, record events."""

from __future__ import annotations

from switchman.context import AppContext


async def start(ctx: AppContext) -> None:
    """Start the in-process worker loop."""


async def stop(ctx: AppContext) -> None:
    """Stop the worker after its current signal."""


async def run_standalone(settings: object) -> None:
    """Run a worker alone until interrupted (`switchman worker`)."""
    raise NotImplementedError("the standalone worker arrives with the action sets issue")
