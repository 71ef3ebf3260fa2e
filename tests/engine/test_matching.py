"""Matching a payload against an action set's filters."""

from __future__ import annotations

from switchman.engine.decisions import reasons_of
from switchman.engine.matching import MatchResult, compile_filters, match_payload
from switchman.engine.payload import flatten_payload

PAYLOAD = {"alert": {"status": "Firing", "errorRate": 7.5, "tags": ["prod", "eu"]}, "ok": False}


def test_no_filters_always_match() -> None:
    assert match_payload({}, PAYLOAD) == MatchResult(True, ())
    assert match_payload({}, {}).matched is True


def test_all_filters_must_pass() -> None:
    filters = {
        "alert.status": {"operator": "IN", "values": ["Firing"]},
        "alert.errorRate": {"operator": "NUM_GT", "value": "5"},
    }
    assert match_payload(filters, PAYLOAD).matched is True
    filters["ok"] = {"operator": "IN", "values": ["true"]}
    assert match_payload(filters, PAYLOAD).matched is False


def test_every_filter_is_evaluated_and_sorted_by_parameter() -> None:
    filters = {
        "z": {"operator": "IN", "values": ["x"]},
        "alert.status": {"operator": "IN", "values": ["nope"]},
        "missing": {"operator": "NOT_IN", "values": ["x"]},
    }
    result = match_payload(filters, PAYLOAD)
    assert result.matched is False
    assert [r.parameter for r in result.filters] == ["alert.status", "missing", "z"]
    assert [r.passed for r in result.filters] == [False, True, False]
    assert result.filters[0].seen == "Firing"


def test_unreadable_filters_fail_without_raising() -> None:
    result = match_payload({"a": "IN", "b": {"operator": "NOT_IN", "values": ["x"]}}, {"a": 1})
    assert result.matched is False
    assert [r.passed for r in result.filters] == [False, True]
    assert match_payload("garbage", PAYLOAD) == MatchResult(False, ())  # type: ignore[arg-type]


def test_non_string_keys_are_read_as_javascript_strings() -> None:
    result = match_payload({1: {"operator": "IN", "values": ["a"]}}, {"1": "a"})  # type: ignore[dict-item]
    assert result.matched is True
    assert result.filters[0].parameter == "1"


def test_compiled_filters_read_once_and_match_flattened_payloads() -> None:
    from switchman.engine.payload import flatten_payload

    flat = flatten_payload(PAYLOAD)
    passing = {
        "alert.status": {"operator": "IN", "values": ["Firing"]},
        "alert.tags[1]": {"operator": "IN", "values": ["eu"]},
    }
    assert compile_filters(passing).matches(flat) is True
    assert compile_filters({**passing, "ok": {"operator": "IN", "values": ["true"]}}).matches(flat) is False
    assert compile_filters({}).matches(flat) is True
    assert compile_filters("garbage").matches(flat) is False  # type: ignore[arg-type]


def test_decide_stops_at_the_first_failing_filter_in_parameter_order() -> None:
    compiled = compile_filters(
        {
            "b": {"operator": "IN", "values": ["x"]},
            "a": {"operator": "IN", "values": ["1"]},
            "c": {"operator": "IN", "values": ["never"]},
        }
    )
    decided = compiled.decide(flatten_payload({"a": 1, "b": "y", "c": "z"}))
    assert decided.matched is False
    assert [(r.parameter, r.passed, r.seen) for r in decided.filters] == [("a", True, "1"), ("b", False, "y")]
    assert reasons_of(decided.filters, matched=False) == [
        {
            "parameter": "b",
            "operator": "IN",
            "passed": False,
            "seen": "y",
            "reason": decided.filters[1].reason,
        }
    ]
    passed = compiled.decide(flatten_payload({"a": 1, "b": "x", "c": "never"}))
    assert passed.matched is True and [r.parameter for r in passed.filters] == ["a", "b", "c"]
    assert [r["seen"] for r in reasons_of(passed.filters, matched=True)] == ["1", "x", "never"]
    # The same verdict as the explanation and as the hot path.
    for payload in ({"a": 1, "b": "x", "c": "never"}, {"a": 2}, {}):
        flat = flatten_payload(payload)
        assert compiled.decide(flat).matched == compiled.matches(flat)
        assert compiled.decide(flat).matched == match_payload(
            {"a": {"operator": "IN", "values": ["1"]}, "b": {"operator": "IN", "values": ["x"]},
             "c": {"operator": "IN", "values": ["never"]}}, payload).matched  # fmt: skip
    assert compile_filters({}).decide({}) == MatchResult(True, ())
    assert compile_filters([]).decide({}) == MatchResult(False, ())  # type: ignore[arg-type]


def test_array_wildcard_filters_are_evaluated_after_single_values() -> None:
    """A `[*]` filter visits a whole array: it comes after the single-valued ones (then by name), so a
    cheap filter that fails spares it, and the first failure reported is still the same on every database."""
    compiled = compile_filters(
        {
            "alerts[*].severity": {"operator": "IN", "values": ["critical"]},
            "status": {"operator": "IN", "values": ["firing"]},
        }
    )
    assert [f.parameter for f in compiled.filters or ()] == ["status", "alerts[*].severity"]
    decided = compiled.decide(flatten_payload({"status": "resolved", "alerts": [{"severity": "info"}]}))
    assert [(r.parameter, r.passed) for r in decided.filters] == [("status", False)]
