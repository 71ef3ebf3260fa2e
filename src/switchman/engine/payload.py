"""Signal payload → flat key/value map → context values, as Unleash's filters see them.

`flatten_payload` reproduces Unleash's `flattenPayload` (spec §5.5.1) and `to_context_value`
reproduces the SDK's `resolveContextValue` (spec §5.5.2, choice Q-15: `""`, `0` and `false`
are present values).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any, Union

from switchman.engine.js import js_string

# A canonical JavaScript array index ("0", "7", not "07" or "-1"), below 2**32 - 1.
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]{0,9}", re.ASCII)
_MAX_ARRAY_INDEX = 2**32 - 2

_Container = Union[Mapping[Any, object], list[object], tuple[object, ...]]  # noqa: UP007


def _is_array_index(key: str) -> bool:
    return _ARRAY_INDEX.fullmatch(key) is not None and int(key) <= _MAX_ARRAY_INDEX


def _js_own_keys(obj: Mapping[Any, object]) -> list[tuple[str, object]]:
    """Entries in JavaScript's own-property order: array-index keys ascending, then the rest
    in insertion order. This decides which entry wins when flattened keys collide."""
    entries = [(key if isinstance(key, str) else js_string(key), value) for key, value in obj.items()]
    indexed = sorted((entry for entry in entries if _is_array_index(entry[0])), key=lambda e: int(e[0]))
    named = [entry for entry in entries if not _is_array_index(entry[0])]
    return indexed + named


def _children(container: _Container) -> list[tuple[str, object]]:
    if isinstance(container, Mapping):
        return _js_own_keys(container)
    return [(str(index), item) for index, item in enumerate(container)]


def _is_container(value: object) -> bool:
    return isinstance(value, Mapping | list | tuple)


def flatten_payload(payload: Mapping[str, object]) -> dict[str, object]:
    """Flatten a JSON payload the way Unleash's `flattenPayload` does.

    - nested objects join keys with `.`: `{"a": {"b": 1}}` → `{"a.b": 1}`;
    - array elements get `[i]`: `{"t": ["x"]}` → `{"t[0]": "x"}`; object elements recurse
      (`list[0].name`); an array nested in an array is walked as an object (`m[0].0`);
    - strings, numbers, booleans and null are leaves; empty objects and arrays yield nothing;
    - on key collisions the entry visited later wins (JavaScript key order).

    Payload depth is not limited by Python's recursion limit. Never raises for JSON-like input; a
    non-mapping argument yields `{}`.
    """
    if not isinstance(payload, Mapping):
        return {}
    flat: dict[str, object] = {}
    try:
        _flatten_plain(payload, "", False, flat, 0)
    except _NotPlain:
        flat = dict(_walk(payload))
    return flat


class _NotPlain(Exception):
    """The payload is not what `orjson.loads` gives (a `dict`/`list` tree of bounded depth): walk it
    with the general algorithm instead."""


# Deeper trees (and cyclic ones, which only Python callers can build) take the iterative walk.
_PLAIN_DEPTH = 64
_DIGITS = frozenset("0123456789")
_JSON_LEAVES = frozenset({str, int, float, bool, type(None)})


def _flatten_plain(
    container: object, prefix: str, is_array: bool, flat: dict[str, object], depth: int
) -> None:
    """The fast path of `flatten_payload` for a tree of plain `dict`s and `list`s, as a signal's stored
    payload always is: the same visiting order and keys as `_walk`, without its per-node frames. A dict
    whose keys are all strings not starting with a digit keeps insertion order (no key is an array
    index); any other dict is ordered by `_js_own_keys`."""
    if depth > _PLAIN_DEPTH:
        raise _NotPlain
    if type(container) is dict:
        entries: Iterable[tuple[Any, object]] = container.items()
        for key in container:
            if type(key) is not str or (key and key[0] in _DIGITS):
                entries = _js_own_keys(container)
                break
        for key, value in entries:
            path = f"{prefix}.{key}" if prefix else key
            kind = type(value)
            if kind in _JSON_LEAVES:
                flat[path] = value
            elif kind is dict:
                _flatten_plain(value, path, False, flat, depth + 1)
            elif kind is list:
                _flatten_plain(value, path, True, flat, depth + 1)
            elif isinstance(value, Mapping | list | tuple):
                raise _NotPlain
            else:
                flat[path] = value
        return
    if type(container) is not list:
        raise _NotPlain
    for index, value in enumerate(container):
        path = f"{prefix}[{index}]" if is_array else f"{prefix}.{index}" if prefix else str(index)
        kind = type(value)
        if kind in _JSON_LEAVES:
            flat[path] = value
        elif kind is dict:
            _flatten_plain(value, path, False, flat, depth + 1)
        elif kind is list:
            # A list directly inside a list walked as an array is walked as an object (`m[0].0`).
            _flatten_plain(value, path, not is_array, flat, depth + 1)
        elif isinstance(value, Mapping | list | tuple):
            raise _NotPlain
        else:
            flat[path] = value


def _walk(payload: Mapping[Any, object]) -> Iterator[tuple[str, object]]:
    """Depth-first (key, leaf) pairs in the order `flattenPayload` visits them."""
    # A frame walks one container: its key prefix, whether its children are array elements
    # (`[i]`) or properties (`.k`), and its remaining children reversed so pop() gives the next.
    stack: list[_Frame] = [_Frame("", False, payload)]
    open_containers = {id(payload)}
    while stack:
        frame = stack[-1]
        if not frame.pending:
            stack.pop()
            open_containers.discard(id(frame.container))
            continue
        key, value = frame.pending.pop()
        if frame.is_array:
            path = f"{frame.prefix}[{key}]"
        else:
            path = f"{frame.prefix}.{key}" if frame.prefix else key
        if not _is_container(value):
            yield path, value
        elif id(value) not in open_containers:
            # Arrays directly inside arrays are walked as objects (their indices become `.i`).
            # A cycle cannot come from JSON; a cyclic reference is skipped rather than looped on.
            as_array = isinstance(value, list | tuple) and not frame.is_array
            stack.append(_Frame(path, as_array, value))  # type: ignore[arg-type]
            open_containers.add(id(value))


class _Frame:
    __slots__ = ("container", "is_array", "pending", "prefix")

    def __init__(self, prefix: str, is_array: bool, container: _Container) -> None:
        self.prefix = prefix
        self.is_array = is_array
        self.container = container
        self.pending = _children(container)[::-1]


# In a filter key, `[*]` stands for any array index (switchman's, ADR 0018): `alerts[*].labels.severity`.
ANY_ELEMENT = "[*]"
_ANY_INDEX = r"\[(?:0|[1-9][0-9]*)\]"


def any_element_pattern(key: str) -> re.Pattern[str] | None:
    """The flattened keys a filter key with `[*]` stands for, as a pattern to `fullmatch`; None when the
    key has no `[*]` (it names one flattened key). Nested `[*]` are independent: `a[*].b[*]` matches
    `a[2].b[0]`. Arrays inside arrays flatten as `m[0].0`, so only the outer one can be `[*]`."""
    if ANY_ELEMENT not in key:
        return None
    return _any_element_pattern(key)


@functools.lru_cache(maxsize=1024)
def _any_element_pattern(key: str) -> re.Pattern[str]:
    return re.compile(re.escape(key).replace(re.escape(ANY_ELEMENT), _ANY_INDEX))


def key_occurs(key: str, keys: Collection[str]) -> bool:
    """Whether filter key `key` names one of the flattened `keys` (any of them, for a `[*]` key)."""
    pattern = any_element_pattern(key)
    if pattern is None:
        return key in keys
    return any(pattern.fullmatch(candidate) for candidate in keys)


def to_context_value(value: object) -> str | None:
    """The string an Unleash SDK compares for a flattened payload value, or None when absent.

    None (missing key or JSON null) → None; everything else → JavaScript `String(value)`:
    `True` → "true", `12.0` → "12", `1e21` → "1e+21", strings unchanged (not trimmed).
    """
    if value is None:
        return None
    return js_string(value)
