"""`GET /actions/config`: the four action definitions, options taken from the flag store."""

from __future__ import annotations

import httpx

from switchman.db.engine import Database
from tests.action_sets.helpers import PROJECT, insert_feature, insert_project
from tests.conftest import unique

ACTIONS = (
    "TOGGLE_FEATURE_ON",
    "TOGGLE_FEATURE_OFF",
    "TOGGLE_FEATURES_ON_BY_TAG",
    "TOGGLE_FEATURES_OFF_BY_TAG",
)


def _parameter(definition: dict[str, object], name: str) -> dict[str, object]:
    parameters = definition["parameters"]
    assert isinstance(parameters, list)
    [found] = [p for p in parameters if p["name"] == name]
    return found  # type: ignore[no-any-return]


async def test_config_lists_the_four_definitions(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/admin/projects/{PROJECT}/actions/config")
    assert response.status_code == 200, response.text
    config = response.json()
    assert tuple(config) == ACTIONS
    for key in ACTIONS:
        definition = config[key]
        assert set(definition) == {"label", "description", "category", "permissions", "parameters"}
        assert definition["permissions"] == ["UPDATE_FEATURE_ENVIRONMENT"]
        names = [p["name"] for p in definition["parameters"]]
        assert names == ["project", "environment", "tag" if "BY_TAG" in key else "featureName"]
        assert all(p["optional"] is False for p in definition["parameters"])
        assert _parameter(definition, "project")["type"] == "hidden"
        assert "options" not in _parameter(definition, "project")


async def test_options_reflect_the_projects_environments_flags_and_tags(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = await insert_project(db)
    await insert_feature(db, name="zeta", tags=(("simple", "checkout"), ("team", "payments")))
    await insert_feature(db, name="alpha", tags=(("simple", "checkout"),))
    await insert_feature(db, name="old", tags=(("simple", "legacy"),), archived=True)
    await insert_feature(db, name=unique("elsewhere"), project=other, tags=(("simple", "other"),))

    config = (await client.get(f"/api/admin/projects/{PROJECT}/actions/config")).json()
    on = config["TOGGLE_FEATURE_ON"]
    assert _parameter(on, "environment")["options"] == ["development", "production"]
    assert _parameter(on, "featureName")["options"] == ["alpha", "zeta"]
    by_tag = config["TOGGLE_FEATURES_OFF_BY_TAG"]
    assert _parameter(by_tag, "tag")["options"] == ["simple:checkout", "team:payments"]
    assert _parameter(by_tag, "environment")["type"] == "select"

    other_config = (await client.get(f"/api/admin/projects/{other}/actions/config")).json()
    assert _parameter(other_config["TOGGLE_FEATURE_OFF"], "environment")["options"] == ["production"]
    assert _parameter(other_config["TOGGLE_FEATURES_ON_BY_TAG"], "tag")["options"] == ["simple:other"]


async def test_config_is_not_taken_as_an_action_set_id(client: httpx.AsyncClient) -> None:
    # PUT/DELETE on `config` reach the `{id}` routes and answer 404, never 422/500.
    response = await client.delete(f"/api/admin/projects/{PROJECT}/actions/config")
    assert response.status_code == 404
    assert (await client.get(f"/api/admin/projects/{PROJECT}/actions/config")).status_code == 200
