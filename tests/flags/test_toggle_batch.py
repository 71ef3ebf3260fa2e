"""Many changes in one ToggleBatch against the same changes made one at a time (set_feature_enabled).

The same sequence of on/off calls runs twice on the real store, on two identical sets of flags: once
through `set_feature_enabled` (each call its own one-change batch, in a savepoint, as the admin route
makes it), once through one `ToggleBatch` and its `flush`. Outcomes, flag states, default strategies and
audit events must be the same, call by call and event by event: planning many changes in memory must not
change what any of them does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.errors import SwitchmanError
from switchman.flags import toggles
from tests.conftest import unique
from tests.factories import actor_with_role
from tests.service_accounts.helpers import EDITOR_ROLE, VIEWER_ROLE

P = "/api/admin/projects/default"
TOGGLE_EVENTS = ("feature-strategy-add", "feature-environment-enabled", "feature-environment-disabled")
ROLES = ("alpha", "archived", "fresh", "missing")  # the flags of one copy, by role


async def _copy(client: httpx.AsyncClient, db: Database) -> dict[str, str]:
    """One copy of the flags: `alpha` (tagged), `archived`, `fresh` (no row in development), `missing`."""
    names = {role: unique(role) for role in ROLES}
    for role in ("alpha", "archived", "fresh"):
        assert (await client.post(f"{P}/features", json={"name": names[role]})).status_code == 201
    tagged = await client.post(
        f"/api/admin/features/{names['alpha']}/tags", json={"type": "simple", "value": "batch"}
    )
    assert tagged.status_code == 201, tagged.text
    assert (await client.delete(f"{P}/features/{names['archived']}")).status_code == 202
    async with db.transaction() as conn:
        await conn.execute(
            t.feature_environment.delete().where(
                t.feature_environment.c.feature_name == names["fresh"],
                t.feature_environment.c.environment_name == "development",
            )
        )
    return names


def _calls(
    editor: Principal, limited: Principal, viewer: Principal
) -> list[tuple[Principal, str, str, bool]]:
    """(actor, flag role, environment, enabled), covering every branch of `set_feature_enabled`."""
    return [
        (editor, "alpha", "production", True),  # adds the default strategy, then enables
        (editor, "alpha", "production", True),  # no change
        (editor, "alpha", "production", False),
        (limited, "alpha", "development", True),  # no strategy there, no right to add one: fails
        (limited, "alpha", "development", False),  # no change, succeeds
        (editor, "fresh", "development", False),  # inserts the missing row, no event
        (limited, "fresh", "development", True),  # fails
        (editor, "fresh", "development", True),  # strategy + enabled
        (editor, "archived", "production", True),  # 404 archived
        (editor, "missing", "production", True),  # 404 no such flag
        (editor, "alpha", "staging", True),  # 404 environment
        (viewer, "alpha", "production", True),  # 403
        (editor, "alpha", "production", True),  # strategy still active: only enabled
        (limited, "alpha", "production", False),
    ]


async def _one_by_one(conn: AsyncConnection, actor: Principal, **call: Any) -> Any:
    try:
        async with conn.begin_nested():
            return await toggles.set_feature_enabled(conn, actor=actor, **call)
    except SwitchmanError as exc:
        return exc.message


async def _state(conn: AsyncConnection, names: dict[str, str]) -> dict[str, Any]:
    """Flag states, strategies and audit events of one copy, with its names replaced by their roles."""
    by_name = {name: role for role, name in names.items()}
    fe, fs, ev = t.feature_environment, t.feature_strategy, t.event
    states = sorted(
        (by_name[row.feature_name], row.environment_name, row.enabled)
        for row in await conn.execute(sa.select(fe).where(fe.c.feature_name.in_(by_name)))
    )
    strategies = sorted(
        (
            by_name[row.feature_name],
            row.environment_name,
            row.strategy_name,
            row.sort_order,
            row.disabled,
            {**row.parameters, "groupId": by_name[row.parameters["groupId"]]},
        )
        for row in await conn.execute(sa.select(fs).where(fs.c.feature_name.in_(by_name)))
    )
    audit = [
        (
            row.type,
            row.created_by,
            row.created_by_user_id,
            {key: value for key, value in (row.data or {}).items() if key != "id"}
            | (
                {"parameters": {**row.data["parameters"], "groupId": "*"}}
                if row.data and "parameters" in row.data
                else {}
            ),
            row.pre_data,
            row.tags,
            by_name[row.feature_name],
            row.project,
            row.environment,
        )
        for row in await conn.execute(
            sa.select(ev)
            .where(ev.c.feature_name.in_(by_name), ev.c.type.in_(TOGGLE_EVENTS))
            .order_by(ev.c.id)
        )
    ]
    return {"states": states, "strategies": strategies, "audit": audit}


async def test_a_batch_has_the_outcomes_and_effects_of_calls_one_by_one(
    client: httpx.AsyncClient, db: Database
) -> None:
    editor = await actor_with_role(client, db, EDITOR_ROLE)
    viewer = await actor_with_role(client, db, VIEWER_ROLE)
    limited = replace(editor, permissions=frozenset({UPDATE_FEATURE_ENVIRONMENT}))
    single, batched = await _copy(client, db), await _copy(client, db)
    calls = _calls(editor, limited, viewer)

    def normalised(names: dict[str, str]) -> Callable[[Any], Any]:
        return lambda outcome: outcome if not isinstance(outcome, str) else _replace_names(outcome, names)

    async with db.transaction() as conn:
        expected = [
            await _one_by_one(
                conn, actor, project="default", feature_name=single[role], environment=env, enabled=on
            )
            for actor, role, env, on in calls
        ]
    async with db.transaction() as conn:
        batch = toggles.ToggleBatch(conn)
        await batch.prepare([batched["alpha"], batched["fresh"]], ["default"])
        outcomes = []
        for actor, role, env, on in calls:
            try:
                outcomes.append(
                    await batch.set_enabled(
                        actor=actor,
                        project="default",
                        feature_name=batched[role],
                        environment=env,
                        enabled=on,
                    )
                )
            except SwitchmanError as exc:
                outcomes.append(exc.message)
        await batch.flush()

    assert [normalised(batched)(o) for o in outcomes] == [normalised(single)(o) for o in expected]
    assert any(isinstance(o, str) for o in expected) and True in expected and False in expected
    async with db.read() as conn:
        want, got = await _state(conn, single), await _state(conn, batched)
    assert got == want
    assert [event[0] for event in want["audit"]] == [
        "feature-strategy-add",
        "feature-environment-enabled",
        "feature-environment-disabled",
        "feature-strategy-add",
        "feature-environment-enabled",
        "feature-environment-enabled",
        "feature-environment-disabled",
    ]
    assert want["audit"][0][5] == [{"type": "simple", "value": "batch"}]


def _replace_names(text: str, names: dict[str, str]) -> str:
    for role, name in names.items():
        text = text.replace(name, role)
    return text
