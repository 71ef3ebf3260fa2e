"""Evaluation of one filter (an Unleash constraint) against a flattened signal payload.

Semantics are the Unleash SDK's constraint rules (spec §5.5.2 to §5.5.3), with these switchman
choices (docs/adr/0003-filter-semantics.md):
- context values are JavaScript `String()` of the payload value; `""`, `0`, `false` are present;
- `caseInsensitive` is ignored by `IN` / `NOT_IN` (as in the node SDK);
- `DATE_AFTER` / `DATE_BEFORE` compare the payload value at the filter's key, not the clock;
- `IN_CIDR` and unknown operators never match, and `inverted` is not applied to them;
- `inverted` negates every other result, including results for an absent key.

And switchman's additions (docs/adr/0018-matching-what-senders-send.md):
- `REGEX` is an RE2 search (client specification suite 21); an unusable pattern never matches, inverted
  or not;
- `TOKEN_IN` splits the value at commas and white space and holds when a part is one of `values`;
- `[*]` in a key stands for any array index: the filter holds when it holds for at least one element,
  except `NOT_IN`, which holds when no element is in `values`; `inverted` negates that whole verdict.

Each operator is a small function in a table; none of them raises on any input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from switchman.engine import regex, semver
from switchman.engine.filter_validation import normalize_filters, validate_filters
from switchman.engine.js import js_number, js_number_to_string, js_string, js_trim
from switchman.engine.operators import KNOWN_OPERATORS, UNSUPPORTED_OPERATORS, Operator
from switchman.engine.payload import any_element_pattern, to_context_value
from switchman.engine.problems import Limit, Problem
from switchman.engine.timestamps import parse_timestamp

__all__ = [
    "KNOWN_OPERATORS",
    "Filter",
    "FilterResult",
    "Limit",
    "Problem",
    "evaluate_filter",
    "normalize_filters",
    "validate_filters",
]

_SHOWN_TEXT_LENGTH = 60
_SHOWN_VALUES = 5


@dataclass(frozen=True)
class Filter:
    """One filter of an action set: `parameter` is the flattened payload key it reads."""

    parameter: str
    operator: str
    values: tuple[str, ...] = ()
    value: str | None = None
    inverted: bool = False
    case_insensitive: bool = False
    # Why the stored wire form could not be read; a malformed filter never matches.
    malformed: str | None = None

    @classmethod
    def from_wire(cls, parameter: str, raw: object) -> Filter:
        """Read a filter from its wire form `{operator, values?, value?, inverted?, caseInsensitive?}`.

        Tolerant: never raises. Numbers in `values`/`value` become their JavaScript string form
        and null entries of `values` are dropped (as on write); any other unusable field yields
        a filter whose `malformed` says why, and which never matches.
        """
        if not isinstance(raw, Mapping):
            return cls(parameter, "", malformed="filter is not an object")
        operator = raw.get("operator")
        values = _wire_values(raw.get("values"))
        value = _wire_value(raw.get("value"))
        inverted = raw.get("inverted")
        case_insensitive = raw.get("caseInsensitive")
        problems = [
            message
            for message, bad in (
                ("operator is not a string", not isinstance(operator, str)),
                ("values is not a list of strings", values is None),
                ("value is not a string", value is _BAD),
                ("inverted is not a boolean", not isinstance(inverted, bool | None)),
                ("caseInsensitive is not a boolean", not isinstance(case_insensitive, bool | None)),
            )
            if bad
        ]
        return cls(
            parameter=parameter,
            operator=operator if isinstance(operator, str) else "",
            values=values or (),
            value=value if isinstance(value, str) else None,
            inverted=inverted is True,
            case_insensitive=case_insensitive is True,
            malformed="; ".join(problems) or None,
        )


_BAD = object()


def _wire_values(raw: object) -> tuple[str, ...] | None:
    """The `values` list as strings; None when it is not a list of strings/numbers/nulls."""
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        return None
    values: list[str] = []
    for item in raw:
        if item is None:
            continue
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            return None
        values.append(js_string(item))
    return tuple(values)


def _wire_value(raw: object) -> object:
    """The `value` as a string, None when absent, `_BAD` when of an unusable type."""
    if raw is None or isinstance(raw, str):
        return raw
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return js_string(raw)
    return _BAD


@dataclass(frozen=True)
class FilterResult:
    """The outcome of one filter, with enough detail to explain it to a user."""

    parameter: str
    operator: str
    passed: bool
    seen: str | None  # the context value the operator looked at; None when the key is absent
    reason: str  # short human explanation


@dataclass(frozen=True)
class _Outcome:
    """An operator's verdict before `inverted` is applied; `final` verdicts are not inverted (an unusable
    filter never matches)."""

    holds: bool
    reason: str
    final: bool = False


_Evaluator = Callable[[Filter, str | None], _Outcome]


def evaluate_filter(f: Filter, flat: Mapping[str, object]) -> FilterResult:
    """Evaluate `f` against a payload flattened by `flatten_payload`. Never raises."""
    elements = any_element_pattern(f.parameter)
    if elements is not None:
        seen, outcome = _any_element(f, flat, elements)
    else:
        try:
            seen = to_context_value(flat.get(f.parameter))
        except Exception:  # a hostile Mapping; JSON-derived ones cannot fail here
            seen = None
        outcome = _verdict(f, seen)
    if not f.inverted or outcome.final:
        return FilterResult(f.parameter, f.operator, outcome.holds, seen, outcome.reason)
    verdict = "passes" if not outcome.holds else "fails"
    return FilterResult(
        f.parameter, f.operator, not outcome.holds, seen, f"{outcome.reason}; inverted: {verdict}"
    )


def _verdict(f: Filter, seen: str | None) -> _Outcome:
    """The operator's verdict on one context value, before `inverted`."""
    if f.malformed is not None:
        return _Outcome(False, f"malformed filter ({f.malformed}) never matches", final=True)
    evaluator = _EVALUATORS.get(f.operator)
    if evaluator is None:
        kind = "unsupported" if f.operator in UNSUPPORTED_OPERATORS else "unknown"
        return _Outcome(
            False, f"{kind} operator {_show(f.operator)} never matches (inverted not applied)", True
        )
    return evaluator(f, seen)


