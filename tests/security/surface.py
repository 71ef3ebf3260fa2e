"""The HTTP surface, read from the app itself, for the security tests: operations, sample bodies, dumps.

Everything here is derived from the app's `/openapi.json` (built from the route table), so a route added
tomorrow is enumerated, fuzzed and attacked by these tests without anyone listing it.
"""

from __future__ import annotations

import itertools
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from switchman.db import tables as t
from switchman.db.engine import Database

INGEST_OPERATION = "call-signal-endpoint"
_PARAM = re.compile(r"\{([^}]+)\}")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # template, e.g. /api/admin/projects/{projectId}
    operation_id: str
    spec: dict[str, Any] = field(repr=False, compare=False, hash=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def query_params(self) -> list[str]:
        return [p["name"] for p in self.spec.get("parameters", []) if p.get("in") == "query"]

    @property
    def documented(self) -> set[int]:
        return {int(code) for code in self.spec["responses"] if code.isdigit()}

    @property
    def has_body(self) -> bool:
        return "requestBody" in self.spec

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/api/admin/")

    def url(self, **values: str) -> str:
        """The path with every parameter filled (by name, else a placeholder that names nothing)."""
        return _PARAM.sub(lambda m: values.get(m.group(1), "no-such-thing"), self.path)

    def body_schema(self) -> dict[str, Any] | None:
        content = self.spec.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return None if media is None else media.get("schema", {})


def operations(app: FastAPI) -> list[Operation]:
    spec = app.openapi()
    found = [
        Operation(method.upper(), path, op["operationId"], op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "responses" in op
    ]
    assert len(found) >= 60, "the route table shrank; the security tests would cover less"
    return found


class Sampler:
    """A minimal body that satisfies a JSON schema: required properties only, simplest values."""

    def __init__(self, spec: dict[str, Any], hints: dict[str, Any] | None = None) -> None:
        self.components: dict[str, Any] = spec.get("components", {}).get("schemas", {})
        self.hints = hints or {}
        self._counter = itertools.count()

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def sample(self, schema: dict[str, Any]) -> Any:
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.resolve(o) for o in schema[key]]
                non_null = [o for o in options if o.get("type") != "null"]
                return self.sample((non_null or options)[0])
        if "allOf" in schema:
            return self.sample(schema["allOf"][0])
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        kind = schema.get("type", "object")
        if kind == "object":
            properties = schema.get("properties", {})
            return {
                name: self.hints[name] if name in self.hints else self.sample(properties.get(name, {}))
                for name in schema.get("required", [])
            }
        if kind == "array":
            return [self.sample(schema.get("items", {})) for _ in range(schema.get("minItems", 0))]
        if kind == "integer":
            return max(int(schema.get("minimum", 1)), 1)
        if kind == "number":
            return max(float(schema.get("minimum", 1)), 1.0)
        if kind == "boolean":
            return True
        if schema.get("format") == "date-time":
            return "2026-01-01T00:00:00.000Z"
        text = f"sec-{next(self._counter)}-{uuid.uuid4().hex[:8]}"
        return text.ljust(schema.get("minLength", 0), "x")[: schema.get("maxLength", 100)]


def string_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every string leaf of a JSON value."""
    if isinstance(value, str):
        return [prefix]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in string_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in string_paths(v, (*prefix, i))]
    return []


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


async def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (sorted), to prove that a refused request stored nothing."""
    async with db.read() as conn:
        return {
            table.name: sorted((tuple(row) for row in await conn.execute(sa.select(table))), key=repr)
            for table in t.metadata.sorted_tables
        }


def is_unleash_error(response: httpx.Response) -> bool:
    """`{id, name, message, details?}` with a uuid id, as Unleash answers errors."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    try:
        uuid.UUID(str(body.get("id")))
    except ValueError:
        return False
    details = body.get("details", [])
    return (
        isinstance(body.get("name"), str)
        and isinstance(body.get("message"), str)
        and bool(body["message"])
        and isinstance(details, list)
        and all(isinstance(d, dict) and isinstance(d.get("message"), str) for d in details)
    )


@dataclass
class World:
    """One object of each kind, made through the API, so that path parameters can name real things."""

    feature: str
    tag_type: str
    tag_value: str
    endpoint_id: int
    endpoint_name: str
    endpoint_token_id: int
    endpoint_secret: str
    account_id: int
    pat_id: int
    action_set_id: int
    api_token: str
    client_token: str = ""  # an SDK (client) API token, for the client API's routes

    def path_values(self, op: Operation) -> dict[str, str]:
        """Real values for `op`'s path parameters (`id` and `name` mean different things per path)."""
        path = op.path
        values = {
            "projectId": "default",
            "featureName": self.feature,
            "environment": "development",
            "signalEndpointId": str(self.endpoint_id),
            "tokenId": str(self.pat_id),
            "type": self.tag_type,
            "value": self.tag_value,
            "token": self.api_token,
        }
        if path.startswith("/api/admin/signal-endpoints/{signalEndpointId}/tokens/"):
            values["id"] = str(self.endpoint_token_id)
        elif path.startswith("/api/admin/signal-endpoints/"):
            values["id"] = str(self.endpoint_id)
        elif path.startswith("/api/admin/service-account/"):
            values["id"] = str(self.account_id)
        elif "/actions/" in path:
            values["id"] = str(self.action_set_id)
        if path.startswith("/api/admin/tag-types/") or path.startswith("/api/admin/tags/"):
            values["name"] = self.tag_type
        elif path.startswith("/api/admin/environments/"):
            values["name"] = "development"
        elif path.startswith("/api/signal-endpoint/"):
            values["name"] = self.endpoint_name
        return values

    def body_hints(self) -> dict[str, Any]:
        """Values the sampler uses for properties with these names, so sample bodies name real things."""
        return {
            "actorId": self.account_id,
            "sourceId": self.endpoint_id,
            "source": "signal-endpoint",
            "project": "default",
            "environment": "development",
            "featureName": self.feature,
            "features": [self.feature],
            "rootRole": 2,
            "type": "release",
        }


async def populate(client: httpx.AsyncClient) -> World:
    async def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(url, json=body)
        assert response.status_code in (200, 201), (url, response.text)
        result: dict[str, Any] = response.json()
        return result

    suffix = uuid.uuid4().hex[:8]
    feature = (await post("/api/admin/projects/default/features", {"name": f"sec-flag-{suffix}"}))["name"]
    tag_type = (await post("/api/admin/tag-types", {"name": f"sectag{suffix}"}))["name"]
    await post(f"/api/admin/features/{feature}/tags", {"type": tag_type, "value": "v1"})
    endpoint = await post("/api/admin/signal-endpoints", {"name": f"sec-ep-{suffix}"})
    token = await post(f"/api/admin/signal-endpoints/{endpoint['id']}/tokens", {"name": "sec"})
    account = await post(
        "/api/admin/service-account", {"username": f"sec-{suffix}", "name": "S", "rootRole": 2}
    )
    pat = await post(
        f"/api/admin/service-account/{account['id']}/token",
        {"description": "sec", "expiresAt": "2099-01-01T00:00:00.000Z"},
    )
    action_set = await post(
        "/api/admin/projects/default/actions",
        {
            "name": f"sec-set-{suffix}",
            "actorId": account["id"],
            "match": {"source": "signal-endpoint", "sourceId": endpoint["id"], "payload": {}},
            "actions": [
                {
                    "action": "TOGGLE_FEATURE_ON",
                    "sortOrder": 1,
                    "executionParams": {
                        "project": "default",
                        "environment": "development",
                        "featureName": feature,
                    },
                }
            ],
        },
    )
    api_token = await post("/api/admin/api-tokens", {"tokenName": "sec", "type": "admin"})
    client_token = await post(
        "/api/admin/api-tokens", {"tokenName": "sec-sdk", "type": "client", "environment": "development"}
    )
    return World(
        feature=feature,
        tag_type=tag_type,
        tag_value="v1",
        endpoint_id=endpoint["id"],
        endpoint_name=endpoint["name"],
        endpoint_token_id=token["id"],
        endpoint_secret=token["token"],
        account_id=account["id"],
        pat_id=pat["id"],
        action_set_id=action_set["id"],
        api_token=api_token["secret"],
        client_token=client_token["secret"],
    )
