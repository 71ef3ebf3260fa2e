"""UnleashFlagBackend against a scripted stand-in for the remote Unleash server (httpx.MockTransport).

The wire exchanges imitated here are the ones recorded from Unleash 8.2.0 (ADR 0010);
test_real_unleash.py replays the important ones against the real server.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from switchman.auth.permissions import (
    ADMIN_ROLE_ID,
    EDITOR_ROLE_ID,
    UPDATE_FEATURE_ENVIRONMENT,
    VIEWER_ROLE_ID,
    permissions_of_role,
)
from switchman.auth.principal import Principal, PrincipalKind
from switchman.engine.actions import ToggleCommand
from switchman.flags.backend import ActionOptions, FlagActionError, ToggleReport
from switchman.flags.unleash import UnleashCheckError, UnleashFlagBackend, quote_segment

TOKEN = "*:*.remote-secret-token-5f3a9c"
BASE = "http://unleash.test"
PERMISSION_MESSAGE = (
    "You don't have the required permissions to perform this operation. To perform this action, "
    'you need the "UPDATE_FEATURE_ENVIRONMENT" permission.'
)

Handler = Callable[[httpx.Request], Any]


def principal(role: int, kind: PrincipalKind = PrincipalKind.SERVICE_ACCOUNT) -> Principal:
    return Principal(
        kind=kind, user_id=7, username="sa-bot", permissions=permissions_of_role(role), root_role=role
    )


EDITOR = principal(EDITOR_ROLE_ID)
VIEWER = principal(VIEWER_ROLE_ID)


class FakeUnleash:
    """Records every request and answers with the handler a test installs."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = lambda request: httpx.Response(200)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, httpx.Response)
        return result

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.raw_path.decode()}" for r in self.requests]


