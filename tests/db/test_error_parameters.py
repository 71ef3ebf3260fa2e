"""Database errors never quote statement parameters (signal payloads, token hashes…).

Found by the database-fault stress run (docs/reliability.md): a worker batch failing while PostgreSQL
restarted logged its traceback, and SQLAlchemy's error text carried `[parameters: …]` with a whole
action set event document — the signal's payload included. The engines are now built with
`hide_parameters=True`.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from switchman.db import tables as t
from switchman.db.engine import Database


async def test_a_failed_statement_does_not_quote_its_parameters(db: Database) -> None:
    marker = f"payload-secret-{uuid.uuid4().hex}"
    with pytest.raises(sa.exc.IntegrityError) as caught:
        async with db.transaction() as conn:
            # source_id is NOT NULL: the insert fails, with the marker among its parameters.
            await conn.execute(
                t.signal.insert().values(source="signal-endpoint", source_id=None, payload=marker)
            )
    assert marker not in str(caught.value)
    assert "hidden due to hide_parameters" in str(caught.value)
