"""The dispatcher (ADR 0027): delivers due outbox messages, logs every attempt, retries with backoff.

One asyncio task per process that runs a worker. A round claims up to `notification_concurrency` due
messages in one short transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas take different
messages; the claim moves each message's `due_at` forward by a lease, so a dispatcher killed mid-delivery
only delays it), POSTs them concurrently outside any transaction, each bounded by
`notification_timeout_seconds`, then records each attempt in its own short transaction. It never shares a
transaction or a lock with signal processing: a dead or slow receiver only delays its own messages.

At least once: a message is marked delivered only after a 2xx; a crash between the receiver's 2xx and that
commit sends it again, with the same `webhook-id` (fixed in the outbox) for the receiver to de-duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from switchman.config import Settings
from switchman.db.engine import Database
from switchman.notifications import repository as repo
from switchman.notifications.messages import event_link, slack_body, webhook_body
from switchman.notifications.signing import headers as signed_headers
from switchman.secret_box import SecretBox, SecretBoxError
from switchman.tasks import cancel_and_wait
from switchman.timeutil import iso, utcnow

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600.0
PRUNE_INTERVAL_SECONDS = 3600.0
_PRUNE_CHUNK = 1000  # messages deleted per transaction
_DELIVERING: ContextVar[bool] = ContextVar("notification_delivering", default=False)


class _HideDeliveryRequests(logging.Filter):
    """httpx logs each request's URL at INFO; a channel's URL is a credential (a Slack URL is one), so the
    requests of a delivery (the task that set `_DELIVERING`) are not logged. Other clients' lines stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _DELIVERING.get()


