"""The signal worker: claim pending signals, match action sets, run their actions, record events.

`start_worker(...)` runs one inside a process's runtime (`switchman.runtime`); `run_standalone(settings)`
runs one alone (`switchman worker`), for several replicas sharing PostgreSQL.
"""

from switchman.worker.loop import WorkerHandle, run_standalone, start_worker

__all__ = ["WorkerHandle", "run_standalone", "start_worker"]
