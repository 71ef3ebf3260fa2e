"""EmbeddedFlagBackend: the FlagBackend the actions drive, on the real store, as real service accounts."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal, PrincipalKind
from switchman.db.engine import Database
from switchman.engine.actions import ToggleCommand
from switchman.flags.backend import FlagActionError, FlagBackend
from switchman.flags.embedded import EmbeddedFlagBackend
from tests.conftest import unique
from tests.factories import actor_with_role
from tests.service_accounts.helpers import EDITOR_ROLE, VIEWER_ROLE

P = "/api/admin/projects/default"


async def _flag(client: httpx.AsyncClient, tag: str | None = None) -> str:
    name = unique("emb")
    assert (await client.post(f"{P}/features", json={"name": name})).status_code == 201
    if tag is not None:
        tag_type, _, value = tag.partition(":")
        tagged = await client.post(
            f"/api/admin/features/{name}/tags", json={"type": tag_type, "value": value}
        )
        assert tagged.status_code == 201
    return name


async def _enabled(client: httpx.AsyncClient, name: str, env: str = "production") -> bool:
    state: bool = (await client.get(f"{P}/features/{name}/environments/{env}")).json()["enabled"]
    return state


async def test_set_enabled_as_editor_records_the_account(client: httpx.AsyncClient, db: Database) -> None:
    backend: FlagBackend = EmbeddedFlagBackend(db)
    actor = await actor_with_role(client, db, EDITOR_ROLE)
    name = await _flag(client)
    await backend.toggle(
        actor,
        ToggleCommand.one_flag(project="default", environment="production", feature_name=name, enabled=True),
    )
    await backend.toggle(
        actor,
        ToggleCommand.one_flag(project="default", environment="production", feature_name=name, enabled=True),
    )
    assert await _enabled(client, name)
    events = (await client.get(f"/api/admin/events/{name}")).json()["events"]
    assert [e["type"] for e in events] == [
        "feature-environment-enabled",
        "feature-strategy-add",
        "feature-created",
    ]
    assert {(e["createdBy"], e["createdByUserId"]) for e in events[:2]} == {(actor.username, actor.user_id)}
    await backend.close()


async def test_set_enabled_as_viewer_fails_with_permission_message(
    client: httpx.AsyncClient, db: Database
) -> None:
    backend = EmbeddedFlagBackend(db)
    actor = await actor_with_role(client, db, VIEWER_ROLE)
    name = await _flag(client)
    with pytest.raises(FlagActionError, match="UPDATE_FEATURE_ENVIRONMENT"):
        await backend.toggle(
            actor,
            ToggleCommand.one_flag(
                project="default", environment="production", feature_name=name, enabled=True
            ),
        )
    assert not await _enabled(client, name)


async def test_set_enabled_not_found_messages(client: httpx.AsyncClient, db: Database) -> None:
    backend = EmbeddedFlagBackend(db)
    actor = await actor_with_role(client, db, EDITOR_ROLE)
    name = await _flag(client)
    with pytest.raises(FlagActionError, match='There\'s no feature named "ghost" in project "default"'):
        await backend.toggle(
            actor,
            ToggleCommand.one_flag(
                project="default", environment="production", feature_name="ghost", enabled=True
            ),
        )
    with pytest.raises(FlagActionError, match=f"Could not find environment nope for feature: {name}"):
        await backend.toggle(
            actor,
            ToggleCommand.one_flag(project="default", environment="nope", feature_name=name, enabled=True),
        )


async def test_by_tag_no_match_is_empty_success(client: httpx.AsyncClient, db: Database) -> None:
    backend = EmbeddedFlagBackend(db)
    actor = await actor_with_role(client, db, EDITOR_ROLE)
    report = await backend.toggle(
        actor,
        ToggleCommand.by_tag(
            project="default", environment="production", enabled=True, tag=("simple", "none")
        ),
    )
    assert report.features == ()


async def test_by_tag_toggles_every_tagged_flag_and_skips_archived(
    client: httpx.AsyncClient, db: Database
) -> None:
    backend = EmbeddedFlagBackend(db)
    actor = await actor_with_role(client, db, EDITOR_ROLE)
    a, b = await _flag(client, "simple:checkout"), await _flag(client, "simple:checkout")
    untagged = await _flag(client)
    archived = await _flag(client, "simple:checkout")
    assert (await client.delete(f"{P}/features/{archived}")).status_code == 202
    report = await backend.toggle(
        actor,
        ToggleCommand.by_tag(
            project="default", environment="production", enabled=True, tag=("simple", "checkout")
        ),
    )
    assert sorted(report.features) == sorted([a, b])
    assert await _enabled(client, a) and await _enabled(client, b) and not await _enabled(client, untagged)
    report = await backend.toggle(
        actor,
        ToggleCommand.by_tag(
            project="default", environment="production", enabled=False, tag=("simple", "checkout")
        ),
    )
    assert sorted(report.features) == sorted([a, b])
    assert not await _enabled(client, a) and not await _enabled(client, b)


async def test_by_tag_mixed_success_keeps_the_successes(client: httpx.AsyncClient, db: Database) -> None:
    """An actor that may toggle but not create strategies: flags that already have a strategy turn on, the
    flag that would need the default strategy fails; the error lists only that flag, the others stay on."""
    backend = EmbeddedFlagBackend(db)
    actor = Principal(
        kind=PrincipalKind.SERVICE_ACCOUNT,
        user_id=4242,
        username="toggler",
        permissions=frozenset({UPDATE_FEATURE_ENVIRONMENT}),
    )
    ready_a, fresh, ready_b = [await _flag(client, "simple:wave") for _ in range(3)]
    for name in (ready_a, ready_b):  # give them a strategy, then leave them off
        assert (await client.post(f"{P}/features/{name}/environments/production/on")).status_code == 200
        assert (await client.post(f"{P}/features/{name}/environments/production/off")).status_code == 200
    with pytest.raises(FlagActionError) as failed:
        await backend.toggle(
            actor,
            ToggleCommand.by_tag(
                project="default", environment="production", enabled=True, tag=("simple", "wave")
            ),
        )
    message = str(failed.value)
    assert fresh in message and "CREATE_FEATURE_STRATEGY" in message and "1 of 3" in message
    assert ready_a not in message and ready_b not in message
    assert await _enabled(client, ready_a) and await _enabled(client, ready_b)
    assert not await _enabled(client, fresh)
    assert (await client.get(f"{P}/features/{fresh}/environments/production")).json()["strategies"] == []
    enabled_by_toggler = [
        e["featureName"]
        for e in (await client.get("/api/admin/events")).json()["events"]
        if e["type"] == "feature-environment-enabled" and e["createdBy"] == "toggler"
    ]
    assert sorted(enabled_by_toggler) == sorted([ready_a, ready_b])


async def test_by_tag_viewer_fails_even_without_flags(client: httpx.AsyncClient, db: Database) -> None:
    backend = EmbeddedFlagBackend(db)
    actor = await actor_with_role(client, db, VIEWER_ROLE)
    with pytest.raises(FlagActionError, match="UPDATE_FEATURE_ENVIRONMENT"):
        await backend.toggle(
            actor,
            ToggleCommand.by_tag(
                project="default", environment="production", enabled=True, tag=("simple", "x")
            ),
        )
    with pytest.raises(FlagActionError, match="nope"):
        await backend.toggle(
            await actor_with_role(client, db, EDITOR_ROLE),
            ToggleCommand.by_tag(project="nope", environment="production", enabled=True, tag=("simple", "x")),
        )


async def test_concurrent_turn_on_adds_one_strategy_and_one_event(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Eight simultaneous "on"s of one flag: one default strategy, one enable event (row lock on PostgreSQL,
    exclusive write transactions on SQLite)."""
    backend = EmbeddedFlagBackend(db)
    actor = await actor_with_role(client, db, EDITOR_ROLE)
    name = await _flag(client)
    await asyncio.gather(
        *(
            backend.toggle(
                actor,
                ToggleCommand.one_flag(
                    project="default", environment="production", feature_name=name, enabled=True
                ),
            )
            for _ in range(8)
        )
    )
    assert len((await client.get(f"{P}/features/{name}/environments/production")).json()["strategies"]) == 1
    types = [e["type"] for e in (await client.get(f"/api/admin/events/{name}")).json()["events"]]
    assert types == ["feature-environment-enabled", "feature-strategy-add", "feature-created"]
