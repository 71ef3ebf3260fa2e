"""JavaScript conversions: expected values were produced with Node.js 20 (`String(x)`, `Number(s)`)."""

from __future__ import annotations

import math

import pytest

from switchman.engine.js import js_number, js_number_to_string, js_string, js_trim


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (12.0, "12"),
        (12.5, "12.5"),
        (-3.0, "-3"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (-1e-7, "-1e-7"),
        (0.000001, "0.000001"),
        (1.5e-10, "1.5e-10"),
        (123e-20, "1.23e-18"),
        (1.2345e25, "1.2345e+25"),
        (123456789012345680000.0, "123456789012345680000"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1 / 3, "0.3333333333333333"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (2.0**53, "9007199254740992"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (math.nan, "NaN"),
    ],
)
def test_number_to_string_matches_javascript(value: float, expected: str) -> None:
    assert js_number_to_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-3, "-3"),
        (12, "12"),
        (10**30, "1e+30"),  # JSON.parse rounds big integers to doubles
        (2**53 + 1, "9007199254740992"),
        (10**400, "Infinity"),
        (-(10**400), "-Infinity"),
        ("  as is ", "  as is "),
        ("", ""),
        (None, "null"),
        ({"a": 1}, "[object Object]"),
        ({}, "[object Object]"),
        ([1, [2, 3], None, {"a": 1}, True], "1,2,3,,[object Object],true"),
        ([[], []], ","),
        ([], ""),
        ((1, 2), "1,2"),
    ],
)
def test_string_matches_javascript(value: object, expected: str) -> None:
    assert js_string(value) == expected


def test_string_of_cyclic_array_is_total() -> None:
    cyclic: list[object] = [1]
    cyclic.append(cyclic)
    assert js_string(cyclic) == "1,"


def test_string_of_arbitrary_object_falls_back_to_str() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert js_string(Broken()) == "[object Broken]"
    assert js_string(b"x") == "b'x'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0.0),
        (" ", 0.0),
        (" 12 ", 12.0),
        ("\u00a012\ufeff", 12.0),
        ("\u2028 1 \u2029", 1.0),
        ("0x1A", 26.0),
        ("0X1a", 26.0),
        ("0b101", 5.0),
        ("0o17", 15.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("+5", 5.0),
        ("-5", -5.0),
        ("+.5e-3", 0.0005),
        ("00012", 12.0),
        ("12.0", 12.0),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ("1e999", math.inf),
        ("0x" + "f" * 300, math.inf),
    ],
)
def test_number_parses_like_javascript(text: str, expected: float) -> None:
    assert js_number(text) == expected


@pytest.mark.parametrize(
    "text",
    ["-0x1A", "1_000", "infinity", "inf", "NaN", "nan", "1e", "e1", "0x", "1.2.3", "12abc", "1,5", "\u180e1",
     "\u0085 1", "\u00b2", "\u0661\u0662", "0x1.8", "--1", "+-1", "1 2"],
)  # fmt: skip
def test_number_rejects_what_javascript_rejects(text: str) -> None:
    assert math.isnan(js_number(text))


def test_trim_uses_the_javascript_whitespace_set() -> None:
    assert js_trim("\ufeff\u3000 x \u00a0\t") == "x"
    assert js_trim("\u0085x\x1c") == "\u0085x\x1c"  # Python's strip() would remove these
    assert js_trim("\u200bx") == "\u200bx"
