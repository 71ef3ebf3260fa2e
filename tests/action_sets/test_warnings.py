"""Warnings of a valid action set: `GET …/actions/{id}/warnings`, `POST …/actions/validate`, the explain
answer, the create/update headers — while Unleash's own bodies stay exactly Unleash's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, get_args

import httpx
import pytest
import sqlalchemy as sa

from switchman.action_sets.schemas import ActionSetWarningSchema
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.engine.operators import OPERATOR_REFERENCE, SUPPORTED_OPERATORS
from tests.action_sets.founding import assert_valid
from tests.action_sets.helpers import PROJECT, World, create_set, insert_feature, insert_signal
from tests.conftest import assert_error, unique

BASE = f"/api/admin/projects/{PROJECT}/actions"
ALERTMANAGER = {"status": "firing", "alerts": [{"labels": {"severity": "critical", "service": "checkout"}}]}


def _body(world: World, filters: dict[str, Any], feature: str) -> dict[str, Any]:
    return world.body(
        match={"source": "signal-endpoint", "sourceId": world.endpoint_id, "payload": filters},
        actions=[
            {
                "action": "TOGGLE_FEATURE_OFF",
                "sortOrder": 1,
                "executionParams": {"project": PROJECT, "environment": "production", "featureName": feature},
            }
        ],
    )


async def test_a_key_spelt_with_a_dotted_index_is_warned_with_the_key_that_occurs(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    feature = unique("flag")
    await insert_feature(db, name=feature)
    await insert_signal(db, source_id=world.endpoint_id, payload=ALERTMANAGER)
    body = _body(world, {"alerts.0.labels.severity": {"operator": "IN", "values": ["critical"]}}, feature)
    response = await client.post(BASE, json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    assert "warnings" not in created  # Unleash's actionsSchema is additionalProperties: false
    assert response.headers["Switchman-Warnings"] == "1"
    assert (
        response.headers["Link"]
        == f'</api/admin/projects/{PROJECT}/actions/{created["id"]}/warnings>; rel="describedby"'
    )

    found = await client.get(f"{BASE}/{created['id']}/warnings")
    assert found.status_code == 200, found.text
    assert found.json() == {
        "warnings": [
            {
                "path": "/match/payload/alerts.0.labels.severity",
                "code": "unknown-key",
                "message": "the key 'alerts.0.labels.severity' did not occur in the recent signals of this "
                "action set's source; did you mean 'alerts[0].labels.severity'?",
            }
        ],
        "suggestedKeys": ["status", "alerts[0].labels.severity", "alerts[0].labels.service"],
    }


async def test_a_set_without_findings_has_no_header_and_an_empty_list(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    feature = unique("flag")
    await insert_feature(db, name=feature)
    await insert_signal(db, source_id=world.endpoint_id, payload=ALERTMANAGER)
    body = _body(world, {"alerts[0].labels.severity": {"operator": "IN", "values": ["critical"]}}, feature)
    response = await client.post(BASE, json=body)
    assert response.status_code == 201
    assert "Switchman-Warnings" not in response.headers and "Link" not in response.headers
    found = (await client.get(f"{BASE}/{response.json()['id']}/warnings")).json()
    assert found["warnings"] == []


async def test_in_with_no_values_is_accepted_as_in_unleash_and_warned(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    feature = unique("flag")
    await insert_feature(db, name=feature)
    body = _body(world, {"status": {"operator": "IN", "values": []}}, feature)
    response = await client.post(BASE, json=body)
    assert response.status_code == 201, response.text
    assert response.json()["match"]["payload"] == {"status": {"operator": "IN", "values": []}}
    [warning] = (await client.get(f"{BASE}/{response.json()['id']}/warnings")).json()["warnings"]
    assert warning["code"] == "empty-values"
    assert warning["message"] == "IN with an empty values list never holds, so this action set can never fire"
    # before any signal, keys are not checked (nothing known yet)
    explained = await client.post(
        f"{BASE}/{response.json()['id']}/explain", json={"payload": {"status": "x"}}
    )
    assert explained.json()["matched"] is False
    assert [w["code"] for w in explained.json()["warnings"]] == ["empty-values"]
    assert explained.json()["suggestedKeys"] == []


async def test_update_answers_with_the_header_too(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    feature = unique("flag")
    await insert_feature(db, name=feature)
    created = await create_set(
        client, _body(world, {"status": {"operator": "IN", "values": ["firing"]}}, feature)
    )
    changed = _body(
        world, {"status": {"operator": "IN", "values": ["firing"], "caseInsensitive": True}}, feature
    )
    response = await client.put(f"{BASE}/{created['id']}", json=changed)
    assert response.status_code == 200, response.text
    assert response.headers["Switchman-Warnings"] == "1"
    assert response.json()["match"]["payload"]["status"]["caseInsensitive"] is True


@pytest.mark.parametrize(("archived", "code"), [(True, "flag-archived"), (None, "flag-missing")])
async def test_a_missing_or_archived_flag_is_warned(
    client: httpx.AsyncClient, world: World, db: Database, archived: bool | None, code: str
) -> None:
    feature = unique("flag")
    if archived is not None:
        await insert_feature(db, name=feature, archived=archived)
    created = await create_set(client, _body(world, {}, feature))
    [warning] = (await client.get(f"{BASE}/{created['id']}/warnings")).json()["warnings"]
    assert (warning["path"], warning["code"]) == ("/actions/0/executionParams/featureName", code)
    assert feature in warning["message"]


async def test_a_tag_no_flag_carries_is_warned(client: httpx.AsyncClient, world: World, db: Database) -> None:
    body = world.body(
        actions=[
            {
                "action": "TOGGLE_FEATURES_OFF_BY_TAG",
                "sortOrder": 1,
                "executionParams": {"project": PROJECT, "environment": "production", "tag": "simple:nobody"},
            }
        ]
    )
    created = await create_set(client, body)
    [warning] = (await client.get(f"{BASE}/{created['id']}/warnings")).json()["warnings"]
    assert warning["code"] == "tag-unused"
    await insert_feature(db, name=unique("flag"), tags=(("simple", "nobody"),))
    assert (await client.get(f"{BASE}/{created['id']}/warnings")).json()["warnings"] == []


async def test_archiving_a_flag_an_action_set_uses_is_logged_and_shown_on_the_set(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    feature = unique("flag")
    made = await client.post(f"/api/admin/projects/{PROJECT}/features", json={"name": feature})
    assert made.status_code == 201, made.text
    created = await create_set(client, _body(world, {}, feature))
    assert (await client.get(f"{BASE}/{created['id']}/warnings")).json()["warnings"] == []
    with caplog.at_level(logging.WARNING, logger="switchman.flags.router"):
        archived = await client.delete(f"/api/admin/projects/{PROJECT}/features/{feature}")
    assert archived.status_code == 202  # Unleash's answer, unchanged
    [record] = [r for r in caplog.records if r.name == "switchman.flags.router"]
    assert record.levelno == logging.WARNING
    assert (
        f"flag {feature!r} of project {PROJECT!r} was archived while action sets act on it"
        in record.getMessage()
    )
    assert f"{created['id']} ({created['name']!r})" in record.getMessage()
    [warning] = (await client.get(f"{BASE}/{created['id']}/warnings")).json()["warnings"]
    assert warning["code"] == "flag-archived"


async def test_validate_answers_like_create_but_stores_nothing(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    await insert_signal(db, source_id=world.endpoint_id, payload=ALERTMANAGER)
    body = _body(
        world, {"alerts.0.labels.severity": {"operator": "IN", "values": ["critical"]}}, unique("flag")
    )
    response = await client.post(f"{BASE}/validate", json=body)
    assert response.status_code == 200, response.text
    assert [w["code"] for w in response.json()["warnings"]] == ["unknown-key", "flag-missing"]
    assert response.json()["suggestedKeys"][0] == "status"
    async with db.read() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.action_set)) == 0
    invalid = await client.post(f"{BASE}/validate", json={**body, "actorId": 999_999})
    assert_error(invalid, 400, "BadDataError")
    assert invalid.json()["details"] == [{"path": "/actorId", "message": "no service account with id 999999"}]


async def test_warnings_of_an_unknown_set_or_project_are_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"{BASE}/999999/warnings"), 404, "NotFoundError")
    assert_error(await client.get("/api/admin/projects/nope/actions/1/warnings"), 404, "NotFoundError")
    assert_error(await client.get(f"{BASE}/abc/warnings"), 404, "NotFoundError")


async def test_the_events_listing_stays_founding_valid(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(
        client, _body(world, {"status": {"operator": "NOT_IN", "values": []}}, unique("f"))
    )
    listing = await client.get(f"{BASE}/{created['id']}/events")
    assert listing.status_code == 200
    assert_valid(listing.json())


def test_every_operator_and_warning_code_is_documented_with_an_example() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "filters.md").read_text()
    for operator, (meaning, example) in OPERATOR_REFERENCE.items():
        assert f"| `{operator}` | {meaning} | `{example}` |" in doc
    assert set(OPERATOR_REFERENCE) == SUPPORTED_OPERATORS
    codes = ActionSetWarningSchema.model_fields["code"].annotation
    for code in get_args(codes):
        assert f"| `{code}` |" in doc


async def test_the_filter_schema_documents_every_operator(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]
    description = schema["createActionsSchema"]["properties"]["match"]
    match = schema[description["$ref"].rsplit("/", 1)[1]] if "$ref" in description else description
    text = match["properties"]["payload"]["description"]
    for operator, (meaning, example) in OPERATOR_REFERENCE.items():
        assert f"- `{operator}`: {meaning}; e.g. `{example}`" in text
