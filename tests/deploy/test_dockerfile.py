"""The Dockerfile's shape: multi-stage onto a slim base, the package installed from this repository, a
non-root user, a HEALTHCHECK on /health that really fails when the service does, no secret baked in, and a
build context (.dockerignore) that lets in what the build copies and keeps local databases and .env out.

No container runtime runs on the machines these tests run on (docs/deployment.md, "Validation"), so the
image is checked by reading its recipe; the processes it starts are run by test_stack.py."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.deploy.files import DOCKERFILE, DOCKERIGNORE, Stage, dockerfile_instructions, dockerfile_stages

SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|_KEY\b|KEYS\b|CREDENTIAL", re.IGNORECASE)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))


def test_multi_stage_onto_a_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    build, runtime = stages[0], stages[-1]
    assert build.name is not None
    assert re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim|python:3\.1[1-9][.\d]*-slim", runtime.base)
    # the runtime stage takes only the built environment from the build stage
    copies = [item.arguments for item in runtime.of("COPY")]
    assert copies and all(arguments.startswith(f"--from={build.name} ") for arguments in copies)
    assert not runtime.of("ADD")


def test_the_package_is_installed_from_this_repository(stages: list[Stage]) -> None:
    build = stages[0]
    copied = " ".join(item.arguments for item in build.of("COPY"))
    for needed in ("pyproject.toml", "README.md", "src"):
        assert needed in copied
    assert any(re.search(r"pip install (\S+ )*\.$", item.arguments) for item in build.of("RUN"))


def test_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    runtime = stages[-1]
    users = runtime.of("USER")
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].arguments.split(":")[0]
    assert user not in {"root", "0"}
    # the user is created in the image, and nothing after USER switches back
    assert any(user in item.arguments and "useradd" in item.arguments for item in runtime.of("RUN"))
    last_user = max(i for i, item in enumerate(runtime.instructions) if item.keyword == "USER")
    assert not [item for item in runtime.instructions[last_user:] if item.keyword == "RUN"]


def test_serves_switchman_on_all_interfaces_and_migrates_on_start(stages: list[Stage]) -> None:
    runtime = stages[-1]
    [entrypoint] = runtime.of("ENTRYPOINT")
    [cmd] = runtime.of("CMD")
    assert entrypoint.exec_form() == ["switchman"]
    assert cmd.exec_form() == ["serve", "--host", "0.0.0.0"]
    assert [item.arguments for item in runtime.of("EXPOSE")] == ["4242"]
    env = " ".join(item.arguments for item in runtime.of("ENV"))
    assert "SWITCHMAN_MIGRATE_ON_START=false" not in env  # migrations on start, as `switchman serve` does


def test_no_secret_is_baked_in() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for item in dockerfile_instructions(text):
        if item.keyword in {"ENV", "ARG", "LABEL"}:
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", item.arguments) or [item.arguments.split()[0]]
            assert not [name for name in names if SECRET_NAMES.search(name)], item
        if item.keyword in {"COPY", "ADD"}:
            assert ".env" not in item.arguments.split(), item
    assert "*:*." not in text  # no admin token
    assert not re.search(r"postgres(ql)?://[^\s@/]+:[^\s@/]+@", text)  # no database password


def _healthcheck_command(stages: list[Stage]) -> list[str]:
    [check] = stages[-1].of("HEALTHCHECK")
    options, _, command = check.arguments.partition("CMD ")
    for option in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert option in options
    argv = json.loads(command)
    assert isinstance(argv, list)
    return [str(part) for part in argv]


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # http.server's name
        code = type(self).status if self.path == "/health" else 404
        self.send_response(code)
        self.end_headers()
        self.wfile.write(b'{"health":"GOOD"}' if code == 200 else b"{}")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Health]]]:
    handler = type("Health", (_Health,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


def test_the_healthcheck_asks_health_and_fails_when_it_fails(
    stages: list[Stage], health_server: tuple[ThreadingHTTPServer, type[_Health]]
) -> None:
    argv = _healthcheck_command(stages)
    assert argv[0] == "python" and "/health" in " ".join(argv)
    server, handler = health_server
    env = {**os.environ, "SWITCHMAN_PORT": str(server.server_address[1])}

    def check() -> int:
        return subprocess.run(
            [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30
        ).returncode

    assert check() == 0
    handler.status = 503  # the service cannot reach its database
    assert check() != 0
    server.shutdown()
    server.server_close()  # nothing listens any more
    assert check() != 0


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes (a directory re-includes its files)."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.rstrip("/")
        candidates = {body, body.removeprefix("**/")}
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        tails = ["/".join(parts[i:]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, c) for c in candidates for p in prefixes) or (
            body.startswith("**/") and any(fnmatch.fnmatchcase(t, body[3:]) for t in tails)
        ):
            ignored = not negated
    return ignored


def test_the_build_context_holds_what_the_build_copies_and_no_local_secrets(stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        "pyproject.toml",
        "README.md",
        "src/switchman/cli.py",
        "src/switchman/console/static/console.css",
    ):
        assert not _ignored(needed, patterns), needed
    for kept_out in (
        ".env",
        "switchman.db",
        "src/switchman.db",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
    ):
        assert _ignored(kept_out, patterns), kept_out
