"""`POST /api/signal-endpoint/{name}`: storage, body rules, check order, size cap, rate limit, durability."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from switchman.config import to_async_url
from switchman.db.engine import Database
from switchman.runtime import Runtime
from tests.conftest import assert_error
from tests.factories import endpoint_with_token, make_endpoint, make_endpoint_token
from tests.signal_endpoints.helpers import BASE, app_client, caller, signal_rows


def call_path(name: str) -> str:
    return f"/api/signal-endpoint/{name}"


async def test_call_stores_the_signal_and_answers_it(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    payload = {"alert": {"status": "firing", "errorRate": 7.5, "tags": ["prod", "eu"]}, "ok": False, "é": "ü"}
    response = await client.post(
        call_path(endpoint["name"]), json=payload, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    (signal,) = response.json()["signals"]
    token_id = (await client.get(f"{BASE}/{endpoint['id']}/tokens")).json()["signalEndpointTokens"][0]["id"]
    assert signal["source"] == "signal-endpoint"
    assert signal["sourceId"] == endpoint["id"]
    assert signal["createdBySourceTokenId"] == token_id
    assert signal["payload"] == payload
    (row,) = await signal_rows(db)
    assert row.id == signal["id"]
    assert json.loads(row.payload) == payload
    assert row.processed_at is None
    assert signal["createdAt"] == row.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("scheme", ["Bearer ", "bearer ", "BEARER   ", ""])
async def test_token_is_accepted_bare_or_as_bearer(client: httpx.AsyncClient, scheme: str) -> None:
    endpoint, secret = await endpoint_with_token(client)
    response = await client.post(
        call_path(endpoint["name"]), json={}, headers={"Authorization": scheme + secret}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "userinfo", ["switchman:{secret}", "{secret}:", "{secret}", ":{secret}", "any user with spaces:{secret}"]
)
async def test_the_token_is_accepted_as_basic_credentials(client: httpx.AsyncClient, userinfo: str) -> None:
    endpoint, secret = await endpoint_with_token(client)
    encoded = base64.b64encode(userinfo.format(secret=secret).encode()).decode()
    response = await client.post(
        call_path(endpoint["name"]), json={}, headers={"Authorization": f"Basic {encoded}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("value", ["Basic {wrong}", "Basic %%%not-base64%%%", "basic {garbage}"])
async def test_wrong_or_malformed_basic_credentials_are_401(
    client: httpx.AsyncClient, db: Database, value: str
) -> None:
    endpoint, _secret = await endpoint_with_token(client)
    header = value.format(
        wrong=base64.b64encode(b"user:not-the-token").decode(),
        garbage=base64.b64encode(b"\xff\xfe:\x00").decode(),
    )
    response = await client.post(call_path(endpoint["name"]), json={}, headers={"Authorization": header})
    assert_error(response, 401, "UnauthorizedError")
    assert await signal_rows(db) == []


@pytest.mark.parametrize("body", [b"", b"   \n"])
async def test_an_empty_body_is_the_empty_payload(client: httpx.AsyncClient, body: bytes) -> None:
    endpoint, secret = await endpoint_with_token(client)
    response = await client.post(call_path(endpoint["name"]), content=body, headers={"Authorization": secret})
    assert response.status_code == 200, response.text
    assert response.json()["signals"][0]["payload"] == {}


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=x", None]
)
async def test_the_body_is_parsed_as_json_whatever_the_content_type(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    headers = {"Authorization": secret}
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post(call_path(endpoint["name"]), content=b'{"a": [1, 2]}', headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["signals"][0]["payload"] == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("body", "payload"),
    [(b"[]", {"items": []}), (b'[{"a": 1}, 2, "x"]', {"items": [{"a": 1}, 2, "x"]})],
)
async def test_a_json_array_is_one_signal_of_its_items(
    client: httpx.AsyncClient, db: Database, body: bytes, payload: dict[str, Any]
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    response = await client.post(call_path(endpoint["name"]), content=body, headers={"Authorization": secret})
    assert response.status_code == 200, response.text
    assert response.json()["signals"][0]["payload"] == payload
    (row,) = await signal_rows(db)
    assert orjson.loads(row.payload) == payload


FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "payload"),
    [
        (b"status=firing&severity=critical", {"status": "firing", "severity": "critical"}),
        (b"tag=a&tag=b&tag=c&x=", {"tag": ["a", "b", "c"], "x": ""}),
        (b"msg=caf%C3%A9+au+lait&plus=1%2B1", {"msg": "café au lait", "plus": "1+1"}),
        # Slack-style: the document is a JSON field of the form, stored decoded.
        (b"payload=%7B%22type%22%3A%22alert%22%2C%22n%22%3A2%7D&token=t", {"payload": {"type": "alert", "n": 2}, "token": "t"}),
        (b"payload=%7Bnot+json", {"payload": "{not json"}),
        (b'{"sent": "as json anyway"}', {"sent": "as json anyway"}),
    ],
)  # fmt: skip
async def test_a_form_body_is_an_object_of_its_fields(
    client: httpx.AsyncClient, db: Database, body: bytes, payload: dict[str, Any]
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    headers = {"Authorization": secret, "Content-Type": f"{FORM}; charset=utf-8"}
    response = await client.post(call_path(endpoint["name"]), content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["signals"][0]["payload"] == payload
    (row,) = await signal_rows(db)
    assert orjson.loads(row.payload) == payload


async def test_a_form_body_that_is_not_utf8_is_400(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    headers = {"Authorization": secret, "Content-Type": FORM}
    response = await client.post(call_path(endpoint["name"]), content=b"a=%FF%FE", headers=headers)
    assert_error(response, 400, "BadDataError")
    assert await signal_rows(db) == []


@pytest.mark.parametrize("body", [b'"text"', b"12", b"null", b"true"])
async def test_json_that_is_not_an_object_is_400(
    client: httpx.AsyncClient, db: Database, body: bytes
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    response = await client.post(call_path(endpoint["name"]), content=body, headers={"Authorization": secret})
    error = assert_error(response, 400, "BadDataError")
    assert "object" in error["message"]
    assert await signal_rows(db) == []


@pytest.mark.parametrize(
    "body", [b"{", b"{'a': 1}", b'{"a": NaN}', b'{"a":1}{', b"\xff\xfe{}", b'{"a": "\\ud800"}', b"name=value"]
)
async def test_malformed_json_is_400(client: httpx.AsyncClient, db: Database, body: bytes) -> None:
    endpoint, secret = await endpoint_with_token(client)
    response = await client.post(call_path(endpoint["name"]), content=body, headers={"Authorization": secret})
    assert_error(response, 400, "BadDataError")
    assert await signal_rows(db) == []


async def test_numbers_are_read_like_javascript(client: httpx.AsyncClient) -> None:
    endpoint, secret = await endpoint_with_token(client)
    body = b'{"huge": 1e400, "big": 123456789012345678901234567890, "n": 12.0, "u": 18446744073709551615}'
    response = await client.post(call_path(endpoint["name"]), content=body, headers={"Authorization": secret})
    assert response.status_code == 200, response.text
    payload = response.json()["signals"][0]["payload"]
    assert payload["huge"] is None  # JSON.stringify(Infinity) === "null"
    assert payload["big"] == pytest.approx(1.2345678901234568e29)
    assert payload["n"] == 12.0
    assert payload["u"] == 18446744073709551615


async def test_unknown_and_disabled_endpoints_are_404_alike(client: httpx.AsyncClient) -> None:
    endpoint, secret = await endpoint_with_token(client)
    unknown = assert_error(
        await client.post(call_path("no-such-endpoint"), json={}, headers={"Authorization": secret}),
        404,
        "NotFoundError",
    )
    await client.post(f"{BASE}/{endpoint['id']}/off")
    disabled = assert_error(
        await client.post(call_path(endpoint["name"]), json={}, headers={"Authorization": secret}),
        404,
        "NotFoundError",
    )
    assert disabled["message"].replace(endpoint["name"], "N") == unknown["message"].replace(
        "no-such-endpoint", "N"
    )
    await client.post(f"{BASE}/{endpoint['id']}/on")
    assert (
        await client.post(call_path(endpoint["name"]), json={}, headers={"Authorization": secret})
    ).status_code == 200


async def test_a_renamed_endpoint_answers_under_its_new_name_only(client: httpx.AsyncClient) -> None:
    endpoint, secret = await endpoint_with_token(client)
    await client.put(f"{BASE}/{endpoint['id']}", json={"name": endpoint["name"] + "-v2"})
    old = await client.post(call_path(endpoint["name"]), json={}, headers={"Authorization": secret})
    assert_error(old, 404, "NotFoundError")
    new = await client.post(call_path(endpoint["name"] + "-v2"), json={}, headers={"Authorization": secret})
    assert new.status_code == 200, new.text


@pytest.mark.parametrize("header", [None, "", "Bearer ", "bearer    "])
async def test_a_missing_token_is_401_authentication_required(
    client: httpx.AsyncClient, header: str | None
) -> None:
    endpoint, _secret = await endpoint_with_token(client)
    async with caller(client._transport.app) as anon:  # type: ignore[attr-defined]
        headers = {} if header is None else {"Authorization": header}
        response = await anon.post(call_path(endpoint["name"]), json={}, headers=headers)
    assert_error(response, 401, "AuthenticationRequired")


async def test_a_wrong_or_foreign_token_is_401_unauthorized(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, _secret = await endpoint_with_token(client)
    _other, foreign = await endpoint_with_token(client)
    for header in ("signal_not-a-real-token", foreign, f"Bearer {foreign}", "*:*.admin-looking"):
        response = await client.post(call_path(endpoint["name"]), json={}, headers={"Authorization": header})
        assert_error(response, 401, "UnauthorizedError")
    assert await signal_rows(db) == []


async def test_errors_follow_the_order_endpoint_token_body(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_max_bytes=64) as (_app, client):
        endpoint, secret = await endpoint_with_token(client)
        name = endpoint["name"]
        big = b'{"a":"' + b"x" * 100 + b'"}'
        cases = [
            (call_path("nope"), None, b"{", 404),
            (call_path("nope"), "wrong", big, 404),
            (call_path(name), None, b"{", 401),
            (call_path(name), "wrong", b"{", 401),
            (call_path(name), "wrong", big, 401),
            (call_path(name), secret, big, 413),
            (call_path(name), secret, b"{", 400),
        ]
        for path, token, body, status in cases:
            headers = {"Authorization": token} if token else {}
            response = await client.post(path, content=body, headers=headers)
            assert_error(response, status)


async def test_a_body_over_the_cap_is_413_at_the_cap_200(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_max_bytes=64) as (_app, client):
        endpoint, secret = await endpoint_with_token(client)
        exact = b'{"a":"' + b"x" * (64 - 8) + b'"}'
        assert len(exact) == 64
        ok = await client.post(call_path(endpoint["name"]), content=exact, headers={"Authorization": secret})
        assert ok.status_code == 200, ok.text
        over = await client.post(
            call_path(endpoint["name"]), content=exact[:-1] + b" }", headers={"Authorization": secret}
        )
        error = assert_error(over, 413, "ContentTooLargeError")
        assert error["message"] == (
            "request entity too large: a signal payload may have at most 64 bytes "
            "(SWITCHMAN_SIGNAL_MAX_BYTES=64 on this server)."
        )
        assert over.headers["connection"] == "close"
        assert len(await signal_rows(db)) == 1


async def test_a_declared_length_over_the_cap_is_refused_without_reading(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_max_bytes=1024) as (app, client):
        endpoint, secret = await endpoint_with_token(client)
        pulled = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal pulled
            for _ in range(1000):
                pulled += 1
                yield b" " * 1000

        headers = {"Authorization": secret, "Content-Length": str(1000 * 1000)}
        async with caller(app) as anon:
            response = await anon.post(call_path(endpoint["name"]), content=body(), headers=headers)
        assert_error(response, 413, "ContentTooLargeError")
        assert pulled <= 1


async def test_a_chunked_body_stops_being_read_past_the_cap(db_url: str, db: Database) -> None:
    async with app_client(db_url, signal_max_bytes=10_000) as (app, client):
        endpoint, secret = await endpoint_with_token(client)
        pulled = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal pulled
            yield b'{"padding": "'
            for _ in range(10_000):  # 10 MB if read to the end
                pulled += 1
                yield b"x" * 1000
            yield b'"}'

        async with caller(app) as anon:
            response = await anon.post(
                call_path(endpoint["name"]), content=body(), headers={"Authorization": secret}
            )
        assert_error(response, 413, "ContentTooLargeError")
        assert pulled <= 12, pulled
        assert await signal_rows(db) == []


async def test_the_rate_limit_answers_429_with_retry_after(db_url: str, db: Database) -> None:
    # 0.001 per second: the bucket holds one call and takes 1,000 s to refill.
    async with app_client(db_url, signal_rate_limit_per_second=0.001) as (_app, client):
        endpoint, secret = await endpoint_with_token(client)
        other, other_secret = await endpoint_with_token(client)
        headers = {"Authorization": secret}
        assert (await client.post(call_path(endpoint["name"]), json={}, headers=headers)).status_code == 200
        limited = await client.post(call_path(endpoint["name"]), json={}, headers=headers)
        error = assert_error(limited, 429, "RateLimitError")
        assert int(limited.headers["retry-after"]) >= 1
        assert str(limited.headers["retry-after"]) in error["message"]
        assert limited.headers["ratelimit-limit"] == "1"
        assert limited.headers["ratelimit-remaining"] == "0"
        assert int(limited.headers["ratelimit-reset"]) >= 1
        # per endpoint name: another endpoint still has its call
        ok = await client.post(call_path(other["name"]), json={}, headers={"Authorization": other_secret})
        assert ok.status_code == 200, ok.text
        # the limit applies before the lookup: unknown names and bad tokens are limited too
        assert (await client.post(call_path("ghost"), json={})).status_code == 404
        assert_error(await client.post(call_path("ghost"), json={}), 429, "RateLimitError")
        assert len(await signal_rows(db)) == 2


async def test_other_methods_on_the_call_path_are_405_naming_post(client: httpx.AsyncClient) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = await client.request(method, call_path("anything"))
        assert_error(response, 405, "MethodNotAllowedError")
        assert response.headers["allow"] == "POST"


async def test_an_acknowledged_signal_is_readable_from_a_new_engine_and_a_new_process(
    client: httpx.AsyncClient, db_url: str
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    marker = "durable-" + secret[-8:]
    response = await client.post(
        call_path(endpoint["name"]), json={"marker": marker}, headers={"Authorization": secret}
    )
    assert response.status_code == 200, response.text
    signal_id = response.json()["signals"][0]["id"]

    fresh = Database(to_async_url(db_url), pool_size=1)
    try:
        async with fresh.read() as conn:
            stored = (
                await conn.exec_driver_sql(f"SELECT payload FROM signal WHERE id = {int(signal_id)}")
            ).scalar_one()
    finally:
        await fresh.dispose()
    assert json.loads(stored) == {"marker": marker}

    program = (
        "import asyncio, sys\n"
        "from switchman.config import to_async_url\n"
        "from switchman.db.engine import Database\n"
        "async def main():\n"
        "    db = Database(to_async_url(sys.argv[1]), pool_size=1)\n"
        "    async with db.read() as conn:\n"
        "        row = (await conn.exec_driver_sql('SELECT payload FROM signal WHERE id = ' + sys.argv[2])).first()\n"
        "    await db.dispose()\n"
        "    print(row[0] if row else 'MISSING')\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", program, db_url, str(signal_id), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0
    assert json.loads(out.decode().strip()) == {"marker": marker}


async def test_concurrent_calls_share_transactions(
    client: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    committer = app.state.runtime.require_ingestion().committer
    before = committer.transactions
    count = 60
    responses = await asyncio.gather(
        *(
            client.post(call_path(endpoint["name"]), json={"n": n}, headers={"Authorization": secret})
            for n in range(count)
        )
    )
    assert [r.status_code for r in responses] == [200] * count
    ids = [r.json()["signals"][0]["id"] for r in responses]
    assert len(set(ids)) == count
    assert [r.json()["signals"][0]["payload"] for r in responses] == [{"n": n} for n in range(count)]
    rows = await signal_rows(db)
    assert sorted(row.id for row in rows) == sorted(ids)
    # each acknowledged id is the row holding that call's payload
    stored = {row.id: json.loads(row.payload) for row in rows}
    assert [stored[signal_id] for signal_id in ids] == [{"n": n} for n in range(count)]
    transactions = committer.transactions - before
    assert 1 <= transactions < count
    assert committer.largest_batch > 1


async def test_a_stored_signal_wakes_the_worker(
    client: httpx.AsyncClient, app: FastAPI, backend: str
) -> None:
    ctx: Runtime = app.state.runtime
    endpoint, secret = await endpoint_with_token(client)
    await ctx.wakeup.wait(0.01)  # clear anything earlier
    notified = asyncio.Event()
    listener: Any = None
    if backend == "postgresql":
        import asyncpg

        from switchman.wakeup import CHANNEL

        listener = await asyncpg.connect(ctx.settings.database_url)
        await listener.add_listener(CHANNEL, lambda *_: notified.set())
    try:
        response = await client.post(call_path(endpoint["name"]), json={}, headers={"Authorization": secret})
        assert response.status_code == 200, response.text
        assert await ctx.wakeup.wait(10) is True
        if listener is not None:
            await asyncio.wait_for(notified.wait(), 10)
    finally:
        if listener is not None:
            await listener.close()


async def test_refused_calls_do_not_wake_the_worker(client: httpx.AsyncClient, app: FastAPI) -> None:
    ctx: Runtime = app.state.runtime
    endpoint = await make_endpoint(client)
    await make_endpoint_token(client, endpoint["id"])
    await ctx.wakeup.wait(0.01)
    response = await client.post(call_path(endpoint["name"]), json={}, headers={"Authorization": "wrong"})
    assert response.status_code == 401
    assert await ctx.wakeup.wait(0.2) is False


async def test_the_stored_payload_is_compact_json_text(client: httpx.AsyncClient, db: Database) -> None:
    endpoint, secret = await endpoint_with_token(client)
    body = b'{ "b" : [ 1 , 2 ],\n "a" : { } }'
    response = await client.post(call_path(endpoint["name"]), content=body, headers={"Authorization": secret})
    assert response.status_code == 200, response.text
    (row,) = await signal_rows(db)
    assert row.payload == '{"b":[1,2],"a":{}}'
    assert orjson.loads(response.content)["signals"][0]["payload"] == {"b": [1, 2], "a": {}}


async def test_a_failed_store_is_503_and_nothing_is_acknowledged(
    client: httpx.AsyncClient, db: Database, backend: str
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    if backend == "sqlite":
        create = [
            "CREATE TRIGGER refuse_signal BEFORE INSERT ON signal BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
        drop = ["DROP TRIGGER refuse_signal"]
    else:
        create = [
            "CREATE FUNCTION refuse_signal() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$",
            "CREATE TRIGGER refuse_signal BEFORE INSERT ON signal FOR EACH ROW EXECUTE FUNCTION refuse_signal()",
        ]
        drop = ["DROP TRIGGER refuse_signal ON signal", "DROP FUNCTION refuse_signal()"]
    async with db.transaction() as conn:
        for statement in create:
            await conn.exec_driver_sql(statement)
    try:
        response = await client.post(
            call_path(endpoint["name"]), json={"a": 1}, headers={"Authorization": secret}
        )
        error = assert_error(response, 503, "ServiceUnavailableError")
        assert "refused" not in error["message"]  # database messages are not echoed
        assert await signal_rows(db) == []
    finally:
        async with db.transaction() as conn:
            for statement in drop:
                await conn.exec_driver_sql(statement)
    # the writer recovers (a new connection on PostgreSQL)
    again = await client.post(call_path(endpoint["name"]), json={"a": 2}, headers={"Authorization": secret})
    assert again.status_code == 200, again.text
    assert [json.loads(row.payload) for row in await signal_rows(db)] == [{"a": 2}]


@pytest.mark.parametrize(
    "path", ["/api/signal-endpoint/", "/api/signal-endpoint/a/b", "/api/signal-endpoint/a/"]
)
async def test_paths_the_route_does_not_match_are_not_calls(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={})
    assert response.status_code in (404, 405, 307), response.text
    assert response.status_code != 200


async def test_a_batch_mixing_refused_and_accepted_calls_answers_each_correctly(
    client: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    first, first_secret = await endpoint_with_token(client)
    second, second_secret = await endpoint_with_token(client)
    committer = app.state.runtime.require_ingestion().committer
    plan: list[tuple[str, dict[str, str], bytes, int]] = []
    for n in range(40):
        kind = n % 5
        if kind == 0:
            plan.append((first["name"], {"Authorization": first_secret}, b'{"n":%d}' % n, 200))
        elif kind == 1:
            plan.append((second["name"], {"Authorization": second_secret}, b'{"n":%d}' % n, 200))
        elif kind == 2:
            plan.append((first["name"], {"Authorization": second_secret}, b'{"n":%d}' % n, 401))
        elif kind == 3:
            plan.append(("ghost", {"Authorization": first_secret}, b'{"n":%d}' % n, 404))
        else:
            plan.append((second["name"], {"Authorization": second_secret}, b"%d" % n, 400))
    before = committer.transactions
    responses = await asyncio.gather(
        *(client.post(call_path(name), content=body, headers=headers) for name, headers, body, _ in plan)
    )
    assert [r.status_code for r in responses] == [status for *_, status in plan]
    assert committer.transactions - before < len(plan)
    stored = {row.id: (row.source_id, json.loads(row.payload)) for row in await signal_rows(db)}
    acknowledged = {}
    for (name, _headers, body, status), response in zip(plan, responses, strict=True):
        if status == 200:
            signal = response.json()["signals"][0]
            endpoint_id = first["id"] if name == first["name"] else second["id"]
            acknowledged[signal["id"]] = (endpoint_id, json.loads(body))
    assert stored == acknowledged


async def test_valid_json_nested_too_deep_says_so(db_url: str, db: Database) -> None:
    async with app_client(db_url) as (_app, client):
        endpoint, secret = await endpoint_with_token(client)
        # deeper than the parser reads (1024) and deeper than switchman stores (254): the same answer
        for depth in (1100, 254):
            deep = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
            response = await client.post(
                call_path(endpoint["name"]), content=deep, headers={"Authorization": secret}
            )
            error = assert_error(response, 400, "BadDataError")
            assert error["message"] == (
                "The request body is JSON nested deeper than 254 levels, more than switchman stores."
            )
            assert error["details"] == [{"path": "/", "message": "nested deeper than 254 levels"}]
        broken = await client.post(
            call_path(endpoint["name"]), content=b'{"a":', headers={"Authorization": secret}
        )
        assert assert_error(broken, 400, "BadDataError")["message"] == "The request body is not valid JSON."
        fine = b'{"a":' + b"[" * 253 + b"]" * 253 + b"}"  # 254 levels with the object
        assert (
            await client.post(call_path(endpoint["name"]), content=fine, headers={"Authorization": secret})
        ).status_code == 200
        assert len(await signal_rows(db)) == 1


async def test_the_admin_api_says_when_json_is_nested_too_deep(client: httpx.AsyncClient) -> None:
    deep = b'{"name":"x","description":' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await client.post(
        "/api/admin/signal-endpoints", content=deep, headers={"Content-Type": "application/json"}
    )
    error = assert_error(response, 400, "BadDataError")
    assert error["message"] == "The request body is valid JSON nested too deeply to read."


async def test_the_token_as_a_query_parameter_only_where_the_endpoint_accepts_it(
    client: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    app.state.runtime.ingestion.endpoint_rules._ttl = 0  # a change applies at once instead of within 1 s
    call = call_path(endpoint["name"])
    setting = f"{BASE}/{endpoint['id']}/query-token"
    assert (await client.get(setting)).json() == {"signalEndpointId": endpoint["id"], "accepted": False}
    async with caller(app) as sender:  # no Authorization header at all, as such senders call
        refused = await sender.post(call, json={}, params={"token": secret})
        assert_error(refused, 401, "AuthenticationRequired")  # not accepted: as if no token came
        assert (await client.put(setting, json={"accepted": True})).json()["accepted"] is True
        accepted = await sender.post(call, json={"n": 1}, params={"token": secret, "other": "x"})
        assert accepted.status_code == 200, accepted.text
        wrong = await sender.post(call, json={}, params={"token": "not-the-token"})
        assert_error(wrong, 401, "UnauthorizedError")
        assert (await client.put(setting, json={"accepted": False})).json()["accepted"] is False
        again = await sender.post(call, json={}, params={"token": secret})
        assert_error(again, 401, "AuthenticationRequired")
    assert len(await signal_rows(db)) == 1
    assert_error(await client.put(setting, json={"accepted": "yes"}), 400, "BadDataError")
    assert_error(await client.get(f"{BASE}/999999/query-token"), 404, "NotFoundError")
