"""The worker tests' `worker` fixture (a SignalWorker on the app's runtime), for drains here."""

from __future__ import annotations

from tests.worker.conftest import worker

__all__ = ["worker"]
