"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL, schema built by the migrations.

- `db_url` (session, parametrised "sqlite" / "postgresql"): a fresh database migrated once per session.
  PostgreSQL gets its own throw-away database (`switchman_test_<random>`), so parallel runs never collide.
  When PostgreSQL cannot be reached the PostgreSQL tests are skipped locally and FAIL in CI (`CI` set).
- `clean_db` (function): empties every table and restores the seed rows before a test.
- `settings`, `app`, `client`: a real app (lifespan run) and an httpx client carrying the admin token.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from switchman.app import create_app
from switchman.config import Settings
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.db.migrate import migrate

# The session's real Unleash OSS server (fixtures `unleash_server`, `unleash_url`), started on first use.
pytest_plugins = ["tests.unleash_oss"]

ADMIN_TOKEN = "*:*.test-admin-secret-0123456789abcdef"
PG_SERVER = os.environ.get("SWITCHMAN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
SEEDED_TABLES = ("project", "environment", "project_environment", "tag_type")


def _pg_admin_url() -> str:
    return f"{PG_SERVER}/test"


async def _pg_exec(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_admin_url(), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_exec_sync(sql: str) -> None:
    """`_pg_exec` from synchronous code, never on a running test's event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _pg_exec(sql)).result()


@contextlib.contextmanager
def empty_database(kind: str, tmp_path: Path, *, prefix: str) -> Iterator[str]:
    """The URL of an empty database of its own, no migration run (a server under test migrates it):
    a SQLite file in `tmp_path`, or a throw-away PostgreSQL database dropped afterwards. PostgreSQL
    unreachable: the test is skipped locally and FAILS in CI."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / f'{prefix}.db'}"
        return
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        _pg_exec_sync(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # asyncpg raises several unrelated types when unreachable
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_SERVER} is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {PG_SERVER} unreachable: {exc}")
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        _pg_exec_sync(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "switchman.db"
        url = f"sqlite:///{path}"
        asyncio.run(_migrate(url))
        yield url
        return
    name = f"switchman_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_pg_exec(f'CREATE DATABASE "{name}"'))
    except (OSError, Exception) as exc:  # asyncpg raises several unrelated types when unreachable
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_SERVER} is required in CI but unreachable: {exc}")
        pytest.skip(f"PostgreSQL at {PG_SERVER} unreachable: {exc}")
    url = f"{PG_SERVER}/{name}"
    try:
        asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(_pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _migrate(url: str) -> None:
    from switchman.config import to_async_url

    await migrate(to_async_url(url))


@pytest.fixture(scope="session")
def backend(db_url: str) -> str:
    """ "sqlite" or "postgresql": for the few tests whose expectations differ by database."""
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@pytest.fixture(scope="session")
def seed_rows(db_url: str) -> dict[str, list[dict[str, Any]]]:
    async def read() -> dict[str, list[dict[str, Any]]]:
        db = Database(_async(db_url))
        try:
            async with db.read() as conn:
                return {
                    name: [dict(r._mapping) for r in (await conn.execute(sa.select(t.metadata.tables[name])))]
                    for name in SEEDED_TABLES
                }
        finally:
            await db.dispose()

    return asyncio.run(read())


def _async(url: str) -> Any:
    from switchman.config import to_async_url

    return to_async_url(url)


async def reset_database(db: Database, seed_rows: dict[str, list[dict[str, Any]]]) -> None:
    """Empty every table, then restore the rows the migrations seeded."""
    async with db.transaction() as conn:
        if db.is_postgres:
            names = ", ".join(f'"{table.name}"' for table in t.metadata.sorted_tables)
            await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        else:
            for table in reversed(t.metadata.sorted_tables):
                await conn.execute(table.delete())
        for table in t.metadata.sorted_tables:
            rows = seed_rows.get(table.name)
            if rows:
                await conn.execute(table.insert(), rows)


@pytest.fixture
async def db(db_url: str, seed_rows: dict[str, list[dict[str, Any]]]) -> AsyncIterator[Database]:
    """A clean database (seed rows only) and a Database handle on it."""
    database = Database(_async(db_url))
    await reset_database(database, seed_rows)
    try:
        yield database
    finally:
        await database.dispose()


def make_settings(db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "init_admin_api_tokens": [ADMIN_TOKEN],
        "migrate_on_start": False,
        "run_worker": False,
        "signal_rate_limit_per_second": 0,
        "public_url": "http://switchman.test",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(db_url: str, db: Database) -> Settings:
    """Settings for an app on the clean test database; override fields with `make_settings` directly."""
    return make_settings(db_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client authenticated with the bootstrap admin API token."""
    from tests.factories import http_client  # factories import this module's helpers

    async with http_client(app) as http:
        yield http


@pytest.fixture
async def anon(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client without credentials."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http


def unique(prefix: str = "x") -> str:
    """A URL-safe unique name for test objects."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_error(response: httpx.Response, status: int, name: str | None = None) -> dict[str, Any]:
    """Assert an Unleash-shaped error body `{id, name, message, details}` with the given status."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("id"), str) and uuid.UUID(body["id"])
    assert isinstance(body.get("name"), str)
    assert isinstance(body.get("message"), str) and body["message"]
    assert isinstance(body.get("details"), list) and body["details"]
    if name is not None:
        assert body["name"] == name, body
    return body


REPO_ROOT = Path(__file__).resolve().parent.parent
