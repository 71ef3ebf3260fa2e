"""Payload flattening (Unleash `flattenPayload`) and context values (SDK `resolveContextValue`)."""

from __future__ import annotations

import pytest

from switchman.engine.payload import flatten_payload, to_context_value


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            {"a": 1, "b": {"c": 2, "d": [3, 4], "e": {"f": 5}}},
            {"a": 1, "b.c": 2, "b.d[0]": 3, "b.d[1]": 4, "b.e.f": 5},
            id="spec-example",
        ),
        pytest.param({"list": [{"name": "x"}, {"name": "y"}]}, {"list[0].name": "x", "list[1].name": "y"}, id="array-of-objects"),
        pytest.param({"m": [[1, 2]]}, {"m[0].0": 1, "m[0].1": 2}, id="nested-array-walked-as-object"),
        pytest.param({"m": [[[1]]]}, {"m[0].0[0]": 1}, id="array-in-array-as-object-is-array-again"),
        pytest.param({"e": {}, "l": [], "x": [{}], "y": [[]]}, {}, id="empty-containers-give-no-key"),
        pytest.param({"n": None, "t": True, "f": False, "z": 0, "s": ""}, {"n": None, "t": True, "f": False, "z": 0, "s": ""}, id="leaves"),
        pytest.param({"t": [None, "a"]}, {"t[0]": None, "t[1]": "a"}, id="null-array-element-is-a-leaf"),
        pytest.param({"a": {"b": 1}, "a.b": 2}, {"a.b": 2}, id="collision-later-top-level-wins"),
        pytest.param({"a.b": 2, "a": {"b": 1}}, {"a.b": 1}, id="collision-later-nested-wins"),
        pytest.param({"1.2": "x", "1": {"2": "y"}}, {"1.2": "x"}, id="collision-javascript-key-order-index-keys-first"),
        pytest.param({"b": 1, "10": 2, "2": 3}, {"2": 3, "10": 2, "b": 1}, id="index-keys-ascending-first"),
        # Like the JavaScript original (`parentKey ? `${parentKey}.${key}` : key`), an empty prefix adds no dot.
        pytest.param({"": {"": 1}, "e": {"": [2]}}, {"": 1, "e.[0]": 2}, id="empty-keys"),
        pytest.param({"a": {"b": {"c": {"d": "deep"}}}}, {"a.b.c.d": "deep"}, id="deep-object"),
        pytest.param({"k": [1, {"a": [2, {"b": 3}]}]}, {"k[0]": 1, "k[1].a[0]": 2, "k[1].a[1].b": 3}, id="mixed"),
    ],
)  # fmt: skip
def test_flatten_payload(payload: dict[str, object], expected: dict[str, object]) -> None:
    flat = flatten_payload(payload)
    assert flat == expected
    assert list(flat) == list(expected)


def test_flatten_is_not_limited_by_recursion_depth() -> None:
    payload: dict[str, object] = {}
    node = payload
    for _ in range(5000):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    node["leaf"] = [1]
    (key,) = flatten_payload(payload)
    assert key == "a." * 5000 + "leaf[0]"


def test_flatten_shared_subobject_appears_under_each_key() -> None:
    shared = {"k": 1}
    assert flatten_payload({"a": shared, "b": shared}) == {"a.k": 1, "b.k": 1}


def test_flatten_is_total_for_cycles_and_non_mappings() -> None:
    cyclic: dict[str, object] = {"x": 1}
    cyclic["self"] = cyclic
    assert flatten_payload(cyclic) == {"x": 1}
    assert flatten_payload([1, 2]) == {}  # type: ignore[arg-type]
    assert flatten_payload({1: "a", None: {"b": 2}}) == {"1": "a", "null.b": 2}  # type: ignore[dict-item]


def test_flatten_of_other_containers_equals_that_of_their_json_twins() -> None:
    """Tuples, mapping types other than dict and deep trees take the general walk, with the same result."""
    from collections import OrderedDict
    from types import MappingProxyType

    plain = {"b": [1, [2, {"c": 3}]], "2": "x", "a": {"1": True, "z": None}}
    twin = OrderedDict(
        [
            ("b", (1, (2, MappingProxyType({"c": 3})))),
            ("2", "x"),
            ("a", OrderedDict([("1", True), ("z", None)])),
        ]
    )
    assert list(flatten_payload(twin).items()) == list(flatten_payload(plain).items())
    assert list(flatten_payload(plain)) == ["2", "b[0]", "b[1].0", "b[1].1.c", "a.1", "a.z"]
    deep: dict[str, object] = {"k": 1}
    for _ in range(100):
        deep = {"n": [deep]}
    assert flatten_payload(deep) == {"n[0]." * 100 + "k": 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("Firing", "Firing"),
        (" padded ", " padded "),
        ("", ""),
        (0, "0"),
        (False, "false"),
        (True, "true"),
        (12.0, "12"),
        (7.5, "7.5"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (float("inf"), "Infinity"),
        ({"a": 1}, "[object Object]"),
        (["a", "b"], "a,b"),
    ],
)
def test_to_context_value(value: object, expected: str | None) -> None:
    assert to_context_value(value) == expected
