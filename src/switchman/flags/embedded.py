"""The FlagBackend over the embedded flag store: actions toggle flags in switchman's own database.

Every change goes through `toggles.ToggleBatch`, the flag store's one set of on/off rules, which the
admin API's on/off routes use too (so permissions, 404s and audit events are identical).
`SwitchmanError`s (not found, permission denied, …) become `FlagActionError` carrying the same message;
storage failures met by `toggle` become a `FlagActionError` naming the error type only (no SQL, no
parameters); inside a batch they abort the caller's transaction instead (the worker retries the batch).

By tag: the tagged, non-archived flags of the project are read first (a snapshot: flags tagged after that
read are not included); then every flag is toggled on its own, so one flag's failure neither undoes nor
prevents the others. If any flag failed, `FlagActionError` lists each failed flag with its reason; the
flags that succeeded stay applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman import metrics
from switchman.auth.access import check_permission
from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.db.engine import Database
from switchman.engine.actions import ToggleCommand
from switchman.errors import SwitchmanError
from switchman.flags import toggles
from switchman.flags.backend import FlagActionError, ToggleReport, toggle_each
from switchman.flags.projects import require_project

BACKEND = "embedded"  # the `backend` label of its calls in the metrics


def _as_action_error(exc: Exception) -> FlagActionError:
    if isinstance(exc, SwitchmanError):
        return FlagActionError(exc.message)
    return FlagActionError(f"The flag store failed ({type(exc).__name__})")


class EmbeddedFlagBackend:
    """`FlagBackend` (and `TransactionalFlagBackend`) over switchman's own flag store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def toggle(self, actor: Principal, command: ToggleCommand) -> ToggleReport:
        """One command in a transaction of its own (a one-command batch). A by-tag toggle that failed for
        some flags commits the others, then reports the failures."""
        partial_failure: FlagActionError | None = None
        report = ToggleReport(features=())
        try:
            async with self._db.transaction() as conn:
                batch = self.batch_in(conn)
                try:
                    report = await batch.toggle(actor, command)
                except FlagActionError as exc:
                    partial_failure = exc
                await batch.flush()
        except SQLAlchemyError as exc:
            raise _as_action_error(exc) from exc
        if partial_failure is not None:
            raise partial_failure
        return report

    def batch_in(self, conn: AsyncConnection) -> EmbeddedFlagBatch:
        """Toggles planned in memory and written together inside the caller's transaction."""
        return EmbeddedFlagBatch(conn)

    async def close(self) -> None:
        """Nothing to release: the Database belongs to the application."""


class EmbeddedFlagBatch:
    """`FlagBatch` over a `toggles.ToggleBatch` (see `TransactionalFlagBackend.batch_in`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._toggles = toggles.ToggleBatch(conn)
        self._projects: set[str] = set()  # projects found to exist, once per batch

    async def prepare(self, commands: Iterable[ToggleCommand]) -> None:
        names: set[str] = set()
        projects: set[str] = set()
        for command in commands:
            projects.add(command.project)
            if command.feature_name is not None:
                names.add(command.feature_name)
            elif command.tag is not None:
                names.update(await self._tagged(command))
        await self._toggles.prepare(names, projects)

    async def toggle(self, actor: Principal, command: ToggleCommand) -> ToggleReport:
        """Plan `command` as `actor`; counted in the metrics by outcome."""
        try:
            report = await self._toggle(actor, command)
        except FlagActionError:
            metrics.flag_backend_call(BACKEND, metrics.REFUSED)
            raise
        except Exception:
            metrics.flag_backend_call(BACKEND, metrics.ERROR)
            raise
        metrics.flag_backend_call(BACKEND, metrics.SUCCESS)
        return report

    async def _toggle(self, actor: Principal, command: ToggleCommand) -> ToggleReport:
        if command.feature_name is not None:
            changed = await self._set_enabled(actor, command, command.feature_name)
            name = command.feature_name
            return ToggleReport(features=(name,), changed=(name,) if changed else ())
        try:
            check_permission(actor, UPDATE_FEATURE_ENVIRONMENT)  # refused even with no tagged flag
            if command.project not in self._projects:
                await require_project(self._conn, command.project)
                self._projects.add(command.project)
            names = await self._tagged(command)
        except SwitchmanError as exc:
            raise _as_action_error(exc) from exc
        await self._toggles.prepare(names, [command.project])
        return await toggle_each(names, command, lambda name: self._set_enabled(actor, command, name))

    async def would_change(self, command: ToggleCommand) -> int:
        if command.feature_name is not None:
            names = [command.feature_name]
        else:
            try:
                names = await self._tagged(command)
            except SwitchmanError:
                return 0
        count = 0
        for name in names:
            state = await self._toggles.state_of(
                project=command.project, feature_name=name, environment=command.environment
            )
            count += state is not None and state != command.enabled
        return count

    async def flush(self) -> None:
        await self._toggles.flush()

    async def _tagged(self, command: ToggleCommand) -> list[str]:
        assert command.tag is not None
        tag_type, tag_value = command.tag
        return await self._toggles.flags_with_tag(
            project=command.project, tag_type=tag_type, tag_value=tag_value
        )

    async def _set_enabled(self, actor: Principal, command: ToggleCommand, feature_name: str) -> bool:
        """Plan the change; whether it changes the flag's state."""
        try:
            return await self._toggles.set_enabled(
                actor=actor,
                project=command.project,
                feature_name=feature_name,
                environment=command.environment,
                enabled=command.enabled,
            )
        except SwitchmanError as exc:
            raise _as_action_error(exc) from exc
