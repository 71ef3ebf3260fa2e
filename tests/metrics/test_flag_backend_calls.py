"""Calls to a remote Unleash are counted by outcome (a scripted stand-in at the HTTP edge:
httpx.MockTransport): success, refused (a 4xx) and unavailable (5xx after the retries, counted once)."""

from __future__ import annotations

import httpx

from switchman import metrics
from switchman.auth.permissions import ADMIN_ROLE_ID, permissions_of_role
from switchman.auth.principal import Principal, PrincipalKind
from switchman.engine.actions import ToggleCommand
from switchman.flags.backend import FlagActionError
from switchman.flags.unleash import UnleashFlagBackend

ACTOR = Principal(
    kind=PrincipalKind.SERVICE_ACCOUNT,
    user_id=7,
    username="sa-bot",
    permissions=permissions_of_role(ADMIN_ROLE_ID),
    root_role=ADMIN_ROLE_ID,
)
COMMAND = ToggleCommand.one_flag(project="default", environment="production", feature_name="f", enabled=True)
CALLS = "switchman_flag_backend_calls_total"


def _count(outcome: str) -> float:
    sample = metrics.REGISTRY.get_sample_value(CALLS, {"backend": "unleash", "outcome": outcome})
    return sample or 0.0


async def _toggle_answered_with(status: int) -> bool:
    async def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"message": "scripted"})

    async def no_wait(_seconds: float) -> None:
        return None

    backend = UnleashFlagBackend(
        "http://unleash.test", "*:*.remote-token", timeout=1, retries=2,
        transport=httpx.MockTransport(answer), sleep=no_wait,
    )  # fmt: skip
    try:
        await backend.toggle(ACTOR, COMMAND)
    except FlagActionError:
        return False
    finally:
        await backend.close()
    return True


async def test_remote_calls_are_counted_by_outcome() -> None:
    metrics.configure(enabled=True)
    before = {outcome: _count(outcome) for outcome in (metrics.SUCCESS, metrics.REFUSED, metrics.UNAVAILABLE)}
    assert await _toggle_answered_with(200)
    assert not await _toggle_answered_with(404)
    assert not await _toggle_answered_with(503)  # three attempts, one call
    assert _count(metrics.SUCCESS) - before[metrics.SUCCESS] == 1
    assert _count(metrics.REFUSED) - before[metrics.REFUSED] == 1
    assert _count(metrics.UNAVAILABLE) - before[metrics.UNAVAILABLE] == 1
