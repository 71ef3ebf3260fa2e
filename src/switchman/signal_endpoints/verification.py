"""Signature verification of signal endpoint calls: the schemes senders sign with (ADR 0020).

Pure: a `Verifier` holds an endpoint's scheme and secret and checks one call's raw body and headers; it
never raises for anything a caller sends. Comparisons are constant-time (`hmac.compare_digest`); schemes
with a timestamp refuse calls outside their tolerance (replays of old deliveries).

- `github`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
- `standard-webhooks` (Svix and the Standard Webhooks specification): `webhook-id`, `webhook-timestamp`
  (Unix seconds) and `webhook-signature` (space-separated `v1,<base64>` entries, several during a secret
  rotation) over `<id>.<timestamp>.<body>`; the secret is `whsec_<base64 key>`.
- `hmac-sha256`: any sender that signs the body with HMAC-SHA256 in a header it names (`header`, default
  `X-Signature`), hex or base64, optionally prefixed `sha256=`; with `timestamp_header` (Grafana's
  `X-Grafana-Alerting-Signature-Timestamp`, say) the signed text is `<timestamp>:<body>` and the timestamp
  must be within the tolerance.
- `pagerduty`: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]` (several during a secret rotation).
- `sentry`: `Sentry-Hook-Signature: <hex HMAC-SHA256(client secret, body)>`.
- `stripe`: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=…]`, within the
  tolerance.
- `sns`: Amazon SNS signs with a certificate, not a shared secret; `switchman.signal_endpoints.sns`
  verifies it (it must fetch the certificate), never `Verifier.failure`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Scheme(StrEnum):
    GITHUB = "github"
    STANDARD_WEBHOOKS = "standard-webhooks"
    HMAC_SHA256 = "hmac-sha256"
    PAGERDUTY = "pagerduty"
    SENTRY = "sentry"
    STRIPE = "stripe"
    SNS = "sns"  # certificate signatures, checked by switchman.signal_endpoints.sns (it fetches them)


# Schemes whose signed text carries a time, so a replay window applies.
TIMED_SCHEMES = frozenset({Scheme.STANDARD_WEBHOOKS, Scheme.STRIPE, Scheme.HMAC_SHA256})


DEFAULT_HMAC_HEADER = "X-Signature"
DEFAULT_TOLERANCE_SECONDS = 300
_WHSEC = "whsec_"


class SecretError(ValueError):
    """A secret the scheme cannot use."""


def secret_key(scheme: Scheme, secret: str) -> bytes:
    """The HMAC key a scheme's secret stands for; SecretError when it is unusable."""
    if not secret or len(secret) > 1024:
        raise SecretError("must be 1 to 1024 characters")
    if scheme == Scheme.STANDARD_WEBHOOKS:
        encoded = secret.removeprefix(_WHSEC)
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise SecretError("must be `whsec_` followed by base64 (the Standard Webhooks form)") from exc
        if len(key) < 16:
            raise SecretError("must decode to at least 16 bytes")
        return key
    return secret.encode()