def _any_element(
    f: Filter, flat: Mapping[str, object], elements: re.Pattern[str]
) -> tuple[str | None, _Outcome]:
    """The verdict of a `[*]` filter: the operator holds for some element (`NOT_IN`: for none), with the
    value it was decided on (the first element that holds; None when none does)."""
    negated = f.operator == Operator.NOT_IN
    probe = replace(f, operator=Operator.IN) if negated else f
    checked = 0
    first: tuple[str, _Outcome] | None = None
    try:
        keys = [key for key in flat if isinstance(key, str) and elements.fullmatch(key)]
    except Exception:  # a hostile Mapping; JSON-derived ones cannot fail here
        keys = []
    for key in keys:
        seen = to_context_value(flat.get(key))
        outcome = _verdict(probe, seen)
        if outcome.final:
            return seen, outcome
        checked += 1
        if outcome.holds:
            if negated:
                return seen, _Outcome(False, f"{key}: {outcome.reason}, so NOT_IN fails")
            return seen, _Outcome(True, f"{key}: {outcome.reason}")
        if first is None:
            first = (key, outcome)
    if first is None:
        absent = _verdict(probe, None)
        if absent.final:
            return None, absent
        return None, _Outcome(
            negated, f"no key matches {_show(f.parameter)}: {f.operator} {'holds' if negated else 'fails'}"
        )
    example = f"{first[0]}: {first[1].reason}"
    if negated:
        return None, _Outcome(True, f"no element of {checked} is in the list ({example}, …)")
    return None, _Outcome(False, f"no element of {checked} holds ({example}, …)")


# --- presentation -------------------------------------------------------------------------


def _show(text: str) -> str:
    if len(text) > _SHOWN_TEXT_LENGTH:
        text = text[: _SHOWN_TEXT_LENGTH - 1] + "…"
    return repr(text)


def _show_list(values: tuple[str, ...]) -> str:
    shown = ", ".join(_show(value) for value in values[:_SHOWN_VALUES])
    more = f", … ({len(values) - _SHOWN_VALUES} more)" if len(values) > _SHOWN_VALUES else ""
    return f"[{shown}{more}]"


def _absent(operator: str, holds: bool) -> _Outcome:
    return _Outcome(holds, f"key absent: {operator} {'holds' if holds else 'fails'}")


# --- operators ----------------------------------------------------------------------------


def _clean_values(values: tuple[str, ...]) -> tuple[str, ...]:
    """The SDK's `cleanValues`: drop empty entries, then trim the rest (context is not trimmed)."""
    return tuple(js_trim(value) for value in values if value)


def _in(f: Filter, seen: str | None) -> _Outcome:
    holds_if_found = f.operator == Operator.IN
    if seen is None:
        return _absent(f.operator, not holds_if_found)
    values = _clean_values(f.values)
    found = seen in values
    relation = "is in" if found else "is not in"
    note = " (caseInsensitive is ignored by IN/NOT_IN)" if f.case_insensitive else ""
    return _Outcome(found == holds_if_found, f"value {_show(seen)} {relation} {_show_list(values)}{note}")


_STRING_TESTS: dict[str, tuple[str, Callable[[str, str], bool]]] = {
    Operator.STR_STARTS_WITH: ("starts with", str.startswith),
    Operator.STR_ENDS_WITH: ("ends with", str.endswith),
    Operator.STR_CONTAINS: ("contains", str.__contains__),
}


def _string(f: Filter, seen: str | None) -> _Outcome:
    if seen is None:
        return _absent(f.operator, False)
    verb, test = _STRING_TESTS[f.operator]
    values = _clean_values(f.values)
    subject = seen
    if f.case_insensitive:
        subject, values = seen.lower(), tuple(value.lower() for value in values)
    hit = next((value for value in values if test(subject, value)), None)
    case = " ignoring case" if f.case_insensitive else ""
    if hit is None:
        return _Outcome(False, f"value {_show(seen)} {verb} none of {_show_list(values)}{case}")
    return _Outcome(True, f"value {_show(seen)} {verb} {_show(hit)}{case}")


