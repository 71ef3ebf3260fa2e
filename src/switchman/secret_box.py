"""Secrets that switchman must be able to read back (webhook signing secrets), sealed at rest (ADR 0020).

AES-256-GCM with a key from the environment (`SWITCHMAN_SECRET_KEY`: 32 bytes, URL-safe base64). A sealed
value names the key that sealed it (`v1.<key id>.<nonce + ciphertext>`, the id being the first 8 hex
digits of the key's SHA-256), so a key can be rotated: the new key seals, the previous ones
(`SWITCHMAN_PREVIOUS_SECRET_KEYS`) still open what they sealed until `switchman secrets rotate` has
re-sealed everything with the new key. Tokens are not stored this way: they are only ever compared, so
they are stored hashed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = "v1"


class SecretBoxError(ValueError):
    """A key that is not 32 bytes of URL-safe base64, or a sealed value no configured key can open."""


def new_key() -> str:
    """A fresh key, in the form `SWITCHMAN_SECRET_KEY` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def parse_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode() + b"=" * (-len(text.strip()) % 4))
    except (ValueError, UnicodeEncodeError) as exc:
        raise SecretBoxError("a secret key must be URL-safe base64") from exc
    if len(key) != KEY_BYTES:
        raise SecretBoxError(f"a secret key must be {KEY_BYTES} bytes (URL-safe base64 of 32 random bytes)")
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class SecretBox:
    """Seals with the first key; opens with any of them."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretBoxError("a secret box needs at least one key")
        self._current = keys[0]
        self._by_id = {key_id(key): AESGCM(key) for key in keys}
        self.current_key_id = key_id(self._current)

    def seal(self, plaintext: bytes) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._by_id[self.current_key_id].encrypt(nonce, plaintext, _VERSION.encode())
        encoded = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{_VERSION}.{self.current_key_id}.{encoded}"

    def open(self, sealed: str) -> bytes:
        version, _, rest = sealed.partition(".")
        kid, _, encoded = rest.partition(".")
        aead = self._by_id.get(kid)
        if version != _VERSION or aead is None:
            raise SecretBoxError(f"no configured key opens this secret (sealed with key {kid or '?'})")
        raw = base64.urlsafe_b64decode(encoded.encode())
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _VERSION.encode())
        except InvalidTag as exc:
            raise SecretBoxError(
                f"the secret sealed with key {kid} does not open (altered or wrong key)"
            ) from exc

    def sealed_with_current(self, sealed: str) -> bool:
        return sealed.split(".", 2)[1:2] == [self.current_key_id]