@dataclass(frozen=True)
class Verifier:
    scheme: Scheme
    key: bytes
    header: str = DEFAULT_HMAC_HEADER
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS
    timestamp_header: str | None = None

    def failure(self, body: bytes, headers: Mapping[bytes, bytes], *, now: float) -> str | None:
        """Why the call does not verify (a sentence for the 401), or None when it does."""
        if self.scheme == Scheme.GITHUB:
            return self._github(body, headers)
        if self.scheme == Scheme.STANDARD_WEBHOOKS:
            return self._standard_webhooks(body, headers, now)
        if self.scheme == Scheme.PAGERDUTY:
            return self._pagerduty(body, headers)
        if self.scheme == Scheme.SENTRY:
            return self._sentry(body, headers)
        if self.scheme == Scheme.STRIPE:
            return self._stripe(body, headers, now)
        if self.scheme == Scheme.SNS:
            return "SNS messages are verified with their signing certificate, not here."
        return self._hmac(body, headers, now)

    def _digest(self, signed: bytes) -> bytes:
        return hmac.new(self.key, signed, hashlib.sha256).digest()

    def _stale(self, sent_at: int, now: float) -> str | None:
        if abs(now - sent_at) > self.tolerance_seconds:
            return f"The signed timestamp is more than {self.tolerance_seconds} s away from now."
        return None

    def _pagerduty(self, body: bytes, headers: Mapping[bytes, bytes]) -> str | None:
        presented = headers.get(b"x-pagerduty-signature")
        if presented is None:
            return "The X-PagerDuty-Signature header is missing."
        expected = b"v1=" + self._digest(body).hex().encode()
        if any(hmac.compare_digest(entry.strip().lower(), expected) for entry in presented.split(b",")):
            return None
        return "No v1 signature in X-PagerDuty-Signature matches the body."

    def _sentry(self, body: bytes, headers: Mapping[bytes, bytes]) -> str | None:
        presented = headers.get(b"sentry-hook-signature")
        if presented is None:
            return "The Sentry-Hook-Signature header is missing."
        if not hmac.compare_digest(presented.strip().lower(), self._digest(body).hex().encode()):
            return "The Sentry-Hook-Signature signature does not match the body."
        return None

    def _stripe(self, body: bytes, headers: Mapping[bytes, bytes], now: float) -> str | None:
        presented = headers.get(b"stripe-signature")
        if presented is None:
            return "The Stripe-Signature header is missing."
        parts = [item.partition(b"=") for item in presented.split(b",")]
        stamps = [value.strip() for key, _, value in parts if key.strip() == b"t"]
        signatures = [value.strip().lower() for key, _, value in parts if key.strip() == b"v1"]
        if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
            return "The Stripe-Signature header needs one t= and at least one v1=."
        stale = self._stale(int(stamps[0]), now)
        if stale:
            return stale
        expected = self._digest(stamps[0] + b"." + body).hex().encode()
        if any(hmac.compare_digest(signature, expected) for signature in signatures):
            return None
        return "No v1 signature in Stripe-Signature matches the body."

    def _github(self, body: bytes, headers: Mapping[bytes, bytes]) -> str | None:
        presented = headers.get(b"x-hub-signature-256")
        if presented is None:
            return "The X-Hub-Signature-256 header is missing."
        expected = b"sha256=" + hmac.new(self.key, body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(presented.strip().lower(), expected):
            return "The X-Hub-Signature-256 signature does not match the body."
        return None

    def _standard_webhooks(self, body: bytes, headers: Mapping[bytes, bytes], now: float) -> str | None:
        message_id = headers.get(b"webhook-id")
        timestamp = headers.get(b"webhook-timestamp")
        signatures = headers.get(b"webhook-signature")
        if message_id is None or timestamp is None or signatures is None:
            return "The webhook-id, webhook-timestamp and webhook-signature headers are required."
        try:
            sent_at = int(timestamp)
        except ValueError:
            return "The webhook-timestamp header is not a Unix time."
        if abs(now - sent_at) > self.tolerance_seconds:
            return f"The webhook-timestamp is more than {self.tolerance_seconds} s away from now."
        signed = message_id + b"." + timestamp + b"." + body
        expected = base64.b64encode(hmac.new(self.key, signed, hashlib.sha256).digest())
        for entry in signatures.split():
            version, _, signature = entry.partition(b",")
            if version == b"v1" and hmac.compare_digest(signature, expected):
                return None
        return "No v1 signature in webhook-signature matches the body."

    def _hmac(self, body: bytes, headers: Mapping[bytes, bytes], now: float) -> str | None:
        presented = headers.get(self.header.lower().encode("latin-1"))
        if presented is None:
            return f"The {self.header} header is missing."
        signed = body
        if self.timestamp_header is not None:
            stamp = headers.get(self.timestamp_header.lower().encode("latin-1"), b"").strip()
            if not stamp.isdigit():
                return f"The {self.timestamp_header} header is missing or not a Unix time."
            stale = self._stale(int(stamp), now)
            if stale:
                return stale
            signed = stamp + b":" + body
        value = presented.strip()
        if value.lower().startswith(b"sha256="):
            value = value[7:]
        digest = self._digest(signed)
        if hmac.compare_digest(value.lower(), digest.hex().encode()):
            return None
        if hmac.compare_digest(value, base64.b64encode(digest)):
            return None
        return f"The {self.header} signature does not match the body."
