"""Write-time validation and normalisation of an action set's filters (`match.payload`).

Stricter than evaluation (which never refuses anything): a stored filter must be well formed,
use a supported operator and carry a value its operator can use. Rules, per filter key:
- the key is a non-empty string; the filter an object with only `operator`, `values`, `value`,
  `inverted`, `caseInsensitive`;
- `operator` is a supported operator (`IN_CIDR` is refused; `DATE_*` accepted);
- `IN`, `NOT_IN`, `STR_*`, `TOKEN_IN` need a `values` array of non-blank strings (numbers are accepted and
  stored as their JavaScript string form), at most `max_values` of them; an empty array is legal,
  as in Unleash (IN [] never holds, NOT_IN [] always holds; `filter_warnings` says so);
- `NUM_*`, `SEMVER_*`, `DATE_*`, `REGEX` need `value`: a number (JavaScript `Number()` syntax, not
  blank), a SemVer 2.0 version without `v`, a date-time, or a non-blank RE2 pattern of at most
  `regex.MAX_PATTERN_LENGTH` characters respectively;
- the field the operator does not use may be sent (clients copy constraints verbatim) but must
  be well typed; normalisation drops it, as Unleash's UI does;
- `inverted` and `caseInsensitive` are booleans or null.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from switchman.engine import regex, semver
from switchman.engine.js import js_number, js_string, js_trim
from switchman.engine.operators import (
    DATE_OPERATORS,
    LIST_OPERATORS,
    NUMBER_OPERATORS,
    SEMVER_OPERATORS,
    SUPPORTED_OPERATORS,
    UNSUPPORTED_OPERATORS,
    Operator,
)
from switchman.engine.problems import Limit, Problem, pointer
from switchman.engine.timestamps import parse_timestamp

FILTERS_PATH = "/match/payload"
OPERATORS_DOC = "the `match.payload` description at /docs, or docs/filters.md"
_FILTER_FIELDS = ("operator", "values", "value", "inverted", "caseInsensitive")
_FLAGS = ("inverted", "caseInsensitive")


class InvalidFiltersError(ValueError):
    """Raised by `normalize_filters` for input that `validate_filters` would refuse."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{problem.path}: {problem.message}" for problem in problems))
        self.problems = problems


def validate_filters(
    payload_filters: object, *, max_filters: int | None, max_values: int | None, path: str = FILTERS_PATH
) -> list[Problem]:
    """Every problem with `payload_filters` (the `match.payload` object), in input order.

    Exceeded limits (`max_filters` keys, `max_values` entries in one `values`; None = no limit)
    are reported as problems whose `limit` is set; everything else is invalid data.
    An empty list means the filters are acceptable.
    """
    if not isinstance(payload_filters, Mapping):
        return [Problem(path, "must be an object")]
    problems: list[Problem] = []
    if max_filters is not None and len(payload_filters) > max_filters:
        problems.append(
            Problem(
                path,
                f"at most {max_filters} filters are allowed; got {len(payload_filters)}",
                Limit("filter", max_filters),
            )
        )
    for key, raw in payload_filters.items():
        problems.extend(_filter_problems(key, raw, path, max_values))
    return problems


def normalize_filters(payload_filters: object) -> dict[str, dict[str, object]]:
    """The canonical wire form to store for filters that passed `validate_filters`.

    Numbers in `values`/`value` become JavaScript strings (`5` → "5", `1.0` → "1"); the field
    the operator does not read is dropped; `inverted`/`caseInsensitive` are kept only when true.
    Raises `InvalidFiltersError` for invalid data (limits are not checked here).
    """
    problems = validate_filters(payload_filters, max_filters=None, max_values=None)
    if problems or not isinstance(payload_filters, Mapping):
        raise InvalidFiltersError(problems)
    normalized: dict[str, dict[str, object]] = {}
    for key, raw in payload_filters.items():
        operator = raw["operator"]
        entry: dict[str, object] = {"operator": operator}
        if operator in LIST_OPERATORS:
            entry["values"] = [js_string(item) for item in raw["values"]]
        else:
            entry["value"] = js_string(raw["value"])
        for flag in _FLAGS:
            if raw.get(flag) is True:
                entry[flag] = True
        normalized[key] = entry
    return normalized


