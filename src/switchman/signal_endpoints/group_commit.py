"""Group commit: concurrent writes micro-batched into one transaction each.

Callers `await committer.submit(item)`. Items wait in a queue; a writer task takes up to `max_batch`
of them and calls `write(items)`, which must store them in one transaction and return only once that
transaction is durable; then every caller's future is resolved with its item's result. There is no
timer: an idle writer starts on the first item at once, and items that arrive while a batch is being
written form the next batch. With several writers (`max_in_flight`), one batch can be sent while
another waits for its commit to reach the disk.

If a batch fails, every caller of that batch gets `ServiceUnavailableError` (503): nothing is
acknowledged unless committed. Outcomes that concern one item only (a wrong token, say) are values
returned by `write`, not exceptions, so they never spoil a batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from switchman.errors import ServiceUnavailableError

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger(__name__)

WriteBatch = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


class GroupCommitter(Generic[T, R]):
    def __init__(
        self,
        write: WriteBatch[T, R],
        *,
        max_batch: int,
        max_in_flight: int = 1,
        name: str = "group-commit",
    ) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._name = name
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._wake = asyncio.Condition()
        self._closed = False
        self._writers = [
            asyncio.create_task(self._run(), name=f"{name}-writer-{i}") for i in range(max_in_flight)
        ]
        # Observability (and test evidence of batching): committed transactions and items.
        self.transactions = 0
        self.committed_items = 0
        self.failed_batches = 0
        self.largest_batch = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def submit(self, item: T) -> R:
        """Queue `item`; return `write`'s result for it once its transaction committed.

        Raises ServiceUnavailableError when the batch failed or the committer is closed.
        """
        if self._closed:
            raise ServiceUnavailableError("The service is shutting down; nothing was stored")
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if len(self._queue) == 1:
            async with self._wake:
                self._wake.notify()
        return await future

    async def close(self) -> None:
        """Stop accepting items, write everything already queued, then stop the writers."""
        self._closed = True
        async with self._wake:
            self._wake.notify_all()
        await asyncio.gather(*self._writers, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closed:
                    return
                async with self._wake:
                    await self._wake.wait_for(lambda: bool(self._queue) or self._closed)
                continue
            batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
            if len(self._queue) > 0:
                # More than one batch waits: let an idle writer take the next one.
                async with self._wake:
                    self._wake.notify()
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self._write(items)
            if len(results) != len(batch):  # a broken `write`; never the callers' fault
                raise RuntimeError(f"write returned {len(results)} results for {len(batch)} items")
        except Exception as exc:
            self.failed_batches += 1
            # The exception type only: messages may quote parameters, i.e. payloads.
            log.error("%s: a batch of %d failed: %s", self._name, len(batch), type(exc).__name__)
            for _, future in batch:
                if not future.done():
                    future.set_exception(
                        ServiceUnavailableError("The signal could not be stored; please retry")
                    )
            return
        self.transactions += 1
        self.committed_items += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # the caller may have gone away (cancelled)
                future.set_result(result)
