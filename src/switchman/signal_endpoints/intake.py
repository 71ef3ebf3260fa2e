"""The write side of ingestion: one batch of calls checked and stored in one transaction.

The group committer hands `store_calls` every call that arrived while the previous batch was being
committed. Inside the batch's transaction it looks the endpoints and presented token hashes up in one
query, decides each call's outcome in the order rate limit (done before) → endpoint → token → body,
inserts the accepted signals in one statement and queues the worker's wake-up. Checking credentials in
the same transaction as the insert means a token deleted or an endpoint disabled a moment ago is seen
at once, by every replica, with no cache to go stale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.errors import NotFoundError, SwitchmanError, UnauthorizedError
from switchman.signal_endpoints import repository
from switchman.signal_endpoints.repository import NewSignal
from switchman.wakeup import Wakeup


class SignalTokenRequired(SwitchmanError):
    """No credential on a call (Unleash's `AuthenticationRequired` name, without the UI login hints)."""

    status_code = 401
    name = "AuthenticationRequired"


@dataclass(frozen=True, slots=True)
class IngestCall:
    """One received call, before it was checked against the database."""

    name: str
    # SHA-256 hex of the presented secret; None when no credential came with the call.
    token_hash: str | None
    # The payload as compact JSON object text; None when `body_error` is set.
    payload: bytes | None
    body_error: SwitchmanError | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSignal:
    signal_id: int
    source_id: int
    token_id: int
    created_at: datetime
    payload: bytes


Outcome = StoredSignal | SwitchmanError


class CallStore:
    """`store_calls` bound to the process's worker wake-up; the group committer's `write`/`on_commit`."""

    def __init__(self, wakeup: Wakeup) -> None:
        self._wakeup = wakeup

    async def store_calls(self, conn: AsyncConnection, calls: Sequence[IngestCall]) -> list[Outcome]:
        credentials = await repository.find_credentials(
            conn,
            names=sorted({call.name for call in calls}),
            token_hashes=sorted({call.token_hash for call in calls if call.token_hash is not None}),
        )
        outcomes: list[Outcome | None] = []
        accepted: list[tuple[int, NewSignal]] = []
        for index, call in enumerate(calls):
            decided = _decide(call, credentials.get(call.name))
            if isinstance(decided, NewSignal):
                accepted.append((index, decided))
                outcomes.append(None)
            else:
                outcomes.append(decided)
        if accepted:
            ids = await repository.insert_signals(conn, [signal for _, signal in accepted])
            for (index, signal), signal_id in zip(accepted, ids, strict=True):
                outcomes[index] = StoredSignal(
                    signal_id=signal_id,
                    source_id=signal.source_id,
                    token_id=signal.token_id,
                    created_at=signal.created_at,
                    payload=calls[index].payload or b"{}",
                )
            await self._wakeup.announce(conn)
        return [outcome for outcome in outcomes if outcome is not None]

    def on_commit(self, outcomes: Sequence[Outcome]) -> None:
        if any(isinstance(outcome, StoredSignal) for outcome in outcomes):
            self._wakeup.committed()


def _decide(call: IngestCall, found: repository.EndpointCredentials | None) -> NewSignal | SwitchmanError:
    if found is None or not found.enabled:
        # A disabled endpoint answers exactly like an unknown one.
        return NotFoundError(f"Could not find a signal endpoint named '{call.name}'.")
    if call.token_hash is None:
        return SignalTokenRequired(
            "This signal endpoint needs a token: send it in the Authorization header "
            "(`Authorization: Bearer <token>` or the bare token)."
        )
    token_id = found.tokens.get(call.token_hash)
    if token_id is None:
        return UnauthorizedError("The token is not valid for this signal endpoint.")
    if call.body_error is not None:
        return call.body_error
    assert call.payload is not None
    return NewSignal(
        source_id=found.endpoint_id,
        token_id=token_id,
        payload=call.payload.decode(),
        created_at=call.received_at,
    )
