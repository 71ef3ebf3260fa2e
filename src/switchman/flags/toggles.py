"""Turning flags on and off: the flag store's one set of on/off rules (`ToggleBatch`), used by the admin
on/off routes, the bulk route and the worker alike.

On/off follows Unleash's `updateEnabled`: the flag must exist in that project and not be archived, the
environment must be enabled in the project; turning a flag on that has no active strategy there first adds
the default strategy (flexibleRollout 100 %, needs CREATE_FEATURE_STRATEGY, audited as
`feature-strategy-add`); the enable/disable event is written only when the state really changes, so a
repeated on/off is a silent success.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import log as audit
from switchman.auth.access import check_permission
from switchman.auth.permissions import CREATE_FEATURE_STRATEGY, UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.errors import NotFoundError
from switchman.flags.features import check_feature
from switchman.flags.projects import require_project
from switchman.timeutil import utcnow

DEFAULT_STRATEGY_NAME = "flexibleRollout"


async def set_feature_enabled(
    conn: AsyncConnection,
    *,
    actor: Principal,
    project: str,
    feature_name: str,
    environment: str,
    enabled: bool,
) -> bool:
    """Turn one flag on or off in one environment as `actor`; returns whether the state changed.

    A one-change `ToggleBatch`: the flag store has one set of on/off rules (see `ToggleBatch.set_enabled`).
    Raises PermissionDeniedError / NotFoundError. Call inside a transaction.
    """
    batch = ToggleBatch(conn)
    changed = await batch.set_enabled(
        actor=actor, project=project, feature_name=feature_name, environment=environment, enabled=enabled
    )
    await batch.flush()
    return changed


def default_strategy(
    feature_name: str, environment: str, sort_order: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Unleash's default strategy (flexibleRollout 100 %): the `feature_strategy` row and the data of
    its `feature-strategy-add` audit event."""
    strategy_id = str(uuid.uuid4())
    parameters = {"rollout": "100", "stickiness": "default", "groupId": feature_name}
    row: dict[str, Any] = {
        "id": strategy_id,
        "feature_name": feature_name,
        "environment_name": environment,
        "strategy_name": DEFAULT_STRATEGY_NAME,
        "parameters": parameters,
        "constraints": [],
        "sort_order": sort_order,
        "disabled": False,
        "created_at": utcnow(),
    }
    data: dict[str, Any] = {
        "id": strategy_id,
        "name": DEFAULT_STRATEGY_NAME,
        "title": None,
        "disabled": False,
        "parameters": parameters,
        "constraints": [],
        "segments": [],
        "variants": [],
        "sortOrder": sort_order,
    }
    return row, data


async def bulk_set_enabled(
    conn: AsyncConnection,
    *,
    actor: Principal,
    project: str,
    environment: str,
    feature_names: Iterable[str],
    enabled: bool,
) -> list[str]:
    """Unleash's bulk toggle: every flag or none (one transaction; the first failure aborts it).

    Returns the flags whose state changed.
    """
    check_permission(actor, UPDATE_FEATURE_ENVIRONMENT)
    await require_project(conn, project)
    names = list(dict.fromkeys(feature_names))
    batch = ToggleBatch(conn)
    await batch.prepare(names, [project])
    changed = [
        name
        for name in names
        if await batch.set_enabled(
            actor=actor, project=project, feature_name=name, environment=environment, enabled=enabled
        )
    ]
    await batch.flush()
    return changed


async def flags_with_tag(conn: AsyncConnection, *, project: str, tag_type: str, tag_value: str) -> list[str]:
    """Names of the non-archived flags of `project` carrying tag `tag_type:tag_value`, by name."""
    rows = await conn.execute(
        sa.select(t.feature.c.name)
        .join(t.feature_tag, t.feature_tag.c.feature_name == t.feature.c.name)
        .where(
            t.feature.c.project_id == project,
            t.feature.c.archived_at.is_(None),
            t.feature_tag.c.tag_type == tag_type,
            t.feature_tag.c.tag_value == tag_value,
        )
        .order_by(t.feature.c.name)
    )
    return list(rows.scalars())