_NUMBER_TESTS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    Operator.NUM_EQ: ("==", lambda actual, target: actual == target),
    Operator.NUM_GT: (">", lambda actual, target: actual > target),
    Operator.NUM_GTE: (">=", lambda actual, target: actual >= target),
    Operator.NUM_LT: ("<", lambda actual, target: actual < target),
    Operator.NUM_LTE: ("<=", lambda actual, target: actual <= target),
}


def _number(f: Filter, seen: str | None) -> _Outcome:
    if seen is None:
        return _absent(f.operator, False)
    actual = js_number(seen)
    if math.isnan(actual):
        return _Outcome(False, f"{_show(seen)} is not a number")
    target = math.nan if f.value is None else js_number(f.value)
    if math.isnan(target):
        return _Outcome(False, f"filter value {_show(f.value or '')} is not a number")
    symbol, test = _NUMBER_TESTS[f.operator]
    holds = test(actual, target)
    relation = symbol if holds else f"is not {symbol}"
    return _Outcome(holds, f"{js_number_to_string(actual)} {relation} {js_number_to_string(target)}")


_SEMVER_TESTS: dict[str, tuple[str, Callable[[int], bool]]] = {
    Operator.SEMVER_EQ: ("==", lambda order: order == 0),
    Operator.SEMVER_GT: (">", lambda order: order > 0),
    Operator.SEMVER_GTE: (">=", lambda order: order >= 0),
    Operator.SEMVER_LT: ("<", lambda order: order < 0),
    Operator.SEMVER_LTE: ("<=", lambda order: order <= 0),
}


def _semver(f: Filter, seen: str | None) -> _Outcome:
    if seen is None:
        return _absent(f.operator, False)
    actual = semver.parse(seen)
    # The SDK refuses a leading "v" in the context value although node-semver would accept it.
    if actual is None or seen.startswith("v"):
        return _Outcome(False, f"{_show(seen)} is not a valid semantic version")
    # The filter's own value goes through node-semver as is ("v1.2.3" parses there).
    target = None if f.value is None else semver.parse(f.value)
    if target is None:
        return _Outcome(False, f"filter value {_show(f.value or '')} is not a valid semantic version")
    symbol, test = _SEMVER_TESTS[f.operator]
    holds = test(semver.compare(actual, target))
    relation = symbol if holds else f"is not {symbol}"
    return _Outcome(holds, f"{actual} {relation} {target}")


def _date(f: Filter, seen: str | None) -> _Outcome:
    if seen is None:
        return _absent(f.operator, False)
    actual = parse_timestamp(seen)
    if actual is None:
        return _Outcome(False, f"{_show(seen)} is not a date-time")
    target = parse_timestamp(f.value)
    if target is None:
        return _Outcome(False, f"filter value {_show(f.value or '')} is not a date-time")
    after = f.operator == Operator.DATE_AFTER
    # Aware datetimes compare by instant; Python cannot overflow here, even at the range ends.
    holds = actual > target if after else actual < target
    relation = ("is " if holds else "is not ") + ("after" if after else "before")
    return _Outcome(holds, f"{_show(seen)} {relation} {_show(f.value or '')}")


def _regex(f: Filter, seen: str | None) -> _Outcome:
    if seen is None:
        return _absent(f.operator, False)
    pattern = f.value or ""
    found = regex.search(pattern, seen, case_insensitive=f.case_insensitive)
    if found is None:
        return _Outcome(
            False, f"pattern {_show(pattern)} is not a usable RE2 expression: never matches", True
        )
    case = " ignoring case" if f.case_insensitive else ""
    relation = "matches" if found else "does not match"
    return _Outcome(found, f"value {_show(seen)} {relation} {_show(pattern)}{case}")


_TOKEN_SEPARATORS = re.compile(r"[,\s]+")


def _token_in(f: Filter, seen: str | None) -> _Outcome:
    if seen is None:
        return _absent(f.operator, False)
    tokens = tuple(token for token in _TOKEN_SEPARATORS.split(seen) if token)
    values = _clean_values(f.values)
    if f.case_insensitive:
        wanted = {value.casefold(): value for value in values}
        hit = next((token for token in tokens if token.casefold() in wanted), None)
    else:
        hit = next((token for token in tokens if token in values), None)
    case = " ignoring case" if f.case_insensitive else ""
    if hit is None:
        return _Outcome(
            False, f"no part of {_show(seen)} {_show_list(tokens)} is in {_show_list(values)}{case}"
        )
    return _Outcome(True, f"part {_show(hit)} of {_show(seen)} is in {_show_list(values)}{case}")


_EVALUATORS: dict[str, _Evaluator] = {
    Operator.IN: _in,
    Operator.NOT_IN: _in,
    **dict.fromkeys(_STRING_TESTS, _string),
    **dict.fromkeys(_NUMBER_TESTS, _number),
    **dict.fromkeys(_SEMVER_TESTS, _semver),
    Operator.DATE_AFTER: _date,
    Operator.DATE_BEFORE: _date,
    Operator.REGEX: _regex,
    Operator.TOKEN_IN: _token_in,
}
