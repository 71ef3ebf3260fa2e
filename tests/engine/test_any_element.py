"""`[*]` in a filter key: the filter holds for at least one array element (ADR 0018).

`NOT_IN` reads "no element is in the list"; `inverted` negates the whole verdict; no element at all is
like an absent key (every operator fails except `NOT_IN`, before `inverted`).
"""

from __future__ import annotations

import pytest

from switchman.engine.constraints import Filter, evaluate_filter
from switchman.engine.filter_warnings import filter_warnings
from switchman.engine.matching import compile_filters, match_payload
from switchman.engine.payload import any_element_pattern, flatten_payload, key_occurs

GROUP = {
    "status": "firing",
    "alerts": [
        {"labels": {"severity": "warning", "service": "search"}, "values": {"rate": 3}},
        {"labels": {"severity": "critical", "service": "checkout"}, "values": {"rate": 12}},
        {"labels": {"service": "search"}},
    ],
    "empty": [],
    "matrix": [{"cells": [{"v": "a"}, {"v": "b"}]}, {"cells": [{"v": "c"}]}],
}
KEY = "alerts[*].labels.severity"


def evaluate(key: str, raw: dict[str, object], payload: dict[str, object] = GROUP) -> bool:
    return evaluate_filter(Filter.from_wire(key, raw), flatten_payload(payload)).passed


# (operator/values, expected plain, expected inverted) over GROUP's severities: warning, critical, (absent)
CASES = [
    ({"operator": "IN", "values": ["critical"]}, True, False),  # some element is critical
    ({"operator": "IN", "values": ["page"]}, False, True),  # none is
    ({"operator": "NOT_IN", "values": ["critical"]}, False, True),  # an element IS critical
    ({"operator": "NOT_IN", "values": ["page"]}, True, False),  # no element is page
    ({"operator": "NOT_IN", "values": ["warning", "critical"]}, False, True),
    ({"operator": "STR_STARTS_WITH", "values": ["crit"]}, True, False),
    ({"operator": "REGEX", "value": "^warn"}, True, False),
    ({"operator": "TOKEN_IN", "values": ["critical"]}, True, False),
]


@pytest.mark.parametrize(("raw", "plain", "inverted"), CASES)
def test_case_table(raw: dict[str, object], plain: bool, inverted: bool) -> None:
    assert evaluate(KEY, raw) is plain
    assert evaluate(KEY, {**raw, "inverted": True}) is inverted


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ({"operator": "IN", "values": ["x"]}, False),
        ({"operator": "NOT_IN", "values": ["x"]}, True),
        ({"operator": "NUM_GT", "value": "0"}, False),
        ({"operator": "STR_CONTAINS", "values": ["x"]}, False),
    ],
)
@pytest.mark.parametrize("key", ["empty[*]", "missing[*].x", "alerts[*].labels.nothing"])
def test_no_element_is_like_an_absent_key(key: str, raw: dict[str, object], plain: bool) -> None:
    assert evaluate(key, raw) is plain
    assert evaluate(key, {**raw, "inverted": True}) is (not plain)


def test_numbers_compare_per_element() -> None:
    assert evaluate("alerts[*].values.rate", {"operator": "NUM_GT", "value": "10"})
    assert not evaluate("alerts[*].values.rate", {"operator": "NUM_GT", "value": "12"})


def test_nested_wildcards_hold_for_some_combination() -> None:
    assert evaluate("matrix[*].cells[*].v", {"operator": "IN", "values": ["c"]})
    assert not evaluate("matrix[*].cells[*].v", {"operator": "IN", "values": ["d"]})
    assert evaluate("matrix[0].cells[*].v", {"operator": "NOT_IN", "values": ["c"]})


def test_a_wildcard_is_an_index_only_not_any_key() -> None:
    assert any_element_pattern("alerts[*].x") is not None
    assert any_element_pattern("alerts[0].x") is None
    # `[*]` never spans a dot or a key: these flattened keys are not elements of `alerts`.
    flat = {
        "alerts.0.x": "a",
        "alerts[01].x": "b",
        "alerts[*].x": "c",
        "alertsX[0].x": "d",
        "alerts[1].y.x": "e",
    }
    result = evaluate_filter(
        Filter.from_wire("alerts[*].x", {"operator": "IN", "values": list("abcde")}), flat
    )
    assert result.passed is False


def test_explanation_names_the_element_that_decided() -> None:
    flat = flatten_payload(GROUP)
    hit = evaluate_filter(Filter.from_wire(KEY, {"operator": "IN", "values": ["critical"]}), flat)
    assert hit.seen == "critical"
    assert hit.reason == "alerts[1].labels.severity: value 'critical' is in ['critical']"
    miss = evaluate_filter(Filter.from_wire(KEY, {"operator": "IN", "values": ["page"]}), flat)
    assert miss.seen is None
    assert miss.reason.startswith("no element of 2 holds (alerts[0].labels.severity: value 'warning'")
    blocked = evaluate_filter(Filter.from_wire(KEY, {"operator": "NOT_IN", "values": ["critical"]}), flat)
    assert blocked.reason == "alerts[1].labels.severity: value 'critical' is in ['critical'], so NOT_IN fails"


def test_compiled_matching_agrees_with_the_explanation() -> None:
    filters = {
        KEY: {"operator": "IN", "values": ["critical"]},
        "status": {"operator": "IN", "values": ["firing"]},
    }
    assert match_payload(filters, GROUP).matched is True
    assert compile_filters(filters).matches(flatten_payload(GROUP)) is True
    resolved = {**GROUP, "alerts": [{"labels": {"severity": "warning"}}]}
    assert match_payload(filters, resolved).matched is False
    assert compile_filters(filters).matches(flatten_payload(resolved)) is False


def test_an_unknown_key_warning_knows_wildcards() -> None:
    known = set(flatten_payload(GROUP))
    assert key_occurs(KEY, known)
    assert not key_occurs("alerts[*].labels.team", known)
    ok = {KEY: {"operator": "IN", "values": ["critical"]}}
    assert filter_warnings(ok, known_keys=known) == []
    unknown = {"alerts[*].labels.team": {"operator": "IN", "values": ["x"]}}
    assert [w.code for w in filter_warnings(unknown, known_keys=known)] == ["unknown-key"]
