"""`GET /api/client/features[/{name}]`: Unleash's client format, scoping, ETag/304 across processes."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from switchman.app import create_app
from switchman.config import Settings
from tests.client_api.helpers import by_name, client_token, features, set_enabled
from tests.conftest import ADMIN_TOKEN, assert_error, make_settings, unique
from tests.factories import make_flag, make_project
from tests.worker.conftest import Scenario, drain, toggle


async def test_payload_has_unleash_client_shape(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    on = await make_flag(client, description="new checkout", type="kill-switch")
    off = await make_flag(client)
    await set_enabled(client, on, True)
    token = await client_token(client, projects=["default"])

    body = await features(anon, token)

    assert list(body) == ["version", "features", "query", "meta"]
    assert body["version"] == 2
    assert body["features"] == [
        {
            "name": on,
            "type": "kill-switch",
            "enabled": True,
            "project": "default",
            "stale": False,
            "strategies": [
                {
                    "name": "flexibleRollout",
                    "constraints": [],
                    "parameters": {"groupId": on, "rollout": "100", "stickiness": "default"},
                    "variants": [],
                }
            ],
            "variants": [],
            "description": "new checkout",
            "impressionData": False,
        },
        {
            "name": off,
            "type": "release",
            "enabled": False,
            "project": "default",
            "stale": False,
            "strategies": [],
            "variants": [],
            "description": None,
            "impressionData": False,
        },
    ]
    # The same query object, hash and ETag form as Unleash 8.2.0 for a default:development token.
    assert body["query"] == {
        "project": ["default"],
        "environment": "development",
        "inlineSegmentConstraints": True,
    }
    assert body["meta"]["queryHash"] == "6ef7ec5a"
    assert body["meta"]["etag"] == f'"6ef7ec5a:{body["meta"]["revisionId"]}:v1"'


async def test_turned_off_flag_keeps_its_strategy_and_environment_comes_from_the_token(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    flag = await make_flag(client)
    await set_enabled(client, flag, True, environment="development")
    await set_enabled(client, flag, False, environment="development")
    dev = await client_token(client, environment="development", projects=["default"])
    prod = await client_token(client, environment="production", projects=["default"])

    dev_flag = by_name(await features(anon, dev))[flag]
    assert dev_flag["enabled"] is False and [s["name"] for s in dev_flag["strategies"]] == ["flexibleRollout"]
    # ?environment= cannot widen a token's environment
    prod_body = await features(anon, prod, environment="development")
    assert prod_body["query"]["environment"] == "production"
    assert by_name(prod_body)[flag] | {"strategies": []} == by_name(prod_body)[flag]
    assert by_name(prod_body)[flag]["enabled"] is False


async def test_project_scoping_and_archived_flags(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    other = await make_project(client)
    mine, theirs, archived = (
        await make_flag(client),
        await make_flag(client, project=other),
        await make_flag(client),
    )
    assert (await client.delete(f"/api/admin/projects/default/features/{archived}")).status_code == 202

    default_only = by_name(await features(anon, await client_token(client, projects=["default"])))
    assert mine in default_only and theirs not in default_only and archived not in default_only

    every = await features(anon, await client_token(client, projects=["*"]))
    assert "project" not in every["query"]
    assert {mine, theirs} <= set(by_name(every)) and archived not in by_name(every)

    # A `*` token may narrow by ?project=; a scoped token's projects override the query string.
    narrowed = await features(anon, await client_token(client, projects=["*"]), project=other)
    assert set(by_name(narrowed)) == {theirs} and narrowed["query"]["project"] == [other]
    scoped = await features(anon, await client_token(client, projects=[other]), project="default")
    assert set(by_name(scoped)) == {theirs} and scoped["query"]["project"] == [other]

    two = await features(anon, await client_token(client, projects=["default", other]))
    assert {mine, theirs} <= set(by_name(two)) and two["query"]["project"] == ["default", other]


async def test_name_prefix_and_tag_filters(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    prefix = unique("pfx")
    a, b, c = (
        await make_flag(client, name=f"{prefix}-a"),
        await make_flag(client, name=f"{prefix}-b"),
        await make_flag(client),
    )
    tagged = await client.post(f"/api/admin/features/{b}/tags", json={"type": "simple", "value": "sdk"})
    assert tagged.status_code == 201
    token = await client_token(client, projects=["*"])

    body = await features(anon, token, namePrefix=prefix)
    assert set(by_name(body)) == {a, b} and body["query"]["namePrefix"] == prefix
    body = await features(anon, token, tag="simple:sdk")
    assert set(by_name(body)) == {b} and body["query"]["tag"] == [["simple", "sdk"]]
    # `_` and `%` in a prefix are literal characters, not LIKE wildcards
    assert by_name(await features(anon, token, namePrefix=c.replace("-", "_"))) == {}

    bad = await anon.get("/api/client/features", headers={"Authorization": token}, params={"namePrefix": ""})
    assert_error(bad, 400, "BadDataError")
    bad = await anon.get("/api/client/features", headers={"Authorization": token}, params={"tag": "nocolon"})
    assert_error(bad, 400, "BadDataError")


async def test_client_spec_header_switches_to_segments(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    token = await client_token(client, projects=["default"])
    response = await anon.get(
        "/api/client/features", headers={"Authorization": token, "Unleash-Client-Spec": "5.1.0"}
    )
    body = response.json()
    assert body["segments"] == [] and body["query"]["inlineSegmentConstraints"] is False
    assert list(body) == ["version", "features", "query", "segments", "meta"]
    assert body["meta"]["queryHash"] == "1fc12c72"  # Unleash's hash for this query too
    for bad in ("v5", "5.x"):
        response = await anon.get(
            "/api/client/features", headers={"Authorization": token, "Unleash-Client-Spec": bad}
        )
        assert_error(response, 400, "BadDataError")


async def test_etag_304_and_change_after_a_toggle(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    flag = await make_flag(client)
    token = await client_token(client, projects=["default"])
    first = await anon.get("/api/client/features", headers={"Authorization": token})
    etag = first.headers["etag"]

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await anon.get(
            "/api/client/features", headers={"Authorization": token, "If-None-Match": header}
        )
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    stale = await anon.get(
        "/api/client/features", headers={"Authorization": token, "If-None-Match": '"nope:1:v1"'}
    )
    assert stale.status_code == 200

    # Tagging does not change what SDKs see: same ETag. Turning the flag on does.
    await client.post(f"/api/admin/features/{flag}/tags", json={"type": "simple", "value": "x1"})
    assert (
        await anon.get("/api/client/features", headers={"Authorization": token, "If-None-Match": etag})
    ).status_code == 304
    await set_enabled(client, flag, True)
    changed = await anon.get("/api/client/features", headers={"Authorization": token, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert by_name(changed.json())[flag]["enabled"] is True
    # A no-op toggle writes no event and keeps the ETag.
    await set_enabled(client, flag, True)
    same = await anon.get(
        "/api/client/features", headers={"Authorization": token, "If-None-Match": changed.headers["etag"]}
    )
    assert same.status_code == 304


async def test_toggle_by_the_worker_changes_the_etag(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, scenario: Scenario, worker: Any
) -> None:
    await scenario.add_set(
        client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1, environment="development")]
    )
    token = await client_token(client, projects=["default"])
    before = await anon.get("/api/client/features", headers={"Authorization": token})
    assert by_name(before.json())[scenario.feature]["enabled"] is False

    posted = await anon.post(
        f"/api/signal-endpoint/{scenario.endpoint_name}",
        json={"x": 1},
        headers={"Authorization": f"Bearer {scenario.token}"},
    )
    assert posted.status_code == 200
    assert await drain(worker) == 1

    after = await anon.get(
        "/api/client/features", headers={"Authorization": token, "If-None-Match": before.headers["etag"]}
    )
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert by_name(after.json())[scenario.feature]["enabled"] is True


async def _app_client(settings: Settings) -> tuple[FastAPI, Any]:
    application = create_app(settings)
    lifespan = application.router.lifespan_context(application)
    await lifespan.__aenter__()
    return application, lifespan


async def test_cached_payload_follows_changes_made_by_another_process(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, db_url: str
) -> None:
    """Two apps on one database (as two replicas): a change through one is served fresh by the other."""
    flag = await make_flag(client)
    token = await client_token(client, projects=["default"])
    assert by_name(await features(anon, token))[flag]["enabled"] is False  # cached in this app

    other_app, lifespan = await _app_client(make_settings(db_url))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other_app),
            base_url="http://replica",
            headers={"Authorization": ADMIN_TOKEN},
        ) as replica:
            await set_enabled(replica, flag, True)
    finally:
        await lifespan.__aexit__(None, None, None)

    assert by_name(await features(anon, token))[flag]["enabled"] is True


async def test_single_feature(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    flag, archived = await make_flag(client, description="d"), await make_flag(client)
    await set_enabled(client, flag, True)
    await client.delete(f"/api/admin/projects/default/features/{archived}")
    other = await make_project(client)
    elsewhere = await make_flag(client, project=other)
    token = await client_token(client, projects=["default"])
    headers = {"Authorization": token}

    one = await anon.get(f"/api/client/features/{flag}", headers=headers)
    assert one.status_code == 200
    assert one.json() == by_name(await features(anon, token))[flag]
    for missing in (archived, elsewhere, "does-not-exist"):
        body = assert_error(
            await anon.get(f"/api/client/features/{missing}", headers=headers), 404, "NotFoundError"
        )
        assert body["message"] == f"Could not find feature flag {missing}"


async def test_many_flags_and_projects_are_all_served(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    names = [await make_flag(client, name=f"{unique('bulk')}-{i}") for i in range(30)]
    for name in names[::3]:
        await set_enabled(client, name, True)
    body = await features(anon, await client_token(client, projects=["default"]))
    served = by_name(body)
    assert [n for n in names if n in served] == names  # creation order
    assert [n for n in names if served[n]["enabled"]] == names[::3]
    assert all(len(served[n]["strategies"]) == (1 if served[n]["enabled"] else 0) for n in names)


async def test_not_served_when_a_remote_unleash_is_the_flag_backend(db_url: str, db: Any) -> None:
    settings = make_settings(
        db_url,
        flag_backend="unleash",
        unleash_url="http://127.0.0.1:9",
        unleash_api_token="*:*.remote-secret",
    )
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://t") as anon,
    ):
        for path in ("/api/client/features", "/api/client/features/x"):
            body = assert_error(await anon.get(path, headers={"Authorization": "default:development.x"}), 404)
            assert "SWITCHMAN_FLAG_BACKEND=unleash" in body["message"]
        response = await anon.post("/api/client/register", json={}, headers={"Authorization": "x"})
        assert_error(response, 404, "NotFoundError")
