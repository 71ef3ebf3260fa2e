"""The web console over HTTP, on both databases (ADR 0026): sign-in and sessions, CSRF, CSP, escaping,
permissions, and each view rendering from the services."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from switchman.runtime import Runtime
from switchman.signal_endpoints.queue import record_failure
from switchman.timeutil import utcnow
from switchman.worker.loop import SignalWorker
from tests.conftest import ADMIN_TOKEN
from tests.console.conftest import csrf_of, personal_token, sign_in
from tests.factories import send_signal
from tests.worker.conftest import Scenario, drain, toggle

VIEWS = [
    "/ui/",
    "/ui/signal-endpoints",
    "/ui/actions",
    "/ui/events/failed",
    "/ui/flags",
    "/ui/service-accounts",
]


async def test_the_root_and_every_view_need_a_session(browser: httpx.AsyncClient) -> None:
    root = await browser.get("/")
    assert root.status_code == 307 and root.headers["location"] == "/ui/"
    for path in VIEWS:
        answer = await browser.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/ui/sign-in", path
    fragment = await browser.get("/ui/overview/stats", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"] == "/ui/sign-in"


async def test_sign_in_sets_a_strict_http_only_session_and_sign_out_ends_it(
    browser: httpx.AsyncClient,
) -> None:
    form = await browser.get("/ui/sign-in")
    assert form.status_code == 200
    assert 'type="password"' in form.text and ">API token<" in form.text and ">Sign in<" in form.text
    signed = await sign_in(browser, ADMIN_TOKEN)
    assert signed.status_code == 303
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("switchman_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert ADMIN_TOKEN not in cookie
    overview = await browser.get("/ui/")
    assert overview.status_code == 200 and "Overview" in overview.text
    assert ADMIN_TOKEN not in overview.text and "test-admin-secret" not in overview.text
    for path in VIEWS:
        page = await browser.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
        assert "<script>" not in page.text and " style=" not in page.text and " onclick=" not in page.text
    out = await browser.post("/ui/sign-out", data={"csrf_token": csrf_of(overview.text)})
    assert out.status_code == 303 and out.headers["location"] == "/ui/sign-in"
    assert (await browser.get("/ui/")).status_code == 303


@pytest.mark.parametrize("token", ["*:*.not-a-token", "", "default:development.not-an-sdk-token"])
async def test_a_wrong_token_is_refused(browser: httpx.AsyncClient, token: str) -> None:
    answer = await sign_in(browser, token)
    assert answer.status_code == 401
    assert "was not accepted" in answer.text
    assert "switchman_session" not in answer.headers.get("set-cookie", "")


async def test_an_sdk_token_cannot_sign_in(client: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/admin/api-tokens", json={"tokenName": "sdk", "type": "client", "environment": "development"}
    )
    assert created.status_code == 201, created.text
    assert (await sign_in(browser, created.json()["secret"])).status_code == 401


async def test_the_sign_in_form_needs_its_own_csrf_token(browser: httpx.AsyncClient) -> None:
    await browser.get("/ui/sign-in")
    forged = await browser.post("/ui/sign-in", data={"csrf_token": "forged", "token": ADMIN_TOKEN})
    assert forged.status_code == 403
    assert (await browser.get("/ui/")).status_code == 303


async def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for data, headers in (({"name": "forged-endpoint"}, {}), ({"name": "forged-endpoint", "csrf_token": "x"}, {}),
                          ({"name": "forged-endpoint"}, {"X-CSRF-Token": "x"})):  # fmt: skip
        answer = await admin_browser.post("/ui/signal-endpoints", data=data, headers=headers)
        assert answer.status_code == 403 and "nothing was changed" in answer.text
    listed = (await client.get("/api/admin/signal-endpoints")).json()["signalEndpoints"]
    assert all(e["name"] != "forged-endpoint" for e in listed)
    # The same request with the page's token goes through.
    page = await admin_browser.get("/ui/signal-endpoints")
    created = await admin_browser.post(
        "/ui/signal-endpoints", data={"name": "real-one", "csrf_token": csrf_of(page.text)}
    )
    assert created.status_code == 303 and created.headers["location"].startswith("/ui/signal-endpoints/")


async def test_an_endpoint_its_token_shown_once_and_its_signals_escaped(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    page = await admin_browser.get("/ui/signal-endpoints")
    csrf = csrf_of(page.text)
    created = await admin_browser.post(
        "/ui/signal-endpoints", data={"name": "apm-console", "csrf_token": csrf}
    )
    endpoint_path = created.headers["location"]
    endpoint_id = int(endpoint_path.rsplit("/", 1)[1])
    shown = await admin_browser.post(f"{endpoint_path}/tokens", data={"name": "alerts", "csrf_token": csrf})
    assert shown.status_code == 200 and "it is not shown again" in shown.text
    secret = shown.text.split('id="new-secret">')[1].split("<")[0]
    assert secret.startswith("signal_") and f"Bearer {secret}" in shown.text  # the ready-to-paste curl
    assert secret not in (await admin_browser.get(endpoint_path)).text  # once
    hostile = {"alert": {"status": "<script>alert('x')</script>", "name": '"><img src=x onerror=alert(1)>'}}
    await send_signal(client, "apm-console", secret, hostile)
    signals = await admin_browser.get(f"{endpoint_path}/signals")
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in signals.text
    assert "<script>" not in signals.text and "<img" not in signals.text
    filtered = await admin_browser.get(f"{endpoint_path}/signals", params={"token": "999999"})
    assert "No signal yet." in filtered.text
    off = await admin_browser.post(
        f"/ui/signal-endpoints/{endpoint_id}/disable", headers={"X-CSRF-Token": csrf}
    )
    assert off.status_code == 200 and 'aria-pressed="false"' in off.text
    listed = (await client.get("/api/admin/signal-endpoints")).json()["signalEndpoints"]
    assert next(e for e in listed if e["id"] == endpoint_id)["enabled"] is False


async def test_a_viewer_sees_but_cannot_change(client: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    _account, secret, _token = await personal_token(client, role=3)  # Viewer
    assert (await sign_in(browser, secret)).status_code == 303
    page = await browser.get("/ui/signal-endpoints")
    assert page.status_code == 200 and "(read only)" in page.text
    assert "Create endpoint" not in page.text
    refused = await browser.post(
        "/ui/signal-endpoints", data={"name": "by-viewer", "csrf_token": csrf_of(page.text)}
    )
    assert refused.status_code == 403
    listed = (await client.get("/api/admin/signal-endpoints")).json()["signalEndpoints"]
    assert all(e["name"] != "by-viewer" for e in listed)


async def test_a_deleted_token_ends_its_sessions(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    account, secret, token_id = await personal_token(client, role=1)
    assert (await sign_in(browser, secret)).status_code == 303
    assert (await browser.get("/ui/")).status_code == 200
    deleted = await client.delete(f"/api/admin/service-account/{account}/token/{token_id}")
    assert deleted.status_code == 200, deleted.text
    assert (await browser.get("/ui/")).status_code == 303


async def test_runs_flags_and_failures_render(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    ok = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    broken = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", "no-such-flag", 1)])
    signal_id = await scenario.send(client, {"n": "<b>bold</b>"})
    await drain(worker)
    events = await admin_browser.get(f"/ui/projects/default/actions/{ok}")
    assert events.status_code == 200 and 'class="badge success"' in events.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in events.text
    failed = await admin_browser.get("/ui/events/failed")
    assert f"/ui/projects/default/actions/{broken}" in failed.text and "no-such-flag" in failed.text
    overview = await admin_browser.get("/ui/")
    assert "no-such-flag" in overview.text
    listed = await admin_browser.get("/ui/actions", params={"project": "default"})
    assert f"/ui/projects/default/actions/{ok}" in listed.text and "badge success" in listed.text
    flags = await admin_browser.get("/ui/flags", params={"project": "default"})
    assert scenario.feature in flags.text
    csrf = csrf_of(flags.text)
    switched = await admin_browser.post(
        f"/ui/flags/default/{scenario.feature}/production/off", headers={"X-CSRF-Token": csrf}
    )
    assert switched.status_code == 200 and 'aria-pressed="false"' in switched.text
    trace = await admin_browser.get(f"/ui/signals/{signal_id}")
    assert trace.status_code == 200 and "matched" in trace.text and "failed" in trace.text
    missing = await admin_browser.get("/ui/projects/default/actions/999999")
    assert missing.status_code == 404


async def test_static_files_are_served_and_nothing_else(browser: httpx.AsyncClient) -> None:
    htmx = await browser.get("/ui/static/htmx.min.js")
    assert htmx.status_code == 200 and htmx.headers["content-type"].startswith("text/javascript")
    assert (await browser.get("/ui/static/console.css")).status_code == 200
    for name in ("../router.py", "htmx.LICENSE", "nope.js"):
        assert (await browser.get(f"/ui/static/{name}")).status_code == 404


async def test_the_editor_suggests_keys_previews_and_saves(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    await scenario.send(client, {"alert": {"status": "firing", "severity": "critical"}, "tags": ["a", "b"]})
    await scenario.send(client, {"alert": {"status": "resolved"}})
    editor = await admin_browser.get("/ui/projects/default/actions/new")
    assert editor.status_code == 200
    assert (
        f'<option value="{scenario.feature}">' in editor.text and '<option value="production"' in editor.text
    )
    assert "NUM_GT — is a number above the value" in editor.text
    keys = await admin_browser.get(
        "/ui/projects/default/actions/keys", params={"source_id": scenario.endpoint_id}
    )
    for key in ("alert.status", "alert.severity", "tags[0]", "tags[1]"):
        assert f'<option value="{key}">' in keys.text
    csrf = csrf_of(editor.text)
    fields = {
        "csrf_token": csrf, "name": "from the editor", "actor_id": str(scenario.admin_actor_id),
        "source_id": str(scenario.endpoint_id), "filter_key": "alert.status", "filter_operator": "IN",
        "filter_values": "firing, paging", "filter_inverted": "", "filter_case": "",
        "action_type": "TOGGLE_FEATURE_OFF", "action_flag": scenario.feature, "action_environment": "production",
    }  # fmt: skip
    preview = await admin_browser.post("/ui/projects/default/actions/preview", data=fields)
    assert "1 of the last 2 signals would match." in preview.text
    inverted = await admin_browser.post(
        "/ui/projects/default/actions/preview", data={**fields, "filter_inverted": "yes"}
    )
    assert "1 of the last 2 signals would match." in inverted.text and "alert.status" in inverted.text
    numeric = await admin_browser.post(
        "/ui/projects/default/actions/preview",
        data={**fields, "filter_operator": "NUM_GT", "filter_values": "x"},
    )
    # A number operator with a word: the service's message beside that filter, the values as chips.
    beside = numeric.text.split('id="filter-error-1"')[1].split("</div>")[0]
    assert 'hx-swap-oob="true"' in beside and "number" in beside.lower(), numeric.text
    assert '<li class="badge chip">x</li>' in numeric.text
    chips = preview.text.split('id="filter-chips-1"')[1].split("</ul>")[0]
    assert '<li class="badge chip">firing</li><li class="badge chip">paging</li>' in chips
    saved = await admin_browser.post("/ui/projects/default/actions", data=fields)
    assert saved.status_code == 303
    set_id = int(saved.headers["location"].rsplit("/", 1)[1])
    listed = (await client.get("/api/admin/projects/default/actions")).json()["actions"]
    stored = next(s for s in listed if s["id"] == set_id)
    assert stored["match"]["payload"] == {"alert.status": {"operator": "IN", "values": ["firing", "paging"]}}
    assert [(a["action"], a["executionParams"]["featureName"]) for a in stored["actions"]] == [
        ("TOGGLE_FEATURE_OFF", scenario.feature)
    ]


async def test_the_editor_shows_what_is_wrong_and_keeps_the_fields(
    admin_browser: httpx.AsyncClient, scenario: Scenario
) -> None:
    editor = await admin_browser.get("/ui/projects/default/actions/new")
    fields = {"csrf_token": csrf_of(editor.text), "name": "no actions <b>", "actor_id": str(scenario.admin_actor_id),
              "source_id": str(scenario.endpoint_id), "filter_key": "a", "filter_operator": "IN", "filter_values": "x"}  # fmt: skip
    refused = await admin_browser.post("/ui/projects/default/actions", data=fields)
    assert refused.status_code == 400
    assert "was not saved" in refused.text and "no actions &lt;b&gt;" in refused.text  # kept, escaped
    numeric = {**fields, "filter_operator": "NUM_GT", "action_type": "TOGGLE_FEATURE_OFF",
               "action_flag": scenario.feature, "action_environment": "production"}  # fmt: skip
    beside = await admin_browser.post("/ui/projects/default/actions", data=numeric)
    assert beside.status_code == 400
    assert "number" in beside.text.split('id="filter-error-1"')[1].split("</div>")[0].lower()


async def test_a_viewer_cannot_save_an_action_set(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, scenario: Scenario
) -> None:
    _account, secret, _token = await personal_token(client, role=3)
    await sign_in(browser, secret)
    listed = await browser.get("/ui/actions")
    assert "New action set" not in listed.text
    editor = await browser.get("/ui/projects/default/actions/new")
    fields = {"csrf_token": csrf_of(editor.text), "name": "viewer's", "actor_id": str(scenario.admin_actor_id),
              "source_id": str(scenario.endpoint_id), "action_type": "TOGGLE_FEATURE_OFF",
              "action_flag": scenario.feature, "action_environment": "production"}  # fmt: skip
    assert (await browser.post("/ui/projects/default/actions", data=fields)).status_code == 403
    assert all(
        s["name"] != "viewer's"
        for s in (await client.get("/api/admin/projects/default/actions")).json()["actions"]
    )


async def test_a_run_is_undone_from_its_timeline_and_the_policy_is_shown(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    await client.post(f"/api/admin/projects/default/features/{scenario.feature}/environments/production/on")
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)])
    policy = await client.put(
        f"/api/admin/projects/default/actions/{set_id}/policy",
        json={"cooldownSeconds": 60, "maxChangesPerHour": 5},
    )
    assert policy.status_code == 200, policy.text
    await scenario.send(client, {"n": 1})
    await drain(worker)
    page = await admin_browser.get(f"/ui/projects/default/actions/{set_id}")
    assert "at most one run per 60 s; at most 5 flag changes per hour." in page.text
    event_id = (await client.get(f"/api/admin/projects/default/actions/{set_id}/events")).json()[
        "actionSetEvents"
    ][0]["id"]
    assert f'aria-label="Undo event {event_id}"' in page.text
    undone = await admin_browser.post(
        f"/ui/projects/default/actions/{set_id}/events/{event_id}/undo",
        headers={"X-CSRF-Token": csrf_of(page.text)},
    )
    assert undone.status_code == 200
    assert f"Event {event_id} undone: {scenario.feature} in production back on" in undone.text
    feature = (await client.get(f"/api/admin/projects/default/features/{scenario.feature}")).json()
    assert next(e for e in feature["environments"] if e["name"] == "production")["enabled"] is True
    again = await admin_browser.get(f"/ui/projects/default/actions/{set_id}")
    assert "Undone by admin at " in again.text and f'aria-label="Undo event {event_id}"' not in again.text
    twice = await admin_browser.post(
        f"/ui/projects/default/actions/{set_id}/events/{event_id}/undo",
        headers={"X-CSRF-Token": csrf_of(page.text)},
    )
    assert twice.status_code == 409 and "already undone" in twice.text


async def test_a_saved_set_is_edited_in_the_editor(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    set_id = await scenario.add_set(
        client,
        [toggle("TOGGLE_FEATURE_OFF", scenario.feature, 1)],
        filters={"severity": {"operator": "IN", "values": ["critical", "page"], "caseInsensitive": True}},
    )
    editor = await admin_browser.get(f"/ui/projects/default/actions/{set_id}/edit")
    assert editor.status_code == 200 and "Save changes" in editor.text
    assert 'value="severity"' in editor.text and 'value="critical, page"' in editor.text
    assert '<option value="insensitive" selected>' in editor.text
    fields = {
        "csrf_token": csrf_of(editor.text), "name": "renamed", "actor_id": str(scenario.admin_actor_id),
        "source_id": str(scenario.endpoint_id), "filter_key": "severity", "filter_operator": "NOT_IN",
        "filter_values": "info", "filter_inverted": "", "filter_case": "",
        "action_type": "TOGGLE_FEATURE_ON", "action_flag": scenario.other_feature, "action_environment": "production",
    }  # fmt: skip
    saved = await admin_browser.post(f"/ui/projects/default/actions/{set_id}", data=fields)
    assert saved.status_code == 303 and saved.headers["location"] == f"/ui/projects/default/actions/{set_id}"
    listed = (await client.get("/api/admin/projects/default/actions")).json()["actions"]
    stored = next(s for s in listed if s["id"] == set_id)
    assert stored["name"] == "renamed" and stored["enabled"] is True
    assert stored["match"]["payload"] == {"severity": {"operator": "NOT_IN", "values": ["info"]}}
    assert stored["actions"][0]["executionParams"]["featureName"] == scenario.other_feature


async def test_the_overview_charts_the_last_hour(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", "missing-flag", 1)])
    for n in range(3):
        await scenario.send(client, {"n": n})
    await drain(worker)
    page = await admin_browser.get("/ui/")
    assert f'aria-label="{scenario.endpoint_name} per minute over the last hour: 3 in all"' in page.text
    assert 'aria-label="Run outcomes per minute over the last hour: 6 in all"' in page.text
    assert (
        "<title>3 success, 1 min ago</title>" in page.text
        or "<title>3 success, 60 min ago</title>" in page.text
    )
    assert 'class="bar failed"' in page.text


async def test_an_endpoint_is_renamed_and_deleted(
    admin_browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    page = await admin_browser.get("/ui/signal-endpoints")
    csrf = csrf_of(page.text)
    created = await admin_browser.post("/ui/signal-endpoints", data={"name": "old-name", "csrf_token": csrf})
    path = created.headers["location"]
    renamed = await admin_browser.post(
        f"{path}/details", data={"name": "new-name", "description": "from <the> console", "csrf_token": csrf}
    )
    assert renamed.status_code == 303
    shown = await admin_browser.get(path)
    assert "<h1>new-name</h1>" in shown.text and "from &lt;the&gt; console" in shown.text
    bad = await admin_browser.post(f"{path}/details", data={"name": "Not A Name!", "csrf_token": csrf})
    assert bad.status_code == 400
    deleted = await admin_browser.post(f"{path}/delete", data={"csrf_token": csrf})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/ui/signal-endpoints"
    names = [e["name"] for e in (await client.get("/api/admin/signal-endpoints")).json()["signalEndpoints"]]
    assert "new-name" not in names and "old-name" not in names


async def test_a_set_aside_signal_is_shown_with_its_error_and_retried(
    app: FastAPI, admin_browser: httpx.AsyncClient, client: httpx.AsyncClient, scenario: Scenario
) -> None:
    signal_id = await scenario.send(client, {"n": 1})
    runtime: Runtime = app.state.runtime
    async with runtime.db.transaction() as conn:  # as the worker records a signal that keeps raising
        await record_failure(
            conn, signal_id=signal_id, error="ValueError: <script>x</script>", now=utcnow(), set_aside_after=1
        )
    overview = await admin_browser.get("/ui/")
    assert 'href="/ui/events/failed#set-aside">1</a>' in overview.text
    page = await admin_browser.get("/ui/events/failed")
    assert f'aria-label="Retry signal {signal_id}"' in page.text
    assert "ValueError: &lt;script&gt;x&lt;/script&gt;" in page.text and "<script>x" not in page.text
    retried = await admin_browser.post(
        f"/ui/signals/{signal_id}/retry", headers={"X-CSRF-Token": csrf_of(page.text)}
    )
    assert retried.status_code == 200 and f"Signal {signal_id} is back in the queue." in retried.text
    assert (await client.get("/api/admin/signals/set-aside")).json()["total"] == 0
    again = await admin_browser.post(
        f"/ui/signals/{signal_id}/retry", headers={"X-CSRF-Token": csrf_of(page.text)}
    )
    assert again.status_code == 404 and "no set-aside signal" in again.text
    assert "No signal is set aside." in (await admin_browser.get("/ui/events/failed")).text
