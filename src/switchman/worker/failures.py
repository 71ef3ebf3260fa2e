"""Poison signals (ADR 0028): telling a signal that cannot be processed from a database that cannot be
reached, and what is kept about the error.

An exception while processing a signal counts against the signal — after `worker_max_signal_failures`
of them it is set aside so the queue moves on — unless it says the database (or the network to it) is
failing: an outage is every signal's problem, not one signal's, and counting it would set healthy signals
aside during the outage (and could not be written anyway).
"""

from __future__ import annotations

import logging
import traceback

from sqlalchemy import exc as sa_exc

from switchman import metrics
from switchman.db.engine import Database
from switchman.signal_endpoints.queue import record_failure
from switchman.timeutil import utcnow

log = logging.getLogger(__name__)

# Frames of the traceback kept with the error: where it was raised, and what called it.
_FRAMES_KEPT = 3


def is_outage(error: BaseException) -> bool:
    """True when `error` says the database cannot be used right now, not that the signal is bad."""
    if isinstance(
        error,
        sa_exc.OperationalError  # unreachable, locked, out of connections
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError  # the pool had no connection to give
        | OSError
        | TimeoutError,
    ):
        return True
    return isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated


def describe(error: BaseException) -> str:
    """`Type: message` and the innermost frames (file:line in function), for the operator who retries."""
    frames = traceback.extract_tb(error.__traceback__)[-_FRAMES_KEPT:]
    where = "; ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}" for frame in frames
    )
    message = f"{type(error).__name__}: {error}".strip()
    return f"{message} (at {where})" if where else message


async def count_failure(db: Database, *, signal_id: int, error: BaseException, set_aside_after: int) -> None:
    """Count a failed attempt against the signal, in its own transaction: it is retried after a backoff,
    or set aside at `set_aside_after` failures; either way the queue goes on without it for now."""
    reason = describe(error)
    async with db.transaction() as conn:
        record = await record_failure(
            conn, signal_id=signal_id, error=reason, now=utcnow(), set_aside_after=set_aside_after
        )
    if record is None:
        return  # another worker finished it meanwhile
    metrics.signal_failed(set_aside=record.set_aside)
    if record.set_aside:
        log.error("signal %d set aside after %d failed attempts: %s", signal_id, record.failures, reason)
    else:
        log.warning("signal %d failed (attempt %d): %s", signal_id, record.failures, reason)
