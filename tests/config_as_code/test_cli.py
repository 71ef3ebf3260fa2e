"""`switchman export` and `switchman apply` through `switchman.cli.main`, against a real `switchman serve`
subprocess on a free port: the URL and token from the environment, one-line errors with status 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchman.cli import main
from tests.config_as_code.conftest import KEY
from tests.conftest import ADMIN_TOKEN, empty_database

DOCUMENT = """\
apiVersion: switchman/v1
signalEndpoints:
  - name: pager
    description: PagerDuty incidents
    format: {format: pagerduty}
projects:
  - id: default
    actionBudget: {maxChangesPerHour: 20}
    actionSets:
      - name: checkout off
        actor: incident-bot
        match:
          source: signal-endpoint
          endpoint: pager
          payload:
            "@switchman.status": {operator: IN, values: [firing]}
        actions:
          - action: TOGGLE_FEATURE_OFF
            executionParams: {project: default, environment: production, featureName: checkout}
        policy: {cooldownSeconds: 300}
    notificationChannels:
      - name: ops
        kind: slack
        url: ${OPS_SLACK_URL}
        actionSets: [checkout off]
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a `switchman serve` on an empty database of the test database's kind."""
    kind = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    with empty_database(kind, tmp_path, prefix="switchman_cac_cli") as url:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHMAN_")}
        env.update(
            SWITCHMAN_DATABASE_URL=url,
            SWITCHMAN_INIT_ADMIN_API_TOKENS=ADMIN_TOKEN,
            SWITCHMAN_SECRET_KEY=KEY,
            SWITCHMAN_LOG_LEVEL="WARNING",
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "switchman", "serve", "--port", str(port), "--no-worker"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, "switchman serve exited early"
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "switchman serve never became healthy"
                time.sleep(0.1)
            admin = {"Authorization": ADMIN_TOKEN}
            flag = httpx.post(
                f"{base}/api/admin/projects/default/features", json={"name": "checkout"}, headers=admin
            )
            assert flag.status_code == 201, flag.text
            account = httpx.post(
                f"{base}/api/admin/service-account",
                json={"username": "incident-bot", "name": "Incident bot", "rootRole": 2},
                headers=admin,
            )
            assert account.status_code == 201, account.text
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The token and the Slack URL from the environment; database settings that could not work, to show
    these commands never need one."""
    monkeypatch.setenv("SWITCHMAN_API_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("OPS_SLACK_URL", "https://hooks.slack.test/services/T1/B2/secret")
    monkeypatch.setenv("SWITCHMAN_DATABASE_URL", "mysql://nowhere/none")
    monkeypatch.delenv("SWITCHMAN_URL", raising=False)


def test_apply_dry_run_apply_export_and_apply_again(
    server: str,
    cli_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "switchman.yaml"
    source.write_text(DOCUMENT)

    assert main(["apply", "-f", str(source), "--url", server, "--dry-run"]) == 0
    planned = capsys.readouterr().out.splitlines()
    assert planned == [
        "create signal endpoint pager",
        "create action set default/checkout off",
        "create policy default/checkout off",
        "create action budget default",
        "create notification channel default/ops",
        "plan: 5 to create (dry run: nothing changed)",
    ]
    assert main(["export", "--url", server]) == 0
    assert capsys.readouterr().out == "apiVersion: switchman/v1\nprojects: []\nsignalEndpoints: []\n"

    assert main(["apply", "-f", str(source), "--url", server]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "applied: 5 to create"

    exported = tmp_path / "exported.yaml"
    assert main(["export", "--url", server, "-o", str(exported)]) == 0
    text = exported.read_text()
    assert "secret" not in text and "hooks.slack.test" not in text
    assert "url: ${SWITCHMAN_CHANNEL_URL_DEFAULT_OPS}" in text

    monkeypatch.setenv("SWITCHMAN_URL", server)  # the default URL comes from the environment
    monkeypatch.setenv("SWITCHMAN_CHANNEL_URL_DEFAULT_OPS", os.environ["OPS_SLACK_URL"])
    assert main(["apply", "-f", str(exported)]) == 0
    assert capsys.readouterr().out == "no changes\n"
    assert main(["apply", "-f", str(source)]) == 0
    assert capsys.readouterr().out == "no changes\n"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_errors_are_one_line_with_status_2(
    server: str,
    cli_env: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = tmp_path / "switchman.yaml"
    source.write_text(DOCUMENT)
    nowhere = f"http://127.0.0.1:{_free_port()}"

    assert main(["export", "--url", nowhere]) == 2
    assert _one_line_error(capsys).startswith(f"switchman: cannot reach switchman at {nowhere}")

    assert main(["export", "--url", "ftp://example.test"]) == 2
    assert _one_line_error(capsys) == "switchman: 'ftp://example.test' is not an http or https URL"

    bad = tmp_path / "bad.yaml"
    bad.write_text(DOCUMENT.replace("actor: incident-bot", "actor: [incident-bot]"))
    assert main(["apply", "-f", str(bad), "--url", server]) == 2
    assert _one_line_error(capsys) == (
        "switchman: invalid document at projects[0].actionSets[0].actor: must be non-empty text"
    )

    assert main(["apply", "-f", str(tmp_path / "missing.yaml"), "--url", server]) == 2
    assert "cannot read" in _one_line_error(capsys)

    monkeypatch.setenv("SWITCHMAN_API_TOKEN", "*:*.not-the-right-secret")
    assert main(["apply", "-f", str(source), "--url", server]) == 2
    assert "refused the token in SWITCHMAN_API_TOKEN (401" in _one_line_error(capsys)

    monkeypatch.delenv("SWITCHMAN_API_TOKEN")
    assert main(["export", "--url", server]) == 2
    assert _one_line_error(capsys) == (
        "switchman: SWITCHMAN_API_TOKEN is not set: an admin API token or personal access token"
    )
