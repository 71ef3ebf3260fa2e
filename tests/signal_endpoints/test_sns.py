"""Amazon SNS deliveries (ADR 0020): certificate signatures v1 and v2, subscription confirmation, the host
allow-list. SNS itself is the process edge: its certificate and confirmation URLs are served by an
`httpx.MockTransport`; the signatures are real RSA signatures over SNS's canonical text."""

from __future__ import annotations

import base64
import datetime
import json
import re
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from switchman.db.engine import Database
from switchman.engine.formats import Format, normalise
from switchman.signal_endpoints.sns import DEFAULT_HOST_PATTERN, SnsVerifier, allowed_url, string_to_sign
from tests.conftest import REPO_ROOT, assert_error
from tests.factories import make_endpoint
from tests.signal_endpoints.helpers import BASE, app_client, signal_rows

CERT_URL = (
    "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem"
)
SUBSCRIBE_URL = (
    "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
    "&TopicArn=arn:aws:sns:eu-west-1:123456789012:checkout-alarms&Token=2336412f37"
)
HOSTS = re.compile(DEFAULT_HOST_PATTERN)


@pytest.fixture(scope="module")
def signing_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


class FakeSns:
    """SNS's side: serves the certificate, records subscription confirmations."""

    def __init__(self, pem: bytes) -> None:
        self.pem = pem
        self.fetched: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.fetched.append(str(request.url))
        if request.url.path.endswith(".pem"):
            return httpx.Response(200, content=self.pem)
        if request.url.params.get("Action") == "ConfirmSubscription":
            return httpx.Response(200, text="<ConfirmSubscriptionResponse/>")
        return httpx.Response(404)


def signed(key: rsa.RSAPrivateKey, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
    message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
    text = string_to_sign(message)
    assert text is not None
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    message["Signature"] = base64.b64encode(key.sign(text, padding.PKCS1v15(), algorithm)).decode()
    return message


def notification() -> dict[str, Any]:
    fixture = json.loads((REPO_ROOT / "tests/fixtures/senders/sns-cloudwatch-alarm.json").read_text())
    return {k: v for k, v in fixture.items() if k not in ("Signature", "SignatureVersion", "SigningCertURL")}


def subscription() -> dict[str, Any]:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:checkout-alarms",
        "Message": "You have chosen to subscribe to the topic … To confirm the subscription, visit the "
        "SubscribeURL included in this message.",
        "SubscribeURL": SUBSCRIBE_URL,
        "Timestamp": "2026-12-03T08:59:02.157Z",
    }


def test_the_canonical_text_leaves_out_a_missing_subject() -> None:
    message = {k: v for k, v in notification().items() if k != "Subject"}
    text = string_to_sign(message)
    assert text is not None and b"Subject" not in text
    assert text.startswith(b"Message\n") and text.endswith(b"Type\nNotification\n")
    assert string_to_sign({**message, "Type": "Other"}) is None


@pytest.mark.parametrize(
    ("url", "pem", "allowed"),
    [
        (CERT_URL, True, True),
        ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", True, True),
        ("http://sns.eu-west-1.amazonaws.com/x.pem", True, False),
        ("https://sns.eu-west-1.amazonaws.com.evil.example/x.pem", True, False),
        ("https://evil.example/sns.eu-west-1.amazonaws.com/x.pem", True, False),
        ("https://user@sns.eu-west-1.amazonaws.com/x.pem", True, False),
        ("https://sns.eu-west-1.amazonaws.com/x.txt", True, False),
        (SUBSCRIBE_URL, False, True),
        (None, False, False),
    ],
)
def test_the_host_allow_list(url: Any, pem: bool, allowed: bool) -> None:
    assert allowed_url(url, HOSTS, pem=pem) is allowed


