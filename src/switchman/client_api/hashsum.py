"""A port of the npm package `hash-sum` 1.0.2, which Unleash uses for the client API's `queryHash`.

With it, switchman's ETag for a given query (`"<queryHash>:<revision>:v1"`) has Unleash's form and the
same hash part. Only the JSON-like values a client query holds are supported: dicts, lists, str, bool,
int, None and `UNDEFINED` (JavaScript's `undefined`: Unleash's query object carries every key, absent
ones as undefined, and they count in the hash). JavaScript's number semantics are reproduced where they matter: `|= 0` and `<<` work on
32-bit signed integers, everything else on doubles.
"""

from __future__ import annotations

from typing import Any


class _Undefined:
    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()


def _to_int32(value: float) -> int:
    number = int(value) & 0xFFFFFFFF
    return number - 0x1_0000_0000 if number >= 0x8000_0000 else number


def _fold(hash_: float, text: str) -> float:
    if not text:
        return hash_
    for char in text:
        for unit in _utf16_units(char):
            shifted = _to_int32(_to_int32(hash_) << 5)
            hash_ = _to_int32((shifted - hash_) + unit)
    return hash_ * -2 if hash_ < 0 else hash_


def _utf16_units(char: str) -> list[int]:
    code = ord(char)
    if code < 0x10000:
        return [code]
    code -= 0x10000
    return [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]


def _type_tag(value: Any) -> tuple[str, str]:
    """(Object.prototype.toString.call(value), typeof value)."""
    if value is UNDEFINED:
        return "[object Undefined]", "undefined"
    if value is None:
        return "[object Null]", "object"
    if isinstance(value, bool):
        return "[object Boolean]", "boolean"
    if isinstance(value, int | float):
        return "[object Number]", "number"
    if isinstance(value, str):
        return "[object String]", "string"
    if isinstance(value, list):
        return "[object Array]", "object"
    if isinstance(value, dict):
        return "[object Object]", "object"
    raise TypeError(f"hash_sum does not support {type(value).__name__}")


def _js_string(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join("" if item is None or item is UNDEFINED else _js_string(item) for item in value)
    return "[object Object]"


def _fold_value(hash_: float, value: Any, key: str) -> float:
    tag, typeof = _type_tag(value)
    hash_ = _fold(_fold(_fold(hash_, key), tag), typeof)
    if value is None:
        return _fold(hash_, "null")
    if value is UNDEFINED:
        return _fold(hash_, "undefined")
    if isinstance(value, dict | list):
        keys = sorted(value) if isinstance(value, dict) else sorted(str(i) for i in range(len(value)))
        for child_key in keys:
            child = value[child_key] if isinstance(value, dict) else value[int(child_key)]
            hash_ = _fold_value(hash_, child, child_key)
        # valueOf() of an object is the object itself; String() of it is folded last.
        return _fold(hash_, _js_string(value))
    return _fold(hash_, _js_string(value))


def hash_sum(value: Any) -> str:
    """`require('hash-sum')(value)`: 8+ lowercase hex characters."""
    result = int(_fold_value(0, value, ""))
    return format(result, "x").rjust(8, "0")
