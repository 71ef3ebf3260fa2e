"""The per-process application context: built once at start-up, reachable from every request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from switchman.config import Settings
from switchman.db.engine import Database
from switchman.wakeup import Wakeup


@dataclass
class AppContext:
    settings: Settings
    db: Database
    wakeup: Wakeup = field(default_factory=Wakeup)
    # Long-lived components registered by features at start-up (group committer, rate limiter, worker…).
    components: dict[str, Any] = field(default_factory=dict)


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx
