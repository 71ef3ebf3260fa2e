"""The FlagBackend protocol: what actions drive. Implemented by the embedded store and a remote Unleash.

Contract:
- Each call is one flag operation performed *as* `actor` and permission-checked as that actor.
- Success returns normally (a no-op, e.g. turning on a flag that is on, is a success).
- Any failure raises `FlagActionError` whose message is fit for an action's `details` (human readable,
  no secrets): not found, permission denied, remote error, timeout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.auth.principal import Principal


class FlagActionError(Exception):
    """A flag operation failed; `str(error)` is the human message recorded on the action."""


@dataclass(frozen=True)
class TagToggleReport:
    """What a by-tag toggle did: flags whose state was set (changed or already right)."""

    features: tuple[str, ...]


@dataclass(frozen=True)
class ActionOptions:
    """What `/actions/config` offers for one project: environment names, flag names, `type:value` tags."""

    environments: tuple[str, ...]
    features: tuple[str, ...]
    tags: tuple[str, ...]


class FlagBackend(Protocol):
    async def set_enabled(
        self, *, actor: Principal, project: str, environment: str, feature_name: str, enabled: bool
    ) -> None:
        """Turn one flag on or off in one environment (Unleash's …/environments/{env}/on|off)."""
        ...

    async def set_enabled_by_tag(
        self,
        *,
        actor: Principal,
        project: str,
        environment: str,
        tag_type: str,
        tag_value: str,
        enabled: bool,
    ) -> TagToggleReport:
        """Turn every non-archived flag of `project` carrying tag `type:value` on or off in `environment`.

        No tagged flag → success with an empty report. Every flag is attempted; if any failed, raise
        FlagActionError listing the failed flags (the others stay applied).
        """
        ...

    async def close(self) -> None:
        """Release resources (HTTP clients)."""
        ...


class FlagBatch(Protocol):
    """Flag changes inside one transaction, planned in memory and written together by `flush`.

    `set_enabled` / `set_enabled_by_tag` have the outcomes (success, or `FlagActionError` with the same
    message) that the `…_in` operations called in the same order would have; nothing is written before
    `flush`. `prepare` locks and reads, in one go, the flags (and projects) later calls will touch.
    """

    async def prepare(self, feature_names: Iterable[str], projects: Iterable[str]) -> None: ...

    async def flags_with_tag(self, *, project: str, tag_type: str, tag_value: str) -> list[str]: ...

    async def set_enabled(
        self, *, actor: Principal, project: str, environment: str, feature_name: str, enabled: bool
    ) -> None: ...

    async def set_enabled_by_tag(
        self,
        *,
        actor: Principal,
        project: str,
        environment: str,
        tag_type: str,
        tag_value: str,
        enabled: bool,
    ) -> TagToggleReport: ...

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

    Each flag change runs in a savepoint: on failure it is rolled back and `FlagActionError` is
    raised, leaving the caller's transaction usable. Nothing is committed by these methods.
    """

    async def set_enabled_in(
        self,
        conn: AsyncConnection,
        *,
        actor: Principal,
        project: str,
        environment: str,
        feature_name: str,
        enabled: bool,
    ) -> None: ...

    async def set_enabled_by_tag_in(
        self,
        conn: AsyncConnection,
        *,
        actor: Principal,
        project: str,
        environment: str,
        tag_type: str,
        tag_value: str,
        enabled: bool,
    ) -> TagToggleReport: ...

    def batch_in(self, conn: AsyncConnection) -> FlagBatch:
        """A `FlagBatch` working inside the caller's transaction."""
        ...
