"""Background tasks: stopping one and waiting until it has."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended (its cancellation is not an error here)."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
