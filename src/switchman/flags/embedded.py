"""The FlagBackend over the embedded flag store: actions toggle flags in switchman's own database.

Every operation runs as the given actor through the same service functions the admin API uses (so
permissions, 404s and audit events are identical). `SwitchmanError`s (not found, permission denied, …)
become `FlagActionError` carrying the same message; storage failures become a `FlagActionError` naming
the error type only (no SQL, no parameters).

Two ways in:
- `set_enabled` / `set_enabled_by_tag` open their own transaction (the `FlagBackend` protocol);
- `set_enabled_in` / `set_enabled_by_tag_in` work inside the caller's transaction (the
  `TransactionalFlagBackend` protocol), each flag change inside a savepoint: a failed change is rolled
  back to its savepoint and the caller's transaction goes on. The worker uses these to commit a run's
  flag changes and its action set event together.

By tag: the tagged, non-archived flags of the project are read first; then every flag is toggled on its
own (own savepoint), so one flag's failure neither rolls back nor prevents the others. Flags tagged after
that read are not included (the selection is a snapshot). If any flag failed, `FlagActionError` lists
each failed flag with its reason; the flags that succeeded stay applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.db.engine import Database
from switchman.errors import SwitchmanError
from switchman.flags import features
from switchman.flags.access import check_permission
from switchman.flags.backend import FlagActionError, TagToggleReport
from switchman.flags.projects import require_project


def _as_action_error(exc: Exception) -> FlagActionError:
    if isinstance(exc, SwitchmanError):
        return FlagActionError(exc.message)
    return FlagActionError(f"The flag store failed ({type(exc).__name__})")


class EmbeddedFlagBackend:
    """`FlagBackend` (and `TransactionalFlagBackend`) over switchman's own flag store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_enabled(
        self, *, actor: Principal, project: str, environment: str, feature_name: str, enabled: bool
    ) -> None:
        try:
            async with self._db.transaction() as conn:
                await self.set_enabled_in(
                    conn,
                    actor=actor,
                    project=project,
                    environment=environment,
                    feature_name=feature_name,
                    enabled=enabled,
                )
        except SQLAlchemyError as exc:  # the commit itself failed
            raise _as_action_error(exc) from exc

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
        partial_failure: FlagActionError | None = None
        try:
            async with self._db.transaction() as conn:
                try:
                    return await self.set_enabled_by_tag_in(
                        conn,
                        actor=actor,
                        project=project,
                        environment=environment,
                        tag_type=tag_type,
                        tag_value=tag_value,
                        enabled=enabled,
                    )
                except FlagActionError as exc:
                    partial_failure = exc  # commit the flags that did change, then report
        except SQLAlchemyError as exc:
            raise _as_action_error(exc) from exc
        raise partial_failure

    async def set_enabled_in(
        self,
        conn: AsyncConnection,
        *,
        actor: Principal,
        project: str,
        environment: str,
        feature_name: str,
        enabled: bool,
    ) -> None:
        try:
            async with conn.begin_nested():
                await features.set_feature_enabled(
                    conn,
                    actor=actor,
                    project=project,
                    feature_name=feature_name,
                    environment=environment,
                    enabled=enabled,
                )
        except (SwitchmanError, SQLAlchemyError) as exc:
            raise _as_action_error(exc) from exc

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
    ) -> TagToggleReport:
        try:
            # Refuse up front when the actor could not toggle anything, even with no tagged flag.
            check_permission(actor, UPDATE_FEATURE_ENVIRONMENT)
            await require_project(conn, project)
            names = await features.flags_with_tag(
                conn, project=project, tag_type=tag_type, tag_value=tag_value
            )
        except (SwitchmanError, SQLAlchemyError) as exc:
            raise _as_action_error(exc) from exc
        done: list[str] = []
        failed: list[tuple[str, str]] = []
        for name in names:
            try:
                await self.set_enabled_in(
                    conn,
                    actor=actor,
                    project=project,
                    environment=environment,
                    feature_name=name,
                    enabled=enabled,
                )
            except FlagActionError as exc:
                failed.append((name, str(exc)))
            else:
                done.append(name)
        if failed:
            raise _tag_failure(
                failed, names=names, enabled=enabled, tag=(tag_type, tag_value), environment=environment
            )
        return TagToggleReport(features=tuple(done))

    def batch_in(self, conn: AsyncConnection) -> EmbeddedFlagBatch:
        """Flag changes planned in memory and written together inside the caller's transaction."""
        return EmbeddedFlagBatch(conn)

    async def close(self) -> None:
        """Nothing to release: the Database belongs to the application."""


class EmbeddedFlagBatch:
    """The backend's two operations over a `features.ToggleBatch` (see `TransactionalFlagBackend.batch_in`).

    Same outcomes and messages as `set_enabled_in` / `set_enabled_by_tag_in` called in the same order
    (a failed change changes nothing, as its rolled-back savepoint did), but nothing is written until
    `flush`, which writes the net effect with a few set-based statements. Storage errors are not turned
    into action failures here: they abort the caller's transaction (the worker retries the batch).
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._toggles = features.ToggleBatch(conn)
        self._projects: set[str] = set()  # projects found to exist, once per batch

    async def prepare(self, feature_names: Iterable[str], projects: Iterable[str]) -> None:
        await self._toggles.prepare(feature_names, projects)

    async def flags_with_tag(self, *, project: str, tag_type: str, tag_value: str) -> list[str]:
        return await self._toggles.flags_with_tag(project=project, tag_type=tag_type, tag_value=tag_value)

    async def set_enabled(
        self, *, actor: Principal, project: str, environment: str, feature_name: str, enabled: bool
    ) -> None:
        try:
            await self._toggles.set_enabled(
                actor=actor,
                project=project,
                feature_name=feature_name,
                environment=environment,
                enabled=enabled,
            )
        except SwitchmanError as exc:
            raise _as_action_error(exc) from exc

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
        try:
            check_permission(actor, UPDATE_FEATURE_ENVIRONMENT)
            if project not in self._projects:
                await require_project(self._conn, project)
                self._projects.add(project)
            names = await self.flags_with_tag(project=project, tag_type=tag_type, tag_value=tag_value)
        except SwitchmanError as exc:
            raise _as_action_error(exc) from exc
        await self.prepare(names, [project])
        done: list[str] = []
        failed: list[tuple[str, str]] = []
        for name in names:
            try:
                await self.set_enabled(
                    actor=actor, project=project, environment=environment, feature_name=name, enabled=enabled
                )
            except FlagActionError as exc:
                failed.append((name, str(exc)))
            else:
                done.append(name)
        if failed:
            raise _tag_failure(
                failed, names=names, enabled=enabled, tag=(tag_type, tag_value), environment=environment
            )
        return TagToggleReport(features=tuple(done))

    async def flush(self) -> None:
        await self._toggles.flush()


def _tag_failure(
    failed: list[tuple[str, str]], *, names: list[str], enabled: bool, tag: tuple[str, str], environment: str
) -> FlagActionError:
    listed = "; ".join(f"{name}: {reason}" for name, reason in failed)
    return FlagActionError(
        f"Could not turn {'on' if enabled else 'off'} {len(failed)} of {len(names)} flags tagged "
        f"{tag[0]}:{tag[1]} in {environment} ({listed})"
    )