logging.getLogger("httpx").addFilter(_HideDeliveryRequests())
_LEASE_GRACE_SECONDS = 10.0  # beyond the attempt's timeout, before another dispatcher may retake a claim


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff_seconds(attempts: int, *, base: float, rng: random.Random | None = None) -> float:
    """The wait after the `attempts`-th failed attempt: base * 2^(attempts-1), capped, jittered into its
    upper half (receivers coming back are not hit by every message at once)."""
    ceiling: float = min(base * 2.0 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    jitter: float = (rng or random).random()
    return ceiling * (0.5 + 0.5 * jitter)


class Dispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        box: SecretBox | None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._box = box
        self._base_url = settings.base_url
        self._timeout = settings.notification_timeout_seconds
        self._batch = settings.notification_concurrency
        self._retry_base = settings.notification_retry_base_seconds
        self._max_attempts = settings.notification_max_attempts
        self._max_age = timedelta(seconds=settings.notification_max_age_seconds)
        self._poll = settings.notification_poll_seconds
        self._retention = timedelta(days=settings.notification_retention_days)
        self._next_prune = 0.0  # monotonic time of the next prune
        # One database connection at a time for the dispatcher's writes, whatever its concurrency: the
        # worker shares the pool (`switchman worker` keeps 4 connections) and must never wait for ours.
        self._writing = asyncio.Lock()
        self._client = httpx.AsyncClient(
            transport=transport, timeout=httpx.Timeout(self._timeout), follow_redirects=False
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def run_forever(self) -> None:
        """Deliver until cancelled; an idle round (or a failed one) waits `notification_poll_seconds`."""
        while True:
            try:
                if self._retention and time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
                    await self.prune()
                handled = await self.dispatch_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the notification dispatcher's round failed; trying again")
                handled = 0
            if handled < self._batch:
                await asyncio.sleep(self._poll)

    async def prune(self, now: datetime | None = None) -> int:
        """Delete the messages finished more than `notification_retention_days` before `now`, a chunk per
        transaction (never a long lock); how many."""
        before = (now or utcnow()) - self._retention
        pruned = 0
        while True:
            async with self._writing, self._db.transaction() as conn:
                deleted = await repo.prune_finished(conn, before=before, limit=_PRUNE_CHUNK)
            pruned += deleted
            if deleted < _PRUNE_CHUNK:
                return pruned

    async def dispatch_once(self, now: datetime | None = None) -> int:
        """Claim the due messages (as of `now`), attempt each once, record the attempts; how many."""
        at = now or utcnow()
        lease = timedelta(seconds=self._timeout + _LEASE_GRACE_SECONDS)
        async with self._db.read() as conn:  # idle: no write transaction (SQLite's one write lock)
            if not await repo.any_due(conn, now=at):
                return 0
        async with self._writing, self._db.transaction() as conn:
            claimed = await repo.claim_due(conn, now=at, until=at + lease, limit=self._batch)
        if claimed:
            await asyncio.gather(*(self._deliver(message) for message in claimed))
        return len(claimed)

    async def _deliver(self, message: Any) -> None:
        attempted_at = utcnow()
        attempt = await self._attempt(message)
        number = int(message.attempts) + 1
        if attempt.delivered:
            state, due = repo.DELIVERED, attempted_at
        elif number >= self._max_attempts or attempted_at - message.created_at >= self._max_age:
            state, due = repo.FAILED, attempted_at
        else:
            state = repo.PENDING
            due = attempted_at + timedelta(seconds=backoff_seconds(number, base=self._retry_base))
        async with self._writing, self._db.transaction() as conn:
            await repo.record_attempt(
                conn, message_id=int(message.id), channel_id=int(message.channel_id), attempt=number,
                at=attempted_at, status_code=attempt.status_code, error=attempt.error,
                duration_ms=attempt.duration_ms, state=state, due_at=due,
            )  # fmt: skip
        if state == repo.FAILED:
            log.warning(
                "notification %s of channel %s given up after %d attempt(s): %s",
                message.webhook_id, message.channel_id, number, attempt.error or f"HTTP {attempt.status_code}",
            )  # fmt: skip

    async def _attempt(self, message: Any) -> Attempt:
        started = time.perf_counter()
        try:
            url, body, headers = self._request(message)
        except (SecretBoxError, ValueError) as exc:
            return Attempt(None, f"cannot open the channel's sealed values: {exc}", 0)
        _DELIVERING.set(True)  # this task's own context (each delivery runs as a task of `gather`)
        try:
            # httpx bounds each phase (connect, each read); this bounds the whole attempt, well inside the
            # claim's lease, also against a receiver that answers a byte at a time.
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(url, content=body, headers=headers)
        except (httpx.TimeoutException, TimeoutError):
            return Attempt(None, f"no answer within {self._timeout:g} s", _ms(started))
        except httpx.HTTPError as exc:
            # The exception's text may name the URL (a Slack URL is a credential): log its kind only.
            return Attempt(None, f"could not reach the receiver ({type(exc).__name__})", _ms(started))
        return Attempt(response.status_code, None, _ms(started))

    def _request(self, message: Any) -> tuple[str, bytes, dict[str, str]]:
        if self._box is None:
            raise SecretBoxError("no SWITCHMAN_SECRET_KEY is configured")
        url = self._box.open(message.sealed_url).decode()
        payload = dict(message.payload)
        link = event_link(self._base_url, payload)
        headers = {"content-type": "application/json", "user-agent": "switchman-notifications"}
        if message.kind == "slack":
            return url, slack_body(event=message.event_type, payload=payload, link=link), headers
        body = webhook_body(
            event=message.event_type, created_at=iso(message.created_at), payload=payload, link=link
        )
        secret = self._box.open(message.sealed_secret).decode()
        headers |= signed_headers(
            secret, webhook_id=message.webhook_id, timestamp=int(time.time()), body=body
        )
        return url, body, headers


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


@dataclass
class RunningDispatcher:
    """A process's dispatcher task (started by the runtime wherever a worker runs)."""

    dispatcher: Dispatcher
    task: asyncio.Task[None]

    async def stop(self) -> None:
        await cancel_and_wait(self.task)
        await self.dispatcher.close()


def start_dispatcher(*, settings: Settings, db: Database, box: SecretBox | None) -> RunningDispatcher:
    dispatcher = Dispatcher(settings=settings, db=db, box=box)
    return RunningDispatcher(dispatcher, asyncio.create_task(dispatcher.run_forever(), name="notifications"))
