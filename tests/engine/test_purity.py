"""The engine stays pure: stdlib only, no web/database/validation frameworks, no clock or I/O."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "src" / "switchman" / "engine"
FORBIDDEN_MODULES = {
    "fastapi", "starlette", "sqlalchemy", "httpx", "asyncpg", "aiosqlite", "pydantic", "pydantic_settings",
    "orjson", "alembic", "uvicorn", "requests", "os", "time", "socket", "subprocess", "random", "secrets",
}  # fmt: skip
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "open"}
SOURCES = sorted(ENGINE.glob("*.py"))


def test_engine_sources_found() -> None:
    assert len(SOURCES) >= 10


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_engine_module_is_pure(source: Path) -> None:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            assert node.level == 0, f"{source.name}: use absolute imports"
        else:
            names = []
        for name in names:
            root = name.split(".")[0]
            assert root not in FORBIDDEN_MODULES, f"{source.name} imports {name}"
            assert root in {"switchman", "__future__"} or not name.startswith("switchman")
            if root == "switchman":
                assert name.startswith("switchman.engine"), f"{source.name} imports {name} outside the engine"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            assert called not in FORBIDDEN_CALLS, f"{source.name} calls {called}()"


def test_importing_the_engine_loads_no_framework() -> None:
    """Transitive check: a fresh interpreter importing every engine module loads none of them."""
    import subprocess
    import sys

    modules = ", ".join(f"switchman.engine.{source.stem}" for source in SOURCES if source.stem != "__init__")
    script = (
        f"import sys, {modules}\n"
        f"bad = {sorted(FORBIDDEN_MODULES - {'os', 'time', 'socket', 'subprocess', 'random', 'secrets'})!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in bad))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
