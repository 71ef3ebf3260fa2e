"""The FlagBackend over the embedded flag store: actions toggle flags in switchman's own database.

Each call runs in its own transaction(s) on the shared `Database`, as the given actor, through the same
service functions the admin API uses (so permissions, 404s and audit events are identical).
`SwitchmanError`s (not found, permission denied, …) become `FlagActionError` carrying the same message;
storage failures become a `FlagActionError` naming the error type only (no SQL, no parameters).

By tag: the tagged, non-archived flags of the project are read first; then every flag is toggled in its
own transaction, so one flag's failure neither rolls back nor prevents the others. Flags tagged after
that read are not included (the selection is a snapshot). If any flag failed, `FlagActionError` lists
each failed flag with its reason; the flags that succeeded stay applied.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.db.engine import Database
from switchman.errors import SwitchmanError
from switchman.flags import features
from switchman.flags.access import check_permission
from switchman.flags.backend import FlagActionError, TagToggleReport
from switchman.flags.projects import require_project


class EmbeddedFlagBackend:
    """`FlagBackend` over switchman's own flag store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_enabled(
        self, *, actor: Principal, project: str, environment: str, feature_name: str, enabled: bool
    ) -> None:
        try:
            async with self._db.transaction() as conn:
                await features.set_feature_enabled(
                    conn,
                    actor=actor,
                    project=project,
                    feature_name=feature_name,
                    environment=environment,
                    enabled=enabled,
                )
        except SwitchmanError as exc:
            raise FlagActionError(exc.message) from exc
        except SQLAlchemyError as exc:
            raise FlagActionError(f"The flag store failed ({type(exc).__name__})") from exc

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
            # Refuse up front when the actor could not toggle anything, even with no tagged flag.
            check_permission(actor, UPDATE_FEATURE_ENVIRONMENT)
            async with self._db.read() as conn:
                await require_project(conn, project)
                names = await features.flags_with_tag(
                    conn, project=project, tag_type=tag_type, tag_value=tag_value
                )
        except SwitchmanError as exc:
            raise FlagActionError(exc.message) from exc
        except SQLAlchemyError as exc:
            raise FlagActionError(f"The flag store failed ({type(exc).__name__})") from exc
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
            listed = "; ".join(f"{name}: {reason}" for name, reason in failed)
            raise FlagActionError(
                f"Could not turn {'on' if enabled else 'off'} {len(failed)} of {len(names)} flags tagged "
                f"{tag_type}:{tag_value} in {environment} ({listed})"
            )
        return TagToggleReport(features=tuple(done))

    async def close(self) -> None:
        """Nothing to release: the Database belongs to the application."""
