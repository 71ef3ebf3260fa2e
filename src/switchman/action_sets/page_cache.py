"""A per-process cache of settled event-listing pages, exact across processes.

Why it is exact: an event whose run has ended (`success` or `failed`) is never written again (the worker
resumes only `started` events), and events are numbered densely by `action_set.last_event_seq`, which
every new event advances in the transaction that inserts it. So the page "offset k, limit n" of a set
whose `last_event_seq` is L covers exactly the events with seq in (L-k-n, L-k]; if all of them had ended
when the page was built, the same L always yields the same bytes. A request reads L (one indexed
primary-key look-up, which also checks that the set exists in the project), and is answered from here
only when the cached page was built for that very L. Pages holding a `started` event are never cached.

Retention (ADR 0032) deletes old events without advancing L, so with it on, each page remembers its oldest
event's creation time and is neither kept nor served once that event is within `RETENTION_MARGIN` of the
retention cut-off (now - retention): a pruner deletes only events older than its own now - retention, so a
page that might hold a pruned event is never answered from here, on any replica whose clock is within the
margin of the pruner's. Pages that old are rarely read; they are simply read from the database.

Bounded by bytes (oldest pages dropped first); pages larger than a quarter of the budget are not cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from switchman.timeutil import utcnow

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
# How far clocks of the replicas may drift apart without a pruned event being served from a cache.
RETENTION_MARGIN = timedelta(hours=1)

PageKey = tuple[str, int, int, int]  # (project, action set id, limit, offset)


class SettledPageCache:
    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        *,
        retention: timedelta | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.max_bytes = max_bytes
        self.retention = retention  # events' retention; None: events are kept forever
        self._clock = clock
        self._bytes = 0
        self._pages: OrderedDict[PageKey, tuple[int, bytes, datetime | None]] = OrderedDict()

    def get(self, key: PageKey, last_event_seq: int) -> bytes | None:
        """The page built for `key` when the set's `last_event_seq` was `last_event_seq`, if cached (and
        none of its events may have been pruned since)."""
        entry = self._pages.get(key)
        if entry is None or entry[0] != last_event_seq:
            return None
        if self._near_pruning(entry[2]):
            self._drop(key)
            return None
        self._pages.move_to_end(key)
        return entry[1]

    def put(self, key: PageKey, last_event_seq: int, body: bytes, oldest: datetime | None = None) -> None:
        """Remember a page all of whose events had ended, built for `last_event_seq`; `oldest` is the
        creation time of its oldest event (needed when retention is on: without it, nothing is kept)."""
        if len(body) * 4 > self.max_bytes:  # also: a budget of 0 caches nothing
            return
        if self.retention is not None and (oldest is None or self._near_pruning(oldest)):
            return
        self._drop(key)
        self._pages[key] = (last_event_seq, body, oldest)
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, (_, dropped, _) = self._pages.popitem(last=False)
            self._bytes -= len(dropped)

    def _near_pruning(self, oldest: datetime | None) -> bool:
        if self.retention is None or oldest is None:
            return False
        return oldest < self._clock() - self.retention + RETENTION_MARGIN

    def _drop(self, key: PageKey) -> None:
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._pages)