async def test_sns_end_to_end(
    db_url: str, db: Database, signing_key: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = signing_key
    sns = FakeSns(pem)
    async with app_client(db_url) as (app, client):  # no SWITCHMAN_SECRET_KEY needed: SNS has no secret
        endpoint = await make_endpoint(client)
        path = f"{BASE}/{endpoint['id']}/verification"
        assert_error(await client.put(path, json={"scheme": "sns", "secret": "x"}), 400, "BadDataError")
        assert (await client.put(path, json={"scheme": "sns"})).status_code == 200
        assert (
            await client.put(f"{BASE}/{endpoint['id']}/format", json={"format": "cloudwatch-sns"})
        ).status_code == 200
        rules = app.state.runtime.ingestion.endpoint_rules
        await rules.sns.close()
        rules.sns = SnsVerifier(httpx.AsyncClient(transport=httpx.MockTransport(sns.handler)))
        call = f"/api/signal-endpoint/{endpoint['name']}"
        sent = {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "Notification"}

        confirmed = await client.post(call, content=json.dumps(signed(key, subscription())), headers=sent)
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json() == {"signals": []}  # confirmed, not a signal
        assert SUBSCRIBE_URL in sns.fetched
        assert await signal_rows(db) == []

        for version in ("1", "2"):
            each = {**notification(), "MessageId": f"b9b0d5f3-3c33-5bd4-9a5c-2a8c4a3d4f1{version}"}
            message = signed(key, each, version)
            stored = await client.post(call, content=json.dumps(message), headers=sent)
            assert stored.status_code == 200, stored.text
            assert stored.json()["signals"][0]["payload"] == message  # stored as posted
            assert normalise(Format.CLOUDWATCH_SNS, message)["status"] == "firing"
        assert sns.fetched.count(CERT_URL) == 1  # the certificate is cached

        tampered = signed(key, notification())
        tampered["Message"] = tampered["Message"].replace("ALARM", "OK")
        assert (
            "does not match"
            in assert_error(
                await client.post(call, content=json.dumps(tampered), headers=sent), 401, "UnauthorizedError"
            )["message"]
        )
        elsewhere = signed(key, notification())
        elsewhere["SigningCertURL"] = "https://attacker.example/SimpleNotificationService.pem"
        assert_error(
            await client.post(call, content=json.dumps(elsewhere), headers=sent), 401, "UnauthorizedError"
        )
        assert all("attacker" not in url for url in sns.fetched)  # never fetched
        assert_error(
            await client.post(call, json={"Type": "Notification"}, headers=sent), 401, "UnauthorizedError"
        )
        assert len(await signal_rows(db)) == 2


async def test_unsubscribe_and_failed_confirmations(
    db_url: str, db: Database, signing_key: tuple[rsa.RSAPrivateKey, bytes]
) -> None:
    key, pem = signing_key
    sns = FakeSns(pem)
    async with app_client(db_url) as (app, client):
        endpoint = await make_endpoint(client)
        await client.put(f"{BASE}/{endpoint['id']}/verification", json={"scheme": "sns"})
        rules = app.state.runtime.ingestion.endpoint_rules
        await rules.sns.close()
        rules.sns = SnsVerifier(httpx.AsyncClient(transport=httpx.MockTransport(sns.handler)))
        call = f"/api/signal-endpoint/{endpoint['name']}"
        unsubscribed = await client.post(
            call, content=json.dumps(signed(key, {**subscription(), "Type": "UnsubscribeConfirmation"}))
        )
        assert unsubscribed.json() == {"signals": []}
        assert SUBSCRIBE_URL not in sns.fetched  # acknowledged, not confirmed
        elsewhere = {**subscription(), "SubscribeURL": "https://attacker.example/?Action=ConfirmSubscription"}
        refused = await client.post(call, content=json.dumps(signed(key, elsewhere)))
        assert "not confirmed" in assert_error(refused, 503, "ServiceUnavailableError")["message"]
        assert all("attacker" not in url for url in sns.fetched)
        assert await signal_rows(db) == []
