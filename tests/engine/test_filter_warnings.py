"""Warnings for valid filters that cannot mean what their author thinks (never refusals)."""

from __future__ import annotations

import pytest

from switchman.engine.constraints import Filter, evaluate_filter
from switchman.engine.filter_warnings import filter_warnings, suggest_key
from switchman.engine.payload import flatten_payload
from switchman.engine.problems import ActionSetWarning

ALERTMANAGER = {"status": "firing", "alerts": [{"labels": {"severity": "critical", "service": "checkout"}}]}
KNOWN = set(flatten_payload(ALERTMANAGER))


def codes(filters: dict[str, object], known: set[str] | None = KNOWN) -> list[tuple[str, str]]:
    return [(w.path, w.code) for w in filter_warnings(filters, known_keys=known)]


def test_a_filter_on_a_seen_key_with_values_has_no_warning() -> None:
    assert filter_warnings({"status": {"operator": "IN", "values": ["firing"]}}, known_keys=KNOWN) == []


@pytest.mark.parametrize("operator", ["IN", "NOT_IN"])
def test_case_insensitive_is_ignored_by_in_and_not_in(operator: str) -> None:
    [warning] = filter_warnings(
        {"status": {"operator": operator, "values": ["FIRING"], "caseInsensitive": True}}, known_keys=KNOWN
    )
    assert warning.path == "/match/payload/status/caseInsensitive"
    assert warning.code == "case-insensitive-ignored"
    assert f"caseInsensitive is ignored by {operator} (as in Unleash)" in warning.message
    # and evaluation really ignores it: the warning tells the truth
    result = evaluate_filter(
        Filter.from_wire("status", {"operator": "IN", "values": ["FIRING"], "caseInsensitive": True}),
        flatten_payload(ALERTMANAGER),
    )
    assert result.passed is False


def test_case_insensitive_on_a_string_operator_is_no_warning() -> None:
    assert (
        codes({"status": {"operator": "STR_STARTS_WITH", "values": ["FIR"], "caseInsensitive": True}}) == []
    )


@pytest.mark.parametrize(
    ("operator", "inverted", "effect", "passes"),
    [
        ("IN", False, "never holds, so this action set can never fire", False),
        ("NOT_IN", False, "always holds, so it filters nothing", True),
        ("IN", True, "always holds, so it filters nothing", True),
        ("NOT_IN", True, "never holds, so this action set can never fire", False),
        ("STR_CONTAINS", False, "never holds, so this action set can never fire", False),
    ],
)
def test_an_empty_values_list_says_what_it_does(
    operator: str, inverted: bool, effect: str, passes: bool
) -> None:
    raw: dict[str, object] = {"operator": operator, "values": [], "inverted": inverted}
    [warning] = filter_warnings({"status": raw}, known_keys=KNOWN)
    assert (warning.path, warning.code) == ("/match/payload/status/values", "empty-values")
    assert warning.message.endswith(effect)
    # the sentence matches the evaluation, present key or not
    assert evaluate_filter(Filter.from_wire("status", raw), {"status": "firing"}).passed is passes
    assert evaluate_filter(Filter.from_wire("status", raw), {}).passed is passes


def test_a_dotted_index_suggests_the_bracketed_key() -> None:
    [warning] = filter_warnings(
        {"alerts.0.labels.severity": {"operator": "IN", "values": ["critical"]}}, known_keys=KNOWN
    )
    assert warning == ActionSetWarning(
        "/match/payload/alerts.0.labels.severity",
        "unknown-key",
        "the key 'alerts.0.labels.severity' did not occur in the recent signals of this action set's source; "
        "did you mean 'alerts[0].labels.severity'?",
    )


def test_a_misspelt_key_suggests_the_closest() -> None:
    assert suggest_key("alerts[0].label.severity", KNOWN) == "alerts[0].labels.severity"
    assert suggest_key("zzz", KNOWN) is None


def test_an_unknown_key_without_a_near_one_lists_some_seen_keys() -> None:
    [warning] = filter_warnings({"team": {"operator": "IN", "values": ["a"]}}, known_keys=KNOWN)
    assert warning.message == (
        "the key 'team' did not occur in the recent signals of this action set's source; keys seen include "
        "'alerts[0].labels.service', 'alerts[0].labels.severity', 'status'"
    )


def test_keys_are_not_checked_before_any_signal_arrived() -> None:
    assert codes({"anything": {"operator": "IN", "values": ["x"]}}, known=None) == []
    assert codes({"anything": {"operator": "IN", "values": ["x"]}}, known=set()) == [
        ("/match/payload/anything", "unknown-key")
    ]


def test_warnings_come_in_key_order_and_escape_the_pointer() -> None:
    assert codes(
        {
            "a/b": {"operator": "IN", "values": []},
            "status": {"operator": "NOT_IN", "values": ["x"], "caseInsensitive": True},
        }
    ) == [
        ("/match/payload/a~1b/values", "empty-values"),
        ("/match/payload/a~1b", "unknown-key"),
        ("/match/payload/status/caseInsensitive", "case-insensitive-ignored"),
    ]
