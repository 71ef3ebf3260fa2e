"""Developer tool: `python -m switchman.db.autogenerate "message"` writes a new Alembic revision.

It migrates a scratch SQLite database to head, then lets Alembic compare it with `tables.py`.
Review the generated file by hand (PostgreSQL-specific details such as boolean defaults).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command

from switchman.config import to_async_url
from switchman.db.engine import create_engine
from switchman.db.migrate import alembic_config, migrate


async def _autogenerate(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = to_async_url(f"sqlite:///{Path(scratch) / 'scratch.db'}")
        await migrate(url)
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as conn:

                def run(sync_conn: Any) -> None:
                    config = alembic_config()
                    config.attributes["connection"] = sync_conn
                    command.revision(config, message=message, autogenerate=True)

                await conn.run_sync(run)
        finally:
            await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].strip():
        raise SystemExit('usage: python -m switchman.db.autogenerate "message"')
    asyncio.run(_autogenerate(sys.argv[1]))
