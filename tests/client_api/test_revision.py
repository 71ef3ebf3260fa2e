"""The flag store revision (ETag source): once per committed client-visible transaction, in commit order."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchman.audit import log as audit
from switchman.audit.revision import current_revision
from switchman.auth.principal import SYSTEM
from switchman.client_api.hashsum import UNDEFINED, hash_sum
from switchman.db.engine import Database
from tests.conftest import unique


async def _revision(db: Database) -> int:
    async with db.read() as conn:
        return await current_revision(conn)


async def test_one_bump_per_committed_transaction_none_on_rollback_or_invisible_events(db: Database) -> None:
    assert await _revision(db) == 0
    before_ms = int(time.time() * 1000)
    async with db.transaction() as conn:
        for _ in range(3):
            await audit.record_event(
                conn, type=audit.FEATURE_ENVIRONMENT_ENABLED, actor=SYSTEM, tags=[], visible_to_clients=True
            )
    first = await _revision(db)
    # A database's first revision is the time of its first change (ms), so revisions of a newer database
    # never repeat an older one's (no false 304 for an SDK that cached an ETag across a database reset).
    assert before_ms <= first <= int(time.time() * 1000)

    async def rolled_back() -> None:
        async with db.transaction() as conn:
            await audit.record_event(
                conn, type=audit.FEATURE_CREATED, actor=SYSTEM, tags=[], visible_to_clients=True
            )
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await rolled_back()
    assert await _revision(db) == first

    async with db.transaction() as conn:
        await audit.record_event(
            conn, type=audit.FEATURE_TAGGED, actor=SYSTEM, tags=[], visible_to_clients=False
        )
    assert await _revision(db) == first

    # The hook registry does not leak into the next transaction on the same pooled connection.
    async with db.transaction() as conn:
        pass
    assert await _revision(db) == first


async def test_concurrent_transactions_get_distinct_revisions(db: Database) -> None:
    async def change() -> None:
        async with db.transaction() as conn:
            await audit.record_event(
                conn, type=audit.FEATURE_ENVIRONMENT_DISABLED, actor=SYSTEM, tags=[], visible_to_clients=True
            )
            await asyncio.sleep(0.01)

    await change()
    first = await _revision(db)
    await asyncio.gather(*(change() for _ in range(8)))
    assert await _revision(db) == first + 8


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # queryHash values observed on Unleash 8.2.0 for these queries (absent keys are `undefined` there).
        (
            {"project": ["default"], "environment": "development", "inlineSegmentConstraints": True},
            "6ef7ec5a",
        ),
        ({"environment": "development", "inlineSegmentConstraints": True}, "76d8bb0e"),
        ({"project": ["default"], "environment": "production", "inlineSegmentConstraints": True}, "9e6ab8a8"),
        (
            {
                "project": ["default"],
                "namePrefix": "f-of",
                "environment": "development",
                "inlineSegmentConstraints": True,
            },
            "aebea1fc",
        ),
        (
            {"tag": [["simple", "x"]], "environment": "development", "inlineSegmentConstraints": True},
            "017c798c",
        ),
        (
            {"project": ["default"], "environment": "development", "inlineSegmentConstraints": False},
            "1fc12c72",
        ),
    ],
)
def test_query_hash_equals_unleash(query: dict[str, object], expected: str) -> None:
    keys = ("tag", "project", "namePrefix", "environment", "inlineSegmentConstraints")
    assert hash_sum({key: query.get(key, UNDEFINED) for key in keys}) == expected


def test_hash_sum_equals_the_npm_package_on_plain_values() -> None:
    # Values printed by `require('hash-sum')(…)` (hash-sum 1.0.2) under Node.
    assert [hash_sum(v) for v in ({}, "a", ["a"], {"a": 1}, True)] == [
        "59322f29",
        "8daa19aa",
        "7e961a80",
        "0a1ded50",
        "01e34ba8",
    ]


def test_audit_events_are_only_written_through_the_audit_log() -> None:
    """The revision moves only through `record_event(s)`: an event insert elsewhere would skip it."""
    root = Path(__file__).resolve().parents[2] / "src" / "switchman"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.relative_to(root).as_posix() != "audit/log.py"
        and re.search(r"\bt\.event\.(insert|update)\(", path.read_text())
    ]
    assert offenders == []


async def test_admin_changes_move_the_revision_exactly_when_sdks_see_them(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Each caller of the audit log decides `visible_to_clients`; this checks the decisions, change by
    change through the admin API: what changes `/api/client/features` moves the revision, nothing else."""
    flag, environment, project = unique("flag"), unique("env"), "default"
    base = f"/api/admin/projects/{project}"
    changes: list[tuple[str, str, str, dict[str, Any] | None, bool]] = [
        ("create a flag", "POST", f"{base}/features", {"name": flag}, True),
        ("turn it on (adds the default strategy)", "POST", f"{base}/features/{flag}/environments/development/on", None, True),
        ("turn it on again (no change)", "POST", f"{base}/features/{flag}/environments/development/on", None, False),
        ("turn it off", "POST", f"{base}/features/{flag}/environments/development/off", None, True),
        ("create an environment", "POST", "/api/admin/environments", {"name": environment, "type": "test"}, False),
        ("add it to the project", "POST", f"{base}/environments", {"environment": environment}, True),
        ("create a tag type", "POST", "/api/admin/tag-types", {"name": unique("kind")}, False),
        ("create a service account", "POST", "/api/admin/service-account", {"username": unique("robot"), "name": "Robot", "rootRole": 2}, False),
        ("archive the flag", "DELETE", f"{base}/features/{flag}", None, True),
    ]  # fmt: skip
    for what, method, path, body, visible in changes:
        before = await _revision(db)
        response = await client.request(method, path, json=body)
        assert response.status_code < 300, (what, response.text)
        moved = await _revision(db) != before
        assert moved == visible, what
