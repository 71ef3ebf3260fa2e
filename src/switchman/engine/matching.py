"""Does a signal payload pass an action set's filters (`match.payload`)?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from switchman.engine.constraints import Filter, FilterResult, evaluate_filter
from switchman.engine.js import js_string
from switchman.engine.payload import ANY_ELEMENT, flatten_payload


@dataclass(frozen=True)
class MatchResult:
    """All filters' outcomes, sorted by parameter; `matched` is true iff every filter passed."""

    matched: bool
    filters: tuple[FilterResult, ...]


def match_payload(
    filters: Mapping[str, object], payload: Mapping[str, object], *, extra: Mapping[str, object] | None = None
) -> MatchResult:
    """Evaluate every filter (no short-circuit, so an explanation shows each one) against the
    flattened payload, plus `extra` keys (a sender format's normalised view, which wins over a payload
    key of the same name). No filters → matched (an action set without filters fires on every signal of
    its source). Never raises; unreadable filters count as failed.
    """
    if not isinstance(filters, Mapping):
        return MatchResult(False, ())
    flat = flatten_payload(payload)
    if extra:
        flat.update(extra)
    readable = sorted(((js_string(key), raw) for key, raw in filters.items()), key=lambda item: item[0])
    results = tuple(evaluate_filter(Filter.from_wire(parameter, raw), flat) for parameter, raw in readable)
    return MatchResult(all(result.passed for result in results), results)


@dataclass(frozen=True)
class CompiledFilters:
    """An action set's filters read once, for matching many payloads (the worker's hot path).

    `matches(flatten_payload(p))` equals `match_payload(filters, p).matched`; the payload is flattened
    once by the caller for all the sets it is matched against, and evaluation stops at the first
    failed filter (single-valued parameters first, then `[*]` ones, each by name: `compile_filters`).
    """

    filters: tuple[Filter, ...] | None  # None: the filters are not a mapping, nothing matches

    def matches(self, flat: Mapping[str, object]) -> bool:
        if self.filters is None:
            return False
        return all(evaluate_filter(item, flat).passed for item in self.filters)

    def decide(self, flat: Mapping[str, object]) -> MatchResult:
        """As `matches`, with the results that decided it (for the trace, ADR 0022): every filter's when
        all passed, those up to and including the first that failed otherwise."""
        if self.filters is None:
            return MatchResult(False, ())
        results: list[FilterResult] = []
        for item in self.filters:
            result = evaluate_filter(item, flat)
            results.append(result)
            if not result.passed:
                return MatchResult(False, tuple(results))
        return MatchResult(True, tuple(results))


def compile_filters(filters: Mapping[str, object]) -> CompiledFilters:
    if not isinstance(filters, Mapping):
        return CompiledFilters(None)
    # A fixed order, so the first failing filter is the same whatever order the database returned the
    # filters in (PostgreSQL's JSONB reorders keys): single values before `[*]` ones (which visit a whole
    # array, and are skipped when a cheaper filter already failed), then by parameter.
    readable = sorted(
        ((js_string(key), raw) for key, raw in filters.items()),
        key=lambda item: (ANY_ELEMENT in item[0], item[0]),
    )
    return CompiledFilters(tuple(Filter.from_wire(parameter, raw) for parameter, raw in readable))
