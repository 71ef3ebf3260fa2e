"""The worker tests' scenario fixtures, reused to toggle flags through signals and a real worker."""

from tests.worker.conftest import scenario, worker

__all__ = ["scenario", "worker"]
