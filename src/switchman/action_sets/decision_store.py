"""The decision trace (ADR 0022): one row per (signal, enabled action set of its source) — the outcome, the
filter results that decided it and the run's event — written by the worker in the transaction that marks
the signal processed, read per signal and per action set, pruned with the signals.

Writing is idempotent per (signal, action set) (`ON CONFLICT DO NOTHING`): a signal retaken after a
crash keeps the first record. The reasons are stored as compact JSON text and returned as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.db import tables as t
from switchman.engine.decisions import Outcome
from switchman.timeutil import iso

_d = t.signal_decision


@dataclass
class Decision:
    """One decision of the trace, before it is written (`outcome` and `event_id` are settled by the run)."""

    signal_id: int
    action_set_id: int
    project: str
    outcome: Outcome
    reasons: list[dict[str, Any]]
    event_id: int | None = None
    alert_id: str | None = None  # what a per-alert policy counted by
    policy_reason: str | None = None  # why the set's policy let it run, held it back, or shadowed it
    recorded: bool = False  # already written (a policy decision on the remote path)


# The one decision per (signal, set): every row but a time box's revert (ADR 0025), which is recorded
# besides the decision of the signal that last renewed the box.
_DECISION = _d.c.outcome != str(Outcome.REVERTED)
_DECISION_INDEX_WHERE = sa.text("outcome <> 'reverted'")  # the unique index's own predicate, as written


# PostgreSQL: a batch's decisions as one row of arrays, unnested by the server — one statement and one set
# of parameters instead of a row of parameters each (the trace's cost per signal fell by about half).
_INSERT_UNNESTED = sa.text(
    "INSERT INTO signal_decision (signal_id, action_set_id, project, outcome, event_id, alert_id, "
    "policy_reason, reasons, created_at) "
    "SELECT u.*, :now FROM unnest(:signal_ids, :action_set_ids, :projects, :outcomes, :event_ids, "
    ":alert_ids, :policy_reasons, :reasons) AS u "
    "ON CONFLICT (signal_id, action_set_id) WHERE outcome <> 'reverted' DO NOTHING"
).bindparams(
    sa.bindparam("signal_ids", type_=postgresql.ARRAY(sa.BigInteger)),
    sa.bindparam("action_set_ids", type_=postgresql.ARRAY(sa.Integer)),
    sa.bindparam("projects", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("outcomes", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("event_ids", type_=postgresql.ARRAY(sa.BigInteger)),
    sa.bindparam("alert_ids", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("policy_reasons", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("reasons", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("now", type_=_d.c.created_at.type),
)


async def record_revert(conn: AsyncConnection, decision: Decision, *, now: datetime) -> None:
    """Write a time box's revert (outcome `reverted`) for the signal that last renewed the box."""
    assert decision.outcome == Outcome.REVERTED
    await conn.execute(
        sa.insert(_d).values(
            signal_id=decision.signal_id,
            action_set_id=decision.action_set_id,
            project=decision.project,
            outcome=str(decision.outcome),
            event_id=decision.event_id,
            alert_id=decision.alert_id,
            policy_reason=decision.policy_reason,
            reasons=orjson.dumps(decision.reasons).decode(),
            created_at=now,
        )
    )


async def record_decisions(conn: AsyncConnection, decisions: Sequence[Decision], *, now: datetime) -> None:
    """Write `decisions` in one statement; one already recorded for the same (signal, set) is kept."""
    if not decisions:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(
            _INSERT_UNNESTED,
            {
                "signal_ids": [decision.signal_id for decision in decisions],
                "action_set_ids": [decision.action_set_id for decision in decisions],
                "projects": [decision.project for decision in decisions],
                "outcomes": [str(decision.outcome) for decision in decisions],
                "event_ids": [decision.event_id for decision in decisions],
                "alert_ids": [decision.alert_id for decision in decisions],
                "policy_reasons": [decision.policy_reason for decision in decisions],
                "reasons": [orjson.dumps(decision.reasons).decode() for decision in decisions],
                "now": now,
            },
        )
        return
    insert = sqlite.insert(_d)
    await conn.execute(
        insert.on_conflict_do_nothing(
            index_elements=["signal_id", "action_set_id"], index_where=_DECISION_INDEX_WHERE
        ),
        [
            {
                "signal_id": decision.signal_id,
                "action_set_id": decision.action_set_id,
                "project": decision.project,
                "outcome": str(decision.outcome),
                "event_id": decision.event_id,
                "alert_id": decision.alert_id,
                "policy_reason": decision.policy_reason,
                "reasons": orjson.dumps(decision.reasons).decode(),
                "created_at": now,
            }
            for decision in decisions
        ],
    )


