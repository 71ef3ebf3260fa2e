"""docs/integrations/: every recipe as written, end to end through HTTP, on SQLite and PostgreSQL.

Each page's `action-set-firing` / `action-set-resolved` JSON blocks are created through the API as they
are (only `sourceId` and `actorId` become the real ids); the sender's configuration blocks are checked;
payloads in the sender's documented format (tests/fixtures/senders/) are posted the way the page says the
sender posts them, and the worker runs: the flag goes off on the firing payload and on again on the
resolved one. Repeated deliveries are posted again with their delivery id and must run nothing.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi import FastAPI

from switchman.config import Settings
from switchman.db.engine import Database
from switchman.flags.factory import create_flag_backend
from switchman.runtime import Runtime
from switchman.secret_box import new_key
from switchman.signal_endpoints.sns import SnsVerifier
from switchman.worker.loop import SignalWorker
from tests.conftest import REPO_ROOT, make_settings
from tests.factories import make_endpoint, make_endpoint_token, make_flag, make_service_account

PAGES = REPO_ROOT / "docs" / "integrations"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "senders"
_BLOCK = re.compile(r"^```(?P<lang>\w+) (?P<name>[\w-]+)\n(?P<body>.*?)^```", re.S | re.M)
ACTIONS = "/api/admin/projects/default/actions"


def blocks(page: str) -> dict[str, str]:
    found = {m["name"]: m["body"] for m in _BLOCK.finditer((PAGES / page).read_text())}
    assert found, page
    return found


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_every_page_is_listed_and_every_fixture_has_a_source() -> None:
    index = (PAGES / "README.md").read_text()
    pages = sorted(p.name for p in PAGES.glob("*.md") if p.name != "README.md")
    assert pages == [
        "alertmanager.md",
        "cloudwatch-sns.md",
        "datadog.md",
        "github.md",
        "grafana.md",
        "newrelic.md",
        "opsgenie.md",
        "pagerduty.md",
        "sentry.md",
    ]
    assert all(f"({page})" in index for page in pages)
    sources = (FIXTURES / "SOURCES.md").read_text()
    for path in FIXTURES.glob("*.json"):
        assert f"`{path.name}`" in sources, path.name
        json.loads(path.read_text())


@pytest.fixture
def settings(db_url: str, db: Database) -> Settings:
    """The test app with a SWITCHMAN_SECRET_KEY, so that recipes can give endpoints a signing secret."""
    return make_settings(db_url, secret_key=new_key())


@pytest.fixture
async def worker(app: FastAPI) -> AsyncIterator[SignalWorker]:
    runtime: Runtime = app.state.runtime
    backend = create_flag_backend(runtime.settings, runtime.db)
    yield SignalWorker(settings=runtime.settings, db=runtime.db, wakeup=runtime.wakeup, backend=backend)
    await backend.close()


class Recipe:
    """One page's endpoint, token and action sets, created as the page says."""

    def __init__(
        self, client: httpx.AsyncClient, worker: SignalWorker, page: str, *, endpoint: str | None = None
    ) -> None:
        self.client = client
        self.worker = worker
        self.blocks = blocks(page)
        self.name = endpoint or page.removesuffix(".md")  # the endpoint name the page uses
        self.key_prefix = ""  # prepended to every filter key

    async def create(self, *, secret: str | None = None) -> None:
        """The endpoint, its token, the page's format and verification (with `secret` in place of the
        page's placeholder), and its two action sets."""
        endpoint = await make_endpoint(self.client, name=self.name)
        self.endpoint_id = endpoint["id"]
        for kind in ("format", "verification"):
            if kind in self.blocks:
                body = json.loads(re.sub(r"<[^>]+>", secret or "", self.blocks[kind]))
                response = await self.client.put(
                    f"/api/admin/signal-endpoints/{self.endpoint_id}/{kind}", json=body
                )
                assert response.status_code == 200, response.text
        self.token = (await make_endpoint_token(self.client, endpoint["id"], name=f"{self.name} webhook"))[
            "token"
        ]
        actor = await make_service_account(self.client, role=1)
        self.flag = ""
        for kind in ("action-set-firing", "action-set-resolved"):
            body = json.loads(self.blocks[kind])
            body["match"]["sourceId"] = endpoint["id"]
            body["match"]["payload"] = {
                self.key_prefix + key: value for key, value in body["match"]["payload"].items()
            }
            body["actorId"] = actor["id"]
            flag = body["actions"][0]["executionParams"]["featureName"]
            if not self.flag:
                self.flag = await make_flag(self.client, name=flag)
            created = await self.client.post(ACTIONS, json=body)
            assert created.status_code == 201, created.text
        await self.set_flag(True)

    async def set_flag(self, on: bool) -> None:
        path = f"/api/admin/projects/default/features/{self.flag}/environments/production/{'on' if on else 'off'}"
        assert (await self.client.post(path)).status_code == 200

    async def flag_on(self) -> bool:
        feature = (await self.client.get(f"/api/admin/projects/default/features/{self.flag}")).json()
        [production] = [env for env in feature["environments"] if env["name"] == "production"]
        return bool(production["enabled"])

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        response = await self.client.post(f"/api/signal-endpoint/{self.name}", content=body, headers=headers)
        assert response.status_code == 200, response.text
        return response

    async def run_worker(self) -> int:
        total = 0
        while handled := await self.worker.drain_once():
            total += handled
        return total

    async def events(self) -> int:
        sets = (await self.client.get(ACTIONS)).json()["actions"]
        counts = [
            len((await self.client.get(f"{ACTIONS}/{s['id']}/events")).json()["actionSetEvents"])
            for s in sets
        ]
        return sum(counts)


