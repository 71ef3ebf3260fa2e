"""Amazon SNS HTTP(S) deliveries: signature verification and subscription confirmation (ADR 0020).

SNS signs each message with a certificate it publishes at `SigningCertURL`: version 1 with SHA1withRSA,
version 2 with SHA256withRSA, over a canonical text of the message's fields. A certificate is fetched only
from an `https` URL whose host matches the allow-list (`SWITCHMAN_SNS_HOST_PATTERN`, by default
`sns.<region>.amazonaws.com`) and whose path ends in `.pem`, and is cached by URL. A verified
`SubscriptionConfirmation` is confirmed by fetching its `SubscribeURL` (same allow-list); it is not a
signal. A verified `Notification` is stored as posted.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DEFAULT_HOST_PATTERN = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"
_CERTIFICATES_KEPT = 32
_NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SUBSCRIPTION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


class MessageType(StrEnum):
    NOTIFICATION = "Notification"
    SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
    UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"


@dataclass(frozen=True)
class Checked:
    """A verified SNS message, or why it is refused."""

    failure: str | None
    message_type: MessageType | None = None
    subscribe_url: str | None = None


def string_to_sign(message: Mapping[str, Any]) -> bytes | None:
    """The canonical text SNS signs for `message`; None for an unknown message type."""
    kind = message.get("Type")
    fields: tuple[str, ...]
    if kind == MessageType.NOTIFICATION:
        fields = _NOTIFICATION_FIELDS
    elif kind in (MessageType.SUBSCRIPTION_CONFIRMATION, MessageType.UNSUBSCRIBE_CONFIRMATION):
        fields = _SUBSCRIPTION_FIELDS
    else:
        return None
    lines: list[str] = []
    for field in fields:
        value = message.get(field)
        if value is None and field == "Subject":
            continue  # a notification without a subject leaves the pair out
        if not isinstance(value, str):
            return None
        lines += [field, value]
    return ("\n".join(lines) + "\n").encode()


def allowed_url(url: object, host_pattern: re.Pattern[str], *, pem: bool) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host_pattern.fullmatch(host) or parts.username or parts.password:
        return False
    return parts.path.endswith(".pem") if pem else True


class SnsVerifier:
    """Verifies SNS messages and confirms subscriptions; certificates cached by URL."""

    def __init__(self, client: httpx.AsyncClient, *, host_pattern: str = DEFAULT_HOST_PATTERN) -> None:
        self._client = client
        self._hosts = re.compile(host_pattern)
        self._certificates: dict[str, rsa.RSAPublicKey] = {}

    async def check(self, body: bytes) -> Checked:
        try:
            message = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Checked("The body is not an SNS message (not JSON).")
        if not isinstance(message, dict):
            return Checked("The body is not an SNS message.")
        signed = string_to_sign(message)
        if signed is None:
            return Checked("The body is not an SNS message of a known type with all its fields.")
        version = message.get("SignatureVersion")
        algorithm: hashes.HashAlgorithm
        if version == "1":
            algorithm = hashes.SHA1()  # noqa: S303 - SNS signature version 1 is SHA1withRSA
        elif version == "2":
            algorithm = hashes.SHA256()
        else:
            return Checked("SignatureVersion must be 1 or 2.")
        cert_url = message.get("SigningCertURL")
        if not allowed_url(cert_url, self._hosts, pem=True):
            return Checked("SigningCertURL is not an https .pem URL on an allowed SNS host.")
        assert isinstance(cert_url, str)
        try:
            signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        except binascii.Error:
            return Checked("Signature is not base64.")
        key = await self._certificate(cert_url)
        if key is None:
            return Checked("The signing certificate could not be fetched or read.")
        try:
            key.verify(signature, signed, padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            return Checked("The SNS signature does not match the message.")
        kind = MessageType(message["Type"])
        url = message.get("SubscribeURL") if kind == MessageType.SUBSCRIPTION_CONFIRMATION else None
        return Checked(None, kind, url if isinstance(url, str) else None)

    async def confirm(self, subscribe_url: str | None) -> str | None:
        """Confirm a verified subscription (GET its SubscribeURL); why it failed, or None."""
        if not allowed_url(subscribe_url, self._hosts, pem=False):
            return "SubscribeURL is not an https URL on an allowed SNS host."
        assert subscribe_url is not None
        try:
            response = await self._client.get(subscribe_url)
        except httpx.HTTPError as exc:
            return f"confirming the subscription failed: {type(exc).__name__}"
        if response.status_code != 200:
            return f"confirming the subscription failed: SNS answered {response.status_code}"
        return None

    async def _certificate(self, url: str) -> rsa.RSAPublicKey | None:
        key = self._certificates.get(url)
        if key is not None:
            return key
        try:
            response = await self._client.get(url)
            if response.status_code != 200:
                return None
            public = x509.load_pem_x509_certificate(response.content).public_key()
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(public, rsa.RSAPublicKey):
            return None
        if len(self._certificates) >= _CERTIFICATES_KEPT:
            self._certificates.clear()
        self._certificates[url] = public
        return public

    async def close(self) -> None:
        await self._client.aclose()
