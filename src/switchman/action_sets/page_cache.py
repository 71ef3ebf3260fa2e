"""A per-process cache of settled event-listing pages, exact across processes.

Why it is exact: an event whose run has ended (`success` or `failed`) is never written again (the worker
resumes only `started` events), and events are numbered densely by `action_set.last_event_seq`, which
every new event advances in the transaction that inserts it. So the page "offset k, limit n" of a set
whose `last_event_seq` is L covers exactly the events with seq in (L-k-n, L-k]; if all of them had ended
when the page was built, the same L always yields the same bytes. A request reads L (one indexed
primary-key look-up, which also checks that the set exists in the project), and is answered from here
only when the cached page was built for that very L. Pages holding a `started` event are never cached.

Bounded by bytes (oldest pages dropped first); pages larger than a quarter of the budget are not cached.
"""

from __future__ import annotations

from collections import OrderedDict

DEFAULT_MAX_BYTES = 8 * 1024 * 1024

PageKey = tuple[str, int, int, int]  # (project, action set id, limit, offset)


class SettledPageCache:
    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._bytes = 0
        self._pages: OrderedDict[PageKey, tuple[int, bytes]] = OrderedDict()

    def get(self, key: PageKey, last_event_seq: int) -> bytes | None:
        """The page built for `key` when the set's `last_event_seq` was `last_event_seq`, if cached."""
        entry = self._pages.get(key)
        if entry is None or entry[0] != last_event_seq:
            return None
        self._pages.move_to_end(key)
        return entry[1]

    def put(self, key: PageKey, last_event_seq: int, body: bytes) -> None:
        """Remember a page all of whose events had ended, built for `last_event_seq`."""
        if len(body) * 4 > self.max_bytes:  # also: a budget of 0 caches nothing
            return
        old = self._pages.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])
        self._pages[key] = (last_event_seq, body)
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            _, (_, dropped) = self._pages.popitem(last=False)
            self._bytes -= len(dropped)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._pages)