async def test_alertmanager(client: httpx.AsyncClient, worker: SignalWorker) -> None:
    recipe = Recipe(client, worker, "alertmanager.md")
    config = yaml.safe_load(recipe.blocks["sender"])
    [receiver] = [r for r in config["receivers"] if r["name"] == "switchman"]
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"].endswith("/api/signal-endpoint/alertmanager")
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    assert config["route"]["routes"][0]["receiver"] == "switchman"
    await recipe.create()
    # Alertmanager sends `Authorization: Bearer <credentials_file content>` and JSON.
    headers = {"Authorization": f"Bearer {recipe.token}", "Content-Type": "application/json"}

    await recipe.post(fixture("alertmanager-firing.json"), headers)
    assert await recipe.run_worker() == 1
    assert await recipe.flag_on() is False
    await recipe.post(fixture("alertmanager-resolved.json"), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is True

    # Only a group with a critical alert turns the flag off: the same group with warnings only does not.
    warnings_only = json.loads(fixture("alertmanager-firing.json"))
    for alert in warnings_only["alerts"]:
        alert["labels"]["severity"] = "warning"
    before = await recipe.events()
    await recipe.post(json.dumps(warnings_only).encode(), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is True
    assert await recipe.events() == before


async def test_datadog(client: httpx.AsyncClient, worker: SignalWorker) -> None:
    recipe = Recipe(client, worker, "datadog.md")
    sent_headers = json.loads(recipe.blocks["sender-headers"])
    template = json.loads(recipe.blocks["sender-payload"])
    triggered = json.loads(fixture("datadog-triggered.json"))
    assert set(template) == set(triggered)  # the fixtures are the page's template, expanded
    assert all(value.startswith("$") for value in template.values())
    await recipe.create()
    # Datadog expands the variables: the custom variable holds the token, $ID the event id.
    expand = {"$SWITCHMAN_TOKEN": recipe.token}

    def headers_for(event: dict[str, Any]) -> dict[str, str]:
        values = {**expand, "$ID": event["id"]}
        out = {"Content-Type": "application/json"}
        for name, value in sent_headers.items():
            for variable, replacement in values.items():
                value = value.replace(variable, replacement)
            out[name] = value
        return out

    first = await recipe.post(fixture("datadog-triggered.json"), headers_for(triggered))
    # Datadog retries on a 5xx or a timeout: the retry carries the same $ID and runs nothing again.
    retry = await recipe.post(fixture("datadog-triggered.json"), headers_for(triggered))
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert await recipe.run_worker() == 1
    assert await recipe.flag_on() is False
    assert await recipe.events() == 1

    recovered = json.loads(fixture("datadog-recovered.json"))
    await recipe.post(fixture("datadog-recovered.json"), headers_for(recovered))
    await recipe.run_worker()
    assert await recipe.flag_on() is True

    # Another service's tag that merely starts with the same text does not match.
    indexer = {**triggered, "id": "1", "tags": "env:production, service:search-indexer"}
    before = await recipe.events()
    await recipe.post(json.dumps(indexer).encode(), headers_for(indexer))
    await recipe.run_worker()
    assert await recipe.flag_on() is True
    assert await recipe.events() == before


@pytest.mark.parametrize("credentials", ["signature", "token in the URL"])
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
async def test_github(
    client: httpx.AsyncClient, worker: SignalWorker, content_type: str, credentials: str
) -> None:
    recipe = Recipe(client, worker, "github.md")
    hook = yaml.safe_load(recipe.blocks["sender"])
    assert hook["payload_url"].endswith("/api/signal-endpoint/github")
    assert hook["events"] == ["workflow_run"]
    form = content_type != hook["content_type"]
    if form:  # the page's own note: with a form body the keys start with `payload.`
        recipe.key_prefix = "payload."
    webhook_secret = "8c2f0d4e6a1b3c5d7e9f0a2b4c6d8e0f"
    signed = credentials == "signature"
    if not signed:
        del recipe.blocks["verification"]
    await recipe.create(secret=webhook_secret)
    # A URL's user info is sent as HTTP Basic credentials: `<token>@` is the user name, no password.
    basic = base64.b64encode(f"{recipe.token}:".encode()).decode()

    def delivery(name: str, delivery_id: str) -> tuple[bytes, dict[str, str]]:
        raw = fixture(name)
        body = b"payload=" + quote_plus(raw).encode() if form else raw
        headers = {
            "Content-Type": content_type,
            "X-GitHub-Event": "workflow_run",
            "X-GitHub-Delivery": delivery_id,
            "User-Agent": "GitHub-Hookshot/0a1b2c3",
        }
        if signed:  # GitHub signs the body exactly as sent
            digest = hmac.new(webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature-256"] = f"sha256={digest}"
        else:
            headers["Authorization"] = f"Basic {basic}"
        return body, headers

    failed = await recipe.post(
        *delivery("github-workflow-run-failure.json", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    )
    assert await recipe.run_worker() == 1
    assert await recipe.flag_on() is False
    # A redelivery (same X-GitHub-Delivery) is the first delivery's signal again.
    again = await recipe.post(
        *delivery("github-workflow-run-failure.json", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    )
    assert again.json() == failed.json()
    await recipe.run_worker()
    await recipe.post(*delivery("github-workflow-run-success.json", "9a3f6b10-cc79-11e3-8d3b-2f1c0b7e7d11"))
    await recipe.run_worker()
    assert await recipe.flag_on() is True
    assert await recipe.events() == 2
    if signed:  # a delivery signed with another secret is refused and stores nothing
        body, headers = delivery("github-workflow-run-failure.json", "0b1c2d3e-cc7a-11e3-9c1a-0242ac120002")
        headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
        response = await client.post("/api/signal-endpoint/github", content=body, headers=headers)
        assert response.status_code == 401


def _signed(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_pagerduty(client: httpx.AsyncClient, worker: SignalWorker) -> None:
    recipe = Recipe(client, worker, "pagerduty.md")
    subscription = json.loads(recipe.blocks["sender"])["webhook_subscription"]
    assert subscription["delivery_method"]["url"].endswith("/api/signal-endpoint/pagerduty")
    assert {"incident.triggered", "incident.resolved"} <= set(subscription["events"])
    secret = "YVdgJ0dRx1J3Yq3KtzTvhNNY5kk4Ad2ZqYs5xzOj7bxUp1V4v6oQVGJ6T3oZpDPA"
    await recipe.create(secret=secret)

    def headers(body: bytes) -> dict[str, str]:
        return {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1={_signed(secret, body)}"}

    triggered = fixture("pagerduty-incident-triggered.json")
    await recipe.post(triggered, headers(triggered))
    await recipe.run_worker()
    assert await recipe.flag_on() is False
    acknowledged = triggered.replace(b"incident.triggered", b"incident.acknowledged")
    before = await recipe.events()
    await recipe.post(acknowledged, headers(acknowledged))
    await recipe.run_worker()
    assert await recipe.events() == before  # neither firing nor resolved
    resolved = fixture("pagerduty-incident-resolved.json")
    await recipe.post(resolved, headers(resolved))
    await recipe.run_worker()
    assert await recipe.flag_on() is True
    forged = await client.post("/api/signal-endpoint/pagerduty", content=triggered, headers=headers(resolved))
    assert forged.status_code == 401


async def test_grafana(client: httpx.AsyncClient, worker: SignalWorker) -> None:
    recipe = Recipe(client, worker, "grafana.md")
    provisioning = yaml.safe_load(recipe.blocks["sender"])
    [receiver] = provisioning["contactPoints"][0]["receivers"]
    assert receiver["type"] == "webhook"
    assert receiver["settings"]["url"].endswith("/api/signal-endpoint/grafana")
    assert receiver["settings"]["authorization_scheme"] == "Bearer"
    await recipe.create()
    headers = {"Authorization": f"Bearer {recipe.token}", "Content-Type": "application/json"}
    firing = json.loads(fixture("grafana-firing.json"))
    await recipe.post(json.dumps(firing).encode(), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is False
    resolved = {
        **firing,
        "status": "resolved",
        "state": "ok",
        "title": "[RESOLVED] Search latency search (critical)",
    }
    resolved["alerts"] = [{**alert, "status": "resolved"} for alert in firing["alerts"]]
    await recipe.post(json.dumps(resolved).encode(), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is True


async def test_sentry(client: httpx.AsyncClient, worker: SignalWorker) -> None:
    recipe = Recipe(client, worker, "sentry.md")
    integration = yaml.safe_load(recipe.blocks["sender"])
    assert integration["webhook_url"].endswith("/api/signal-endpoint/sentry")
    assert integration["webhooks"] == ["issue"]
    secret = "1b8ff0d1cd3b4d0a8f61d6d1bde3f0e3b3f8b0a9f5e1e4c3a2b1c0d9e8f7a6b5"
    await recipe.create(secret=secret)

    def headers(body: bytes) -> dict[str, str]:
        return {"Content-Type": "application/json", "Sentry-Hook-Resource": "issue",
                "Sentry-Hook-Signature": _signed(secret, body)}  # fmt: skip

    created = fixture("sentry-issue-created.json")
    await recipe.post(created, headers(created))
    await recipe.run_worker()
    assert await recipe.flag_on() is False
    resolved = fixture("sentry-issue-resolved.json")
    await recipe.post(resolved, headers(resolved))
    await recipe.run_worker()
    assert await recipe.flag_on() is True


async def test_cloudwatch_through_sns(client: httpx.AsyncClient, app: FastAPI, worker: SignalWorker) -> None:
    from tests.signal_endpoints.test_sns import CERT_URL, SUBSCRIBE_URL, FakeSns, signed, subscription

    recipe = Recipe(client, worker, "cloudwatch-sns.md", endpoint="cloudwatch")
    config = yaml.safe_load(recipe.blocks["sender"])
    assert config["subscription"]["endpoint"].endswith("/api/signal-endpoint/cloudwatch")
    assert config["alarm"]["ok_actions"] == config["alarm"]["alarm_actions"] == [config["topic_arn"]]
    await recipe.create()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sns = FakeSns(_certificate(key))
    rules = app.state.runtime.ingestion.endpoint_rules
    await rules.sns.close()
    rules.sns = SnsVerifier(httpx.AsyncClient(transport=httpx.MockTransport(sns.handler)))
    sent = {"Content-Type": "text/plain; charset=UTF-8"}

    confirmation = await client.post(
        "/api/signal-endpoint/cloudwatch", content=json.dumps(signed(key, subscription())), headers=sent
    )
    assert confirmation.json() == {"signals": []}
    assert SUBSCRIBE_URL in sns.fetched and CERT_URL in sns.fetched
    alarm = json.loads(fixture("sns-cloudwatch-alarm.json"))
    message = {k: v for k, v in alarm.items() if k not in ("Signature", "SignatureVersion", "SigningCertURL")}
    await recipe.post(json.dumps(signed(key, message)).encode(), sent)
    await recipe.run_worker()
    assert await recipe.flag_on() is False
    ok = {
        **message,
        "Message": message["Message"].replace('"NewStateValue": "ALARM"', '"NewStateValue": "OK"'),
    }
    ok["Subject"] = 'OK: "checkout-5xx-rate" in EU (Ireland)'
    ok["MessageId"] = "5e7c1f0a-8d2b-5a41-b3c6-7f9e0d2a1b34"  # each notification has its own id
    await recipe.post(json.dumps(signed(key, ok, "2")).encode(), sent)
    await recipe.run_worker()
    assert await recipe.flag_on() is True


def _certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


async def test_newrelic(client: httpx.AsyncClient, worker: SignalWorker) -> None:
    recipe = Recipe(client, worker, "newrelic.md")
    template = recipe.blocks["sender"]
    issue = json.loads(fixture("newrelic-issue-activated.json"))
    assert all(f'"{field}"' in template for field in issue)  # the fixture is the template, rendered
    await recipe.create()
    headers = {"Authorization": f"Bearer {recipe.token}", "Content-Type": "application/json"}
    await recipe.post(json.dumps(issue).encode(), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is False
    await recipe.post(json.dumps({**issue, "state": "CLOSED"}).encode(), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is True


async def test_opsgenie(client: httpx.AsyncClient, worker: SignalWorker) -> None:
    recipe = Recipe(client, worker, "opsgenie.md")
    settings = yaml.safe_load(recipe.blocks["sender"])
    assert settings["webhook_url"].endswith("/api/signal-endpoint/opsgenie")
    assert settings["custom_headers"]["Authorization"].startswith("Bearer ")
    await recipe.create()
    headers = {"Authorization": f"Bearer {recipe.token}", "Content-Type": "application/json"}
    created = json.loads(fixture("opsgenie-alert-create.json"))
    await recipe.post(json.dumps(created).encode(), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is False
    before = await recipe.events()
    await recipe.post(json.dumps({**created, "action": "Acknowledge"}).encode(), headers)
    await recipe.run_worker()
    assert await recipe.events() == before
    await recipe.post(json.dumps({**created, "action": "Close"}).encode(), headers)
    await recipe.run_worker()
    assert await recipe.flag_on() is True
