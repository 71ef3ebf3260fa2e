"""Operations surface: OpenAPI, interactive docs, logs that never carry credentials."""

from __future__ import annotations

import logging

import httpx
import orjson
import pytest

from switchman.config import LogFormat
from switchman.logs import JsonFormatter, configure_logging
from tests.conftest import ADMIN_TOKEN


async def test_openapi_and_docs_are_served(anon: httpx.AsyncClient) -> None:
    spec = await anon.get("/openapi.json")
    assert spec.status_code == 200
    body = spec.json()
    assert body["openapi"].startswith("3.")
    assert "/api/admin/api-tokens" in body["paths"]
    assert {"apiKey", "bearerToken"} <= set(body["components"]["securitySchemes"])
    docs = await anon.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_request_log_has_no_authorization_value(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="switchman.request"):
        await client.get("/api/admin/api-tokens")
        await client.get("/api/admin/api-tokens", headers={"Authorization": "*:*.wrong-secret-value"})
    records = [r for r in caplog.records if r.name == "switchman.request"]
    assert [r.fields["status"] for r in records] == [200, 401]  # type: ignore[attr-defined]
    text = caplog.text + repr([r.__dict__ for r in records])
    assert ADMIN_TOKEN.partition(".")[2] not in text
    assert "wrong-secret-value" not in text


def test_json_log_lines_are_json() -> None:
    record = logging.LogRecord("switchman.request", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"method": "GET", "status": 200}
    line = orjson.loads(JsonFormatter().format(record))
    assert line["msg"] == "request"
    assert line["status"] == 200
    assert line["level"] == "info"


def test_configure_logging_installs_one_handler() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("WARNING", LogFormat.JSON)
        assert len(root.handlers) == 1
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert root.level == logging.WARNING
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


async def test_bodyless_toggles_accept_any_content_type(client: httpx.AsyncClient) -> None:
    """Q-14: `…/on` and `…/off` take no body, so no content type is required (as Unleash's toggles)."""
    assert (
        await client.post("/api/admin/projects/default/features", json={"name": "ct-flag"})
    ).status_code == 201
    url = "/api/admin/projects/default/features/ct-flag/environments/production/on"
    response = await client.post(url, content=b"ignored", headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text
    other = await client.post(
        "/api/admin/projects/default/features", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert other.status_code == 415
