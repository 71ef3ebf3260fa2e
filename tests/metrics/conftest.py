"""The worker tests' fixtures (`scenario`, `worker`: a SignalWorker on the app's runtime), for drains here."""

from __future__ import annotations

from tests.worker.conftest import scenario, worker

__all__ = ["scenario", "worker"]
