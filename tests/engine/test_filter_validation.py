"""Write-time validation and normalisation of `match.payload`."""

from __future__ import annotations

import pytest

from switchman.engine.constraints import KNOWN_OPERATORS, Limit, Problem, normalize_filters, validate_filters
from switchman.engine.filter_validation import InvalidFiltersError
from switchman.engine.operators import SUPPORTED_OPERATORS


def problems(filters: object, *, max_filters: int = 5, max_values: int = 25) -> list[tuple[str, str]]:
    return [
        (p.path, p.message) for p in validate_filters(filters, max_filters=max_filters, max_values=max_values)
    ]


VALID = [
    {},
    {"alert.status": {"operator": "IN", "values": ["firing"]}},
    {"a": {"operator": "NOT_IN", "values": ["x", 5, 1.5]}},
    {"a": {"operator": "STR_CONTAINS", "values": ["x"], "caseInsensitive": True, "inverted": False}},
    {"a": {"operator": "STR_STARTS_WITH", "values": ["x"], "inverted": None, "caseInsensitive": None}},
    {"a": {"operator": "NUM_GT", "value": "5"}},
    {"a": {"operator": "NUM_LTE", "value": 5}},
    {"a": {"operator": "NUM_EQ", "value": " 1e3 "}},
    {"a": {"operator": "NUM_EQ", "value": "12", "values": []}},  # constraint copied verbatim
    {"a": {"operator": "SEMVER_GTE", "value": "1.2.3-rc.1+b"}},
    {"a": {"operator": "DATE_AFTER", "value": "2024-03-21T10:15:30.123Z"}},
    {"a": {"operator": "DATE_BEFORE", "value": "2023-12-27T13:37:00+01:00"}},
    {"list[0].name": {"operator": "IN", "values": ["x"]}, "b/c~d": {"operator": "IN", "values": ["y"]}},
    {"a": {"operator": "REGEX", "value": "^(?i)checkout-[[:alpha:]]+$", "caseInsensitive": True}},
    {"tags": {"operator": "TOKEN_IN", "values": ["service:search"], "caseInsensitive": True}},
    {"alerts[*].labels.severity": {"operator": "IN", "values": ["critical"]}},
]


@pytest.mark.parametrize("filters", VALID)
def test_valid_filters(filters: object) -> None:
    assert problems(filters) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (None, [("/match/payload", "must be an object")]),
        ([], [("/match/payload", "must be an object")]),
        ({"": {"operator": "IN", "values": ["x"]}},
         [("/match/payload/", "filter key must be a non-empty payload path")]),
        ({"a": "IN"}, [("/match/payload/a", "filter must be an object")]),
        ({"a": {"values": ["x"]}}, [("/match/payload/a/operator", "is required")]),
        ({"a": {"operator": "REGEX", "value": "(x"}},
         [("/match/payload/a/value", "is not an RE2 regular expression (missing ): (x)")]),
        ({"a": {"operator": "REGEX", "value": "^(?=a)b"}},
         [("/match/payload/a/value", "is not an RE2 regular expression (invalid perl operator: (?=)")]),
        ({"a": {"operator": "REGEX", "value": ""}},
         [("/match/payload/a/value", "must not be blank (an empty pattern matches every value)")]),
        ({"a": {"operator": "REGEX", "value": "a" * 1025}},
         [("/match/payload/a/value", "is longer than 1024 characters")]),
        ({"a": {"operator": "REGEX"}}, [("/match/payload/a/value", "is required for this operator")]),
        ({"a": {"operator": "TOKEN_IN", "value": "x"}}, [("/match/payload/a/values", "is required for this operator")]),
        ({"a": {"operator": "IN_CIDR", "values": ["10.0.0.0/8"]}},
         [("/match/payload/a/operator", "operator IN_CIDR is not supported in filters")]),
        ({"a": {"operator": "IN", "values": ["x"], "extra": 1}},
         [("/match/payload/a/extra", "unknown property; allowed: operator, values, value, inverted, caseInsensitive")]),
        ({"a": {"operator": "IN"}}, [("/match/payload/a/values", "is required for this operator")]),
        ({"a": {"operator": "IN", "values": "x"}}, [("/match/payload/a/values", "must be an array of strings")]),
        ({"a": {"operator": "IN", "values": ["x", True, None, {"b": 1}]}},
         [("/match/payload/a/values/1", "must be a string"), ("/match/payload/a/values/2", "must be a string"),
          ("/match/payload/a/values/3", "must be a string")]),
        ({"a": {"operator": "STR_CONTAINS", "values": ["x", " ", ""]}},
         [("/match/payload/a/values/1", "must not be blank"), ("/match/payload/a/values/2", "must not be blank")]),
        ({"a": {"operator": "IN", "values": ["x"], "value": []}}, [("/match/payload/a/value", "must be a string")]),
        ({"a": {"operator": "NUM_EQ"}}, [("/match/payload/a/value", "is required for this operator")]),
        ({"a": {"operator": "NUM_EQ", "value": "1,5"}}, [("/match/payload/a/value", "'1,5' is not a number")]),
        ({"a": {"operator": "NUM_EQ", "value": ""}}, [("/match/payload/a/value", "'' is not a number")]),
        ({"a": {"operator": "NUM_EQ", "value": ["1"]}}, [("/match/payload/a/value", "must be a string")]),
        ({"a": {"operator": "SEMVER_EQ", "value": "v1.2.3"}},
         [("/match/payload/a/value", "'v1.2.3' is not a semantic version (MAJOR.MINOR.PATCH, no leading 'v')")]),
        ({"a": {"operator": "SEMVER_EQ", "value": " 1.2.3"}},
         [("/match/payload/a/value", "' 1.2.3' is not a semantic version (MAJOR.MINOR.PATCH, no leading 'v')")]),
        ({"a": {"operator": "DATE_AFTER", "value": "tomorrow"}},
         [("/match/payload/a/value", "'tomorrow' is not an RFC 3339 date-time")]),
        ({"a": {"operator": "IN", "values": ["x"], "inverted": "true", "caseInsensitive": 0}},
         [("/match/payload/a/inverted", "must be a boolean"), ("/match/payload/a/caseInsensitive", "must be a boolean")]),
        ({"a/b": {"operator": "IN", "values": "x"}, "c~d": {"operator": "IN", "values": "x"}},
         [("/match/payload/a~1b/values", "must be an array of strings"),
          ("/match/payload/c~0d/values", "must be an array of strings")]),
    ],
)  # fmt: skip
def test_invalid_filters(filters: object, expected: list[tuple[str, str]]) -> None:
    assert problems(filters) == expected
    assert all(p.limit is None for p in validate_filters(filters, max_filters=5, max_values=25))


