"""A short-lived, per-process cache of verified credentials (digest → Principal).

Every admin-API request used to look its token up in the database: a pooled connection, a query and,
on PostgreSQL, two more round trips for the read's BEGIN/ROLLBACK — more than the work of a cached
listing page. The cache remembers, for `ttl` seconds, which Principal a verified SHA-256 digest of a
secret resolved to, and the credential's own expiry.

Correctness contract (ADR 0011):
- Only successful look-ups are cached; an unknown or expired secret is looked up again every time, so a
  token created in any process works at once.
- A cached credential past its own `expires_at` is refused (checked on every hit, not only at lookup).
- Revocation (deleting a token or PAT, deleting a service account or changing its role) through THIS
  process drops the whole cache right after the change commits (`forget`): immediate here.
- Revocation through ANOTHER process (a replica) takes effect here within `ttl` seconds, the bound
  `SWITCHMAN_AUTH_CACHE_SECONDS` sets (default 1 s; 0 turns the cache off).
The key is the digest, never the secret, and entries are bounded (`max_entries`, oldest dropped first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime

from switchman.auth.principal import Principal


class PrincipalCache:
    def __init__(self, ttl: float, *, max_entries: int = 1024) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        # digest → (cached at (monotonic), principal, credential expiry or None)
        self._entries: OrderedDict[str, tuple[float, Principal, datetime | None]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def get(self, digest: str, now: datetime) -> Principal | None:
        """The cached Principal of `digest` if cached less than `ttl` ago and not expired at `now`."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        cached_at, principal, expires_at = entry
        if time.monotonic() - cached_at >= self.ttl or (expires_at is not None and expires_at <= now):
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: str, principal: Principal, expires_at: datetime | None) -> None:
        if not self.enabled:
            return
        self._entries[digest] = (time.monotonic(), principal, expires_at)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self) -> None:
        """Drop every entry (after a credential was revoked or its permissions changed here)."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