def _filter_problems(key: object, raw: object, base: str, max_values: int | None) -> list[Problem]:
    if not isinstance(key, str) or key == "":
        return [Problem(pointer_join(base, js_string(key)), "filter key must be a non-empty payload path")]
    here = pointer_join(base, key)
    if not isinstance(raw, Mapping):
        return [Problem(here, "filter must be an object")]
    problems = [
        Problem(
            pointer_join(here, js_string(field)),
            f"unknown property; allowed: {', '.join(_FILTER_FIELDS)}",
        )
        for field in raw
        if field not in _FILTER_FIELDS
    ]
    problems.extend(
        Problem(pointer_join(here, flag), "must be a boolean")
        for flag in _FLAGS
        if not isinstance(raw.get(flag), bool | None)
    )
    operator = raw.get("operator")
    if operator is None:
        problems.append(Problem(pointer_join(here, "operator"), "is required"))
        return problems
    if not isinstance(operator, str) or operator not in SUPPORTED_OPERATORS:
        problems.append(Problem(pointer_join(here, "operator"), _operator_message(operator)))
        return problems
    list_required = operator in LIST_OPERATORS
    problems.extend(_values_problems(raw, here, required=list_required, max_values=max_values))
    problems.extend(_value_problems(raw, here, operator, required=not list_required))
    return problems


def _operator_message(operator: object) -> str:
    if isinstance(operator, str) and operator in UNSUPPORTED_OPERATORS:
        return f"operator {operator} is not supported in filters"
    supported = ", ".join(sorted(SUPPORTED_OPERATORS))
    return f"unknown operator {js_string(operator)!r}; expected one of {supported} (see {OPERATORS_DOC})"


def _values_problems(
    raw: Mapping[str, object], here: str, *, required: bool, max_values: int | None
) -> list[Problem]:
    at = pointer_join(here, "values")
    values = raw.get("values")
    if values is None:
        return [Problem(at, "is required for this operator")] if required else []
    if not isinstance(values, list):
        return [Problem(at, "must be an array of strings")]
    problems: list[Problem] = []
    if max_values is not None and len(values) > max_values:
        problems.append(
            Problem(
                at,
                f"at most {max_values} values are allowed; got {len(values)}",
                Limit("filter value", max_values),
            )
        )
    for index, item in enumerate(values):
        if not _is_string_or_number(item):
            problems.append(Problem(pointer_join(at, index), "must be a string"))
        elif js_trim(js_string(item)) == "":
            # Blank entries are silently dropped or match everything at evaluation: refuse them.
            problems.append(Problem(pointer_join(at, index), "must not be blank"))
    return problems


def _value_problems(raw: Mapping[str, object], here: str, operator: str, *, required: bool) -> list[Problem]:
    at = pointer_join(here, "value")
    value = raw.get("value")
    if value is None:
        return [Problem(at, "is required for this operator")] if required else []
    if not _is_string_or_number(value):
        return [Problem(at, "must be a string")]
    if not required:
        return []
    text = js_string(value)
    if operator in NUMBER_OPERATORS and (js_trim(text) == "" or math.isnan(js_number(text))):
        return [Problem(at, f"{text!r} is not a number")]
    if operator in SEMVER_OPERATORS and not semver.is_clean(text):
        return [Problem(at, f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH, no leading 'v')")]
    if operator in DATE_OPERATORS and parse_timestamp(text) is None:
        return [Problem(at, f"{text!r} is not an RFC 3339 date-time")]
    if operator == Operator.REGEX:
        if text == "":
            return [Problem(at, "must not be blank (an empty pattern matches every value)")]
        problem = regex.pattern_problem(text)
        if problem is not None:
            return [Problem(at, problem)]
    return []


def _is_string_or_number(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))


def pointer_join(base: str, *segments: str | int) -> str:
    """`base` (already a JSON pointer) extended by escaped `segments`."""
    return base + pointer(*segments)
