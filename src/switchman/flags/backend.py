"""The FlagBackend protocol: what actions drive. Implemented by the embedded store and a remote Unleash.

Contract:
- `toggle(actor, command)` is one flag operation (`engine.actions.ToggleCommand`: one flag, or every
  non-archived flag of the project carrying a tag) performed *as* `actor` and permission-checked as that
  actor.
- Success returns the flags whose state was set (a no-op, e.g. turning on a flag that is on, is a success).
  By tag: no tagged flag is a success with an empty report; every tagged flag is attempted; if any failed,
  `FlagActionError` lists each failed flag with its reason (`tag_failure`) and the others stay applied.
- Any failure raises `FlagActionError` whose message is fit for an action's `details` (human readable,
  no secrets): not found, permission denied, remote error, timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.auth.principal import Principal
from switchman.engine.actions import ToggleCommand


class FlagActionError(Exception):
    """A flag operation failed; `str(error)` is the human message recorded on the action."""


@dataclass(frozen=True)
class ToggleReport:
    """What a toggle did: the flags whose state was set (changed or already right), and of those the ones
    whose state it changed — None when the backend cannot tell (a remote Unleash answers the same
    either way)."""

    features: tuple[str, ...]
    changed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ActionOptions:
    """What `/actions/config` offers for one project: environment names, flag names, `type:value` tags."""

    environments: tuple[str, ...]
    features: tuple[str, ...]
    tags: tuple[str, ...]


class FlagBackend(Protocol):
    async def toggle(self, actor: Principal, command: ToggleCommand) -> ToggleReport:
        """Perform `command` as `actor` (see the module's contract)."""
        ...

    async def close(self) -> None:
        """Release resources (HTTP clients)."""
        ...


class FlagBatch(Protocol):
    """Toggles inside one transaction, planned in memory and written together by `flush`.

    `toggle` has the outcome (report, or `FlagActionError` with the same message) that `FlagBackend.toggle`
    called in the same order would have; a failed change changes nothing; nothing is written before
    `flush`. `prepare` locks and reads, in one go, the flags (and projects) the commands will touch.
    """

    async def prepare(self, commands: Iterable[ToggleCommand]) -> None: ...

    async def toggle(self, actor: Principal, command: ToggleCommand) -> ToggleReport: ...

    async def would_change(self, command: ToggleCommand) -> int:
        """How many flag states `command` would change now (0 when it would fail: `toggle` says why)."""
        ...

    async def flush(self) -> None: ...


@runtime_checkable
class FlagCatalog(Protocol):
    """A backend whose flags live elsewhere (a remote Unleash): it lists a project's options itself.

    Raises FlagActionError when the listing cannot be read (same messages as the flag operations).
    """

    async def action_options(self, project: str) -> ActionOptions: ...


@runtime_checkable
class TransactionalFlagBackend(FlagBackend, Protocol):
    """A backend that can also work inside the caller's database transaction (the embedded store).
    Nothing is committed by the batch: the caller's transaction commits its changes with its own."""

    def batch_in(self, conn: AsyncConnection) -> FlagBatch:
        """A `FlagBatch` working inside the caller's transaction."""
        ...


async def toggle_each(
    names: Sequence[str], command: ToggleCommand, toggle_one: Callable[[str], Awaitable[bool | None]]
) -> ToggleReport:
    """A by-tag toggle flag by flag: every flag is attempted; the report names those that were set (and
    changed, when `toggle_one` tells: True / False; None: it cannot), or `tag_failure` lists each failed
    flag with its reason (the others stay applied)."""
    done: list[str] = []
    changed: list[str] | None = []
    failed: list[tuple[str, str]] = []
    for name in names:
        try:
            did_change = await toggle_one(name)
        except FlagActionError as exc:
            failed.append((name, str(exc)))
        else:
            done.append(name)
            if did_change is None:
                changed = None
            elif did_change and changed is not None:
                changed.append(name)
    if failed:
        raise tag_failure(failed, attempted=len(names), command=command)
    return ToggleReport(features=tuple(done), changed=tuple(changed) if changed is not None else None)


def tag_failure(failed: list[tuple[str, str]], *, attempted: int, command: ToggleCommand) -> FlagActionError:
    """The by-tag failure: how many of the tagged flags failed, each with its reason."""
    assert command.tag is not None
    listed = "; ".join(f"{name}: {reason}" for name, reason in failed)
    turn = "on" if command.enabled else "off"
    return FlagActionError(
        f"Could not turn {turn} {len(failed)} of {attempted} flags tagged "
        f"{command.tag[0]}:{command.tag[1]} in {command.environment} ({listed})"
    )
