"""The Unleash constraint operator names and how filters use them."""

from __future__ import annotations

from enum import StrEnum


class Operator(StrEnum):
    """Constraint operators that filters evaluate (Unleash names)."""

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


# Unleash constraint operators that switchman deliberately does not support in filters: refused
# on write, and (like any unknown operator) never matching at evaluation, `inverted` not applied.
UNSUPPORTED_OPERATORS: frozenset[str] = frozenset({"REGEX", "IN_CIDR"})

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
    }
)
NUMBER_OPERATORS: frozenset[str] = frozenset(
    {Operator.NUM_EQ, Operator.NUM_GT, Operator.NUM_GTE, Operator.NUM_LT, Operator.NUM_LTE}
)
SEMVER_OPERATORS: frozenset[str] = frozenset(
    {Operator.SEMVER_EQ, Operator.SEMVER_GT, Operator.SEMVER_GTE, Operator.SEMVER_LT, Operator.SEMVER_LTE}
)
DATE_OPERATORS: frozenset[str] = frozenset({Operator.DATE_AFTER, Operator.DATE_BEFORE})
VALUE_OPERATORS: frozenset[str] = NUMBER_OPERATORS | SEMVER_OPERATORS | DATE_OPERATORS
