"""The transcription of the founding document's schemas is faithful, our validator rejects what it
should, and our OpenAPI document declares the same response schema."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.action_sets.founding import FOUNDING_DOC, components, validator


def _text() -> str:
    return " ".join(FOUNDING_DOC.read_text().split())


def _segment(text: str, name: str) -> str:
    start = text.index(f" {name}: type: ")
    end = text.index(f"title: {name}", start)
    return text[start:end]


def _type_text(spec: Any) -> str:
    if isinstance(spec, list):
        return "type: " + " ".join(f"- {item}" if item != "null" else "- 'null'" for item in spec)
    return f"type: {spec}"


@pytest.mark.parametrize("name", list(components()))
def test_transcription_matches_the_founding_document(name: str) -> None:
    text = _text()
    schema = components()[name]
    segment = _segment(text, name)
    assert segment.startswith(f" {name}: {_type_text(schema['type'])}")
    if "enum" in schema:
        assert "enum: " + " ".join(f"- {value}" for value in schema["enum"]) + " description:" in segment
    properties: dict[str, Any] = schema.get("properties", {})
    if schema["type"] == "object":
        # every property the document declares is transcribed, and nothing else
        body = segment.split(" properties: ", 1)[1].split(" required: ", 1)[0]
        declared = set(re.findall(r"(?:^| )([A-Za-z]+): (?:type:|\$ref:)", body)) - {"items"}
        assert declared == set(properties), name
    for prop, spec in properties.items():
        if "$ref" in spec:
            assert f"{prop}: $ref: '{spec['$ref']}'" in segment, (name, prop)
        else:
            assert f"{prop}: {_type_text(spec['type'])}" in segment, (name, prop)
        if "items" in spec:
            assert f"items: $ref: '{spec['items']['$ref']}'" in segment, (name, prop)
        if "format" in spec:
            assert f"{prop}: {_type_text(spec['type'])} format: {spec['format']}" in segment, (name, prop)
    if "required" in schema:
        listed = " ".join(f"- {item}" for item in schema["required"])
        assert f"required: {listed} description:" in segment, name
    else:
        assert "required:" not in segment


def test_every_component_of_the_founding_document_is_transcribed_or_an_error_body() -> None:
    text = _text()
    schemas_part = text.split("components: schemas: ", 1)[1].split(" securitySchemes:", 1)[0]
    titled = set(re.findall(r"title: ([A-Za-z]+)", schemas_part))
    errors = {
        "GetActionsEventsRequestUnauthorizedError",
        "GetActionsEventsRequestForbiddenError",
        "GetActionsEventsRequestNotFoundError",
    }
    assert titled == set(components()) | errors


def _event() -> dict[str, Any]:
    return {
        "id": 41,
        "actionSetId": 5,
        "signalId": 1203,
        "createdAt": "2026-05-04T09:12:00.512Z",
        "state": "failed",
        "signal": {
            "id": 1203,
            "source": "signal-endpoint",
            "sourceId": 3,
            "createdBySourceTokenId": 2,
            "createdAt": "2026-05-04T09:11:58.001Z",
            "payload": {"alert": {"status": "firing"}},
        },
        "actionSet": {
            "id": 5,
            "project": "default",
            "createdAt": "2026-05-01T08:00:00.000Z",
            "createdByUserId": 1,
            "name": "kill checkout",
            "description": None,
            "actorId": 7,
            "enabled": True,
            "match": {"source": "signal-endpoint", "sourceId": 3, "payload": {}},
            "actions": [
                {
                    "id": 11,
                    "createdAt": "2026-05-01T08:00:00.000Z",
                    "createdByUserId": 1,
                    "action": "TOGGLE_FEATURE_OFF",
                    "sortOrder": 1,
                    "executionParams": {"project": "default"},
                    "state": "not started",
                    "details": None,
                }
            ],
        },
    }


def test_the_spec_example_is_valid_and_the_validator_has_teeth() -> None:
    good = {"actionSetEvents": [_event()]}
    assert not list(validator().iter_errors(good))
    mutations = [
        lambda e: e.pop("signal"),
        lambda e: e.update(state="running"),
        lambda e: e.update(extra=1),
        lambda e: e.update(createdAt="yesterday"),
        lambda e: e["signal"].update(source="webhook"),
        lambda e: e["signal"].pop("sourceId"),
        lambda e: e["actionSet"]["actions"][0].update(state="not_started"),
        lambda e: e["actionSet"]["actions"][0].pop("createdByUserId"),
        lambda e: e["actionSet"]["actions"][0].update(details=3),
        lambda e: e["actionSet"]["match"].pop("payload"),
        lambda e: e["actionSet"].update(description=5),
    ]
    for mutate in mutations:
        event = _event()
        mutate(event)
        assert list(validator().iter_errors({"actionSetEvents": [event]})), mutate


async def test_openapi_declares_the_founding_response_schema(client: httpx.AsyncClient) -> None:
    openapi = (await client.get("/openapi.json")).json()
    operation = openapi["paths"]["/api/admin/projects/{projectId}/actions/{id}/events"]["get"]
    assert operation["operationId"] == "get-actions-events"
    assert operation["summary"] == "[BETA] Get action events for a specific action set."
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/actionSetEventsSchema"}
    assert {"401", "403", "404"} <= set(operation["responses"])
    params = {(p["name"], p["in"]): p for p in operation["parameters"]}
    for key in (("projectId", "path"), ("id", "path")):
        assert params[key]["required"] is True and params[key]["schema"]["type"] == "string"
    for name in ("limit", "offset"):
        assert params[(name, "query")]["required"] is False
        assert "string" in str(params[(name, "query")]["schema"])
    ours = openapi["components"]["schemas"]
    for name, schema in components().items():
        assert name in ours, name
        if schema.get("properties"):
            assert set(ours[name]["properties"]) == set(schema["properties"]), name
            assert sorted(ours[name].get("required", [])) == sorted(schema.get("required", [])), name
        if "enum" in schema:
            assert ours[name]["enum"] == schema["enum"], name


async def test_openapi_operation_ids_of_the_action_set_routes(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    base = "/api/admin/projects/{projectId}/actions"
    expected = {
        (base, "get"): "get-actions",
        (base, "post"): "create-actions",
        (f"{base}/config", "get"): "get-actions-config",
        (base + "/{id}", "put"): "update-actions",
        (base + "/{id}", "delete"): "delete-actions",
        (base + "/{id}/on", "post"): "enable-actions",
        (base + "/{id}/off", "post"): "disable-actions",
        (base + "/{id}/events", "get"): "get-actions-events",
    }
    for (path, method), operation_id in expected.items():
        assert paths[path][method]["operationId"] == operation_id
    create = paths[base]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create == {"$ref": "#/components/schemas/createActionsSchema"}
