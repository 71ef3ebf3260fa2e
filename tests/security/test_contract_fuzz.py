"""Contract fuzzing: schemathesis against switchman's own `/openapi.json`, in-process (ASGI), admin token.

Every operation gets schema-valid (positive) and schema-violating (negative) requests, and a state
machine follows the links schemathesis infers between operations (create → read/update/delete by the
returned id or name). The checks: no 5xx; every status, content type, header and body is what the
document says (`status_code_conformance`, `response_schema_conformance`, …); schema-violating data is
refused; operations that need a credential refuse a request without one (`ignored_auth`).

Not checked: `positive_data_acceptance`. The document describes shapes, and switchman (like Unleash)
also refuses schema-valid data for reasons no schema states: a name that is not URL-friendly or already
taken, an actor or project that does not exist, a filter that cannot match.

Deterministic (`derandomize`, no example database). PostgreSQL gets the full run, SQLite a lighter one
(same operations, fewer examples) to stay within the test suite's time budget.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi

from switchman.app import create_app
from switchman.config import Settings, to_async_url
from switchman.db.engine import Database
from switchman.openapi import ERROR_REF
from tests.conftest import ADMIN_TOKEN, make_settings, reset_database

# examples per operation and mode, and stateful scenarios, per database
BUDGET = {"postgresql": (15, 15, 20), "sqlite": (6, 6, 8)}
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            # 413: a schema-violating body may also be too large; 409: a name already taken
            "negative_data_rejection": {
                "expected-statuses": ["400", "401", "403", "404", "405", "409", "413", "415", "429"]
            },
        }
    }
)
HEADERS = {"Authorization": ADMIN_TOKEN}


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        stateful_step_count=8,
    )


@pytest.fixture
def fuzzed(settings: Settings) -> Iterator[schemathesis.BaseSchema]:
    """The schema of a fresh app on the clean test database; the app's lifespan ends with the test."""
    app = create_app(settings)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    finally:
        schemathesis_asgi.shutdown_lifespans()


def _failure_text(exc: BaseException) -> str:
    return "\n".join(str(e).strip().split("\n\n")[0:3].__str__() for e in getattr(exc, "exceptions", [exc]))


def test_every_operation_positive_and_negative(fuzzed: schemathesis.BaseSchema, backend: str) -> None:
    positive, negative, _ = BUDGET[backend]
    sent: Counter[str] = Counter()
    failures: dict[str, str] = {}
    operations = [result.ok() for result in fuzzed.get_all_operations()]
    assert len(operations) >= 60
    for operation in operations:
        _fuzz(operation, GenerationMode.POSITIVE, positive, sent, failures)
        if _negatable(fuzzed.raw_schema["paths"][operation.path][operation.method.lower()]):
            _fuzz(operation, GenerationMode.NEGATIVE, negative, sent, failures)
    print(f"fuzzed {len(operations)} operations: {dict(sent)} requests")  # figures for docs/reliability.md
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert sent["positive"] >= len(operations) * positive * 0.9, sent
    assert sent["negative"] > 0, sent


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    examples: int,
    sent: Counter[str],
    failures: dict[str, str],
) -> None:
    @_settings(examples)
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        sent[mode.value] += 1
        try:
            case.call_and_validate(headers=HEADERS)
        except (Exception, BaseExceptionGroup) as exc:
            failures.setdefault(f"{operation.label} ({mode.value})", _failure_text(exc))

    run()


def _negatable(operation: dict[str, Any]) -> bool:
    """Whether a schema-violating request exists: a body, or a parameter that is not any string."""
    if "requestBody" in operation:
        return True
    return any(
        set(parameter.get("schema", {})) - {"type", "title", "description"}
        or parameter.get("schema", {}).get("type") != "string"
        for parameter in operation.get("parameters", [])
    )


def test_stateful_links(
    fuzzed: schemathesis.BaseSchema, backend: str, db_url: str, seed_rows: dict[str, list[dict[str, Any]]]
) -> None:
    _, _, scenarios = BUDGET[backend]
    steps: Counter[str] = Counter()

    async def reset() -> None:
        database = Database(to_async_url(db_url))
        try:
            await reset_database(database, seed_rows)
            if not database.is_postgres:  # ids restart as they do on PostgreSQL (RESTART IDENTITY)
                async with database.transaction() as conn:
                    await conn.exec_driver_sql("DELETE FROM sqlite_sequence")
        finally:
            await database.dispose()

    class Machine(fuzzed.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each scenario starts from the same database, so that replaying a scenario (as hypothesis
            # does to confirm and shrink a failure) sees the same responses.
            asyncio.run(reset())
            super().setup()

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": HEADERS}

        def after_call(self, response: Any, case: schemathesis.Case) -> None:
            steps[case.operation.label] += 1
            super().after_call(response, case)

    links = sum(1 for name in dir(Machine) if "___" in name)
    assert links >= 50, links  # transitions inferred from the document (create → use by id/name)
    run_state_machine_as_test(Machine, settings=_settings(scenarios))
    print(f"stateful: {links} links, {sum(steps.values())} steps over {len(steps)} operations")
    assert sum(steps.values()) >= scenarios, steps


def test_document_declares_error_bodies_and_no_422() -> None:
    """Every operation documents its errors with Unleash's body; the 422 switchman never sends is gone."""
    spec = create_app(make_settings("sqlite:///unused.db")).openapi()
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            errors = {code: r for code, r in responses.items() if code[0] in "45"}
            assert errors, (method, path)
            for code, response in errors.items():
                assert response["content"]["application/json"]["schema"] == ERROR_REF, (method, path, code)
            if path.startswith("/api/admin/"):
                assert {"401", "403"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            if "requestBody" in operation and path.startswith("/api/admin/"):
                assert {"400"} <= set(responses), (method, path)
    assert spec["paths"]["/health"]["get"]["security"] == []
