"""Property tests: totality of flattening and evaluation, and the algebra of `inverted` / NOT_IN."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switchman.engine.constraints import Filter, evaluate_filter
from switchman.engine.filter_validation import normalize_filters, validate_filters
from switchman.engine.js import js_trim
from switchman.engine.matching import compile_filters, match_payload
from switchman.engine.operators import KNOWN_OPERATORS, SUPPORTED_OPERATORS
from switchman.engine.payload import ANY_ELEMENT, _walk, flatten_payload, to_context_value

# Keys mix plain names with ones that collide after flattening ("a.b", "0", "[0]").
keys = st.one_of(st.text(max_size=6), st.sampled_from(["a", "b", "a.b", "0", "1", "10", "[0]", "", "k"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["1.2.3", "v1.2.3", "2024-01-01T00:00:00Z", " 12 ", "0x10", "Infinity", ""]),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
payloads = st.dictionaries(keys, json_values, max_size=6)

operators = st.one_of(st.sampled_from(sorted(KNOWN_OPERATORS)), st.text(max_size=8))
SPECIAL_STRINGS = [
    "1.2.3", "1.2.3-rc.1", "2024-01-01", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59",
    "5", "1e400", "-0", " a ", "", "  ",
]  # fmt: skip
strings = st.one_of(st.text(max_size=10), st.sampled_from(SPECIAL_STRINGS))
garbage = st.one_of(json_values, st.sampled_from([float("nan"), float("inf"), object(), b"x", (1, 2)]))
raw_filters = st.one_of(
    garbage,
    st.fixed_dictionaries(
        {},
        optional={
            "operator": st.one_of(operators, garbage),
            "values": st.one_of(st.lists(st.one_of(strings, garbage), max_size=4), garbage),
            "value": st.one_of(strings, garbage),
            "inverted": st.one_of(st.booleans(), garbage),
            "caseInsensitive": st.one_of(st.booleans(), garbage),
            "extra": garbage,
        },
    ),
)
well_formed = st.builds(
    Filter,
    parameter=keys,
    operator=st.sampled_from(sorted(SUPPORTED_OPERATORS)),
    values=st.lists(strings, max_size=4).map(tuple),
    value=st.one_of(st.none(), strings),
    case_insensitive=st.booleans(),
)


def _is_container(value: object) -> bool:
    return isinstance(value, dict | list)


@given(payloads)
def test_flatten_never_raises_and_yields_only_leaves(payload: dict[str, object]) -> None:
    flat = flatten_payload(payload)
    assert all(isinstance(key, str) for key in flat)
    assert not any(_is_container(value) for value in flat.values())
    for value in flat.values():
        context = to_context_value(value)
        assert context is None or isinstance(context, str)


@given(payloads)
def test_flatten_fast_path_agrees_with_the_general_walk(payload: dict[str, object]) -> None:
    """The plain dict/list fast path gives the general walk's keys, values and order (later wins)."""
    flat = flatten_payload(payload)
    walked = dict(_walk(payload))
    assert list(flat.items()) == list(walked.items())


@given(payloads, st.dictionaries(keys, raw_filters, max_size=4))
def test_match_never_raises_on_garbage_filters(
    payload: dict[str, object], filters: dict[str, object]
) -> None:
    result = match_payload(filters, payload)
    assert result.matched == all(r.passed for r in result.filters)
    assert [r.parameter for r in result.filters] == sorted(r.parameter for r in result.filters)


@given(payloads, st.dictionaries(keys, raw_filters, max_size=4))
def test_compiled_filters_match_exactly_when_match_payload_does(
    payload: dict[str, object], filters: dict[str, object]
) -> None:
    """The worker's matcher (filters read once, payload flattened once) agrees with `match_payload`."""
    assert (
        compile_filters(filters).matches(flatten_payload(payload)) is match_payload(filters, payload).matched
    )


@given(payloads, keys, raw_filters)
def test_evaluate_never_raises(payload: dict[str, object], key: str, raw: object) -> None:
    result = evaluate_filter(Filter.from_wire(key, raw), flatten_payload(payload))
    assert isinstance(result.passed, bool)
    assert isinstance(result.reason, str) and result.reason


@given(payloads, well_formed)
def test_inverted_negates_every_supported_operator(payload: dict[str, object], f: Filter) -> None:
    flat = flatten_payload(payload)
    plain = evaluate_filter(f, flat)
    flipped = evaluate_filter(
        Filter(f.parameter, f.operator, f.values, f.value, True, f.case_insensitive), flat
    )
    assert flipped.passed is (not plain.passed)
    assert flipped.seen == plain.seen


@given(payloads, keys, st.lists(strings, max_size=4).map(tuple), st.booleans())
def test_not_in_is_the_negation_of_in(
    payload: dict[str, object], key: str, values: tuple[str, ...], case_insensitive: bool
) -> None:
    flat = flatten_payload(payload)
    is_in = evaluate_filter(Filter(key, "IN", values, case_insensitive=case_insensitive), flat)
    not_in = evaluate_filter(Filter(key, "NOT_IN", values, case_insensitive=case_insensitive), flat)
    assert not_in.passed is (not is_in.passed)


@given(payloads)
def test_every_flattened_key_is_found_by_in(payload: dict[str, object]) -> None:
    flat = flatten_payload(payload)
    for parameter, value in flat.items():
        if ANY_ELEMENT in parameter:
            continue  # in a filter key `[*]` stands for any array index (ADR 0018), not for itself
        seen = to_context_value(value)
        result = evaluate_filter(Filter(parameter, "IN", (seen or "",)), flat)
        assert result.seen == seen
        # IN drops empty filter values and trims the rest, so only non-blank trimmed values can match.
        if seen and seen == js_trim(seen):
            assert result.passed, (parameter, value, result.reason)


@given(st.one_of(garbage, st.dictionaries(keys, raw_filters, max_size=4)))
def test_validation_never_raises_and_normalises_what_it_accepts(filters: object) -> None:
    problems = validate_filters(filters, max_filters=5, max_values=25)
    if not problems:
        stored = normalize_filters(filters)
        assert validate_filters(stored, max_filters=5, max_values=25) == []
        assert normalize_filters(stored) == stored
