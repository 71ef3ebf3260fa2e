"""The README's commands, run as written: every shell and Python block is executed against a live server.

Each script block carries a marker (`<!-- readme-test: NAME … -->`) naming how it is run; a block without a
known marker fails `test_every_script_block_is_run`. The blocks run as text, with two mechanical changes a
test needs: the address `127.0.0.1:4242` becomes a free port (`SWITCHMAN_PORT` is set to it, so `make serve`
listens there), and `SWITCHMAN_DATABASE_URL` points at a fresh SQLite file or PostgreSQL database instead of
`./switchman.db`. The Unleash-backend block's two documented placeholders (the Unleash URL and token) become
the test session's real Unleash OSS. `make serve` itself runs, as a user runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, empty_database, unique
from tests.unleash_oss import ADMIN_TOKEN as UNLEASH_ADMIN_TOKEN
from tests.unleash_oss import UnleashServer, create_flag, free_port

README = REPO_ROOT / "README.md"
SCRIPT_LANGUAGES = {"bash", "sh", "shell", "console", "python"}
MARKERS = {
    "synopsis", "first-session", "flapping-alert", "safety-rules", "sdk-server", "sdk-client", "unleash-backend",
}  # fmt: skip
DEFAULT_ADDRESS = "127.0.0.1:4242"
ADMIN = "*:*.my-local-admin-secret"  # the README's own admin token
START_SECONDS = 180.0  # a bound on a broken start, not a timing assertion
_BLOCK = re.compile(
    r"(?:<!-- readme-test: (?P<marker>[\w-]+)[^\n]*-->\n)?```(?P<lang>[\w-]*)\n(?P<body>.*?)^```", re.S | re.M
)


@dataclass(frozen=True)
class Block:
    marker: str | None
    language: str
    body: str


def readme_blocks() -> list[Block]:
    return [Block(m["marker"], m["lang"], m["body"]) for m in _BLOCK.finditer(README.read_text())]


def block(marker: str) -> str:
    [found] = [b.body for b in readme_blocks() if b.marker == marker]
    return found


def test_every_script_block_is_run() -> None:
    scripts = [b for b in readme_blocks() if b.language in SCRIPT_LANGUAGES]
    assert [b for b in scripts if b.marker not in MARKERS] == []
    assert sorted(b.marker for b in scripts if b.marker) == sorted(MARKERS)  # each runner runs one block


def test_the_synopsis_commands_are_run_by_the_other_blocks() -> None:
    executed = "\n".join(block(m) for m in MARKERS - {"synopsis"})
    for line in block("synopsis").splitlines():
        command = line.split("#", 1)[0].strip()
        # `make test` is the command running this test; every other one must appear in a block that runs
        assert command == "make test" or command in executed, command


@dataclass
class Database:
    url: str
    kind: str


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database of its own (the README's server migrates it on start)."""
    with empty_database(request.param, tmp_path, prefix="switchman_readme") as url:
        yield Database(url, request.param)


@dataclass
class Shell:
    """A README block running under bash in a session of its own (so `make serve &` can be stopped)."""

    process: subprocess.Popen[bytes]
    output: Path
    port: int

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait(self, timeout: float = 300.0) -> int:
        return self.process.wait(timeout=timeout)

    def wait_for_health(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"the README's server did not answer /health:\n{self.text()[-3000:]}")


def _environment(port: int, database_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SWITCHMAN_", "MAKE", "MFLAGS")) or key.startswith("SWITCHMAN_TEST_")
    }
    venv_bin = str(Path(sys.executable).parent)
    env.update(PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}", SWITCHMAN_PORT=str(port))
    env.update(SWITCHMAN_DATABASE_URL=database_url, **extra)
    return env


