"""Configuration as code is a client of the admin API (ADR 0031): it imports no storage, no service, no
web framework — only the standard library, httpx, PyYAML and its own modules."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "switchman" / "config_as_code"
ALLOWED_THIRD_PARTY = {"httpx", "yaml"}


@pytest.mark.parametrize("source", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_config_as_code_talks_http_only(source: Path) -> None:
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            root = name.split(".")[0]
            if root == "switchman":
                assert name.startswith("switchman.config_as_code"), f"{source.name} imports {name}"
            else:
                assert (
                    root in ALLOWED_THIRD_PARTY or root in sys.stdlib_module_names or root == "__future__"
                ), f"{source.name} imports {name}"
