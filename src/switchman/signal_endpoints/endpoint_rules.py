"""What ingestion must do with an endpoint's calls beyond Unleash's rules, cached: verify their signature
(ADR 0020), split Alertmanager groups into one signal per alert (ADR 0021), read the delivery id its
sender format names (ADR 0019); failed verifications counted.

An endpoint's rules are read at most once per `ttl` seconds per endpoint name (one read per second per
endpoint under load, whatever the call rate), so a change applies on every replica within `ttl`. Unknown
and plain endpoints are cached too (as "no rules"), in a bounded map, so calls to made-up names cost no
read each. Failed verifications are counted in memory and added to the
endpoint's `failures` at most once per `flush_seconds`, in one short transaction: a flood of forged calls
cannot turn into a flood of writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace

import httpx

from switchman.db.engine import Database
from switchman.engine.formats import DELIVERY_ID_HEADERS, Format, has_body_delivery_id
from switchman.secret_box import SecretBox, SecretBoxError
from switchman.signal_endpoints import repository, verifications
from switchman.signal_endpoints.sns import DEFAULT_HOST_PATTERN, SnsVerifier
from switchman.signal_endpoints.verification import SecretError, Verifier
from switchman.tasks import cancel_and_wait
from switchman.timeutil import utcnow

log = logging.getLogger(__name__)

_MAX_CACHED_NAMES = 10_000


@dataclass(frozen=True)
class Rules:
    """An endpoint's ingestion rules. `signed`: calls must pass `verifier`, or are all refused with
    `unusable` when this server cannot use the endpoint's verification (its secret does not open).
    `split_alerts`: an Alertmanager-style group is stored as one signal per alert. `query_token`: the
    token may come as a `token` query parameter. `delivery_format`: the endpoint's sender format, when that
    format names its deliveries (`formats.delivery_id`, `formats.DELIVERY_ID_HEADERS`)."""

    endpoint_id: int
    signed: bool = False
    verifier: Verifier | None = None
    unusable: str | None = None
    split_alerts: bool = False
    query_token: bool = False
    delivery_format: Format | None = None


_FORMATS = frozenset(fmt.value for fmt in Format)


def _delivery_format(stored: str | None) -> Format | None:
    if stored not in _FORMATS:
        return None
    fmt = Format(stored)
    return fmt if has_body_delivery_id(fmt) or fmt in DELIVERY_ID_HEADERS else None


class EndpointRules:
    def __init__(
        self,
        db: Database,
        box: SecretBox | None,
        *,
        sns_host_pattern: str = DEFAULT_HOST_PATTERN,
        ttl: float = 1.0,
        flush_seconds: float = 1.0,
    ) -> None:
        # SNS certificates and subscription confirmations are fetched on the ingestion path: short timeouts.
        self.sns = SnsVerifier(httpx.AsyncClient(timeout=5.0), host_pattern=sns_host_pattern)
        self._db = db
        self._box = box
        self._ttl = ttl
        self._flush_seconds = flush_seconds
        self._cache: dict[str, tuple[float, Rules | None]] = {}
        self._loading: dict[str, asyncio.Future[Rules | None]] = {}
        self._pending: dict[int, tuple[int, str]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def of(self, name: str) -> Rules | None:
        """The rules of endpoint `name`'s calls; None when it has none (or is unknown or disabled)."""
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        loading = self._loading.get(name)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[Rules | None] = asyncio.get_running_loop().create_future()
        self._loading[name] = future
        try:
            found = await self._load(name)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: concurrent waiters get it, nobody else must
            raise
        finally:
            self._loading.pop(name, None)
        future.set_result(found)
        if len(self._cache) >= _MAX_CACHED_NAMES:
            self._cache.clear()
        self._cache[name] = (time.monotonic(), found)
        return found

    async def _load(self, name: str) -> Rules | None:
        async with self._db.read() as conn:
            row = await repository.ingest_rules(conn, name)
        if row is None:
            return None
        split, in_query = bool(row.split_alerts), bool(row.query_token)
        delivery_format = _delivery_format(row.format)
        plain = Rules(row.id, split_alerts=split, query_token=in_query, delivery_format=delivery_format)
        if row.scheme is None:
            return plain if split or in_query or delivery_format is not None else None
        try:
            verifier = verifications.verifier_from(
                scheme=row.scheme,
                sealed=row.sealed_secret,
                header=row.header,
                tolerance=row.tolerance_seconds,
                timestamp_header=row.timestamp_header,
                box=self._box,
            )
        except (SecretBoxError, SecretError, UnicodeDecodeError) as exc:
            log.warning("signal endpoint %r: its signing secret cannot be used (%s)", name, exc)
            unusable = "this server cannot open the endpoint's signing secret"
            return replace(plain, signed=True, unusable=unusable)
        return replace(plain, signed=True, verifier=verifier)

    def failed(self, endpoint_id: int, reason: str) -> None:
        count, _ = self._pending.get(endpoint_id, (0, ""))
        self._pending[endpoint_id] = (count + 1, reason)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_later(), name="verification-failures"
            )

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._flush_seconds)
        await self.flush()

    async def flush(self) -> None:
        """Add the counted failures to the endpoints' statistics (best effort: a failed write is logged)."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            async with self._db.transaction() as conn:
                for endpoint_id, (count, reason) in sorted(pending.items()):
                    await verifications.record_failures(
                        conn, endpoint_id=endpoint_id, count=count, reason=reason, at=utcnow()
                    )
        except Exception as exc:
            log.warning(
                "could not record %d failed signature verifications: %s", len(pending), type(exc).__name__
            )

    async def close(self) -> None:
        if self._flusher is not None:
            await cancel_and_wait(self._flusher)
        await self.flush()
        await self.sns.close()
