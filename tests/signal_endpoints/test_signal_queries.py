"""Signal listings: per endpoint (newest first, tokenName) and the global query (from/to, total)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from switchman.db.engine import Database
from tests.conftest import assert_error
from tests.factories import endpoint_with_token, make_endpoint, make_endpoint_token
from tests.signal_endpoints.helpers import BASE, create_viewer_pat, insert_signal


async def _call(client: httpx.AsyncClient, name: str, secret: str, payload: dict[str, object]) -> int:
    response = await client.post(
        f"/api/signal-endpoint/{name}", json=payload, headers={"Authorization": secret}
    )
    assert response.status_code == 200, response.text
    signal_id: int = response.json()["signals"][0]["id"]
    return signal_id


async def test_endpoint_signals_are_newest_first_with_token_names(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client)
    first = await make_endpoint_token(client, endpoint["id"], "grafana")
    second = await make_endpoint_token(client, endpoint["id"], "datadog")
    other, other_secret = await endpoint_with_token(client)
    ids = [
        await _call(client, endpoint["name"], first["token"], {"n": 1, "nested": {"ü": [1, None]}}),
        await _call(client, endpoint["name"], second["token"], {"n": 2}),
        await _call(client, endpoint["name"], first["token"], {"n": 3}),
    ]
    await _call(client, other["name"], other_secret, {"n": "other"})
    response = await client.get(f"{BASE}/{endpoint['id']}/signals")
    assert response.status_code == 200, response.text
    signals = response.json()["signalEndpointSignals"]
    assert [s["id"] for s in signals] == ids[::-1]
    assert [s["tokenName"] for s in signals] == ["grafana", "datadog", "grafana"]
    assert signals[2]["payload"] == {"n": 1, "nested": {"ü": [1, None]}}
    assert all(s["source"] == "signal-endpoint" and s["sourceId"] == endpoint["id"] for s in signals)
    assert all("createdBySourceTokenId" not in s for s in signals)
    assert all(s["createdAt"].endswith("Z") for s in signals)


async def test_endpoint_signals_page_with_limit_and_offset(client: httpx.AsyncClient) -> None:
    endpoint, secret = await endpoint_with_token(client)
    ids = [await _call(client, endpoint["name"], secret, {"n": n}) for n in range(5)]
    newest_first = ids[::-1]
    path = f"{BASE}/{endpoint['id']}/signals"
    assert [
        s["id"] for s in (await client.get(path, params={"limit": "2"})).json()["signalEndpointSignals"]
    ] == (newest_first[:2])
    page = (await client.get(path, params={"limit": "2", "offset": "2"})).json()["signalEndpointSignals"]
    assert [s["id"] for s in page] == newest_first[2:4]
    page = (await client.get(path, params={"limit": "2", "offset": "4"})).json()["signalEndpointSignals"]
    assert [s["id"] for s in page] == newest_first[4:]
    # Unleash's normalisation: bad values fall back to the defaults, never a 400
    for params in ({"limit": "0"}, {"limit": "-3"}, {"limit": "abc"}, {"limit": "1001"}, {"offset": "x"}):
        response = await client.get(path, params=params)
        assert response.status_code == 200, (params, response.text)
        assert [s["id"] for s in response.json()["signalEndpointSignals"]] == newest_first


async def test_endpoint_signals_limit_defaults_to_50(client: httpx.AsyncClient, db: Database) -> None:
    endpoint = await make_endpoint(client)
    for n in range(55):
        await insert_signal(db, source_id=endpoint["id"], payload=json.dumps({"n": n}))
    path = f"{BASE}/{endpoint['id']}/signals"
    assert len((await client.get(path)).json()["signalEndpointSignals"]) == 50
    assert len((await client.get(path, params={"limit": "1000"})).json()["signalEndpointSignals"]) == 55


async def test_token_name_is_null_once_the_token_is_deleted(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client)
    token = await make_endpoint_token(client, endpoint["id"], "temporary")
    await _call(client, endpoint["name"], token["token"], {})
    await client.delete(f"{BASE}/{endpoint['id']}/tokens/{token['id']}")
    (signal,) = (await client.get(f"{BASE}/{endpoint['id']}/signals")).json()["signalEndpointSignals"]
    assert signal["tokenName"] is None


async def test_endpoint_signals_of_an_unknown_endpoint_are_404(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"{BASE}/777/signals"), 404, "NotFoundError")
    assert_error(await client.get(f"{BASE}/x/signals"), 404, "NotFoundError")


async def test_the_signal_query_enriches_and_counts(client: httpx.AsyncClient) -> None:
    endpoint = await make_endpoint(client, description="alerts from Grafana")
    token = await make_endpoint_token(client, endpoint["id"], "grafana")
    other, other_secret = await endpoint_with_token(client)
    first = await _call(client, endpoint["name"], token["token"], {"a": 1})
    second = await _call(client, other["name"], other_secret, {"b": 2})
    response = await client.get("/api/admin/signals")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    assert [s["id"] for s in body["signals"]] == [second, first]
    oldest = body["signals"][1]
    assert oldest == {
        "id": first,
        "source": "signal-endpoint",
        "sourceId": endpoint["id"],
        "createdAt": oldest["createdAt"],
        "tokenName": "grafana",
        "sourceName": endpoint["name"],
        "sourceDescription": "alerts from Grafana",
        "payload": {"a": 1},
    }
    # a deleted endpoint: its signals stay, without names
    await client.delete(f"{BASE}/{endpoint['id']}")
    again = (await client.get("/api/admin/signals")).json()["signals"][1]
    assert again["id"] == first
    assert again["sourceName"] is None and again["sourceDescription"] is None and again["tokenName"] is None


async def test_the_signal_query_filters_whole_utc_days(client: httpx.AsyncClient, db: Database) -> None:
    endpoint = await make_endpoint(client)

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    stamps = {
        "before": at("2024-04-30T23:59:59.999999"),
        "start": at("2024-05-01T00:00:00"),
        "middle": at("2024-05-02T12:00:00"),
        "end": at("2024-05-03T23:59:59.999"),
        "after": at("2024-05-04T00:00:00"),
    }
    ids = {
        key: await insert_signal(
            db, source_id=endpoint["id"], payload=json.dumps({"k": key}), created_at=stamp
        )
        for key, stamp in stamps.items()
    }

    async def query(**params: str) -> tuple[list[str], int]:
        response = await client.get("/api/admin/signals", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        return [s["payload"]["k"] for s in body["signals"]], body["total"]

    assert await query(**{"from": "IS:2024-05-01", "to": "IS:2024-05-03"}) == (["end", "middle", "start"], 3)
    assert await query(**{"from": "IS:2024-05-02"}) == (["after", "end", "middle"], 3)
    assert await query(to="IS:2024-04-30") == (["before"], 1)
    assert await query(**{"from": "IS:2024-05-01", "to": "IS:2024-05-03", "limit": "1", "offset": "1"}) == (
        ["middle"],
        3,
    )
    assert (await query())[1] == len(ids)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2024-05-01"},
        {"from": "IS:2024-5-1"},
        {"to": "IS:2024-02-30"},
        {"to": "IN:2024-05-01"},
        {"from": "IS:yesterday"},
        {"from": "IS:2024-05-01T00:00"},
    ],
)
async def test_bad_from_or_to_is_400(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    error = assert_error(await client.get("/api/admin/signals", params=params), 400, "BadDataError")
    assert error["details"][0]["path"].startswith("query:")


async def test_the_signal_query_is_open_to_any_authenticated_principal(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, db: Database
) -> None:
    endpoint, secret = await endpoint_with_token(client)
    await _call(client, endpoint["name"], secret, {"x": 1})
    viewer = await create_viewer_pat(db)
    response = await anon.get("/api/admin/signals", headers={"Authorization": viewer})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 1
    assert_error(await anon.get("/api/admin/signals"), 401, "AuthenticationRequired")
    # the endpoint's own listing stays admin-only
    assert_error(
        await anon.get(f"{BASE}/{endpoint['id']}/signals", headers={"Authorization": viewer}),
        403,
        "PermissionError",
    )


async def test_the_signal_query_limit_defaults_to_50(client: httpx.AsyncClient, db: Database) -> None:
    endpoint = await make_endpoint(client)
    now = datetime.now(UTC)
    for n in range(52):
        await insert_signal(db, source_id=endpoint["id"], created_at=now - timedelta(seconds=n))
    body = (await client.get("/api/admin/signals", params={"limit": "5000"})).json()
    assert len(body["signals"]) == 50
    assert body["total"] == 52
