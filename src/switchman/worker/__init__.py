"""The signal worker: claim pending signals, match action sets, run their actions, record events.

`start(ctx)` / `stop(ctx)` run one worker inside the API process; `run_standalone(settings)` runs one
alone (`switchman worker`), for several replicas sharing PostgreSQL.
"""

from switchman.worker.loop import run_standalone, start, stop

__all__ = ["run_standalone", "start", "stop"]
