"""Strict SemVer parsing (node-semver `valid`) and precedence (SemVer 2.0 §11)."""

from __future__ import annotations

import itertools

import pytest

from switchman.engine.semver import Version, compare, is_clean, parse

# SemVer 2.0 §11 example, in ascending precedence.
ASCENDING = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0-0",
    "2.0.0-1",
    "2.0.0-a",
    "2.0.0",
    "10.0.0",
]


@pytest.mark.parametrize(("lower", "higher"), list(itertools.combinations(ASCENDING, 2)))
def test_precedence_order(lower: str, higher: str) -> None:
    low, high = parse(lower), parse(higher)
    assert low is not None and high is not None
    assert compare(low, high) == -1
    assert compare(high, low) == 1


@pytest.mark.parametrize(
    ("left", "right"),
    [("1.2.3", "1.2.3+build.5"), ("1.2.3-rc.1+a", "1.2.3-rc.1+b"), ("v1.2.3", "1.2.3"), (" 1.2.3 ", "1.2.3")],
)
def test_equal_precedence_ignores_build_metadata_and_prefix(left: str, right: str) -> None:
    a, b = parse(left), parse(right)
    assert a is not None and b is not None
    assert compare(a, b) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", Version(1, 2, 3)),
        ("0.0.0", Version(0, 0, 0)),
        ("1.2.3-alpha.1", Version(1, 2, 3, ("alpha", "1"))),
        ("1.2.3-0a.--", Version(1, 2, 3, ("0a", "--"))),
        ("1.2.3+build.01", Version(1, 2, 3, (), ("build", "01"))),
        ("v1.2.3", Version(1, 2, 3)),  # node-semver accepts it; constraints refuse it for context values
        ("\t1.2.3\ufeff", Version(1, 2, 3)),
        ("9007199254740991.0.0", Version(2**53 - 1, 0, 0)),
    ],
)
def test_parse_valid(text: str, expected: Version) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.2",
        "1.2.3.4",
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-01",
        "1.2.3-",
        "1.2.3-a..b",
        "1.2.3+",
        "1.2.3+a..b",
        "=1.2.3",
        "V1.2.3",
        "vv1.2.3",
        "1.2.3 foo",
        "not a semver",
        "1.2.x",
        "\uff11.2.3",  # fullwidth digit one
        "1.2.3-\u03b1",  # greek alpha
        "9007199254740992.0.0",
        "1.2.3-" + "a" * 251,
    ],
)
def test_parse_invalid(text: str) -> None:
    assert parse(text) is None


def test_parse_is_total_for_non_strings() -> None:
    assert parse(None) is None  # type: ignore[arg-type]
    assert parse(123) is None  # type: ignore[arg-type]


def test_numeric_identifiers_compare_numerically_and_below_alphanumeric() -> None:
    def cmp(a: str, b: str) -> int:
        left, right = parse(a), parse(b)
        assert left is not None and right is not None
        return compare(left, right)

    assert cmp("1.0.0-2", "1.0.0-10") == -1
    assert cmp("1.0.0-999", "1.0.0-a") == -1
    assert cmp("1.0.0-a.b", "1.0.0-a") == 1
    assert cmp("1.0.0-B", "1.0.0-a") == -1  # ASCII order
    big = "9" * 200
    assert cmp(f"1.0.0-{big}", f"1.0.0-{big}0") == -1


@pytest.mark.parametrize(
    ("text", "clean"),
    [("1.2.3", True), ("1.2.3-rc.1+b", True), ("v1.2.3", False), (" 1.2.3", False), ("1.2", False)],
)
def test_is_clean(text: str, clean: bool) -> None:
    assert is_clean(text) is clean


def test_str_round_trips() -> None:
    assert str(parse("1.2.3-rc.1+b.2")) == "1.2.3-rc.1+b.2"
    assert str(parse("v1.2.3")) == "1.2.3"
