"""`POST /api/client/register` and `/api/client/metrics`: 202 for valid bodies, Unleash's 400/415 otherwise."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.client_api.helpers import client_token
from tests.conftest import assert_error

REGISTER = {
    "appName": "checkout",
    "instanceId": "pod-1",
    "sdkVersion": "unleash-client-python:6.9.1",
    "strategies": ["default", "flexibleRollout"],
    "started": "2026-11-29T05:00:00Z",
    "interval": 15000,
    "platformName": "CPython",
    "someFutureField": {"kept": "ignored"},
}
METRICS = {
    "appName": "checkout",
    "instanceId": "pod-1",
    "bucket": {
        "start": "2026-11-29T05:00:00Z",
        "stop": "2026-11-29T05:01:00Z",
        "toggles": {"f-on": {"yes": 3, "no": 1, "variants": {"blue": 2}}, "f-off": {"yes": 0, "no": 4}},
    },
}


@pytest.fixture
async def sdk(client: httpx.AsyncClient, anon: httpx.AsyncClient) -> httpx.AsyncClient:
    anon.headers["Authorization"] = await client_token(client, projects=["default"])
    return anon


async def test_valid_bodies_are_accepted(sdk: httpx.AsyncClient) -> None:
    for path, body in (
        ("/api/client/register", REGISTER),
        ("/api/client/register", REGISTER | {"started": 1764392400}),
        ("/api/client/metrics", METRICS),
        ("/api/client/metrics", {"appName": "checkout", "bucket": None}),
        ("/api/client/metrics", {"appName": "x", "bucket": METRICS["bucket"] | {"start": 1764392400000}}),
    ):
        response = await sdk.post(path, json=body)
        assert response.status_code == 202, (path, response.text)
        assert response.content == b""


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    ("path", "body", "pointer"),
    [
        ("/api/client/register", {}, "/body/appName"),
        ("/api/client/register", _without(REGISTER, "interval"), "/body/interval"),
        ("/api/client/register", _without(REGISTER, "started"), "/body/started"),
        ("/api/client/register", _without(REGISTER, "strategies"), "/body/strategies"),
        ("/api/client/register", REGISTER | {"appName": ""}, "/body/appName"),
        ("/api/client/register", REGISTER | {"interval": -1}, "/body/interval"),
        ("/api/client/register", REGISTER | {"started": "yesterday"}, "/body/started"),
        ("/api/client/register", REGISTER | {"strategies": "default"}, "/body/strategies"),
        ("/api/client/metrics", {}, "/body/appName"),
        (
            "/api/client/metrics",
            METRICS | {"bucket": {"start": "x", "stop": "y", "toggles": {}}},
            "/body/bucket/start",
        ),
        (
            "/api/client/metrics",
            METRICS | {"bucket": {"start": "2026-11-29T05:00:00Z", "stop": "2026-11-29T05:01:00Z"}},
            "/body/bucket/toggles",
        ),
        (
            "/api/client/metrics",
            METRICS | {"bucket": METRICS["bucket"] | {"toggles": {"f": {"yes": "a"}}}},
            "/body/bucket/toggles/f/yes",
        ),
        (
            "/api/client/metrics",
            METRICS | {"bucket": METRICS["bucket"] | {"toggles": {"f": {"no": -1}}}},
            "/body/bucket/toggles/f/no",
        ),
        (
            "/api/client/metrics",
            METRICS | {"bucket": METRICS["bucket"] | {"toggles": {"f": {"variants": {"a": -2}}}}},
            "/body/bucket/toggles/f/variants/a",
        ),
        ("/api/client/metrics", [], "/body"),
    ],
)
async def test_malformed_bodies_are_400_with_the_offending_path(
    sdk: httpx.AsyncClient, path: str, body: Any, pointer: str
) -> None:
    error = assert_error(await sdk.post(path, json=body), 400, "BadDataError")
    assert pointer in [detail["path"] for detail in error["details"]], error


async def test_not_json_is_415_and_broken_json_is_400(sdk: httpx.AsyncClient) -> None:
    for path in ("/api/client/register", "/api/client/metrics"):
        form = await sdk.post(
            path, content=b"appName=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert_error(form, 415, "ContentTypeError")
        broken = await sdk.post(path, content=b"{nope", headers={"Content-Type": "application/json"})
        assert_error(broken, 400, "BadDataError")


async def test_oversized_body_is_413(sdk: httpx.AsyncClient) -> None:
    huge = {"appName": "x", "padding": "a" * (1024 * 1024 + 1)}
    assert_error(await sdk.post("/api/client/metrics", json=huge), 413)