# --- many on/off changes in one transaction (the worker) ----------------------------------------------


def _environment_not_found(environment: str, feature_name: str) -> NotFoundError:
    return NotFoundError(f"Could not find environment {environment} for feature: {feature_name}")


@dataclass
class _Toggle:
    """The planned state of one flag in one environment."""

    row_exists: bool
    enabled: bool
    has_active_strategy: bool
    max_sort_order: int  # -1: no strategy
    initially: bool | None  # the stored `enabled`, None: no row


# The statements of `ToggleBatch.prepare`, built once (a batch pays for executing them, not for building
# them): the flags locked in name order, then one read of their states, strategies and tags and of the
# projects' environments. Expanding parameters: `names`, `projects`.
_NAMES: sa.BindParameter[str] = sa.bindparam("names", expanding=True)
_PROJECTS: sa.BindParameter[str] = sa.bindparam("projects", expanding=True)
_LOCK_FLAGS = (
    sa.select(t.feature.c.name, t.feature.c.project_id, t.feature.c.archived_at)
    .where(t.feature.c.name.in_(_NAMES))
    .order_by(t.feature.c.name)
    .with_for_update()
)


def _flag_facts_parts(flags: bool, projects: bool) -> list[sa.Select[Any]]:
    fe, fs, pe, tag = t.feature_environment, t.feature_strategy, t.project_environment, t.feature_tag
    text, number = sa.String(), sa.Integer()
    parts: list[sa.Select[Any]] = []
    if flags:
        parts += [
            sa.select(
                sa.literal("state", text).label("kind"),
                fe.c.feature_name.label("a"),
                fe.c.environment_name.label("b"),
                sa.null().cast(text).label("c"),
                sa.case((fe.c.enabled, 1), else_=0).label("n1"),
                sa.null().cast(number).label("n2"),
            ).where(fe.c.feature_name.in_(_NAMES)),
            sa.select(
                sa.literal("strategies", text),
                fs.c.feature_name,
                fs.c.environment_name,
                sa.null().cast(text),
                sa.func.max(fs.c.sort_order),
                sa.func.sum(sa.case((fs.c.disabled.is_(False), 1), else_=0)),
            )
            .where(fs.c.feature_name.in_(_NAMES))
            .group_by(fs.c.feature_name, fs.c.environment_name),
            sa.select(
                sa.literal("tag", text),
                tag.c.feature_name,
                tag.c.tag_type,
                tag.c.tag_value,
                sa.null().cast(number),
                sa.null().cast(number),
            ).where(tag.c.feature_name.in_(_NAMES)),
        ]
    if projects:
        parts.append(
            sa.select(  # labelled too: it may be the only part
                sa.literal("linked", text).label("kind"),
                pe.c.project_id.label("a"),
                pe.c.environment_name.label("b"),
                sa.null().cast(text).label("c"),
                sa.null().cast(number).label("n1"),
                sa.null().cast(number).label("n2"),
            ).where(pe.c.project_id.in_(_PROJECTS))
        )
    return parts


# Ordered by the database (as `tags.tags_of_flag` orders a flag's tags: same collation).
_FLAG_FACTS = {
    (flags, projects): sa.union_all(*_flag_facts_parts(flags, projects)).order_by(sa.text("1, 2, 3, 4"))
    for flags, projects in ((True, True), (True, False), (False, True))
}


