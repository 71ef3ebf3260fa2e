"""Per-endpoint-name rate limits held by the whole cluster: tokens leased in blocks from the database.

Time is cut into windows of `window_seconds` (1 s, or 1/rate rounded up for rates under one a second),
numbered from the Unix epoch so every replica names the same window; each endpoint name may be called
`limit` = floor(rate * window_seconds) times per window by the whole cluster. A replica keeps a local
allowance per name and leases blocks of `block` tokens (1 % of the limit, at least 1) from the window's
shared count (`rate_limit_store.lease`): the next block as soon as the allowance falls under one block,
so calls rarely wait for the database, even when a busy event loop makes a lease take milliseconds. A call is decided without any I/O while the allowance lasts; once a
lease finds the window used up the name is refused locally until the window ends. At most one lease per
name is in flight in a replica: calls that find no allowance wait for it.

Accuracy (ADR 0029): leases never grant more than `limit` per window, so the cluster never accepts more;
while demand exceeds the limit, tokens go unused only in what the replicas hold when the window ends — at
most two blocks each — so it accepts at least `limit - 2 * N * block` with N replicas (10 % under the
limit at 5 replicas).

When the database does not answer a lease (an error, or no answer within `LEASE_WAIT_SECONDS`), that name's
window, and every name for `LOCAL_SECONDS`, are decided by an in-process token bucket at the full rate:
the limiter fails open to what every replica did before, rather than refusing calls for a reason that is
not their rate — the signal's write needs the database too, and answers 503 if it is down. Names no endpoint can have are
decided by that bucket as well: they are answered 404 anyway and are worth no shared row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from switchman.db.engine import Database
from switchman.signal_endpoints import rate_limit_store
from switchman.signal_endpoints.rate_limit import MAX_BUCKETS, Decision, RateLimiter
from switchman.signal_endpoints.schemas import ENDPOINT_NAME_PATTERN, NAME_MAX

log = logging.getLogger(__name__)

BLOCK_FRACTION = 0.01
# How long a call waits for its lease before the window is decided locally (a lease takes ~1 ms), and how
# long after a failed lease every name is decided locally before the database is asked again.
LEASE_WAIT_SECONDS = 1.0
LOCAL_SECONDS = 5.0
# How often a replica deletes the rows of windows long past, and warns about failing leases (at most).
CLEANUP_SECONDS = 60.0
WARN_SECONDS = 60.0

_NAME = re.compile(ENDPOINT_NAME_PATTERN.removeprefix("^").removesuffix("$"))  # used with fullmatch


@dataclass(frozen=True, slots=True)
class Quota:
    window_seconds: int
    limit: int  # calls per window for the whole cluster
    block: int  # tokens per lease


def quota_for(rate_per_second: float, *, block_fraction: float = BLOCK_FRACTION) -> Quota:
    """The windows, limit and lease size that enforce `rate_per_second` (see the module docstring)."""
    if rate_per_second <= 0:
        raise ValueError("rate_per_second must be positive (0 means: do not create a limiter)")
    window = 1 if rate_per_second >= 1 else math.ceil(1 / rate_per_second)
    limit = max(1, math.floor(rate_per_second * window))
    return Quota(window_seconds=window, limit=limit, block=max(1, math.floor(limit * block_fraction)))


@dataclass(slots=True)
class _Window:
    """This replica's view of one name's current window."""

    index: int  # the window's number: epoch seconds // window_seconds
    allowance: int = 0  # tokens leased by this replica and not yet used
    unleased: int = 0  # the cluster's tokens nobody had leased yet, as of this replica's last lease
    exhausted: bool = False  # nothing left to lease: refuse locally once the allowance is spent
    local: bool = False  # a lease failed: the rest of this window is decided by the in-process bucket
    lease: asyncio.Task[None] | None = field(default=None, repr=False)


class ClusterRateLimiter:
    def __init__(
        self,
        db: Database,
        rate_per_second: float,
        *,
        clock: Callable[[], float] = time.time,
        block_fraction: float = BLOCK_FRACTION,
        lease_wait_seconds: float = LEASE_WAIT_SECONDS,
        max_windows: int = MAX_BUCKETS,
    ) -> None:
        self.quota = quota_for(rate_per_second, block_fraction=block_fraction)
        self.leases = 0  # leases asked of the database (a count for tests and benchmarks)
        self._lease_below = self.quota.block  # the allowance that asks for the next block
        self._db = db
        self._clock = clock  # wall-clock seconds: replicas agree on window numbers through it (NTP)
        self._lease_wait = lease_wait_seconds
        self._max_windows = max_windows
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._local = RateLimiter(rate_per_second, clock=clock, max_buckets=max_windows)
        self._next_cleanup = clock() + CLEANUP_SECONDS
        self._cleanup: asyncio.Task[None] | None = None
        self._next_warning = 0.0
        self._local_until = float("-inf")  # after a failed lease: decide every name in-process until then

    async def take(self, key: str) -> Decision:
        """Take one token of `key`'s current window, waiting for a lease when this replica has none."""
        if len(key) > NAME_MAX or not _NAME.fullmatch(key):
            return self._local.acquire(key)
        while True:
            now = self._clock()
            window = self._window_of(key, int(now // self.quota.window_seconds))
            if window.local or now < self._local_until:
                return self._local.acquire(key)
            if window.allowance > 0:
                window.allowance -= 1
                if window.allowance < self._lease_below and window.lease is None and not window.exhausted:
                    self._start_lease(key, window)
                return self._decision(window, now, allowed=True)
            if window.exhausted:
                return self._decision(window, now, allowed=False)
            lease = window.lease or self._start_lease(key, window)
            try:
                await asyncio.wait_for(asyncio.shield(lease), self._lease_wait)
            except TimeoutError:
                self._warn("a rate-limit lease took longer than %.1f s", self._lease_wait)
                self._decide_locally(window)

    async def close(self) -> None:
        """Cancel the leases and the clean-up in flight (at shutdown, before the database closes)."""
        tasks = list(self._in_flight)
        if self._cleanup is not None:
            tasks.append(self._cleanup)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _window_of(self, key: str, index: int) -> _Window:
        window = self._windows.pop(key, None)
        if window is None or window.index != index:
            window = _Window(index=index)  # a lease still in flight for the old window fills the old object
        self._windows[key] = window
        if len(self._windows) > self._max_windows:
            self._windows.popitem(last=False)
        return window

    def _start_lease(self, key: str, window: _Window) -> asyncio.Task[None]:
        task = asyncio.create_task(self._lease(key, window), name="rate-limit-lease")
        window.lease = task
        self._in_flight.add(task)  # also those of windows already replaced, for `close`
        task.add_done_callback(self._in_flight.discard)
        return task

    async def _lease(self, key: str, window: _Window) -> None:
        quota = self.quota
        self.leases += 1
        try:
            lease = await rate_limit_store.lease(
                self._db,
                endpoint_name=key,
                window_start=self._start_of(window.index),
                block=quota.block,
                limit=quota.limit,
            )
        except Exception as exc:  # any database failure: decide locally (module docstring)
            self._warn("a rate-limit lease failed (%s); deciding in-process for now", type(exc).__name__)
            self._decide_locally(window)
            return
        finally:
            window.lease = None
        window.allowance += lease.granted
        window.unleased = max(0, quota.limit - lease.used)
        window.exhausted = window.unleased == 0
        self._maybe_clean_up()

    def _decide_locally(self, window: _Window) -> None:
        window.local = True
        self._local_until = self._clock() + LOCAL_SECONDS

    def _maybe_clean_up(self) -> None:
        now = self._clock()
        if now < self._next_cleanup or self._cleanup is not None:
            return
        self._next_cleanup = now + CLEANUP_SECONDS
        # Windows before the previous one: no replica whose clock is less than a window off still uses them.
        before = self._start_of(int(now // self.quota.window_seconds) - 1)
        self._cleanup = asyncio.create_task(self._clean_up(before), name="rate-limit-cleanup")

    async def _clean_up(self, before: datetime) -> None:
        try:
            await rate_limit_store.delete_windows_before(self._db, before)
        except Exception as exc:  # retried at the next interval
            self._warn("deleting past rate-limit windows failed (%s)", type(exc).__name__)
        finally:
            self._cleanup = None

    def _start_of(self, index: int) -> datetime:
        return datetime.fromtimestamp(index * self.quota.window_seconds, UTC)

    def _decision(self, window: _Window, now: float, *, allowed: bool) -> Decision:
        # The window's tokens are all back when it ends.
        until_end = max(1, math.ceil((window.index + 1) * self.quota.window_seconds - now))
        return Decision(
            allowed=allowed,
            limit=self.quota.limit,
            remaining=window.allowance + window.unleased,
            retry_after=0 if allowed else until_end,
            reset=until_end,
        )

    def _warn(self, message: str, *args: object) -> None:
        """Log at most one warning a minute: a database outage must not flood the log once per call."""
        now = time.monotonic()
        if now >= self._next_warning:
            self._next_warning = now + WARN_SECONDS
            log.warning(message, *args)
