"""Create/update validation: one 400 `details` entry per problem with its JSON-pointer path, limits,
and name uniqueness (409)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchman.db.engine import Database
from tests.action_sets.helpers import PROJECT, World, create_set, insert_project
from tests.conftest import assert_error, make_settings
from tests.factories import running_app

BASE = f"/api/admin/projects/{PROJECT}/actions"


def _paths(response: httpx.Response) -> list[str]:
    body = assert_error(response, 400, "BadDataError")
    assert all(isinstance(d.get("message"), str) and d["message"] for d in body["details"])
    return [d["path"] for d in body["details"]]


def _params(**overrides: Any) -> dict[str, Any]:
    return {"project": PROJECT, "environment": "production", "featureName": "f", **overrides}


CASES: list[tuple[str, Any, str]] = [
    # (description, mutation applied to a valid body, expected path)
    ("name missing", lambda b: b.pop("name"), "/name"),
    ("name empty", lambda b: b.update(name=""), "/name"),
    ("name blank", lambda b: b.update(name="   "), "/name"),
    ("name too long", lambda b: b.update(name="n" * 256), "/name"),
    ("name not a string", lambda b: b.update(name=12), "/name"),
    ("name with NUL", lambda b: b.update(name="a\x00b"), "/name"),
    ("description too long", lambda b: b.update(description="d" * 10_001), "/description"),
    ("unknown top-level property", lambda b: b.update(extra=1), "/extra"),
    ("actorId missing", lambda b: b.pop("actorId"), "/actorId"),
    ("actorId zero", lambda b: b.update(actorId=0), "/actorId"),
    ("actorId as string", lambda b: b.update(actorId="1"), "/actorId"),
    ("actorId too large", lambda b: b.update(actorId=2**40), "/actorId"),
    ("actorId unknown", lambda b: b.update(actorId=999_999), "/actorId"),
    ("enabled not a boolean", lambda b: b.update(enabled="yes"), "/enabled"),
    ("match missing", lambda b: b.pop("match"), "/match"),
    ("unknown match property", lambda b: b["match"].update(extra=1), "/match/extra"),
    ("match.source wrong", lambda b: b["match"].update(source="webhook"), "/match/source"),
    ("match.sourceId fractional", lambda b: b["match"].update(sourceId=1.5), "/match/sourceId"),
    ("match.sourceId unknown", lambda b: b["match"].update(sourceId=999_999), "/match/sourceId"),
    ("match.payload missing", lambda b: b["match"].pop("payload"), "/match/payload"),
    ("match.payload not an object", lambda b: b["match"].update(payload=[1]), "/match/payload"),
    (
        "filter operator unknown",
        lambda b: b["match"]["payload"].update({"a.b": {"operator": "LIKE", "values": ["x"]}}),
        "/match/payload/a.b/operator",
    ),
    (
        "filter REGEX with a pattern RE2 refuses",
        lambda b: b["match"]["payload"].update({"a": {"operator": "REGEX", "value": "(a)\\1"}}),
        "/match/payload/a/value",
    ),
    (
        "filter NUM without a number",
        lambda b: b["match"]["payload"].update({"n": {"operator": "NUM_GT", "value": "five"}}),
        "/match/payload/n/value",
    ),
    (
        "filter IN without values",
        lambda b: b["match"]["payload"].update({"s": {"operator": "IN"}}),
        "/match/payload/s/values",
    ),
    (
        "filter with unknown property",
        lambda b: b["match"]["payload"].update({"s": {"operator": "IN", "values": ["x"], "foo": 1}}),
        "/match/payload/s/foo",
    ),
    (
        "filter key with a slash is escaped",
        lambda b: b["match"]["payload"].update({"a/b": {"operator": "SEMVER_EQ", "value": "v1"}}),
        "/match/payload/a~1b/value",
    ),
    ("actions missing", lambda b: b.pop("actions"), "/actions"),
    ("actions empty", lambda b: b.update(actions=[]), "/actions"),
    ("action not an object", lambda b: b.update(actions=[1]), "/actions/0"),
    ("action unknown property", lambda b: b["actions"][0].update(extra=1), "/actions/0/extra"),
    ("action type unknown", lambda b: b["actions"][0].update(action="DELETE_ALL"), "/actions/0/action"),
    ("action sortOrder zero", lambda b: b["actions"][0].update(sortOrder=0), "/actions/0/sortOrder"),
    ("action sortOrder missing", lambda b: b["actions"][0].pop("sortOrder"), "/actions/0/sortOrder"),
    (
        "action parameter missing",
        lambda b: b["actions"][0]["executionParams"].pop("featureName"),
        "/actions/0/executionParams/featureName",
    ),
    (
        "action in another project",
        lambda b: b["actions"][0]["executionParams"].update(project="other"),
        "/actions/0/executionParams/project",
    ),
    (
        "by-tag action with a malformed tag",
        lambda b: b.update(
            actions=[
                {
                    "action": "TOGGLE_FEATURES_ON_BY_TAG",
                    "sortOrder": 1,
                    "executionParams": {"project": PROJECT, "environment": "production", "tag": "notag"},
                }
            ]
        ),
        "/actions/0/executionParams/tag",
    ),
    (
        "execution parameter with NUL",
        lambda b: b["actions"][0]["executionParams"].update(extra="x\x00"),
        "/actions/0/executionParams/extra",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "path"), CASES, ids=[case[0] for case in CASES])
async def test_each_invalid_body_is_400_with_its_path(
    client: httpx.AsyncClient, world: World, case: str, mutate: Any, path: str
) -> None:
    body = world.body()
    mutate(body)
    assert path in _paths(await client.post(BASE, json=body)), case
    # update applies the same rules
    created = await create_set(client, world.body())
    assert path in _paths(await client.put(f"{BASE}/{created['id']}", json=body)), case


async def test_every_problem_is_reported_at_once(client: httpx.AsyncClient, world: World) -> None:
    body = world.body(actorId=999_999)
    body["match"]["sourceId"] = 999_999
    body["match"]["payload"] = {"x": {"operator": "NUM_EQ", "value": "NaN"}}
    body["actions"].append({"action": "NOPE", "sortOrder": 2, "executionParams": {}})
    body["actions"][0]["executionParams"]["project"] = "elsewhere"
    paths = _paths(await client.post(BASE, json=body))
    for expected in (
        "/actorId",
        "/match/sourceId",
        "/match/payload/x/value",
        "/actions/0/executionParams/project",
        "/actions/1/action",
    ):
        assert expected in paths
    assert (await client.get(BASE)).json() == {"actions": []}


async def test_integral_float_source_id_is_accepted(client: httpx.AsyncClient, world: World) -> None:
    body = world.body()
    body["match"]["sourceId"] = float(world.endpoint_id)
    created = await create_set(client, body)
    assert created["match"]["sourceId"] == world.endpoint_id


async def test_body_that_is_not_an_object_or_not_json_is_400(client: httpx.AsyncClient) -> None:
    assert_error(await client.post(BASE, json=[1, 2]), 400, "BadDataError")
    response = await client.post(BASE, content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(response, 400, "BadDataError")


async def test_non_json_content_type_is_415(client: httpx.AsyncClient, world: World) -> None:
    response = await client.post(BASE, content=b"name=x", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "ContentTypeError")


# --- names -------------------------------------------------------------------------------------------


async def test_duplicate_name_in_project_is_409_on_create(client: httpx.AsyncClient, world: World) -> None:
    created = await create_set(client, world.body())
    body = assert_error(
        await client.post(BASE, json=world.body(name=created["name"])), 409, "NameExistsError"
    )
    assert created["name"] in body["message"]


async def test_duplicate_name_is_409_on_update(client: httpx.AsyncClient, world: World) -> None:
    first = await create_set(client, world.body())
    second = await create_set(client, world.body())
    response = await client.put(f"{BASE}/{second['id']}", json=world.body(name=first["name"]))
    assert_error(response, 409, "NameExistsError")
    # keeping its own name is fine
    kept = await client.put(f"{BASE}/{second['id']}", json=world.body(name=second["name"]))
    assert kept.status_code == 200, kept.text


async def test_same_name_in_another_project_is_allowed(
    client: httpx.AsyncClient, world: World, db: Database
) -> None:
    created = await create_set(client, world.body())
    other = await insert_project(db)
    body = world.body(name=created["name"])
    for action in body["actions"]:
        action["executionParams"]["project"] = other
    response = await client.post(f"/api/admin/projects/{other}/actions", json=body)
    assert response.status_code == 201, response.text


# --- limits ------------------------------------------------------------------------------------------


@pytest.fixture
async def limited(db_url: str, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        db_url,
        action_sets_per_project_limit=2,
        action_set_actions_limit=2,
        action_set_filters_limit=2,
        action_set_filter_values_limit=3,
    )
    async with running_app(settings) as (_app, http):
        yield http


def _limit_message(response: httpx.Response, resource: str, limit: int) -> None:
    body = assert_error(response, 400, "ExceedsLimitError")
    assert body["message"] == (
        f"Failed to create {resource}. You can't create more than the established limit of {limit}."
    )


async def test_action_sets_per_project_limit(limited: httpx.AsyncClient, world: World) -> None:
    await create_set(limited, world.body())
    await create_set(limited, world.body())
    _limit_message(await limited.post(BASE, json=world.body()), "action set", 2)


async def test_actions_limit_on_create_and_update(limited: httpx.AsyncClient, world: World) -> None:
    three = [{"action": "TOGGLE_FEATURE_ON", "sortOrder": n, "executionParams": _params()} for n in (1, 2, 3)]
    _limit_message(await limited.post(BASE, json=world.body(actions=three)), "action", 2)
    created = await create_set(limited, world.body(actions=three[:2]))
    _limit_message(await limited.put(f"{BASE}/{created['id']}", json=world.body(actions=three)), "action", 2)


async def test_filters_limit_on_create_and_update(limited: httpx.AsyncClient, world: World) -> None:
    body = world.body()
    body["match"]["payload"] = {f"k{n}": {"operator": "IN", "values": ["x"]} for n in range(3)}
    _limit_message(await limited.post(BASE, json=body), "filter", 2)
    created = await create_set(limited, world.body())
    _limit_message(await limited.put(f"{BASE}/{created['id']}", json=body), "filter", 2)


async def test_filter_values_limit_on_create_and_update(limited: httpx.AsyncClient, world: World) -> None:
    body = world.body()
    body["match"]["payload"] = {"k": {"operator": "IN", "values": ["a", "b", "c", "d"]}}
    _limit_message(await limited.post(BASE, json=body), "filter value", 3)
    created = await create_set(limited, world.body())
    _limit_message(await limited.put(f"{BASE}/{created['id']}", json=body), "filter value", 3)
    body["match"]["payload"]["k"]["values"] = ["a", "b", "c"]
    assert (await limited.post(BASE, json=body)).status_code == 201
