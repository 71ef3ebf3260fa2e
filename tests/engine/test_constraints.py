"""Filter evaluation: every operator, `inverted`, `caseInsensitive`, absent keys, spec §5.5.4."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from switchman.engine.constraints import Filter, FilterResult, evaluate_filter
from switchman.engine.payload import flatten_payload

ABSENT = object()  # marks "key not in the payload"


def run(operator: str, seen: object, *, values: tuple[str, ...] = (), value: str | None = None,
        inverted: bool = False, case_insensitive: bool = False) -> FilterResult:  # fmt: skip
    flat: Mapping[str, object] = {} if seen is ABSENT else {"k": seen}
    return evaluate_filter(Filter("k", operator, values, value, inverted, case_insensitive), flat)


# (operator, payload value, values, value, caseInsensitive, expected)
CASES: list[tuple[str, object, tuple[str, ...], str | None, bool, bool]] = [
    # IN / NOT_IN: exact, case-sensitive, values cleaned (falsy dropped, trimmed), context not trimmed
    ("IN", "a", ("a", "b"), None, False, True),
    ("IN", "c", ("a", "b"), None, False, False),
    ("IN", "A", ("a",), None, False, False),
    ("IN", "A", ("a",), None, True, False),  # caseInsensitive ignored by IN
    ("IN", "a", (" a ",), None, False, True),
    ("IN", " a", ("a",), None, False, False),
    ("IN", "", ("",), None, False, False),  # "" value dropped by cleaning
    ("IN", "", ("  ",), None, False, True),  # "  " survives the falsy filter, trims to ""
    ("IN", "a", (), None, False, False),
    ("IN", ABSENT, ("a",), None, False, False),
    ("IN", None, ("null",), None, False, False),  # JSON null is absent, not "null"
    ("IN", 0, ("0",), None, False, True),  # 0 / false / "" are present
    ("IN", False, ("false",), None, False, True),
    ("IN", 12.0, ("12",), None, False, True),
    ("IN", 12.0, ("12.0",), None, False, False),
    ("NOT_IN", "a", ("a", "b"), None, False, False),
    ("NOT_IN", "c", ("a", "b"), None, False, True),
    ("NOT_IN", "A", ("a",), None, True, True),
    ("NOT_IN", ABSENT, ("a",), None, False, True),
    ("NOT_IN", None, ("a",), None, False, True),
    ("NOT_IN", "a", (), None, False, True),
    # STR_*: any entry; caseInsensitive lower-cases both sides
    ("STR_STARTS_WITH", "some-string-is-cool", ("some-string",), None, False, True),
    ("STR_STARTS_WITH", "cool e1", ("e1", "e2"), None, False, False),
    ("STR_STARTS_WITH", "e2 cool", ("e1", "e2"), None, False, True),
    ("STR_STARTS_WITH", "TEsT@x", ("test",), None, False, False),
    ("STR_STARTS_WITH", "TEsT@x", ("test",), None, True, True),
    ("STR_STARTS_WITH", "x", (), None, False, False),
    ("STR_STARTS_WITH", ABSENT, ("x",), None, False, False),
    ("STR_STARTS_WITH", "anything", ("   ",), None, False, True),  # blank entry trims to "" (SDK quirk)
    ("STR_ENDS_WITH", "a@some-email.com", ("some-email.com",), None, False, True),
    ("STR_ENDS_WITH", "a@some-EMAIL.com", ("some-email.com",), None, False, False),
    ("STR_ENDS_WITH", "a@SOME-email.com", ("some-email.com",), None, True, True),
    ("STR_ENDS_WITH", ABSENT, ("x",), None, True, False),
    ("STR_CONTAINS", "a@some-email.com", ("email",), None, False, True),
    ("STR_CONTAINS", "a@another.com", ("email",), None, False, False),
    ("STR_CONTAINS", "a@EMAIL.com", ("email",), None, True, True),
    ("STR_CONTAINS", True, ("ru",), None, False, True),
    ("STR_CONTAINS", ABSENT, ("x",), None, False, False),
    # NUM_*: JavaScript Number() on both sides, float comparison
    ("NUM_EQ", "12", (), "12", False, True),
    ("NUM_EQ", "12.0", (), "12", False, True),
    ("NUM_EQ", 12, (), "12.0", False, True),
    ("NUM_EQ", " 12 ", (), "12", False, True),
    ("NUM_EQ", "1e1", (), "10", False, True),
    ("NUM_EQ", "0x10", (), "16", False, True),
    ("NUM_EQ", "", (), "0", False, True),  # JavaScript: Number("") === 0
    ("NUM_EQ", False, (), "0", False, False),  # "false" is not a number
    ("NUM_EQ", "abc", (), "12", False, False),
    ("NUM_EQ", "12", (), "abc", False, False),
    ("NUM_EQ", "12", (), None, False, False),
    ("NUM_EQ", ABSENT, (), "0", False, False),
    ("NUM_EQ", None, (), "0", False, False),
    ("NUM_EQ", "Infinity", (), "Infinity", False, True),
    ("NUM_EQ", "1,5", (), "1.5", False, False),
    ("NUM_GT", "13", (), "12", False, True),
    ("NUM_GT", "12", (), "12", False, False),
    ("NUM_GT", 7.5, (), "5", False, True),
    ("NUM_GT", "-1", (), "-2", False, True),
    ("NUM_GTE", "12", (), "12", False, True),
    ("NUM_GTE", "13", (), "12", False, True),
    ("NUM_GTE", "11", (), "12", False, False),
    ("NUM_LT", "0", (), "12", False, True),
    ("NUM_LT", "12", (), "12", False, False),
    ("NUM_LTE", "12", (), "12", False, True),
    ("NUM_LTE", "0", (), "12", False, True),
    ("NUM_LTE", "13", (), "12", False, False),
    # SEMVER_*: strict SemVer; context must not start with "v"; precedence
    ("SEMVER_EQ", "1.2.2", (), "1.2.2", False, True),
    ("SEMVER_EQ", "1.2.0", (), "1.2.2", False, False),
    ("SEMVER_EQ", "1.2.2+build", (), "1.2.2", False, True),
    ("SEMVER_EQ", "v2.0.0", (), "v2.0.0", False, False),
    ("SEMVER_EQ", "2.0.0", (), "v2.0.0", False, True),  # the filter value goes through node-semver
    ("SEMVER_EQ", "not a semver", (), "v2.0.0", False, False),
    ("SEMVER_EQ", "", (), "1.2.2", False, False),
    ("SEMVER_EQ", "1.2.2", (), None, False, False),
    ("SEMVER_EQ", "1.2.2", (), "1.2", False, False),
    ("SEMVER_EQ", ABSENT, (), "1.2.2", False, False),
    ("SEMVER_GT", "1.2.3", (), "1.2.2", False, True),
    ("SEMVER_GT", "1.2.2", (), "1.2.2", False, False),
    ("SEMVER_GT", "2.0.0-beta.1", (), "2.0.0-alpha.1", False, True),
    ("SEMVER_GT", "2.0.0", (), "2.0.0-alpha.1", False, True),
    ("SEMVER_GT", "2.0.0-alpha.1", (), "2.0.0-alpha", False, True),
    ("SEMVER_GT", "2.0.0-beta.1", (), "2.0.0-rc", False, False),
    ("SEMVER_GTE", "1.2.2", (), "1.2.2", False, True),
    ("SEMVER_GTE", "1.2.1", (), "1.2.2", False, False),
    ("SEMVER_LT", "1.9.1-beta.1", (), "2.0.0-alpha.1", False, True),
    ("SEMVER_LT", "2.0.0-alpha.4", (), "2.0.0-alpha.3", False, False),
    ("SEMVER_LT", "2.0.0-beta.11", (), "2.0.0-beta.2", False, False),
    ("SEMVER_LTE", "1.2.2", (), "1.2.2", False, True),
    ("SEMVER_LTE", "1.2.3", (), "1.2.2", False, False),
    # DATE_*: the payload value, strictly after/before, offsets honoured
    ("DATE_AFTER", "2022-01-30T13:00:00.000Z", (), "2022-01-29T13:00:00.000Z", False, True),
    ("DATE_AFTER", "2022-01-29T13:00:00.000Z", (), "2022-01-29T13:00:00.000Z", False, False),
    ("DATE_AFTER", "2022-01-29T15:00:01+02:00", (), "2022-01-29T13:00:00Z", False, True),
    ("DATE_AFTER", "2022-01-29T13:00:01", (), "2022-01-29T13:00:00Z", False, True),  # naive = UTC
    ("DATE_AFTER", "garbage", (), "2022-01-29T13:00:00Z", False, False),
    ("DATE_AFTER", "2022-01-30T13:00:00Z", (), "garbage", False, False),
    ("DATE_AFTER", "2022-01-30T13:00:00Z", (), None, False, False),
    ("DATE_AFTER", 1643461200, (), "2022-01-29T13:00:00Z", False, False),  # epoch numbers are not dates
    ("DATE_AFTER", ABSENT, (), "2022-01-29T13:00:00Z", False, False),
    ("DATE_BEFORE", "2022-01-28T13:00:00.000Z", (), "2022-01-29T13:00:00.000Z", False, True),
    ("DATE_BEFORE", "2022-01-29T13:00:00.000Z", (), "2022-01-29T13:00:00.000Z", False, False),
    ("DATE_BEFORE", "2022-01-22T11:30:00.000Z", (), "2022-01-22T14:00:00.000+02:00", False, True),
    ("DATE_BEFORE", "0001-01-01T00:00:00+23:59", (), "9999-12-31T23:59:59-23:59", False, True),
]


@pytest.mark.parametrize(
    ("operator", "seen", "values", "value", "case_insensitive", "expected"),
    [
        pytest.param(*case, id=f"{case[0]}-{case[1]!r}-{case[2] or case[3]!r}-ci{int(case[4])}")
        for case in CASES
    ],
)
def test_operator(operator: str, seen: object, values: tuple[str, ...], value: str | None,
                  case_insensitive: bool, expected: bool) -> None:  # fmt: skip
    plain = run(operator, seen, values=values, value=value, case_insensitive=case_insensitive)
    assert plain.passed is expected, plain.reason
    flipped = run(
        operator, seen, values=values, value=value, case_insensitive=case_insensitive, inverted=True
    )
    assert flipped.passed is (not expected), flipped.reason  # inverted negates, absent keys included


@pytest.mark.parametrize("operator", ["IN_CIDR", "FOO", "", "in", "NOT_A_VALID_OPERATOR"])
@pytest.mark.parametrize("inverted", [False, True])
def test_unknown_and_unsupported_operators_never_match_even_inverted(operator: str, inverted: bool) -> None:
    result = run(operator, "x", values=("x",), value="x", inverted=inverted)
    assert result.passed is False
    assert "never matches (inverted not applied)" in result.reason


# Spec §5.5.4, all rows.
WORKED_PAYLOAD = {"alert": {"status": "Firing", "errorRate": 7.5, "tags": ["prod", "eu"]}, "ok": False}


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("alert.status", {"operator": "IN", "values": ["firing"]}, False),
        ("alert.status", {"operator": "STR_STARTS_WITH", "values": ["fir"], "caseInsensitive": True}, True),
        ("alert.errorRate", {"operator": "NUM_GT", "value": "5"}, True),
        ("alert.tags[1]", {"operator": "IN", "values": ["eu"]}, True),
        ("alert.tags", {"operator": "IN", "values": ["prod"]}, False),
        ("ok", {"operator": "IN", "values": ["false"]}, True),
        ("missing", {"operator": "NOT_IN", "values": ["x"]}, True),
        ("missing", {"operator": "STR_CONTAINS", "values": ["x"], "inverted": True}, True),
        ("alert.status", {"operator": "FOO", "inverted": True}, False),
    ],
)
def test_spec_worked_examples(key: str, raw: dict[str, object], expected: bool) -> None:
    result = evaluate_filter(Filter.from_wire(key, raw), flatten_payload(WORKED_PAYLOAD))
    assert result.passed is expected, result.reason


@pytest.mark.parametrize(
    ("operator", "seen", "kwargs", "reason"),
    [
        ("IN", "firing", {"values": ("firing",)}, "value 'firing' is in ['firing']"),
        ("IN", "x", {"values": ("a",), "case_insensitive": True},
         "value 'x' is not in ['a'] (caseInsensitive is ignored by IN/NOT_IN)"),
        ("NOT_IN", ABSENT, {"values": ("a",)}, "key absent: NOT_IN holds"),
        ("STR_CONTAINS", ABSENT, {"values": ("a",), "inverted": True}, "key absent: STR_CONTAINS fails; inverted: passes"),
        ("STR_ENDS_WITH", "a.COM", {"values": (".org", ".com"), "case_insensitive": True},
         "value 'a.COM' ends with '.com' ignoring case"),
        ("NUM_GT", "abc", {"value": "1"}, "'abc' is not a number"),
        ("NUM_GT", "1", {"value": "x"}, "filter value 'x' is not a number"),
        ("NUM_LTE", 7.5, {"value": "5"}, "7.5 is not <= 5"),
        ("SEMVER_GT", "v1.0.0", {"value": "1.0.0"}, "'v1.0.0' is not a valid semantic version"),
        ("SEMVER_GT", "1.0.1", {"value": "1.0.0"}, "1.0.1 > 1.0.0"),
        ("DATE_AFTER", "2024-01-02", {"value": "2024-01-01"}, "'2024-01-02' is after '2024-01-01'"),
        ("DATE_BEFORE", "soon", {"value": "2024-01-01"}, "'soon' is not a date-time"),
        ("FOO", "x", {}, "unknown operator 'FOO' never matches (inverted not applied)"),
        ("IN_CIDR", "x", {"value": "x"}, "unsupported operator 'IN_CIDR' never matches (inverted not applied)"),
        ("REGEX", "checkout-eu-1", {"value": "^checkout-(eu|us)"}, "value 'checkout-eu-1' matches '^checkout-(eu|us)'"),
        ("REGEX", "ABC", {"value": "b", "case_insensitive": True}, "value 'ABC' matches 'b' ignoring case"),
        ("REGEX", "x", {"value": "(a", "inverted": True}, "pattern '(a' is not a usable RE2 expression: never matches"),
        ("TOKEN_IN", "env:prod,service:search", {"values": ("service:search",)},
         "part 'service:search' of 'env:prod,service:search' is in ['service:search']"),
        ("TOKEN_IN", "service:search-indexer", {"values": ("service:search",)},
         "no part of 'service:search-indexer' ['service:search-indexer'] is in ['service:search']"),
        ("IN", "x", {"values": tuple("abcdefg")},
         "value 'x' is not in ['a', 'b', 'c', 'd', 'e', … (2 more)]"),
    ],
)  # fmt: skip
def test_reasons(operator: str, seen: object, kwargs: dict[str, object], reason: str) -> None:
    result = run(operator, seen, **kwargs)  # type: ignore[arg-type]
    assert result.reason == reason


def test_result_reports_the_context_value_seen() -> None:
    assert run("IN", 7.5, values=("7.5",)).seen == "7.5"
    assert run("IN", ABSENT, values=("x",)).seen is None
    assert run("IN", None, values=("x",)).seen is None
    long = "x" * 500
    result = run("IN", long, values=("y",))
    assert result.seen == long
    assert len(result.reason) < 120


class TestFromWire:
    def test_reads_all_fields(self) -> None:
        f = Filter.from_wire(
            "a.b",
            {
                "operator": "STR_CONTAINS",
                "values": ["x", "y"],
                "value": "v",
                "inverted": True,
                "caseInsensitive": True,
            },
        )
        assert f == Filter("a.b", "STR_CONTAINS", ("x", "y"), "v", True, True)

    def test_defaults(self) -> None:
        assert Filter.from_wire("k", {"operator": "IN"}) == Filter("k", "IN")

    def test_numbers_become_javascript_strings_and_nulls_are_dropped(self) -> None:
        f = Filter.from_wire("k", {"operator": "IN", "values": [5, 1.0, None, "x"], "value": 2.5})
        assert f.values == ("5", "1", "x")
        assert f.value == "2.5"
        assert f.malformed is None

    @pytest.mark.parametrize(
        ("raw", "why"),
        [
            (None, "filter is not an object"),
            ("IN", "filter is not an object"),
            (["IN"], "filter is not an object"),
            ({"operator": 5}, "operator is not a string"),
            ({"operator": "IN", "values": "a"}, "values is not a list of strings"),
            ({"operator": "IN", "values": [True]}, "values is not a list of strings"),
            ({"operator": "IN", "values": [["a"]]}, "values is not a list of strings"),
            ({"operator": "NUM_EQ", "value": {"a": 1}}, "value is not a string"),
            ({"operator": "NUM_EQ", "value": True}, "value is not a string"),
            ({"operator": "IN", "inverted": "yes"}, "inverted is not a boolean"),
            ({"operator": "IN", "caseInsensitive": 1}, "caseInsensitive is not a boolean"),
        ],
    )
    def test_garbage_yields_a_filter_that_never_matches(self, raw: object, why: str) -> None:
        f = Filter.from_wire("k", raw)
        assert f.malformed is not None and why in f.malformed
        for payload in ({}, {"k": "a"}, {"k": 5}):
            result = evaluate_filter(f, payload)
            assert result.passed is False
            assert result.reason.startswith("malformed filter")

    def test_malformed_filter_is_not_inverted(self) -> None:
        f = Filter.from_wire("k", {"operator": "IN", "values": "a", "inverted": True})
        assert evaluate_filter(f, {}).passed is False
