"""The deployment files under test, parsed: the Dockerfile into instructions and stages, compose.yaml as
YAML (merge keys resolved, as Compose resolves them)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "compose.yaml"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
COMPOSE_SCHEMA = REPO / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"


@dataclass
class Instruction:
    keyword: str  # upper case, e.g. "FROM"
    arguments: str  # the rest of the (continued) line

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (`CMD ["a", "b"]`), else None."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list) and all(isinstance(item, str) for item in value)
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with line continuations joined; comments and parser directives dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "a line continuation at the end of the Dockerfile"
    instructions = []
    for line in logical:
        keyword, _, arguments = line.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for item in dockerfile_instructions(text):
        if item.keyword == "FROM":
            words = shlex.split(item.arguments)
            words = [word for word in words if not word.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(item)
        else:
            assert item.keyword == "ARG", f"{item.keyword} before the first FROM"
    return stages


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def interpolated(value: str, env: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` interpolation (enough for this file)."""

    def one(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if op == ":-":
            return env.get(name) or rest
        if op == ":?":
            if not env.get(name):
                raise KeyError(f"{name}: {rest}")
            return env[name]
        return env.get(name, "")

    return re.sub(r"\$\{([A-Z0-9_]+)(?:(:-|:\?)([^}]*))?\}", one, value)