def test_unknown_operator_message_lists_the_supported_ones() -> None:
    [(path, message)] = problems({"a": {"operator": "FOO"}})
    assert path == "/match/payload/a/operator"
    assert message.startswith("unknown operator 'FOO'; expected one of DATE_AFTER, DATE_BEFORE, IN, ")
    assert message.endswith("(see the `match.payload` description at /docs, or docs/filters.md)")
    [(_, message)] = problems({"a": {"operator": 3}})
    assert message.startswith("unknown operator '3'")


def test_limits_are_reported_as_limit_problems() -> None:
    filters = {f"k{i}": {"operator": "IN", "values": ["x"] * 3} for i in range(3)}
    found = validate_filters(filters, max_filters=2, max_values=2)
    assert found[0] == Problem("/match/payload", "at most 2 filters are allowed; got 3", Limit("filter", 2))
    assert found[1:] == [
        Problem(
            f"/match/payload/k{i}/values", "at most 2 values are allowed; got 3", Limit("filter value", 2)
        )
        for i in range(3)
    ]
    assert validate_filters(filters, max_filters=None, max_values=None) == []


def test_limits_at_the_boundary_are_fine() -> None:
    filters = {f"k{i}": {"operator": "IN", "values": ["x"] * 25} for i in range(5)}
    assert validate_filters(filters, max_filters=5, max_values=25) == []


def test_custom_base_path() -> None:
    found = validate_filters({"a": 1}, max_filters=5, max_values=5, path="/actionSet/match/payload")
    assert found == [Problem("/actionSet/match/payload/a", "filter must be an object")]


def test_known_operators() -> None:
    assert "IN_CIDR" in KNOWN_OPERATORS and "IN_CIDR" not in SUPPORTED_OPERATORS
    assert {"DATE_AFTER", "DATE_BEFORE", "SEMVER_GTE", "SEMVER_LTE", "IN", "NOT_IN"} <= SUPPORTED_OPERATORS
    assert {"REGEX", "TOKEN_IN"} <= SUPPORTED_OPERATORS
    assert len(SUPPORTED_OPERATORS) == 19


class TestNormalize:
    def test_numbers_become_javascript_strings(self) -> None:
        stored = normalize_filters(
            {
                "a": {"operator": "IN", "values": ["x", 5, 1.0, 1e21, 0.1]},
                "b": {"operator": "NUM_GT", "value": 7.0},
            }
        )
        assert stored == {
            "a": {"operator": "IN", "values": ["x", "5", "1", "1e+21", "0.1"]},
            "b": {"operator": "NUM_GT", "value": "7"},
        }

    def test_unused_field_dropped_flags_kept_only_when_true(self) -> None:
        stored = normalize_filters(
            {
                "a": {
                    "operator": "NUM_EQ",
                    "value": "1",
                    "values": [],
                    "inverted": False,
                    "caseInsensitive": None,
                },
                "b": {"operator": "STR_CONTAINS", "values": ["x"], "value": "junk", "caseInsensitive": True},
                "c": {"operator": "IN", "values": ["x"], "inverted": True},
            }
        )
        assert stored == {
            "a": {"operator": "NUM_EQ", "value": "1"},
            "b": {"operator": "STR_CONTAINS", "values": ["x"], "caseInsensitive": True},
            "c": {"operator": "IN", "values": ["x"], "inverted": True},
        }

    def test_key_order_is_kept(self) -> None:
        stored = normalize_filters({k: {"operator": "IN", "values": ["x"]} for k in ("z", "a", "m")})
        assert list(stored) == ["z", "a", "m"]

    def test_normalized_filters_validate(self) -> None:
        for filters in VALID:
            assert problems(normalize_filters(filters)) == []

    def test_invalid_input_raises(self) -> None:
        with pytest.raises(InvalidFiltersError) as caught:
            normalize_filters({"a": {"operator": "IN_CIDR", "values": ["10.0.0.0/8"]}})
        assert caught.value.problems == [
            Problem("/match/payload/a/operator", "operator IN_CIDR is not supported in filters")
        ]
        with pytest.raises(InvalidFiltersError):
            normalize_filters("nope")

    def test_limits_are_not_normalisation_errors(self) -> None:
        many = {f"k{i}": {"operator": "IN", "values": ["x"] * 100} for i in range(50)}
        assert len(normalize_filters(many)) == 50


@pytest.mark.parametrize("operator", ["IN", "NOT_IN", "STR_CONTAINS", "STR_STARTS_WITH", "STR_ENDS_WITH"])
def test_an_empty_values_list_is_legal_as_in_unleash(operator: str) -> None:
    filters = {"env": {"operator": operator, "values": []}}
    assert problems(filters) == []
    assert normalize_filters(filters) == {"env": {"operator": operator, "values": []}}
