"""Secrets: generation, hashing, constant-time comparison, header parsing.

Secrets are stored only as SHA-256 hex digests. A secret carries ≥128 random bits, so a fast hash is the
right tool (a slow password hash buys nothing against a 2^128 search and would cost on every request).
Lookups go through the digest's unique index; the fetched digest is then compared with
`hmac.compare_digest`, so no comparison on the request path short-circuits on secret bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_BEARER = re.compile(r"^bearer(\s+|$)", re.IGNORECASE)  # the bare scheme is no credential


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def digests_match(stored_digest: str, secret: str) -> bool:
    return hmac.compare_digest(stored_digest, hash_secret(secret))


def strip_bearer(header_value: str) -> str:
    """Accept a token bare or as `Bearer <token>` (any letter case), like Unleash."""
    return _BEARER.sub("", header_value.strip(), count=1).strip()


def random_hex(nbytes: int = 32) -> str:
    return secrets.token_hex(nbytes)


def new_admin_token_secret() -> str:
    return f"*:*.{random_hex()}"


def new_api_token_secret(project: str, environment: str) -> str:
    return f"{project}:{environment}.{random_hex()}"


def new_pat_secret() -> str:
    """A personal access token for a service account: `user:` + 56 lowercase hex, like Unleash's v1 PATs."""
    return f"user:{random_hex(28)}"


def new_signal_token_secret() -> str:
    """`signal_` + 43 base64url characters (256 random bits)."""
    return f"signal_{secrets.token_urlsafe(32)}"


def secret_prefix(secret: str) -> str:
    """The non-secret scope part of an API token (`*:*`, `default:development`); empty when absent."""
    head, sep, _ = secret.partition(".")
    return head if sep else ""
