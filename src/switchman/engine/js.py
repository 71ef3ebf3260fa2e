"""The few JavaScript conversions that Unleash's constraint evaluator relies on.

Unleash evaluates constraints in JavaScript, so a compatible evaluator must reproduce
`String(x)`, `Number(s)` and `s.trim()` exactly, not their Python look-alikes
(`str(True)` is "True", `float("nan")` parses, `str.strip()` trims a different set).
Every function here is total: it never raises.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

# ECMAScript WhiteSpace + LineTerminator (what String.prototype.trim and Number() skip).
# Differs from Python's str.isspace(): includes U+FEFF, excludes U+001C..U+001F and U+0085.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

_DECIMAL_LITERAL = re.compile(
    r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)",
    re.ASCII,
)
_NON_DECIMAL_LITERAL = re.compile(r"0(?:([xX])[0-9a-fA-F]+|([oO])[0-7]+|([bB])[01]+)", re.ASCII)
_RADIX_BY_PREFIX = {"x": 16, "o": 8, "b": 2}


def js_trim(text: str) -> str:
    """`String.prototype.trim()`."""
    return text.strip(JS_WHITESPACE)


def _int_to_double(value: int) -> float:
    """Round an integer to the nearest double, as JavaScript does; overflow becomes ±Infinity."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def js_number(text: str) -> float:
    """`Number(text)` for a string: NaN when JavaScript would give NaN.

    Note the JavaScript rules this keeps: surrounding whitespace is ignored, a blank string is 0,
    `Infinity` and the unsigned `0x`/`0o`/`0b` prefixes are accepted, `nan`/`inf`/`1_000` are not.
    """
    body = js_trim(text)
    if body == "":
        return 0.0
    if _DECIMAL_LITERAL.fullmatch(body):
        return float(body.replace("Infinity", "inf"))
    prefixed = _NON_DECIMAL_LITERAL.fullmatch(body)
    if prefixed:
        radix = _RADIX_BY_PREFIX[body[1].lower()]
        return _int_to_double(int(body[2:], radix))
    return math.nan


def js_number_to_string(value: float) -> str:
    """`Number.prototype.toString()` (radix 10): shortest round-trip digits, JavaScript layout.

    `12.0` → "12", `1e21` → "1e+21", `1e-7` → "1e-7", `0.000001` → "0.000001", `-0` → "0".
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    digits, point = _shortest_digits(abs(value))
    return sign + _layout(digits, point)


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip significant digits of a positive finite double and the decimal point
    position `n` such that value = 0.<digits> * 10**n (ECMAScript Number::toString's k and n)."""
    mantissa, _, exponent_text = repr(value).partition("e")
    exponent = int(exponent_text) if exponent_text else 0
    integer_part, _, fraction_part = mantissa.partition(".")
    all_digits = integer_part + fraction_part
    significant = all_digits.lstrip("0")
    leading_zeros = len(all_digits) - len(significant)
    point = len(integer_part) + exponent - leading_zeros
    return significant.rstrip("0"), point


def _layout(digits: str, point: int) -> str:
    count = len(digits)
    if count <= point <= 21:
        return digits + "0" * (point - count)
    if 0 < point <= 21:
        return f"{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return "0." + "0" * (-point) + digits
    exponent = point - 1
    exponent_text = f"e+{exponent}" if exponent >= 0 else f"e-{-exponent}"
    if count == 1:
        return digits + exponent_text
    return f"{digits[0]}.{digits[1:]}{exponent_text}"


def js_string(value: object) -> str:
    """`String(value)` for JSON-like values; total for anything else.

    None renders "null" (callers that treat null as absent must check first); arrays join their
    elements with "," (null elements and cyclic references render empty); mappings render
    "[object Object]"; other Python objects fall back to `str()`.
    """
    return _js_string(value, set())


def _js_string(value: object, open_arrays: set[int]) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return js_number_to_string(_int_to_double(value))
    if isinstance(value, float):
        return js_number_to_string(value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, list | tuple):
        return _array_to_string(value, open_arrays)
    try:
        return str(value)
    except Exception:
        return f"[object {type(value).__name__}]"


def _array_to_string(items: list[object] | tuple[object, ...], open_arrays: set[int]) -> str:
    """`Array.prototype.join(",")`; like V8, a cyclic reference renders as the empty string.

    Recursion depth is bounded by the array nesting of the value itself; flattened payload
    values are never arrays, so this path only serves direct callers.
    """
    if id(items) in open_arrays:
        return ""
    open_arrays.add(id(items))
    try:
        return ",".join("" if item is None else _js_string(item, open_arrays) for item in items)
    except RecursionError:
        return ""
    finally:
        open_arrays.discard(id(items))
