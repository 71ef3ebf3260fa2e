"""The raw-SQL signal writers insert what the `signal` table definition says a new signal needs."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.signal_endpoints.signal_writer import INSERTED_COLUMNS
from switchman.timeutil import iso
from tests.factories import endpoint_with_token
from tests.signal_endpoints.test_ingest import call_path


def test_the_writers_insert_every_required_column_and_leave_only_defaults_out() -> None:
    columns = {column.name: column for column in t.signal.columns}
    left_out = set(columns) - set(INSERTED_COLUMNS)
    assert set(INSERTED_COLUMNS) <= set(columns)
    assert len(set(INSERTED_COLUMNS)) == len(INSERTED_COLUMNS)
    # Left out: the id (drawn by the database) and columns that start NULL (the worker's claim and done)
    # or at their server default (the failure count, ADR 0028).
    assert {
        name for name in left_out if not columns[name].nullable and columns[name].server_default is None
    } == {"id"}
    assert {name for name in left_out if columns[name].server_default is not None} == {"failures"}
    assert all(not columns[name].nullable or columns[name].default is None for name in left_out)


async def test_a_stored_signal_reads_back_with_its_exact_time(
    client: httpx.AsyncClient, db: Database
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    before = datetime.now(UTC)
    response = await client.post(
        call_path(endpoint["name"]), json={"a": 1}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200, response.text
    signal_id = response.json()["signals"][0]["id"]
    async with db.read() as conn:
        stored = (
            await conn.execute(sa.select(t.signal.c.created_at).where(t.signal.c.id == signal_id))
        ).scalar_one()
    # The writer's own storage format and the column type's reading agree to the microsecond.
    assert stored.tzinfo is not None
    assert before <= stored <= datetime.now(UTC)
    assert iso(stored) == response.json()["signals"][0]["createdAt"]
