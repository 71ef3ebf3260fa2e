"""GroupCommitter: batching without a timer, batch limits, failure isolation, flush on close."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.errors import ServiceUnavailableError
from switchman.signal_endpoints.group_commit import GroupCommitter
from switchman.timeutil import utcnow


class Recorder:
    """A write that records its batches and can be held open to let a queue build up."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.gate.wait()
        return [item * 10 for item in items]


async def test_an_idle_committer_writes_the_first_item_at_once() -> None:
    recorder = Recorder()
    committer: GroupCommitter[int, int] = GroupCommitter(recorder.write, max_batch=10)
    assert await committer.submit(1) == 10
    assert recorder.batches == [[1]]
    assert committer.transactions == 1
    await committer.close()


async def test_items_arriving_during_a_write_form_the_next_batch() -> None:
    recorder = Recorder()
    committer: GroupCommitter[int, int] = GroupCommitter(recorder.write, max_batch=4)
    recorder.gate.clear()
    first = asyncio.create_task(committer.submit(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert recorder.batches == [[0]]  # in flight, held by the gate
    rest = [asyncio.create_task(committer.submit(n)) for n in range(1, 10)]
    await asyncio.sleep(0)
    recorder.gate.set()
    assert await first == 0
    assert [await task for task in rest] == [n * 10 for n in range(1, 10)]
    assert recorder.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    assert committer.transactions == 4
    assert committer.committed_items == 10
    assert committer.largest_batch == 4
    await committer.close()


async def test_several_writers_take_batches_in_parallel() -> None:
    recorder = Recorder()
    committer: GroupCommitter[int, int] = GroupCommitter(recorder.write, max_batch=2, max_in_flight=2)
    recorder.gate.clear()
    tasks = [asyncio.create_task(committer.submit(n)) for n in range(4)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert recorder.batches == [[0, 1], [2, 3]]  # both in flight before either finished
    recorder.gate.set()
    assert [await task for task in tasks] == [0, 10, 20, 30]
    await committer.close()


async def test_a_failed_batch_fails_every_caller_and_stores_nothing(db: Database) -> None:
    async def write(items: Sequence[str]) -> list[str]:
        async with db.transaction() as conn:
            for name in items:
                await conn.execute(
                    t.signal_endpoint.insert().values(name=name, created_at=utcnow(), created_by_user_id=1)
                )
            raise RuntimeError("disk on fire")
        return list(items)  # pragma: no cover

    committer: GroupCommitter[str, str] = GroupCommitter(write, max_batch=10)
    results = await asyncio.gather(*(committer.submit(f"n{n}") for n in range(5)), return_exceptions=True)
    assert all(isinstance(result, ServiceUnavailableError) for result in results), results
    assert committer.failed_batches >= 1 and committer.transactions == 0
    async with db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(t.signal_endpoint))).scalar() == 0
    await committer.close()


async def test_a_write_returning_the_wrong_number_of_results_fails_the_batch() -> None:
    async def write(items: Sequence[int]) -> list[int]:
        return list(items)[:-1]

    committer: GroupCommitter[int, int] = GroupCommitter(write, max_batch=10)
    with pytest.raises(ServiceUnavailableError):
        await committer.submit(1)
    await committer.close()


async def test_close_writes_what_is_queued_then_refuses_new_items() -> None:
    recorder = Recorder()
    committer: GroupCommitter[int, int] = GroupCommitter(recorder.write, max_batch=3)
    recorder.gate.clear()
    tasks = [asyncio.create_task(committer.submit(n)) for n in range(7)]
    await asyncio.sleep(0)
    closing = asyncio.create_task(committer.close())
    await asyncio.sleep(0)
    recorder.gate.set()
    await closing
    assert [task.result() for task in tasks] == [n * 10 for n in range(7)]
    with pytest.raises(ServiceUnavailableError):
        await committer.submit(99)


async def test_a_caller_that_went_away_does_not_break_the_batch() -> None:
    recorder = Recorder()
    committer: GroupCommitter[int, int] = GroupCommitter(recorder.write, max_batch=10)
    recorder.gate.clear()
    gone = asyncio.create_task(committer.submit(1))
    stays = asyncio.create_task(committer.submit(2))
    await asyncio.sleep(0)
    gone.cancel()
    recorder.gate.set()
    assert await stays == 20
    assert gone.cancelled()
    assert await committer.submit(3) == 30
    await committer.close()