@contextmanager
def run_block(text: str, database_url: str, tmp_path: Path, **extra_env: str) -> Iterator[Shell]:
    """Start `text` under bash in the repository (as a reader would, from its root); stop everything it
    started when the block is left."""
    port = free_port()
    script = text.replace(DEFAULT_ADDRESS, f"127.0.0.1:{port}")
    output = tmp_path / f"readme-{port}.out"
    with open(output, "wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=REPO_ROOT,
            env=_environment(port, database_url, **extra_env),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Shell(process, output, port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        _wait_until_gone(process.pid)


def _wait_until_gone(group: int) -> None:
    """Wait for `make serve` and its server (the block's process group) to exit; SIGKILL after 20 s."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _last_json(text: str, opening: str) -> dict[str, object]:
    start = text.rindex(opening)
    document, _ = json.JSONDecoder().raw_decode(text[start:])
    assert isinstance(document, dict)
    return document


def test_the_first_session_turns_the_flag_off_when_the_alert_fires(
    fresh_database: Database, tmp_path: Path
) -> None:
    with run_block(block("first-session"), fresh_database.url, tmp_path) as shell:
        assert shell.wait() == 0, shell.text()[-3000:]
        text = shell.text()
    before = text.index("checkout-v2 in production: on")
    after = text.index("checkout-v2 in production: off")
    assert before < after, text[-3000:]
    events = _last_json(text, '{\n    "actionSetEvents"')["actionSetEvents"]
    assert isinstance(events, list) and len(events) == 1
    [event] = events
    assert event["state"] == "success"
    assert event["signal"]["payload"] == {"alert": {"status": "firing"}}
    assert [(a["action"], a["state"]) for a in event["actionSet"]["actions"]] == [
        ("TOGGLE_FEATURE_OFF", "success")
    ]


def test_the_flapping_alert_is_held_back_and_every_step_traced(
    fresh_database: Database, tmp_path: Path
) -> None:
    script = block("first-session") + "\n" + block("flapping-alert")  # it continues the first session
    with run_block(script, fresh_database.url, tmp_path) as shell:
        assert shell.wait() == 0, shell.text()[-3000:]
        text = shell.text()
    states = re.findall(r"checkout-v2 in production: (on|off)", text)
    assert states == ["on", "off", "on", "off", "off"], text[-3000:]
    policy = _last_json(text, '{"actionSetId"')
    assert (policy["cooldownSeconds"], policy["perAlert"]) == (600, True)
    trace = _last_json(text, '{\n    "signalId"')
    assert trace["state"] == "processed"
    assert isinstance(trace["normalised"], dict) and trace["normalised"]["status"] == "resolved"
    decisions = trace["decisions"]
    assert isinstance(decisions, list)
    by_outcome = {d["outcome"]: d for d in decisions}
    assert sorted(by_outcome) == ["not-matched", "suppressed"]
    assert by_outcome["not-matched"]["reasons"][0]["seen"] == "resolved"
    assert str(by_outcome["suppressed"]["policy"]).startswith("cooldown: the set ran for a signal of ")
    assert by_outcome["suppressed"]["alertId"] == '{}:{alertname="CheckoutErrors"}'


def test_the_safety_rules_each_work_as_shown(fresh_database: Database, tmp_path: Path) -> None:
    script = "\n".join(block(name) for name in ("first-session", "flapping-alert", "safety-rules"))
    with run_block(script, fresh_database.url, tmp_path) as shell:
        assert shell.wait() == 0, shell.text()[-3000:]
        text = shell.text()
    checkout = re.findall(r"checkout-v2 in production: (on|off)", text)
    # the first session (on, off), the flapping alert (on, off, off), then restore on resolve (off, on),
    # the time box (off, then on once it ended), undo (off, on)
    assert checkout == ["on", "off", "on", "off", "off", "off", "on", "off", "on", "off", "on"], text[-3000:]
    assert re.findall(r"search-v2 in production: (on|off)", text) == ["on", "off", "on"], text[-3000:]
    reverted = _last_json(text[: text.index('{"eventId"')], '{"id"')
    assert reverted["outcome"] == "reverted", reverted
    assert str(reverted["policy"]).startswith("time box: no matching signal for 3 s after signal ")
    undone = _last_json(text, '{"eventId"')
    assert [(r["featureName"], r["enabled"]) for r in undone["restored"]] == [("checkout-v2", True)]
    shadow = _last_json(text[: text.index("search-v2 in production: off")], '{"id"')
    assert shadow["outcome"] == "shadow", shadow
    start = text.rindex('{"id"', 0, text.rindex('"state": "failed", "signal"'))  # the event itself
    failed, _ = json.JSONDecoder().raw_decode(text[start:])
    assert failed["state"] == "failed"
    [action] = failed["actionSet"]["actions"]
    assert str(action["details"]).startswith(
        "change budget exhausted: this action set changed 1 flag state(s)"
    )
    backtest = _last_json(text, '{\n    "signals"')
    assert len(backtest["runs"]) == 1
    assert backtest["matched"] == 1 + len(backtest["heldBack"]) >= 2
    assert all(str(held["reason"]).startswith("cooldown: ") for held in backtest["heldBack"])


def test_the_sdk_section_serves_unleash_sdks(fresh_database: Database, tmp_path: Path) -> None:
    with run_block(block("sdk-server"), fresh_database.url, tmp_path) as shell:
        assert shell.wait() == 0, shell.text()[-3000:]
        text = shell.text()
        created = _last_json(text, '{"secret"')
        assert str(created["secret"]).startswith("default:production.")
        features = _last_json(text, '{"version"')
        assert features["features"] == []
        client = subprocess.run(
            [sys.executable, "-c", block("sdk-client").replace(DEFAULT_ADDRESS, f"127.0.0.1:{shell.port}")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert client.returncode == 0, client.stderr[-3000:]
    assert client.stdout.strip() == "checkout-v2 is off"  # the flag does not exist on this fresh server


def test_the_unleash_backend_section_drives_a_real_unleash(
    unleash_server: UnleashServer, tmp_path: Path
) -> None:
    flag = unique("readme")
    with unleash_server.admin() as unleash:
        create_flag(unleash, flag)
    script = block("unleash-backend")
    for placeholder in ("http://unleash.internal:4242", "*:*.some-long-secret"):
        assert placeholder in script
    script = script.replace("http://unleash.internal:4242", unleash_server.url)
    script = script.replace("*:*.some-long-secret", UNLEASH_ADMIN_TOKEN)
    database = f"sqlite:///{tmp_path / 'unleash-backend.db'}"
    with run_block(script, database, tmp_path, SWITCHMAN_INIT_ADMIN_API_TOKENS=ADMIN) as shell:
        shell.wait_for_health()
        config = httpx.get(
            f"http://127.0.0.1:{shell.port}/api/admin/projects/default/actions/config",
            headers={"Authorization": ADMIN},
            timeout=30,
        )
    assert config.status_code == 200, config.text
    options = {p["name"]: p.get("options") for p in config.json()["TOGGLE_FEATURE_OFF"]["parameters"]}
    assert flag in options["featureName"]  # listed from the real Unleash, not from switchman's store


def test_every_setting_is_in_the_configuration_table_and_nothing_else_is() -> None:
    from switchman.config import Settings

    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(SWITCHMAN_[A-Z0-9_]+)`", table, re.M))
    documented |= {
        f"SWITCHMAN_{pair}" for pair in re.findall(r"^\| `SWITCHMAN_\w+` / `SWITCHMAN_(\w+)`", table, re.M)
    }
    assert documented == {f"SWITCHMAN_{name.upper()}" for name in Settings.model_fields}