class ToggleBatch:
    """The flag store's on/off rules: on/off changes inside one transaction, decided in memory, written at
    `flush`. Every on/off in switchman goes through here (the admin routes, the bulk route, the worker).

    Rules (`set_enabled`): UPDATE_FEATURE_ENVIRONMENT is needed; the flag must exist in the project, not be
    archived, and the project must have the environment (404s otherwise); turning on a flag that has no
    active strategy in the environment first adds Unleash's default strategy (flexibleRollout 100 %), which
    also needs CREATE_FEATURE_STRATEGY; a change records `feature-environment-enabled|disabled`, a no-op
    records nothing. A failed call raises the `SwitchmanError` and changes nothing.

    Contract: calling `set_enabled` n times and then `flush` leaves exactly the state, strategies and
    audit events (same types, data, actors and order) that n one-change batches in the same order would.
    The flags are locked and their states read by `prepare` (name order, so concurrent batches cannot
    deadlock on them) or lazily on first use; `flush` writes the net effect with a few set-based
    statements: new `feature_environment` rows, the default strategies, the `enabled` changes and the
    audit events. Nothing is written before `flush`.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._flags: dict[str, Any] = {}  # name → row (project_id, archived_at), None: no such flag
        self._toggles: dict[tuple[str, str], _Toggle] = {}
        self._linked: dict[str, frozenset[str]] = {}  # project → its environments
        self._tagged: dict[tuple[str, str, str], list[str]] = {}
        self._tags: dict[str, list[dict[str, str]]] = {}  # flag → its tags, for the audit events
        self._strategies: list[dict[str, Any]] = []
        self._audit: list[dict[str, Any]] = []

    async def prepare(self, feature_names: Iterable[str], projects: Iterable[str]) -> None:
        """Lock and read the flags (and the projects' environments) that later calls will touch.

        Two statements: the flags are locked first (`FOR UPDATE`, name order), then everything else is
        read by one later statement (a fresh snapshot under READ COMMITTED, so concurrent toggles of one flag
        see each other's strategy; on SQLite the write transaction is exclusive anyway).
        """
        names = sorted(set(feature_names) - self._flags.keys())
        missing = sorted(set(projects) - self._linked.keys())
        if not names and not missing:
            return
        conn = self._conn
        if names:
            flags = await conn.execute(_LOCK_FLAGS, {"names": names})
            self._flags.update(dict.fromkeys(names))
            self._flags.update({row.name: row for row in flags})
        rows = (
            await conn.execute(_FLAG_FACTS[bool(names), bool(missing)], {"names": names, "projects": missing})
        ).all()
        states = {(row.a, row.b): bool(row.n1) for row in rows if row.kind == "state"}
        strategies = {(row.a, row.b): (int(row.n1), int(row.n2)) for row in rows if row.kind == "strategies"}
        for key in states.keys() | strategies.keys():
            enabled = states.get(key)
            max_sort_order, active = strategies.get(key, (-1, 0))
            self._toggles[key] = _Toggle(
                row_exists=enabled is not None,
                enabled=bool(enabled),
                has_active_strategy=active > 0,
                max_sort_order=max_sort_order,
                initially=enabled,
            )
        for name in names:
            self._tags[name] = []
        for row in rows:
            if row.kind == "tag":
                self._tags[row.a].append({"type": row.b, "value": row.c})
        linked: dict[str, set[str]] = {project: set() for project in missing}
        for row in rows:
            if row.kind == "linked":
                linked[row.a].add(row.b)
        self._linked.update({project: frozenset(envs) for project, envs in linked.items()})

    async def flags_with_tag(self, *, project: str, tag_type: str, tag_value: str) -> list[str]:
        """`flags_with_tag`, read once per batch (a snapshot, as for a single by-tag toggle)."""
        key = (project, tag_type, tag_value)
        if key not in self._tagged:
            self._tagged[key] = await flags_with_tag(
                self._conn, project=project, tag_type=tag_type, tag_value=tag_value
            )
        return self._tagged[key]

    async def state_of(self, *, project: str, feature_name: str, environment: str) -> bool | None:
        """The flag's planned state in the environment (its stored one until this batch changes it; off when
        it was never set there); None when the flag does not exist in the project or is archived, or the
        project does not have the environment."""
        if feature_name not in self._flags or project not in self._linked:
            await self.prepare([feature_name], [project])
        row = self._flags[feature_name]
        if row is None or row.project_id != project or row.archived_at is not None:
            return None
        if environment not in self._linked[project]:
            return None
        toggle = self._toggles.get((feature_name, environment))
        return toggle.enabled if toggle is not None and toggle.row_exists else False

    async def set_enabled(
        self, *, actor: Principal, project: str, feature_name: str, environment: str, enabled: bool
    ) -> bool:
        """Plan one on/off change (the rules above); returns whether the state changes."""
        check_permission(actor, UPDATE_FEATURE_ENVIRONMENT)
        if feature_name not in self._flags or project not in self._linked:
            await self.prepare([feature_name], [project])
        check_feature(self._flags[feature_name], project=project, feature_name=feature_name)
        if environment not in self._linked[project]:
            raise _environment_not_found(environment, feature_name)
        key = (feature_name, environment)
        toggle = self._toggles.get(key)
        if toggle is None:
            toggle = self._toggles[key] = _Toggle(False, False, False, -1, None)
        add_strategy = enabled and not toggle.has_active_strategy
        if add_strategy:
            check_permission(actor, CREATE_FEATURE_STRATEGY)
        # Nothing below can fail: the call succeeds, apply it to the plan.
        toggle.row_exists = True
        where = {"feature_name": feature_name, "project": project, "environment": environment}
        if add_strategy:
            toggle.max_sort_order += 1
            toggle.has_active_strategy = True
            row, data = default_strategy(feature_name, environment, toggle.max_sort_order)
            self._strategies.append(row)
            self._audit.append(self._audit_row(audit.FEATURE_STRATEGY_ADD, actor, data=data, **where))
        if toggle.enabled == enabled:
            return False
        toggle.enabled = enabled
        kind = audit.FEATURE_ENVIRONMENT_ENABLED if enabled else audit.FEATURE_ENVIRONMENT_DISABLED
        self._audit.append(self._audit_row(kind, actor, data=None, **where))
        return True

    @staticmethod
    def _audit_row(
        kind: str,
        actor: Principal,
        *,
        data: dict[str, Any] | None,
        feature_name: str,
        project: str,
        environment: str,
    ) -> dict[str, Any]:
        return {
            "type": kind,
            "created_by": actor.username,
            "created_by_user_id": actor.user_id,
            "created_at": utcnow(),
            "data": data,
            "pre_data": None,
            "feature_name": feature_name,
            "project": project,
            "environment": environment,
        }

    async def flush(self) -> None:
        """Write the net effect of the successful calls (a few statements whatever their number)."""
        conn = self._conn
        fe = t.feature_environment
        new_rows = [
            {"feature_name": name, "environment_name": env, "enabled": toggle.enabled}
            for (name, env), toggle in self._toggles.items()
            if toggle.row_exists and toggle.initially is None
        ]
        changed = [
            {"name": name, "env": env, "enabled": toggle.enabled}
            for (name, env), toggle in self._toggles.items()
            if toggle.initially is not None and toggle.enabled != toggle.initially
        ]
        if new_rows:
            await conn.execute(fe.insert(), new_rows)
        if changed:
            await conn.execute(
                fe.update()
                .where(
                    fe.c.feature_name == sa.bindparam("name"), fe.c.environment_name == sa.bindparam("env")
                )
                .values(enabled=sa.bindparam("enabled")),
                changed,
            )
        if self._strategies:
            await conn.execute(t.feature_strategy.insert(), self._strategies)
        if self._audit:
            await audit.record_events(
                conn,
                [{**row, "tags": self._tags[row["feature_name"]]} for row in self._audit],
                visible_to_clients=True,
            )
        for toggle in self._toggles.values():
            toggle.initially = toggle.enabled if toggle.row_exists else None
        self._strategies, self._audit = [], []