async def find_decision(conn: AsyncConnection, *, signal_id: int, action_set_id: int) -> Any:
    """The recorded decision of (signal, set): its `outcome` and `policy_reason`; None when none."""
    query = sa.select(_d.c.outcome, _d.c.policy_reason).where(
        _d.c.signal_id == signal_id, _d.c.action_set_id == action_set_id, _DECISION
    )
    return (await conn.execute(query)).first()


async def settle_decisions(conn: AsyncConnection, decisions: Sequence[Decision]) -> None:
    """Write how the runs of decisions recorded before them ended (their event and outcome)."""
    for decision in decisions:
        await conn.execute(
            sa.update(_d)
            .where(
                _d.c.signal_id == decision.signal_id, _d.c.action_set_id == decision.action_set_id, _DECISION
            )
            .values(outcome=str(decision.outcome), event_id=decision.event_id)
        )


_COLUMNS = (_d.c.id, _d.c.signal_id, _d.c.action_set_id, _d.c.project, _d.c.outcome, _d.c.event_id,
            _d.c.alert_id, _d.c.policy_reason, _d.c.reasons, _d.c.created_at)  # fmt: skip


def _wire(row: Any) -> dict[str, Any]:
    """A `decisionSchema` object."""
    return {
        "id": int(row.id),
        "signalId": int(row.signal_id),
        "actionSetId": int(row.action_set_id),
        "project": row.project,
        "outcome": row.outcome,
        "eventId": int(row.event_id) if row.event_id is not None else None,
        "alertId": row.alert_id,
        "policy": row.policy_reason,
        "reasons": orjson.loads(row.reasons),
        "createdAt": iso(row.created_at),
    }


async def decisions_of_signal(conn: AsyncConnection, signal_id: int) -> list[dict[str, Any]]:
    """The signal's decisions, by action set id (a set's revert after its decision)."""
    rows = await conn.execute(
        sa.select(*_COLUMNS).where(_d.c.signal_id == signal_id).order_by(_d.c.action_set_id, _d.c.id)
    )
    return [_wire(row) for row in rows]


async def decisions_of_action_set(
    conn: AsyncConnection, *, action_set_id: int, limit: int, offset: int, before: int | None
) -> list[dict[str, Any]]:
    """The set's decisions, newest first: `limit` of them after skipping `offset`, below decision id
    `before` when given (a cursor: the index (action_set_id, id) makes a page O(limit) at any depth)."""
    query = sa.select(*_COLUMNS).where(_d.c.action_set_id == action_set_id)
    if before is not None:
        query = query.where(_d.c.id < before)
    rows = await conn.execute(query.order_by(_d.c.id.desc()).offset(offset).limit(limit))
    return [_wire(row) for row in rows]


async def delete_decisions(conn: AsyncConnection, *, older_than: datetime, limit: int) -> int:
    """Delete at most `limit` decisions recorded before `older_than`, oldest first; the count. Ids grow
    with time, so the scan along the primary key stops at the first young row's neighbourhood."""
    oldest = sa.select(_d.c.id).where(_d.c.created_at < older_than).order_by(_d.c.id).limit(limit)
    result = await conn.execute(sa.delete(_d).where(_d.c.id.in_(oldest.scalar_subquery())))
    return int(result.rowcount or 0)
