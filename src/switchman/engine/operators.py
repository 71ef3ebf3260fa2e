"""The Unleash constraint operator names and how filters use them."""

from __future__ import annotations

from enum import StrEnum


class Operator(StrEnum):
    """Constraint operators that filters evaluate: Unleash's, and `TOKEN_IN` (switchman's, ADR 0018)."""

    IN = "IN"
    NOT_IN = "NOT_IN"
    STR_STARTS_WITH = "STR_STARTS_WITH"
    STR_ENDS_WITH = "STR_ENDS_WITH"
    STR_CONTAINS = "STR_CONTAINS"
    NUM_EQ = "NUM_EQ"
    NUM_GT = "NUM_GT"
    NUM_GTE = "NUM_GTE"
    NUM_LT = "NUM_LT"
    NUM_LTE = "NUM_LTE"
    SEMVER_EQ = "SEMVER_EQ"
    SEMVER_GT = "SEMVER_GT"
    SEMVER_GTE = "SEMVER_GTE"
    SEMVER_LT = "SEMVER_LT"
    SEMVER_LTE = "SEMVER_LTE"
    DATE_AFTER = "DATE_AFTER"
    DATE_BEFORE = "DATE_BEFORE"
    REGEX = "REGEX"
    TOKEN_IN = "TOKEN_IN"


# Unleash constraint operators that switchman deliberately does not support in filters: refused
# on write, and (like any unknown operator) never matching at evaluation, `inverted` not applied.
UNSUPPORTED_OPERATORS: frozenset[str] = frozenset({"IN_CIDR"})

SUPPORTED_OPERATORS: frozenset[str] = frozenset(Operator)

KNOWN_OPERATORS: frozenset[str] = SUPPORTED_OPERATORS | UNSUPPORTED_OPERATORS

# Operators that read the `values` list; all other supported ones read the single `value`.
LIST_OPERATORS: frozenset[str] = frozenset(
    {
        Operator.IN,
        Operator.NOT_IN,
        Operator.STR_STARTS_WITH,
        Operator.STR_ENDS_WITH,
        Operator.STR_CONTAINS,
        Operator.TOKEN_IN,
    }
)
NUMBER_OPERATORS: frozenset[str] = frozenset(
    {Operator.NUM_EQ, Operator.NUM_GT, Operator.NUM_GTE, Operator.NUM_LT, Operator.NUM_LTE}
)
SEMVER_OPERATORS: frozenset[str] = frozenset(
    {Operator.SEMVER_EQ, Operator.SEMVER_GT, Operator.SEMVER_GTE, Operator.SEMVER_LT, Operator.SEMVER_LTE}
)
DATE_OPERATORS: frozenset[str] = frozenset({Operator.DATE_AFTER, Operator.DATE_BEFORE})
VALUE_OPERATORS: frozenset[str] = NUMBER_OPERATORS | SEMVER_OPERATORS | DATE_OPERATORS | {Operator.REGEX}


# One line per operator: what it means for the payload value at the filter's key, and an example
# filter. Shown in the OpenAPI description of `match.payload`; docs/filters.md says the same at length.
OPERATOR_REFERENCE: dict[str, tuple[str, str]] = {
    Operator.IN: (
        "the value equals one of `values` (exact, case-sensitive)",
        '{"operator":"IN","values":["firing"]}',
    ),
    Operator.NOT_IN: (
        "the value equals none of `values`; also holds when the key is absent",
        '{"operator":"NOT_IN","values":["info","debug"]}',
    ),
    Operator.STR_CONTAINS: (
        "the value contains one of `values`",
        '{"operator":"STR_CONTAINS","values":["timeout"],"caseInsensitive":true}',
    ),
    Operator.STR_STARTS_WITH: (
        "the value starts with one of `values`",
        '{"operator":"STR_STARTS_WITH","values":["eu-"]}',
    ),
    Operator.STR_ENDS_WITH: (
        "the value ends with one of `values`",
        '{"operator":"STR_ENDS_WITH","values":[".prod"]}',
    ),
    Operator.NUM_EQ: ("the value, as a number, equals `value`", '{"operator":"NUM_EQ","value":"500"}'),
    Operator.NUM_GT: (
        "the value, as a number, is greater than `value`",
        '{"operator":"NUM_GT","value":"0.05"}',
    ),
    Operator.NUM_GTE: ("the value, as a number, is at least `value`", '{"operator":"NUM_GTE","value":"3"}'),
    Operator.NUM_LT: ("the value, as a number, is less than `value`", '{"operator":"NUM_LT","value":"99.9"}'),
    Operator.NUM_LTE: ("the value, as a number, is at most `value`", '{"operator":"NUM_LTE","value":"10"}'),
    Operator.SEMVER_EQ: (
        "the value is the semantic version `value`",
        '{"operator":"SEMVER_EQ","value":"2.4.1"}',
    ),
    Operator.SEMVER_GT: (
        "the value is a later semantic version than `value`",
        '{"operator":"SEMVER_GT","value":"2.0.0"}',
    ),
    Operator.SEMVER_GTE: (
        "the value is `value` or a later version",
        '{"operator":"SEMVER_GTE","value":"2.0.0"}',
    ),
    Operator.SEMVER_LT: (
        "the value is an earlier semantic version than `value`",
        '{"operator":"SEMVER_LT","value":"3.0.0"}',
    ),
    Operator.SEMVER_LTE: (
        "the value is `value` or an earlier version",
        '{"operator":"SEMVER_LTE","value":"3.0.0"}',
    ),
    Operator.DATE_AFTER: (
        "the value, an RFC 3339 date-time, is after `value` (the payload's time, not the clock)",
        '{"operator":"DATE_AFTER","value":"2026-12-01T00:00:00Z"}',
    ),
    Operator.DATE_BEFORE: (
        "the value, an RFC 3339 date-time, is before `value`",
        '{"operator":"DATE_BEFORE","value":"2026-12-31T23:59:59Z"}',
    ),
    Operator.REGEX: (
        "the RE2 pattern `value` matches anywhere in the value (anchor with `^…$`)",
        '{"operator":"REGEX","value":"^checkout-[a-z]{2}-[0-9]+$"}',
    ),
    Operator.TOKEN_IN: (
        "the value, split at commas and white space, has a part equal to one of `values` (switchman's)",
        '{"operator":"TOKEN_IN","values":["service:search"]}',
    ),
}
