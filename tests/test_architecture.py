"""House rules checked by tests rather than memory."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "switchman"
FORBIDDEN_IN_ENGINE = {
    "fastapi",
    "starlette",
    "sqlalchemy",
    "httpx",
    "asyncpg",
    "aiosqlite",
    "pydantic",
    "uvicorn",
}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_engine_is_pure() -> None:
    files = sorted((SRC / "engine").glob("*.py"))
    assert files, "engine package not found"
    offenders = {f.name: sorted(_imported_roots(f) & FORBIDDEN_IN_ENGINE) for f in files}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_engine_imports_nothing_else_from_switchman() -> None:
    for path in (SRC / "engine").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("switchman."):
                assert node.module.startswith("switchman.engine"), f"{path.name} imports {node.module}"
