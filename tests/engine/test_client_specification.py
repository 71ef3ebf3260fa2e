"""Unleash's public SDK conformance vectors, run as payload filters (spec §7).

The package `@unleash/client-specification@6.1.0` is fetched from the npm registry with `npm pack`
into `<repo>/.cache/client-specification/` (git-ignored, reused when present; set
`SWITCHMAN_CLIENT_SPECIFICATION_DIR` to an extracted `specifications/` folder to use another copy).
Its files are never committed. If it cannot be had, the tests FAIL: a conformance run that tests
nothing must not look green.

Each vector becomes: payload = the test's context with `properties` merged into the top level;
each strategy's constraints become filters keyed by `contextName`; a strategy passes iff all its
filters pass; expected `isEnabled` == feature enabled and some strategy passes.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from switchman.engine.constraints import Filter, evaluate_filter
from switchman.engine.payload import flatten_payload

PACKAGE = "@unleash/client-specification@6.1.0"
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "client-specification"
ENV_OVERRIDE = "SWITCHMAN_CLIENT_SPECIFICATION_DIR"
NPM_TIMEOUT_SECONDS = 180

SUITES = (
    "09-strategy-constraints.json",
    "11-strategy-constraints-edge-cases.json",
    "13-constraint-operators.json",
    "14-constraint-semver-operators.json",
    "21-regex-constraint-operators.json",
)

# Vectors that cannot be expressed as payload filters, with the reason.
SKIPPED_VECTORS: dict[tuple[str, str], str] = {
    ("09-strategy-constraints", "Enabled in prod for userId=123"): (
        "the flag's strategy is `userWithId` (a user list, not a constraint); filters have no such strategy"
    ),
    ("09-strategy-constraints", "Disabled in dev for userId=123"): (
        "the flag's strategy is `userWithId` (a user list, not a constraint); filters have no such strategy"
    ),
    ("09-strategy-constraints", "Disabled in prod for userId=44"): (
        "the flag's strategy is `userWithId` (a user list, not a constraint); filters have no such strategy"
    ),
    ("14-constraint-semver-operators", "F8.semverAlpha is less than release"): (
        "the vector names flag `F8.semverAlpha`, which the suite does not define; it checks that an "
        "unknown flag is disabled and exercises no constraint"
    ),
}

# Applied vectors per suite in 6.1.0; a broken or different download shows up as fewer.
MIN_APPLIED: dict[str, int] = {
    "09-strategy-constraints": 14,
    "11-strategy-constraints-edge-cases": 6,
    "13-constraint-operators": 46,
    "14-constraint-semver-operators": 24,
}

# Strategies that are nothing but their constraints.
_ALWAYS_ON_STRATEGIES = frozenset({"default"})


class SpecificationUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class Vector:
    suite: str
    description: str
    context: Mapping[str, object]
    feature: Mapping[str, object] | None
    expected: bool

    @property
    def id(self) -> str:
        return f"{self.suite}:{self.description}"


def _fetch() -> Path:
    """The `specifications/` folder, downloading and extracting the package if needed."""
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        folder = Path(override)
        if not (folder / "index.json").is_file():
            raise SpecificationUnavailableError(f"{ENV_OVERRIDE}={override} has no index.json")
        return folder
    folder = CACHE_DIR / "package" / "specifications"
    if (folder / "index.json").is_file():
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise SpecificationUnavailableError(f"npm is not installed; it is needed to fetch {PACKAGE}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as scratch:
        try:
            subprocess.run(
                [npm, "pack", PACKAGE, "--pack-destination", scratch],
                cwd=scratch,
                check=True,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_SECONDS,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            output = getattr(error, "stderr", "") or ""
            raise SpecificationUnavailableError(f"`npm pack {PACKAGE}` failed: {error}\n{output}") from error
        tarballs = list(Path(scratch).glob("*.tgz"))
        if len(tarballs) != 1:
            raise SpecificationUnavailableError(f"`npm pack {PACKAGE}` produced {len(tarballs)} tarballs")
        extracted = Path(scratch) / "extracted"
        with tarfile.open(tarballs[0]) as archive:
            archive.extractall(extracted, filter="data")
        if not (extracted / "package" / "specifications" / "index.json").is_file():
            raise SpecificationUnavailableError(f"{PACKAGE} has no package/specifications/index.json")
        shutil.rmtree(CACHE_DIR / "package", ignore_errors=True)
        (extracted / "package").rename(CACHE_DIR / "package")
    return folder


@functools.cache
def _load() -> tuple[Vector, ...]:
    folder = _fetch()
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    missing = [suite for suite in SUITES if suite not in index]
    if missing:
        raise SpecificationUnavailableError(f"index.json does not list {missing}")
    vectors: list[Vector] = []
    for file_name in SUITES:
        suite = json.loads((folder / file_name).read_text(encoding="utf-8"))
        features = {feature["name"]: feature for feature in suite["state"]["features"]}
        name = file_name.removesuffix(".json")
        vectors.extend(
            Vector(
                name,
                test["description"],
                test["context"],
                features.get(test["toggleName"]),
                test["expectedResult"],
            )
            for test in suite["tests"]
        )
    return tuple(vectors)


def _load_or_failure() -> list[object]:
    try:
        return [pytest.param(vector, id=vector.id) for vector in _load()]
    except (OSError, SpecificationUnavailableError, ValueError, KeyError) as error:
        return [pytest.param(error, id="client-specification-unavailable")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vector" in metafunc.fixturenames:
        metafunc.parametrize("vector", _load_or_failure())


@pytest.fixture(scope="session")
def vectors() -> tuple[Vector, ...]:
    try:
        return _load()
    except (OSError, SpecificationUnavailableError, ValueError, KeyError) as error:
        _unavailable(error)


def _unavailable(error: object) -> NoReturn:
    """No npm (or no registry): FAIL under `CI`, skip with the reason elsewhere (the PostgreSQL rule)."""
    message = f"Unleash client specification unavailable: {error}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _payload(context: Mapping[str, object]) -> dict[str, object]:
    payload = {key: value for key, value in context.items() if key != "properties"}
    properties = context.get("properties")
    if isinstance(properties, Mapping):
        payload.update(properties)
    return payload


def _not_applicable(vector: Vector) -> str | None:
    """Why this vector cannot run as filters (None = it can). Unlisted ones fail the test."""
    if vector.feature is None:
        return "its flag is not defined in the suite"
    for strategy in vector.feature["strategies"]:  # type: ignore[attr-defined]
        name = strategy["name"]
        if strategy.get("segments") or strategy.get("variants"):
            return f"strategy {name} uses segments or variants"
        rollout = (strategy.get("parameters") or {}).get("rollout")
        if name not in _ALWAYS_ON_STRATEGIES and not (name == "flexibleRollout" and str(rollout) == "100"):
            return f"strategy {name} is not constraint-only"
    return None


def _is_enabled(vector: Vector) -> bool:
    assert vector.feature is not None
    flat = flatten_payload(_payload(vector.context))
    strategies = vector.feature["strategies"]
    assert isinstance(strategies, list)

    def passes(strategy: Mapping[str, object]) -> bool:
        constraints = strategy.get("constraints") or []
        assert isinstance(constraints, list)
        # A list, not a filter map: suite 09 puts two constraints on one contextName.
        return all(
            evaluate_filter(Filter.from_wire(constraint["contextName"], constraint), flat).passed
            for constraint in constraints
        )

    return bool(vector.feature["enabled"]) and any(passes(strategy) for strategy in strategies)


def test_vector(vector: Vector | Exception) -> None:
    if isinstance(vector, Exception):
        _unavailable(vector)
    skip_reason = SKIPPED_VECTORS.get((vector.suite, vector.description))
    why_not = _not_applicable(vector)
    if skip_reason is not None:
        assert why_not is not None, f"{vector.id} is listed in SKIPPED_VECTORS but is applicable"
        pytest.skip(skip_reason)
    assert why_not is None, f"{vector.id} is not applicable ({why_not}) but not listed in SKIPPED_VECTORS"
    assert _is_enabled(vector) is vector.expected


def test_enough_vectors_apply(vectors: tuple[Vector, ...]) -> None:
    applied = Counter(v.suite for v in vectors if (v.suite, v.description) not in SKIPPED_VECTORS)
    for suite, floor in MIN_APPLIED.items():
        assert applied[suite] >= floor, (
            f"only {applied[suite]} vectors of {suite} applied (expected >= {floor})"
        )


def test_skip_list_is_not_stale(vectors: tuple[Vector, ...]) -> None:
    present = {(v.suite, v.description) for v in vectors}
    assert set(SKIPPED_VECTORS) <= present, set(SKIPPED_VECTORS) - present
