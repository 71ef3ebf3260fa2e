"""Warnings about filters that are valid but cannot mean what their author thinks (ADR 0015).

Valid filters are stored as Unleash would store them; these findings never refuse a write. Each
warning names the filter (a JSON pointer into the action set body), a stable `code` and a sentence.

- `case-insensitive-ignored`: `caseInsensitive: true` on IN / NOT_IN, which Unleash ignores;
- `empty-values`: an empty `values` list (IN [] never holds, NOT_IN [] always holds, STR_* [] never);
- `unknown-key`: the key did not occur in the source's recent signals (`known_keys`), with the nearest
  key that did when one is close (e.g. `alerts.0.labels.x` → `alerts[0].labels.x`).

Input must have passed `validate_filters`; anything else yields no warning for that filter.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping

from switchman.engine.operators import LIST_OPERATORS, Operator
from switchman.engine.payload import key_occurs
from switchman.engine.problems import ActionSetWarning, pointer

FILTERS_PATH = "/match/payload"
_DOTTED_INDEX = re.compile(r"\.(\d+)(?=\.|$)")
_SHOWN_KEYS = 3


def filter_warnings(
    filters: Mapping[str, object], *, known_keys: Collection[str] | None
) -> list[ActionSetWarning]:
    """Warnings for `filters` (a valid `match.payload`), in key order.

    `known_keys` are the flattened keys seen in the source's recent signals; None means nothing is
    known yet (no signal received), and then keys are not checked.
    """
    warnings: list[ActionSetWarning] = []
    for key, raw in filters.items():
        if not isinstance(raw, Mapping):
            continue
        here = FILTERS_PATH + pointer(key)
        operator = raw.get("operator")
        inverted = raw.get("inverted") is True
        if operator in (Operator.IN, Operator.NOT_IN) and raw.get("caseInsensitive") is True:
            warnings.append(
                ActionSetWarning(
                    here + "/caseInsensitive",
                    "case-insensitive-ignored",
                    f"caseInsensitive is ignored by {operator} (as in Unleash): {operator} compares exactly; "
                    "list each spelling, or use STR_STARTS_WITH / STR_ENDS_WITH / STR_CONTAINS, which honour it",
                )
            )
        values = raw.get("values")
        if operator in LIST_OPERATORS and isinstance(values, list) and not values:
            warnings.append(
                ActionSetWarning(
                    here + "/values", "empty-values", _empty_values_message(str(operator), inverted)
                )
            )
        if known_keys is not None and not key_occurs(key, known_keys):
            warnings.append(ActionSetWarning(here, "unknown-key", _unknown_key_message(key, known_keys)))
    return warnings


def _empty_values_message(operator: str, inverted: bool) -> str:
    holds = operator == Operator.NOT_IN
    if inverted:
        holds = not holds
    effect = (
        "always holds, so it filters nothing" if holds else "never holds, so this action set can never fire"
    )
    return f"{operator} with an empty values list{' (inverted)' if inverted else ''} {effect}"


def _unknown_key_message(key: str, known_keys: Collection[str]) -> str:
    message = f"the key {key!r} did not occur in the recent signals of this action set's source"
    nearest = suggest_key(key, known_keys)
    if nearest is not None:
        return f"{message}; did you mean {nearest!r}?"
    if known_keys:
        shown = ", ".join(repr(k) for k in sorted(known_keys)[:_SHOWN_KEYS])
        more = f" and {len(known_keys) - _SHOWN_KEYS} more" if len(known_keys) > _SHOWN_KEYS else ""
        return f"{message}; keys seen include {shown}{more}"
    return message


def suggest_key(key: str, known_keys: Collection[str]) -> str | None:
    """The known key the author most likely meant: the `[i]` spelling of a `.i` index, else the closest."""
    bracketed = _DOTTED_INDEX.sub(r"[\1]", key)
    if bracketed != key and bracketed in known_keys:
        return bracketed
    close = difflib.get_close_matches(key, list(known_keys), n=1, cutoff=0.75)
    return close[0] if close else None