@pytest.fixture
def fake() -> FakeUnleash:
    return FakeUnleash()


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff delays the backend asked for (the fixture's backend does not really wait)."""
    return []


@pytest.fixture
async def backend(fake: FakeUnleash, sleeps: list[float]) -> AsyncIterator[UnleashFlagBackend]:
    async def record(delay: float) -> None:
        sleeps.append(delay)

    remote = UnleashFlagBackend(
        BASE,
        TOKEN,
        timeout=2.0,
        transport=httpx.MockTransport(fake),
        rng=random.Random(7),
        sleep=record,
    )
    try:
        yield remote
    finally:
        await remote.close()


def not_found(message: str) -> httpx.Response:
    return httpx.Response(
        404, json={"name": "NotFoundError", "message": message, "details": [{"message": message}]}
    )


def features_body(*features: dict[str, Any]) -> dict[str, Any]:
    return {"version": 2, "features": list(features)}


def flag(name: str, *tags: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "tags": [{"type": t, "value": v} for t, v in tags], **extra}


# -- one flag ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("enabled", "verb"), [(True, "on"), (False, "off")])
async def test_toggle_posts_unleash_path_with_token_and_no_body(
    backend: UnleashFlagBackend, fake: FakeUnleash, enabled: bool, verb: str
) -> None:
    await backend.toggle(
        EDITOR,
        ToggleCommand.one_flag(
            project="default", environment="production", feature_name="checkout-v2", enabled=enabled
        ),
    )
    assert fake.paths() == [
        f"POST /api/admin/projects/default/features/checkout-v2/environments/production/{verb}"
    ]
    request = fake.requests[0]
    assert request.headers["Authorization"] == TOKEN
    assert request.headers["Accept"] == "application/json"
    assert request.content == b""
    assert "content-type" not in request.headers


async def test_base_path_of_the_unleash_url_is_kept(fake: FakeUnleash) -> None:
    remote = UnleashFlagBackend(
        "https://flags.example.test/unleash/", TOKEN, timeout=2.0, transport=httpx.MockTransport(fake)
    )
    try:
        await remote.toggle(
            EDITOR,
            ToggleCommand.one_flag(
                project="default", environment="development", feature_name="f", enabled=True
            ),
        )
    finally:
        await remote.close()
    assert str(fake.requests[0].url) == (
        "https://flags.example.test/unleash/api/admin/projects/default/features/f/environments/development/on"
    )


async def test_one_client_is_reused_for_every_call(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    for enabled in (True, False, True):
        await backend.toggle(
            EDITOR,
            ToggleCommand.one_flag(
                project="default", environment="production", feature_name="f", enabled=enabled
            ),
        )
    assert [p.rsplit("/", 1)[1] for p in fake.paths()] == ["on", "off", "on"]
    assert all(r.headers["Authorization"] == TOKEN for r in fake.requests)


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("a/../b", "a%2F..%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("x?y#z", "x%3Fy%23z"),
        ("100%", "100%25"),
        ("sp ace", "sp%20ace"),
        ("plain-name_1.2", "plain-name_1.2"),
    ],
)
async def test_hostile_names_stay_inside_their_path_segment(
    backend: UnleashFlagBackend, fake: FakeUnleash, name: str, encoded: str
) -> None:
    await backend.toggle(
        EDITOR, ToggleCommand.one_flag(project=name, environment=name, feature_name=name, enabled=False)
    )
    raw = fake.requests[0].url.raw_path.decode()
    assert raw == f"/api/admin/projects/{encoded}/features/{encoded}/environments/{encoded}/off"
    assert fake.requests[0].url.query == b""
    assert quote_segment(name) == encoded


async def test_viewer_is_refused_before_any_http_call(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    with pytest.raises(FlagActionError) as caught:
        await backend.toggle(
            VIEWER,
            ToggleCommand.one_flag(
                project="default", environment="production", feature_name="f", enabled=True
            ),
        )
    assert str(caught.value) == PERMISSION_MESSAGE
    with pytest.raises(FlagActionError) as caught:
        await backend.toggle(
            VIEWER,
            ToggleCommand.by_tag(
                project="default", environment="production", enabled=True, tag=("simple", "k")
            ),
        )
    assert str(caught.value) == PERMISSION_MESSAGE
    assert fake.requests == []


@pytest.mark.parametrize(
    "actor",
    [
        principal(ADMIN_ROLE_ID),
        principal(ADMIN_ROLE_ID, PrincipalKind.ADMIN_TOKEN),
        EDITOR,
        Principal(
            kind=PrincipalKind.SERVICE_ACCOUNT,
            user_id=9,
            username="narrow",
            permissions=frozenset({UPDATE_FEATURE_ENVIRONMENT}),
        ),
    ],
)
async def test_actors_holding_the_permission_reach_the_server(
    backend: UnleashFlagBackend, fake: FakeUnleash, actor: Principal
) -> None:
    await backend.toggle(
        actor,
        ToggleCommand.one_flag(project="default", environment="production", feature_name="f", enabled=True),
    )
    assert len(fake.requests) == 1


@pytest.mark.parametrize("field", ["project", "environment", "feature_name"])
async def test_empty_names_fail_without_a_call(
    backend: UnleashFlagBackend, fake: FakeUnleash, field: str
) -> None:
    params = {"project": "default", "environment": "production", "feature_name": "f", field: ""}
    with pytest.raises(FlagActionError, match="must not be empty"):
        await backend.toggle(EDITOR, ToggleCommand.one_flag(enabled=True, **params))
    assert fake.requests == []


# -- error mapping -------------------------------------------------------------------------------------


async def toggle_error(backend: UnleashFlagBackend, feature: str = "checkout-v2") -> str:
    with pytest.raises(FlagActionError) as caught:
        await backend.toggle(
            EDITOR,
            ToggleCommand.one_flag(
                project="default", environment="production", feature_name=feature, enabled=True
            ),
        )
    return str(caught.value)


async def test_404_carries_unleash_message(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    message = 'There\'s no feature named "does-not-exist" in project "default".'
    fake.handler = lambda request: not_found(message)
    assert await toggle_error(backend, "does-not-exist") == message


async def test_404_without_unleash_body_points_at_the_url_setting(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    fake.handler = lambda request: httpx.Response(404, text="<html>Not Found</html>")
    assert await toggle_error(backend, "f") == (
        "The Unleash server has no /api/admin/projects/default/features/f/environments/production/on "
        "(HTTP 404); check SWITCHMAN_UNLEASH_URL"
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {"name": "UnauthorizedError", "message": "You must log in to use Unleash."},
            "The Unleash server refused switchman's API token (HTTP 401): You must log in to use Unleash.",
        ),
        (
            403,
            {"message": "invalid token: expected a different token type for this endpoint"},
            "The Unleash server refused switchman's API token (HTTP 403): "
            "invalid token: expected a different token type for this endpoint",
        ),
        (403, None, "The Unleash server refused switchman's API token (HTTP 403)"),
    ],
)
async def test_refused_token(
    backend: UnleashFlagBackend, fake: FakeUnleash, status: int, body: Any, expected: str
) -> None:
    fake.handler = lambda request: httpx.Response(status, json=body) if body else httpx.Response(status)
    assert await toggle_error(backend) == expected


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_failure_is_retried_then_fails_hiding_remote_internals(
    backend: UnleashFlagBackend, fake: FakeUnleash, sleeps: list[float], status: int
) -> None:
    fake.handler = lambda request: httpx.Response(
        status, json={"name": "UnknownError", "message": 'select "features"."name" from features where …'}
    )
    assert await toggle_error(backend) == f"The Unleash server failed (HTTP {status}) (3 attempts)"
    assert len(fake.requests) == 3  # 1 + 2 retries (the default)
    assert len(sleeps) == 2


async def test_server_failure_then_success_is_a_success(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    fake.handler = lambda request: httpx.Response(503 if len(fake.requests) == 1 else 200)
    await backend.toggle(
        EDITOR,
        ToggleCommand.one_flag(project="default", environment="production", feature_name="f", enabled=True),
    )
    assert len(fake.requests) == 2


def _backend_recording_sleeps(fake: FakeUnleash, **options: Any) -> tuple[UnleashFlagBackend, list[float]]:
    """A backend whose backoff sleeps are recorded instead of slept."""
    sleeps: list[float] = []

    async def record(delay: float) -> None:
        sleeps.append(delay)

    remote = UnleashFlagBackend(BASE, TOKEN, transport=httpx.MockTransport(fake), sleep=record, **options)
    return remote, sleeps


async def test_rate_limited_answer_is_retried(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    fake.handler = lambda request: httpx.Response(429 if len(fake.requests) <= 2 else 200)
    await backend.toggle(
        EDITOR,
        ToggleCommand.one_flag(project="default", environment="production", feature_name="f", enabled=False),
    )
    assert len(fake.requests) == 3


async def test_backoff_grows_exponentially_with_jitter_and_a_cap(fake: FakeUnleash) -> None:
    fake.handler = lambda request: httpx.Response(502)
    remote, sleeps = _backend_recording_sleeps(fake, timeout=1.0, retries=5, backoff=0.1, max_backoff=0.5)
    try:
        assert await toggle_error(remote) == "The Unleash server failed (HTTP 502) (6 attempts)"
    finally:
        await remote.close()
    ceilings = [0.1, 0.2, 0.4, 0.5, 0.5]
    assert len(sleeps) == len(ceilings)
    for delay, ceiling in zip(sleeps, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(sleeps)) == len(sleeps)  # jittered, not a fixed schedule


async def test_no_retries_when_configured_off(fake: FakeUnleash) -> None:
    fake.handler = lambda request: httpx.Response(503)
    remote = UnleashFlagBackend(BASE, TOKEN, timeout=1.0, retries=0, transport=httpx.MockTransport(fake))
    try:
        assert await toggle_error(remote) == "The Unleash server failed (HTTP 503)"
    finally:
        await remote.close()
    assert len(fake.requests) == 1


async def test_slow_server_times_out_per_attempt_and_is_retried(fake: FakeUnleash) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    fake.handler = slow
    remote = UnleashFlagBackend(BASE, TOKEN, timeout=0.05, backoff=0.01, transport=httpx.MockTransport(fake))
    try:
        assert (
            await toggle_error(remote)
            == "The Unleash server at http://unleash.test did not answer within 0.05 s (3 attempts)"
        )
    finally:
        await remote.close()
    assert len(fake.requests) == 3


async def test_the_deadline_bounds_the_whole_operation(fake: FakeUnleash) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    fake.handler = slow
    # Each attempt may take 0.2 s but the operation only 0.3 s: the second attempt gets what is left,
    # and no third one starts although 5 retries are allowed.
    remote = UnleashFlagBackend(
        BASE, TOKEN, timeout=0.2, deadline=0.3, retries=5, backoff=0, transport=httpx.MockTransport(fake)
    )
    try:
        message = await toggle_error(remote)
    finally:
        await remote.close()
    assert re.fullmatch(
        r"The Unleash server at http://unleash\.test did not answer within 0\.\d+ s \(2 attempts\)", message
    ), message
    assert len(fake.requests) == 2


async def test_no_backoff_sleep_runs_past_the_deadline(fake: FakeUnleash) -> None:
    fake.handler = lambda request: httpx.Response(503)
    remote, sleeps = _backend_recording_sleeps(fake, timeout=1.0, deadline=0.5, retries=3, backoff=1.0)
    try:
        assert await toggle_error(remote) == "The Unleash server failed (HTTP 503)"
    finally:
        await remote.close()
    assert sleeps == []  # the first delay (≥ 0.5 s) would reach the deadline: fail now instead
    assert len(fake.requests) == 1


async def test_transport_timeout_is_retried_then_reported(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def read_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    fake.handler = read_timeout
    assert (
        await toggle_error(backend)
        == "The Unleash server at http://unleash.test did not answer within 2 s (3 attempts)"
    )
    assert len(fake.requests) == 3


async def test_connection_error_is_retried(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    def refuse_first(request: httpx.Request) -> httpx.Response:
        if len(fake.requests) == 1:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(200)

    fake.handler = refuse_first
    await backend.toggle(
        EDITOR,
        ToggleCommand.one_flag(project="default", environment="production", feature_name="f", enabled=True),
    )
    assert len(fake.requests) == 2


async def test_dropped_keepalive_connection_is_retried(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def drop_first(request: httpx.Request) -> httpx.Response:
        if len(fake.requests) == 1:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.Response(200)

    fake.handler = drop_first
    await backend.toggle(
        EDITOR,
        ToggleCommand.one_flag(project="default", environment="production", feature_name="f", enabled=False),
    )
    assert len(fake.requests) == 2


async def test_unreachable_server_fails_after_the_retries(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    fake.handler = refuse
    assert await toggle_error(backend) == (
        "Could not reach the Unleash server at http://unleash.test: [Errno 111] Connection refused "
        "(3 attempts)"
    )
    assert len(fake.requests) == 3


async def test_other_client_errors_carry_unleash_message(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    fake.handler = lambda request: httpx.Response(
        400,
        json={
            "name": "ArchivedFeatureError",
            "message": "Cannot perform this operation on archived features",
        },
    )
    assert await toggle_error(backend, "old") == (
        "The Unleash server rejected POST /api/admin/projects/default/features/old/environments/production/on "
        "(HTTP 400): Cannot perform this operation on archived features"
    )
    assert len(fake.requests) == 1  # a refusal is final: never retried


async def test_redirect_is_not_followed(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    fake.handler = lambda request: httpx.Response(302, headers={"Location": "/login"})
    message = await toggle_error(backend, "f")
    assert "unexpected HTTP 302" in message
    assert "SWITCHMAN_UNLEASH_URL" in message
    assert len(fake.requests) == 1


async def test_long_remote_messages_are_shortened(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    fake.handler = lambda request: not_found("x" * 5000)
    message = await toggle_error(backend)
    assert len(message) == 200
    assert message.endswith("…")


def _echo_token_404(request: httpx.Request) -> httpx.Response:
    return not_found(f"no such thing for {request.headers['Authorization']}")


def _echo_token_403(request: httpx.Request) -> httpx.Response:
    return httpx.Response(403, json={"message": f"token {request.headers['Authorization']} is not allowed"})


def _echo_token_400(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"message": f"bad {request.headers['Authorization']}"})


def _echo_token_connect(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"refused for {request.headers['Authorization']}", request=request)


@pytest.mark.parametrize("handler", [_echo_token_404, _echo_token_403, _echo_token_400, _echo_token_connect])
async def test_token_never_appears_in_messages(
    backend: UnleashFlagBackend, fake: FakeUnleash, handler: Handler
) -> None:
    fake.handler = handler
    message = await toggle_error(backend)
    assert TOKEN not in message
    assert "remote-secret-token" not in message
    assert "***" in message


# -- by tag --------------------------------------------------------------------------------------------


async def by_tag(
    backend: UnleashFlagBackend,
    *,
    tag: tuple[str, str] = ("simple", "kill"),
    enabled: bool = False,
    project: str = "default",
) -> ToggleReport:
    return await backend.toggle(
        EDITOR,
        ToggleCommand.by_tag(
            project=project, environment="production", enabled=enabled, tag=(tag[0], tag[1])
        ),
    )


async def test_by_tag_lists_tagged_flags_then_toggles_them_in_one_bulk_call(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                200,
                json=features_body(
                    flag("zeta", ("simple", "kill"), ("team", "core")),
                    flag("alpha", ("simple", "kill")),
                    flag("alpha", ("simple", "kill")),
                    flag("gone", ("simple", "kill"), archived=True),
                    flag("other", ("simple", "keep")),
                    {"name": "untagged"},  # Unleash leaves `tags` out when a flag has none
                    flag("cross", ("team", "kill")),
                ),
            )
        return httpx.Response(200)

    fake.handler = answer
    report = await by_tag(backend, enabled=False)
    assert report == ToggleReport(features=("alpha", "zeta"))
    listing = fake.requests[0]
    assert listing.method == "GET"
    assert listing.url.path == "/api/admin/projects/default/features"
    assert listing.url.params.get_list("tag") == ["simple:kill"]
    assert listing.headers["Authorization"] == TOKEN
    assert fake.paths()[1:] == ["POST /api/admin/projects/default/bulk_features/environments/production/off"]
    bulk = fake.requests[1]
    assert json.loads(bulk.content) == {"features": ["alpha", "zeta"]}
    assert bulk.headers["Content-Type"] == "application/json"
    assert bulk.headers["Authorization"] == TOKEN


def _tagged_listing(*names: str) -> httpx.Response:
    return httpx.Response(200, json=features_body(*(flag(n, ("simple", "kill")) for n in names)))


async def test_by_tag_refused_bulk_falls_back_to_each_flag_and_lists_failures(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "GET":
            return _tagged_listing("a-ok", "b-missing", "c-broken")
        if "/bulk_features/" in path or "/b-missing/" in path:
            # Unleash's bulk change is all-or-nothing and names the first bad flag only.
            return not_found('There\'s no feature named "b-missing" in project "default".')
        if "/c-broken/" in path:
            return httpx.Response(503)
        return httpx.Response(200)

    fake.handler = answer
    with pytest.raises(FlagActionError) as caught:
        await by_tag(backend, enabled=True)
    assert str(caught.value) == (
        "Could not turn on 2 of 3 flags tagged simple:kill in production "
        '(b-missing: There\'s no feature named "b-missing" in project "default".; '
        "c-broken: The Unleash server failed (HTTP 503) (3 attempts))"
    )
    assert fake.paths()[1] == "POST /api/admin/projects/default/bulk_features/environments/production/on"
    assert [p.split("/")[6] for p in fake.paths()[2:]] == [
        "a-ok",
        "b-missing",
        "c-broken",
        "c-broken",
        "c-broken",
    ]


async def test_by_tag_without_a_bulk_endpoint_toggles_each_flag(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return _tagged_listing("a", "b")
        if "/bulk_features/" in request.url.path:
            return not_found(f"The path you were looking for ({request.url.path}) is not available.")
        return httpx.Response(200)

    fake.handler = answer
    assert await by_tag(backend, enabled=False) == ToggleReport(features=("a", "b"))
    assert fake.paths()[2:] == [
        "POST /api/admin/projects/default/features/a/environments/production/off",
        "POST /api/admin/projects/default/features/b/environments/production/off",
    ]


@pytest.mark.parametrize(
    ("failure", "reason", "bulk_calls"),
    [
        (httpx.Response(503), "The Unleash server failed (HTTP 503) (3 attempts)", 3),
        (
            httpx.Response(403, json={"message": "no"}),
            "The Unleash server refused switchman's API token (HTTP 403): no",
            1,
        ),
    ],
)
async def test_by_tag_unreachable_or_refusing_server_fails_every_flag_without_fallback(
    backend: UnleashFlagBackend, fake: FakeUnleash, failure: httpx.Response, reason: str, bulk_calls: int
) -> None:
    fake.handler = lambda request: _tagged_listing("a", "b") if request.method == "GET" else failure
    with pytest.raises(FlagActionError) as caught:
        await by_tag(backend, enabled=True)
    assert str(caught.value) == (
        f"Could not turn on 2 of 2 flags tagged simple:kill in production (a, b: {reason})"
    )
    assert all("/bulk_features/" in p for p in fake.paths()[1:])
    assert len(fake.requests) == 1 + bulk_calls


async def test_by_tag_with_no_tagged_flag_succeeds_when_project_exists(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/admin/projects":
            return httpx.Response(
                200, json={"version": 1, "projects": [{"id": "default", "name": "Default"}]}
            )
        return httpx.Response(200, json=features_body())

    fake.handler = answer
    assert await by_tag(backend) == ToggleReport(features=())
    assert fake.paths() == [
        "GET /api/admin/projects/default/features?tag=simple%3Akill",
        "GET /api/admin/projects",
    ]


async def test_by_tag_in_a_project_unknown_to_unleash_fails(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/admin/projects":
            return httpx.Response(
                200, json={"version": 1, "projects": [{"id": "default", "name": "Default"}]}
            )
        return httpx.Response(200, json=features_body())  # what Unleash answers for an unknown project

    fake.handler = answer
    with pytest.raises(FlagActionError) as caught:
        await by_tag(backend, project="payments")
    assert str(caught.value) == 'Could not find project with id "payments" on the Unleash server.'
    assert all(r.method == "GET" for r in fake.requests)


async def test_by_tag_value_with_colon_is_matched_on_the_full_list(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                200, json=features_body(flag("f3", ("simple", "a:b")), flag("f1", ("simple", "a")))
            )
        return httpx.Response(200)

    fake.handler = answer
    assert await by_tag(backend, tag=("simple", "a:b"), enabled=True) == ToggleReport(features=("f3",))
    assert fake.paths()[0] == "GET /api/admin/projects/default/features"


async def test_by_tag_value_is_query_encoded(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    fake.handler = lambda request: httpx.Response(200, json=features_body(flag("f", ("simple", "x y&z#"))))
    assert await by_tag(backend, tag=("simple", "x y&z#")) == ToggleReport(features=("f",))
    listing = fake.requests[0]
    assert listing.url.params.get_list("tag") == ["simple:x y&z#"]
    assert list(listing.url.params.keys()) == ["tag"]


@pytest.mark.parametrize(
    "body",
    [
        {"version": 2},
        [],
        {"features": [{"tags": []}]},
        {"features": [{"name": "f", "tags": {"type": "simple", "value": "kill"}}]},
    ],
)
async def test_by_tag_refuses_an_unexpected_listing(
    backend: UnleashFlagBackend, fake: FakeUnleash, body: Any
) -> None:
    fake.handler = lambda request: httpx.Response(200, json=body)
    with pytest.raises(
        FlagActionError, match="unexpected answer to GET /api/admin/projects/default/features"
    ):
        await by_tag(backend)
    assert all(r.method == "GET" for r in fake.requests)


async def test_by_tag_listing_failure_toggles_nothing(backend: UnleashFlagBackend, fake: FakeUnleash) -> None:
    fake.handler = lambda request: httpx.Response(401, json={"message": "You must log in to use Unleash."})
    with pytest.raises(FlagActionError) as caught:
        await by_tag(backend)
    assert str(caught.value) == (
        "The Unleash server refused switchman's API token (HTTP 401): You must log in to use Unleash."
    )
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("tag_type", "tag_value"), [("", "kill"), ("simple", "")])
async def test_by_tag_needs_type_and_value(
    backend: UnleashFlagBackend, fake: FakeUnleash, tag_type: str, tag_value: str
) -> None:
    with pytest.raises(FlagActionError, match="must not be empty"):
        await by_tag(backend, tag=(tag_type, tag_value))
    assert fake.requests == []


# -- construction --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "token", "fragment"),
    [
        ("ftp://unleash.test", TOKEN, "http:// or https://"),
        ("unleash.test:4242", TOKEN, "http:// or https://"),
        ("http://admin:pw@unleash.test", TOKEN, "must not contain credentials"),
        ("http://unleash.test/?x=1", TOKEN, "query"),
        (BASE, "", "non-empty"),
        (BASE, f"{TOKEN}\nX-Injected: 1", "control characters"),
        (BASE, "two words", "without spaces"),
    ],
)
def test_unusable_configuration_is_refused_without_echoing_the_token(
    url: str, token: str, fragment: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)) as caught:
        UnleashFlagBackend(url, token, timeout=1.0)
    assert "remote-secret-token" not in str(caught.value)
    assert "pw" not in str(caught.value)


# -- start-up probe ------------------------------------------------------------------------------------


async def probe(fake: FakeUnleash, handler: Handler) -> UnleashCheckError | None:
    fake.handler = handler
    remote = UnleashFlagBackend(BASE, TOKEN, timeout=0.5, transport=httpx.MockTransport(fake))
    error: UnleashCheckError | None = None
    try:
        await remote.check()
    except UnleashCheckError as exc:
        error = exc
    finally:
        await remote.close()
    assert TOKEN not in str(error)
    return error


async def test_probe_accepts_an_admin_api(fake: FakeUnleash) -> None:
    ok = httpx.Response(200, json={"version": 1, "projects": [{"id": "default"}]})
    assert await probe(fake, lambda request: ok) is None
    assert fake.paths() == ["GET /api/admin/projects"]
    assert fake.requests[0].headers["Authorization"] == TOKEN


@pytest.mark.parametrize(
    ("answer", "transient", "expected"),
    [
        (
            httpx.Response(401, json={"message": "You must log in to use Unleash."}),
            False,
            "the Unleash server at http://unleash.test refused SWITCHMAN_UNLEASH_API_TOKEN (HTTP 401: You must "
            "log in to use Unleash.); use an admin API token or a personal access token of that server",
        ),
        (
            httpx.Response(
                403, json={"message": "invalid token: expected a different token type for this endpoint"}
            ),
            False,
            "the Unleash server at http://unleash.test does not let SWITCHMAN_UNLEASH_API_TOKEN use its admin "
            "API (HTTP 403: invalid token: expected a different token type for this endpoint); client, backend "
            "and frontend tokens cannot change flags: use an admin API token or a personal access token",
        ),
        (
            httpx.Response(200, text="<!DOCTYPE html><html></html>", headers={"Content-Type": "text/html"}),
            False,
            "SWITCHMAN_UNLEASH_URL=http://unleash.test does not look like an Unleash server: GET "
            "/api/admin/projects answered HTTP 200 (text/html) without a list of projects; give the "
            "server's root URL including any base path, e.g. http://unleash:4242",
        ),
        (
            not_found("The path you were looking for (/x/api/admin/projects) is not available."),
            False,
            "SWITCHMAN_UNLEASH_URL=http://unleash.test does not look like an Unleash server: GET "
            "/api/admin/projects answered HTTP 404 (application/json) without a list of projects; give the "
            "server's root URL including any base path, e.g. http://unleash:4242",
        ),
        (httpx.Response(503), True, "the Unleash server at http://unleash.test failed (HTTP 503)"),
    ],
)
async def test_probe_names_what_is_wrong(
    fake: FakeUnleash, answer: httpx.Response, transient: bool, expected: str
) -> None:
    error = await probe(fake, lambda request: answer)
    assert error is not None
    assert str(error) == expected
    assert error.transient is transient
    assert len(fake.requests) == 1  # one call, no retries at start-up


async def test_probe_of_an_unreachable_server_is_transient(fake: FakeUnleash) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.headers['Authorization']}", request=request)

    error = await probe(fake, refuse)
    assert error is not None and error.transient
    assert str(error) == "could not reach the Unleash server at http://unleash.test: refused ***"


# -- /actions/config options ---------------------------------------------------------------------------


async def test_action_options_come_from_the_remote_project(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/admin/environments/project/default":
            return httpx.Response(
                200,
                json={
                    "version": 1,
                    "environments": [
                        {"name": "production", "sortOrder": 3, "enabled": True, "visible": True},
                        {"name": "development", "sortOrder": 2, "enabled": True, "visible": True},
                        {"name": "staging", "sortOrder": 1, "enabled": True, "visible": False},
                        {"name": "old", "sortOrder": 0, "enabled": False, "visible": True},
                    ],
                },
            )
        assert request.url.path == "/api/admin/projects/default/features"
        assert not request.url.params
        return httpx.Response(
            200,
            json=features_body(
                flag("zeta", ("simple", "kill"), ("team", "core")),
                {"name": "alpha"},
                flag("gone", ("simple", "archived-only"), archived=True),
                flag("beta", ("simple", "kill")),
            ),
        )

    fake.handler = answer
    assert await backend.action_options("default") == ActionOptions(
        environments=("development", "production"),
        features=("alpha", "beta", "zeta"),
        tags=("simple:kill", "team:core"),
    )


async def test_action_options_failure_is_a_flag_action_error(
    backend: UnleashFlagBackend, fake: FakeUnleash
) -> None:
    fake.handler = lambda request: httpx.Response(401, json={"message": "You must log in to use Unleash."})
    with pytest.raises(FlagActionError, match=r"refused switchman's API token \(HTTP 401\)"):
        await backend.action_options("default")
