"""Hostile input on every operation of the route table: the right 4xx with Unleash's error body, never a
5xx, never anything stored.

The cases are generated from `/openapi.json` (see `surface.py`): each path parameter gets traversal, SQL
metacharacters, NUL, invalid UTF-8, very long and numeric-edge values; each query parameter gets
negative, huge and non-numeric values; each body gets malformed and non-object JSON, 10,000-level
nesting, a huge array, invalid UTF-8, an oversized body, wrong content types, and a NUL in each string
of an otherwise valid body. Every answer must be a status the operation documents; every refusal must
carry `{id, name, message, details}`; and a dump of every table taken before the refused cases must
equal one taken after them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest
from fastapi import FastAPI

from switchman.app import ADMIN_BODY_LIMIT
from switchman.db.engine import Database
from tests.conftest import ADMIN_TOKEN
from tests.security.surface import (
    INGEST_OPERATION,
    Operation,
    Sampler,
    World,
    dump,
    is_unleash_error,
    operations,
    populate,
    replaced,
    string_paths,
)

PATH_VALUES = {
    "traversal": "..%2F..%2F..%2Fetc%2Fpasswd",
    "dot-dot": "%2E%2E",
    "sql-quote": "x' OR '1'='1",
    "sql-stacked": "1; DROP TABLE project;--",
    "sql-comment": "1 --",
    "nul": "a%00b",
    "invalid-utf8": "%FF%FE%C0%AF",
    "very-long": "n" * 5000,
    "negative": "-1",
    "huge-number": "99999999999999999999999999",
    "int32-overflow": "4294967296",
    "int64-overflow": "9223372036854775808",
    "float": "1e309",
    "percent-space": "%20",
    "unicode": "%F0%9F%92%A5",
}
QUERY_VALUES = {
    "negative": "-1",
    "huge": "99999999999999999999999999",
    "non-numeric": "abc",
    "float": "1.5e3",
    "empty": "",
    "nul": "\x00",
    "sql": "' OR 1=1--",
    "very-long": "q" * 5000,
}
DEPTH = 10_000


@dataclass
class Case:
    op: Operation
    kind: str
    method: str
    url: str
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None
    # Body cases must be refused. A hostile path or query value may also be answered 2xx where Unleash
    # does (reads of unknown names answer empty lists; deleting an absent tag is a no-op): what matters
    # is no 5xx, a documented status, and nothing stored.
    must_refuse: bool = True

    @property
    def label(self) -> str:
        return f"{self.op.label} [{self.kind}]"


def _json_headers(auth: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": "application/json", **auth}


def build_cases(op: Operation, world: World, sampler: Sampler) -> list[Case]:
    """Every case that must be refused (4xx, nothing stored) for one operation."""
    real = world.path_values(op)
    auth = {}  # the admin client's token
    if op.operation_id == INGEST_OPERATION:
        auth = {"Authorization": world.endpoint_secret}
    elif op.path.startswith("/api/client/"):
        auth = {"Authorization": world.client_token}
    cases: list[Case] = []
    for param in op.path_params:
        for kind, value in PATH_VALUES.items():
            url = op.url(**{**real, param: value})
            cases.append(
                Case(op, f"path {param}={kind}", op.method, url, headers=dict(auth), must_refuse=False)
            )
    url = op.url(**real)
    for param in op.query_params:
        for kind, value in QUERY_VALUES.items():
            cases.append(
                Case(
                    op,
                    f"query {param}={kind}",
                    op.method,
                    url,
                    None,
                    dict(auth),
                    {param: value},
                    must_refuse=False,
                )
            )
    schema = op.body_schema()
    if schema is None:
        return cases
    headers = _json_headers(auth)
    bodies: dict[str, bytes] = {
        "malformed": b'{"name": ',
        "trailing-garbage": b'{"name": "x"} x',
        "array": b"[]",
        "string": b'"x"',
        "number": b"1",
        "null": b"null",
        "true": b"true",
        "deep-arrays": b"[" * DEPTH + b"]" * DEPTH,
        "deep-objects": b'{"a":' * DEPTH + b"{}" + b"}" * DEPTH,
        "huge-array": b"[" + b"0," * 40_000 + b"0]",
        "invalid-utf8": b'{"name": "\xff\xfe\xc0\xaf"}',
        "lone-surrogate": b'{"name": "\\ud800"}',
        "nul-raw": b'{"name": "a\x00b"}',
        "oversized": b'{"name": "' + b"x" * (2 * ADMIN_BODY_LIMIT) + b'"}',
    }
    if op.operation_id == INGEST_OPERATION:
        bodies["oversized"] = b'{"a": "' + b"x" * (2 * 1024 * 1024) + b'"}'
        del bodies["nul-raw"]  # a JSON string with an escaped NUL is a valid signal payload (stored escaped)
    # A signal may be a JSON array (stored as {"items": [...]}, ADR 0018): no refusal owed, but no 500 either.
    accepted = {"array", "huge-array"} if op.operation_id == INGEST_OPERATION else set()
    for kind, content in bodies.items():
        cases.append(
            Case(
                op,
                f"body {kind}",
                op.method,
                url,
                content=content,
                headers=dict(headers),
                must_refuse=kind not in accepted,
            )
        )
    sample = sampler.sample(schema)
    if op.operation_id != INGEST_OPERATION:
        encoded = orjson.dumps(sample)
        for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            if op.path.endswith(("/on", "/off")):
                continue  # the bodyless toggles accept any content type; bulk toggles validate the body
            cases.append(
                Case(op, f"content-type {media}", op.method, url, encoded, {"Content-Type": media, **auth})
            )
        for where in string_paths(sample):
            body = replaced(sample, where, "nul\x00inside")
            cases.append(
                Case(
                    op,
                    f"body NUL at /{'/'.join(map(str, where))}",
                    op.method,
                    url,
                    orjson.dumps(body),
                    headers,
                )
            )
        if isinstance(sample, dict):
            for key in list(sample)[:1]:
                huge = orjson.dumps({**sample, key: [sample[key]] * 20_000})
                cases.append(Case(op, f"body huge array at /{key}", op.method, url, huge, headers))
    return cases


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client that sees a crash as the 500 a real client would get (not as a raised exception)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"Authorization": ADMIN_TOKEN}
    ) as http:
        yield http


async def test_hostile_input_on_every_operation(app: FastAPI, admin: httpx.AsyncClient, db: Database) -> None:
    client = admin
    world = await populate(client)
    ops = operations(app)
    sampler = Sampler(app.openapi(), world.body_hints())
    before = await dump(db)
    problems: list[str] = []
    statuses: Counter[int] = Counter()
    total = 0
    stored_signals = 0  # accepted signal calls (a JSON array is a payload): each stores exactly one signal
    for op in ops:
        if op.operation_id == "getHealth":
            continue
        for case in build_cases(op, world, sampler):
            total += 1
            response = await client.request(
                case.method, case.url, content=case.content, headers=case.headers, params=case.params
            )
            statuses[response.status_code] += 1
            problem = _judge(case, response)
            if problem:
                problems.append(problem)
            elif op.operation_id == INGEST_OPERATION and response.status_code == 200:
                stored_signals += 1
    after = await dump(db)
    assert not problems, f"{len(problems)} of {total} hostile cases answered wrongly:\n" + "\n".join(
        problems[:80]
    )
    added_signals = set(after["signal"]) - set(before["signal"])
    assert len(added_signals) == stored_signals
    changed = {
        name: set(after[name]) ^ set(before[name])
        for name in before
        if before[name] != after[name] and name != "signal"
    }
    assert not changed, f"refused requests changed tables: {sorted(changed)}"
    assert set(before["signal"]) <= set(after["signal"])
    assert total > 1200, total  # the route table yields this many; fewer means the generator lost cases
    assert statuses[201] == 0


def _judge(case: Case, response: httpx.Response) -> str | None:
    status = response.status_code
    text = response.text[:300]
    if status >= 500:
        return f"{case.label}: {status} {text}"
    if status < 400:
        if case.must_refuse:
            return f"{case.label}: accepted with {status} {text}"
        if status not in case.op.documented:
            return (
                f"{case.label}: {status} is not documented for the operation ({sorted(case.op.documented)})"
            )
        return None
    if not is_unleash_error(response):
        return f"{case.label}: {status} without Unleash's error body: {text}"
    # a path that no longer matches the route (e.g. a decoded '..') is the router's 404, also documented
    if status not in case.op.documented and status not in (404, 405):
        return f"{case.label}: {status} is not documented for the operation ({sorted(case.op.documented)})"
    return None


def test_cases_cover_every_operation_and_kind() -> None:
    """The generator itself: every operation gets cases, every body operation every body kind."""
    from switchman.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings("sqlite:///unused.db"))
    world = World("f", "t", "v", 1, "ep", 2, "signal_x", 3, 4, 5, "*:*.x")
    sampler = Sampler(app.openapi(), world.body_hints())
    for op in operations(app):
        cases = build_cases(op, world, sampler)
        if op.path_params or op.query_params or op.has_body:
            assert cases, op.label
        if op.has_body:
            kinds = {case.kind for case in cases}
            assert {"body deep-arrays", "body oversized", "body invalid-utf8", "body array"} <= kinds, (
                op.label
            )
    assert json.dumps(PATH_VALUES)  # the values are plain strings


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "declared-length"])
async def test_an_oversized_admin_body_is_refused_while_it_streams(
    admin: httpx.AsyncClient, db: Database, declared: bool
) -> None:
    """413 after at most the limit plus one chunk has been read, not after buffering the whole body."""
    chunk = b" " * 65_536
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1_000):  # 64 MiB if read to the end
            pulled += 1
            yield chunk

    headers = {"Content-Type": "application/json"}
    if declared:
        headers["Content-Length"] = str(1_000 * len(chunk))
    before = await dump(db)
    response = await admin.post("/api/admin/projects", content=endless(), headers=headers)
    assert response.status_code == 413, response.text
    assert is_unleash_error(response) and response.json()["name"] == "ContentTooLargeError"
    assert pulled * len(chunk) <= ADMIN_BODY_LIMIT + 2 * len(chunk), pulled
    assert await dump(db) == before
