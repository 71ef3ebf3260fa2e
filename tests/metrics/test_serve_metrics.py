"""`GET /metrics` on `serve`: counters move with real ingestion and a real worker drain (both databases),
labels stay bounded, the bearer token protects the scrape, and the switch turns recording off."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from switchman import metrics
from switchman.runtime import Runtime
from switchman.worker.loop import SignalWorker
from tests.conftest import ADMIN_TOKEN, assert_error, make_settings, unique
from tests.factories import http_client, list_events, running_app
from tests.metrics.helpers import delta, scrape
from tests.worker.conftest import Scenario, build_scenario, drain, toggle

RECEIVED = "switchman_signals_received_total"
CALL = "/api/signal-endpoint/{name}"


async def test_ingestion_and_a_drain_move_the_counters(
    client: httpx.AsyncClient, app: FastAPI, worker: SignalWorker
) -> None:
    scenario = await build_scenario(client)
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    before = await scrape(client)
    assert before.value("switchman_signal_queue_depth") == 0  # a clean database

    await scenario.send(client, {"alert": "firing"})
    await scenario.send(client, {"alert": "firing again"})
    queued = await scrape(client)
    assert delta(before, queued, RECEIVED, endpoint=scenario.endpoint_name, outcome="accepted") == 2
    assert queued.value("switchman_signal_queue_depth") == 2
    assert queued.value("switchman_signal_oldest_pending_age_seconds") >= 0
    assert delta(before, queued, "switchman_http_request_duration_seconds_count", route=CALL) == 2

    assert await drain(worker) == 2
    after = await scrape(client)
    assert after.value("switchman_signal_queue_depth") == 0
    assert after.value("switchman_signal_oldest_pending_age_seconds") == 0
    assert delta(queued, after, "switchman_signal_processing_seconds_count") == 2
    runs = {"project": "default", "action_set": str(set_id)}
    assert delta(queued, after, "switchman_action_runs_total", **runs, state="success") == 2
    assert (
        delta(queued, after, "switchman_flag_backend_calls_total", backend="embedded", outcome="success") == 2
    )
    [event, _] = await list_events(client, set_id)
    assert event["state"] == "success"


async def test_a_failed_run_and_a_refused_flag_call_are_counted(
    client: httpx.AsyncClient, worker: SignalWorker
) -> None:
    scenario = await build_scenario(client)
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", unique("no-such-flag"), 1)])
    before = await scrape(client)
    await scenario.send(client, {"alert": "firing"})
    assert await drain(worker) == 1
    after = await scrape(client)
    failed = {"project": "default", "action_set": str(set_id), "state": "failed"}
    assert delta(before, after, "switchman_action_runs_total", **failed) == 1
    assert (
        delta(before, after, "switchman_flag_backend_calls_total", backend="embedded", outcome="refused") == 1
    )


async def test_every_outcome_of_a_call_is_counted_and_unknown_names_stay_out_of_the_labels(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    scenario: Scenario = await build_scenario(client)
    name, token = scenario.endpoint_name, scenario.token
    url = f"/api/signal-endpoint/{name}"
    stranger = unique("attacker-chosen")
    bearer = {"Authorization": f"Bearer {token}"}
    before = await scrape(client)

    assert (await anon.post(f"/api/signal-endpoint/{stranger}", json={}, headers=bearer)).status_code == 404
    assert (await anon.post(url, json={"a": 1}, headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await anon.post(url, json={"a": 1})).status_code == 401
    assert (await anon.post(url, content=b"[1, 2", headers=bearer)).status_code == 400
    assert (await anon.post(url, content=b"x" * (200 * 1024), headers=bearer)).status_code == 413
    first = {**bearer, "Idempotency-Key": unique("delivery")}
    assert (await anon.post(url, json={"n": 1}, headers=first)).status_code == 200
    assert (await anon.post(url, json={"n": 1}, headers=first)).status_code == 200
    assert (await anon.get(url)).status_code == 405
    after = await scrape(client)

    counted = {
        (name, "unauthorized"): 2,
        (name, "invalid"): 1,
        (name, "too_large"): 1,
        (name, "accepted"): 1,
        (name, "duplicate"): 1,
        (name, "method_not_allowed"): 1,
        (metrics.UNKNOWN_ENDPOINT, "not_found"): 1,
    }
    for (endpoint, outcome), expected in counted.items():
        assert delta(before, after, RECEIVED, endpoint=endpoint, outcome=outcome) == expected, outcome
    assert stranger not in after.text  # no label, no route: the name a caller made up appears nowhere
    assert delta(before, after, "switchman_http_request_duration_seconds_count", route=CALL) == 8


async def test_rate_limited_calls_are_counted_under_a_known_name_only(db_url: str, db: object) -> None:
    settings = make_settings(db_url, signal_rate_limit_per_second=1, signal_rate_limit_scope="process")
    async with running_app(settings) as (_app, client):
        scenario = await build_scenario(client)
        stranger = unique("made-up")
        before = await scrape(client)
        statuses = [
            (
                await client.post(
                    f"/api/signal-endpoint/{scenario.endpoint_name}",
                    json={},
                    headers={"Authorization": f"Bearer {scenario.token}"},
                )
            ).status_code
            for _ in range(3)
        ]
        strangers = [
            (await client.post(f"/api/signal-endpoint/{stranger}", json={})).status_code for _ in range(3)
        ]
        after = await scrape(client)
    assert statuses[0] == 200 and statuses.count(429) >= 1
    assert strangers[0] == 404 and strangers.count(429) >= 1
    limited = delta(before, after, RECEIVED, endpoint=scenario.endpoint_name, outcome="rate_limited")
    assert limited == statuses.count(429)
    unknown = delta(before, after, RECEIVED, endpoint=metrics.UNKNOWN_ENDPOINT, outcome="rate_limited")
    assert unknown == strangers.count(429)
    assert stranger not in after.text


async def test_requests_are_labelled_by_route_template_and_unknown_paths_by_one_value(
    client: httpx.AsyncClient,
) -> None:
    scenario = await build_scenario(client)
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    made_up = unique("nowhere")
    before = await scrape(client)
    assert (await client.get(f"/api/admin/projects/default/features/{scenario.feature}")).status_code == 200
    await list_events(client, set_id)  # the events listing's fast path
    assert (await client.get(f"/api/{made_up}")).status_code == 404
    assert (await client.request("BREW", "/api/admin/projects")).status_code == 405
    after = await scrape(client)

    count = "switchman_http_request_duration_seconds_count"
    feature = "/api/admin/projects/{projectId}/features/{featureName}"
    assert delta(before, after, count, method="GET", route=feature, status="200") == 1
    events = "/api/admin/projects/{projectId}/actions/{id}/events"
    assert delta(before, after, count, method="GET", route=events, status="200") == 1
    assert delta(before, after, count, method="GET", route=metrics.UNMATCHED_ROUTE, status="404") == 1
    assert delta(before, after, count, method=metrics.OTHER_METHOD) == 1
    assert made_up not in after.text and "BREW" not in after.text


async def test_the_metrics_route_is_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert "/metrics" not in document["paths"]


async def test_a_token_protects_the_scrape(db_url: str, db: object) -> None:
    secret = "metrics-" + unique("secret")
    settings = make_settings(db_url, metrics_token=secret)
    async with running_app(settings) as (app, _client), http_client(app, authorization=None) as anon:
        missing = await anon.get("/metrics")
        assert_error(missing, 401, "UnauthorizedError")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert secret not in missing.text
        assert_error(await anon.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401)
        assert_error(await anon.get("/metrics", headers={"Authorization": secret}), 401)  # no scheme
        assert_error(await anon.get("/metrics", headers={"Authorization": ADMIN_TOKEN}), 401)
        allowed = await scrape(anon, Authorization=f"Bearer {secret}")
        assert "switchman_signal_queue_depth" in allowed.sample_names()


async def test_metrics_off_records_nothing_and_serves_no_scrape(db_url: str, db: object) -> None:
    try:
        async with running_app(make_settings(db_url, metrics_enabled=False)) as (app, client):
            scenario = await build_scenario(client)
            sample = {"endpoint": scenario.endpoint_name, "outcome": "accepted"}
            before = metrics.REGISTRY.get_sample_value(RECEIVED, sample) or 0.0
            await scenario.send(client, {"alert": "firing"})
            assert (metrics.REGISTRY.get_sample_value(RECEIVED, sample) or 0.0) == before
            assert_error(await client.get("/metrics"), 404, "NotFoundError")
            runtime: Runtime = app.state.runtime
            assert runtime.settings.metrics_enabled is False
    finally:
        metrics.configure(enabled=True)
