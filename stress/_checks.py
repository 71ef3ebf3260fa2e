"""The promises, checked by reading the database after a run (read-only, through SQLAlchemy).

- nothing lost: every signal acknowledged with a 2xx exists, with the payload that was sent;
- nothing doubled: every stored signal has exactly one action set event, in the set its payload
  matches, and no other; (signal, action set) pairs are unique;
- nothing stuck: every signal ends processed and no event stays `started`;
- consistent flags: each flag's audit trail alternates enabled/disabled (no lost or doubled change)
  and ends in the flag's current state; with one worker, that state is the one the source's last
  stored signal asks for (signals of a source are handled in id order).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from stress._scenario import ENVIRONMENT, SendLog, Source, state_of
from switchman.db import tables as t


def async_url(database_url: str) -> str:
    if database_url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + database_url.removeprefix("sqlite:///")
    return "postgresql+asyncpg://" + database_url.split("://", 1)[1]


def engine_for(database_url: str) -> AsyncEngine:
    return create_async_engine(async_url(database_url), pool_size=1, max_overflow=0)


@dataclass
class Outcome:
    signals: int = 0
    events: int = 0
    acked: int = 0
    unacked_stored: int = 0
    drain_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)
        elif len(self.problems) == 50:
            self.problems.append("… (more problems not listed)")


async def wait_drained(engine: AsyncEngine, timeout: float) -> float:
    """Wait until no signal is pending and no event is `started`; returns the seconds it took."""
    start = time.monotonic()
    while True:
        async with engine.connect() as conn:
            pending = (
                await conn.execute(sa.select(sa.func.count()).where(t.signal.c.processed_at.is_(None)))
            ).scalar_one()
            started = (
                await conn.execute(sa.select(sa.func.count()).where(t.action_set_event.c.state == "started"))
            ).scalar_one()
        if pending == 0 and started == 0:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(
                f"not drained after {timeout} s: {pending} pending signals, {started} started events"
            )
        await asyncio.sleep(0.5)


async def check(
    database_url: str,
    sources: list[Source],
    log: SendLog,
    *,
    ordered: bool,
    drain_timeout: float = 180.0,
) -> Outcome:
    out = Outcome(acked=len(log.acked))
    engine = engine_for(database_url)
    try:
        try:
            out.drain_seconds = await wait_drained(engine, drain_timeout)
        except TimeoutError as exc:
            out.problem(str(exc))
        async with engine.connect() as conn:
            signals = (
                await conn.execute(
                    sa.select(
                        t.signal.c.id, t.signal.c.source_id, t.signal.c.payload, t.signal.c.processed_at
                    )
                )
            ).all()
            events = (
                await conn.execute(
                    sa.select(
                        t.action_set_event.c.signal_id,
                        t.action_set_event.c.action_set_id,
                        t.action_set_event.c.state,
                    )
                )
            ).all()
            flags = {
                row.feature_name: bool(row.enabled)
                for row in await conn.execute(
                    sa.select(t.feature_environment.c.feature_name, t.feature_environment.c.enabled).where(
                        t.feature_environment.c.environment_name == ENVIRONMENT
                    )
                )
            }
            trail: dict[str, list[str]] = defaultdict(list)
            for row in await conn.execute(
                sa.select(t.event.c.feature_name, t.event.c.type)
                .where(
                    t.event.c.environment == ENVIRONMENT,
                    t.event.c.type.in_(["feature-environment-enabled", "feature-environment-disabled"]),
                )
                .order_by(t.event.c.id)
            ):
                trail[row.feature_name].append("on" if row.type.endswith("-enabled") else "off")
    finally:
        await engine.dispose()

    by_endpoint = {s.endpoint_id: s for s in sources}
    stored: dict[int, tuple[int, int]] = {}
    last_signal: dict[int, tuple[int, int]] = {}  # source index → (signal id, seq)
    previous_seq: dict[int, tuple[int, int]] = {}
    for signal_row in sorted(signals, key=lambda r: int(r.id)):
        source = by_endpoint.get(int(signal_row.source_id))
        if source is None:
            continue
        payload: dict[str, Any] = orjson.loads(signal_row.payload)
        seq = int(payload["seq"])
        stored[int(signal_row.id)] = (source.index, seq)
        if signal_row.processed_at is None:
            out.problem(f"signal {signal_row.id} never processed")
        before = previous_seq.get(source.index)
        if before is not None and seq <= before[1]:
            out.problem(
                f"source {source.index}: signal {signal_row.id} (seq {seq}) stored after seq {before[1]}"
            )
        previous_seq[source.index] = (int(signal_row.id), seq)
        last_signal[source.index] = (int(signal_row.id), seq)
    out.signals = len(stored)

    for signal_id, (index, seq) in log.acked.items():
        if signal_id not in stored:
            out.problem(f"LOST: acknowledged signal {signal_id} (source {index}, seq {seq}) is not stored")
        elif stored[signal_id] != (index, seq):
            out.problem(f"signal {signal_id} holds {stored[signal_id]}, the sender got it for {(index, seq)}")
    out.unacked_stored = len(set(stored) - set(log.acked))

    per_signal: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for event_row in events:
        per_signal[int(event_row.signal_id)].append((int(event_row.action_set_id), str(event_row.state)))
        if event_row.state != "success":
            out.problem(
                f"event of signal {event_row.signal_id} / set {event_row.action_set_id} is {event_row.state}"
            )
    out.events = len(events)
    sources_by_index = {s.index: s for s in sources}
    for signal_id, (index, seq) in stored.items():
        source = sources_by_index[index]
        expected = source.on_set if state_of(seq) == "on" else source.off_set
        got = per_signal.get(signal_id, [])
        if [set_id for set_id, _ in got] != [expected]:
            out.problem(
                f"signal {signal_id} (seq {seq}): events in sets {got}, expected exactly one in {expected}"
            )

    for source in sources:
        state = "on" if flags.get(source.flag, False) else "off"
        changes = trail.get(source.flag, [])
        for a, b in itertools.pairwise(changes):
            if a == b:
                out.problem(f"{source.flag}: audit trail has two '{a}' changes in a row")
                break
        if (changes[-1] if changes else "off") != state:
            out.problem(f"{source.flag}: is {state} but its last recorded change is {changes[-1:] or 'none'}")
        if ordered and source.index in last_signal:
            signal_id, seq = last_signal[source.index]
            if state_of(seq) != state:
                out.problem(
                    f"{source.flag}: is {state}, but the last signal ({signal_id}, seq {seq}) asks {state_of(seq)}"
                )
    return out
