"""A clone is all the product needs: no tracked file reads anything outside the repository.

The rule, for every git-tracked text file outside `docs/` (docs may mention the team's reference folder as
background, never as a step):
- no reference to the sibling folder `../shared` (the team's reference material, which a user's clone
  does not have), written relatively or as `shared/spec/…` / `shared/tools/…`;
- no path built above the repository's root (`REPO_ROOT.parent / …`);
- no absolute path under a folder that belongs to one machine or user: `/work`, `/root`, `/home`,
  `/Users`, `/tmp`, `/opt`, `/srv`, `/mnt`, `/media`, `/var` (temporary files come from `tmp_path` or
  `tempfile`, caches live under the git-ignored `.cache/`).
System locations that are documented machine requirements stay allowed: `/proc`, `/dev`, `/sys`,
`/usr/bin/…`, `/usr/lib/postgresql/…`, `/etc/postgresql` (the CI script starts PostgreSQL with them).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_SIBLING = "shared"
_FORBIDDEN = (
    re.compile(r"\.\./" + _SIBLING + r"\b"),
    re.compile(r"(?<![\w.-])" + _SIBLING + r"/(?:spec|tools|DESIGN\.md)"),
    re.compile(r"(?<![\w.:/~-])/(?:work|root|home|Users|tmp|opt|srv|mnt|media|var)/[\w.-]"),
    re.compile(r"\bROOT\.parent\b"),  # REPO_ROOT.parent / … climbs out of the clone
)


def offending_lines(text: str) -> list[str]:
    """The lines of `text` that read, or point a user at, a path outside the repository."""
    return [line.strip() for line in text.splitlines() if any(p.search(line) for p in _FORBIDDEN)]


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [REPO_ROOT / name.decode() for name in listed if name and not name.startswith(b"docs/")]


def test_no_tracked_file_reads_outside_the_repository() -> None:
    offenders: dict[str, list[str]] = {}
    files = _tracked_files()
    assert len(files) > 100, "git ls-files found too little: is this a git checkout?"
    for path in files:
        if not path.is_file() or path == Path(__file__).resolve():
            continue  # deleted in the working tree, or this file (its rule and examples name the paths)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        lines = offending_lines(text)
        if lines:
            offenders[str(path.relative_to(REPO_ROOT))] = lines
    assert offenders == {}


@pytest.mark.parametrize(
    "line",
    [
        'SCRIPT = ROOT.parent / "' + _SIBLING + '" / "tools" / "x.sh"',
        "run ../" + _SIBLING + "/tools/unleash-oss.sh first",
        'FOUNDING = Path("/work/' + _SIBLING + '/spec/seed.md")',
        "see " + _SIBLING + "/spec/unleash-signals-actions.md",
        'open("/home/dev/switchman/fixture.json")',
        'Path("/tmp/switchman.db")',
        "cp x /var/lib/thing",
    ],
)
def test_the_rule_catches_paths_outside_the_repository(line: str) -> None:
    assert offending_lines(line) == [line]


@pytest.mark.parametrize(
    "line",
    [
        'executable_path="/usr/bin/chromium"',
        'Path("/proc/self/status").read_text()',
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
        'PG_BIN = "/usr/lib/postgresql/15/bin"',
        'client.get("/api/admin/projects/default/features")',
        "url=http://127.0.0.1:4242/api/admin/tmp/x",
        "the shared flag backend",
        'path = REPO_ROOT / ".cache" / "unleash-oss"',
    ],
)
def test_the_rule_allows_system_locations_and_api_paths(line: str) -> None:
    assert offending_lines(line) == []
