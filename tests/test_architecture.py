"""The import rules of docs/architecture.md, checked on the source rather than remembered.

1. The engine is pure: standard library only, nothing of the app, no clock, no I/O.
2. Routes import no repository and no table: they call their feature's service.
3. Features meet through services: a feature imports another feature's public modules only.
4. Each table is read and written by the feature that owns it (and by nobody else's SQL).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "switchman"
ENGINE = SRC / "engine"

# --- 1. the engine ------------------------------------------------------------------------------------

FORBIDDEN_IN_ENGINE = {
    "fastapi", "starlette", "sqlalchemy", "httpx", "asyncpg", "aiosqlite", "pydantic", "pydantic_settings",
    "orjson", "alembic", "uvicorn", "requests", "os", "time", "socket", "subprocess", "random", "secrets",
}  # fmt: skip
FORBIDDEN_CALLS_IN_ENGINE = {"now", "utcnow", "today", "time", "monotonic", "open"}
ENGINE_SOURCES = sorted(ENGINE.glob("*.py"))


def _imports(path: Path) -> list[str]:
    """Every module `path` imports (absolute names; `from a import b` counts as `a` and `a.b`)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path.relative_to(SRC)}: use absolute imports"
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_engine_sources_found() -> None:
    assert len(ENGINE_SOURCES) >= 10


@pytest.mark.parametrize("source", ENGINE_SOURCES, ids=lambda p: p.name)
def test_engine_module_is_pure(source: Path) -> None:
    for name in _imports(source):
        root = name.split(".")[0]
        assert root not in FORBIDDEN_IN_ENGINE, f"{source.name} imports {name}"
        if root == "switchman":
            assert name.startswith("switchman.engine"), f"{source.name} imports {name} outside the engine"
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            assert called not in FORBIDDEN_CALLS_IN_ENGINE, f"{source.name} calls {called}()"


def test_importing_the_engine_loads_no_framework() -> None:
    """Transitive: a fresh interpreter importing every engine module loads none of the frameworks."""
    modules = ", ".join(f"switchman.engine.{p.stem}" for p in ENGINE_SOURCES if p.stem != "__init__")
    frameworks = sorted(FORBIDDEN_IN_ENGINE - {"os", "time", "socket", "subprocess", "random", "secrets"})
    script = (
        f"import sys, {modules}\nprint(sorted(m for m in sys.modules if m.split('.')[0] in {frameworks!r}))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- 2 and 3. routes and features ---------------------------------------------------------------------

FEATURES = {
    "action_sets", "api_tokens", "auth", "client_api", "flags", "service_accounts", "signal_endpoints",
    "worker", "notifications",
}  # fmt: skip
# What each feature offers the others. `service` (use cases) and `schemas` (wire types) always; the rest
# are contracts named here on purpose.
PUBLIC = {
    "auth": {"principal", "permissions", "access", "dependencies", "service", "tokens", "cache"},
    "flags": {"backend", "features", "projects", "environments", "tags", "toggles", "factory"},
    "signal_endpoints": {
        "queue",
        "rate_limit",
        "group_commit",
        "signal_writer",
        "retention",
        "ingest",
        "sender_format",  # the format an endpoint's sender posts: read by the worker and by explain (ADR 0021)
    },
    "action_sets": {
        "event_store",
        "page_cache",
        "listing_fast_path",
        "decision_store",
        "policy_store",
        "policy",
        "event_changes",
        "undo",
        "time_boxes",  # the worker sweeps the time boxes that ended (ADR 0025)
    },
    "client_api": set(),
    "api_tokens": {"configured"},  # the SDK token scope format (`*` = every project)
    "service_accounts": set(),
    "worker": set(),
    "console": set(),
    # The worker and undo write run outcomes into the outbox in their own transaction; the runtime starts
    # the dispatcher (ADR 0027).
    "notifications": {"outbox", "dispatcher"},
}
ROUTE_MODULES = {"router.py", "ingest.py", "listing_fast_path.py"}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _feature_of(path: Path) -> str | None:
    parts = path.relative_to(SRC).parts
    return parts[0] if len(parts) > 1 and parts[0] in FEATURES else None


def test_routes_import_no_repository_and_no_table() -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules()
        if path.name in ROUTE_MODULES or path.name == "app.py"
        for name in _imports(path)
        if name.endswith(".repository") or name == "switchman.db.tables"
    ]
    assert offenders == []


def test_features_meet_through_services_and_named_contracts() -> None:
    offenders: list[str] = []
    for path in _modules():
        feature = _feature_of(path)
        if feature is None:
            continue
        for name in _imports(path):
            parts = name.split(".")
            if len(parts) < 3 or parts[0] != "switchman" or parts[1] not in FEATURES or parts[1] == feature:
                continue
            if parts[2] not in {"service", "schemas"} | PUBLIC[parts[1]]:
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


def test_public_contracts_exist() -> None:
    """A stale entry in PUBLIC would silently widen the rule."""
    for feature, modules in PUBLIC.items():
        for module in modules:
            assert (SRC / feature / f"{module}.py").exists(), f"{feature}.{module}"


# --- 4. tables ----------------------------------------------------------------------------------------

OWNERS = {
    "api_tokens": {"api_token"},
    "service_accounts": {"service_account", "personal_access_token"},
    "flags": {
        "project", "environment", "project_environment", "feature", "feature_environment",
        "feature_strategy", "tag_type", "tag", "feature_tag",
    },
    "audit": {"event", "flag_store_revision"},
    "signal_endpoints": {"signal_endpoint", "signal_endpoint_token", "signal", "signal_delivery",
                         "signal_endpoint_verification", "signal_endpoint_format",
                         "signal_endpoint_query_token", "signal_rate_window"},
    "action_sets": {"action_set", "action", "action_set_event", "signal_decision", "action_set_policy",
                    "action_set_policy_state", "action_set_event_change", "action_set_event_undo",
                    "project_action_budget"},
    "console": {"console_session"},
    "notifications": {"notification_channel", "notification_outbox", "notification_delivery"},
}  # fmt: skip
# Readers by design, each for one reason (docs/architecture.md, "Who owns what"):
READERS = {
    # Authentication resolves every credential: API tokens, service accounts and their PATs.
    "auth": OWNERS["api_tokens"] | OWNERS["service_accounts"],
    # The client API is the flag store's read model for SDKs: one tuned query over the flag tables and
    # the client token's scope (ADR 0009, ADR 0011).
    "client_api": OWNERS["flags"] | OWNERS["api_tokens"],
}


def _owner_of(path: Path) -> str:
    return path.relative_to(SRC).parts[0]


def test_every_table_has_one_owner() -> None:
    from switchman.db import tables

    declared = {name for names in OWNERS.values() for name in names}
    assert sum(len(names) for names in OWNERS.values()) == len(declared)
    assert declared == set(tables.metadata.tables)


def test_each_table_is_used_only_by_its_owner_and_its_declared_readers() -> None:
    offenders: list[str] = []
    for path in _modules():
        owner = _owner_of(path)
        if owner in {"db", "migrations"}:
            continue
        allowed = OWNERS.get(owner, set()) | READERS.get(owner, set())
        text = path.read_text(encoding="utf-8")
        for table in set(re.findall(r"\bt\.([a-z_]+)\b", text)):
            if table not in allowed:
                offenders.append(f"{path.relative_to(SRC)} uses table {table}")
    assert offenders == []
