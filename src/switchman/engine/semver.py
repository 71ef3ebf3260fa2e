"""Strict SemVer 2.0 parsing and precedence, matching the node `semver` package Unleash SDKs use.

Validity is node-semver's strict (non-loose) parse: at most 256 characters, surrounding
JavaScript whitespace ignored, an optional leading `v`, no leading zeros in numeric parts,
major/minor/patch at most 2**53 - 1. Whether a leading `v` is acceptable is the caller's rule
(the SDK rejects it for the context value; see `constraints`).
Precedence follows SemVer §11; build metadata is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from switchman.engine.js import js_trim

MAX_LENGTH = 256
MAX_SAFE_INTEGER = 2**53 - 1

_NUMERIC = r"0|[1-9][0-9]*"
_PRERELEASE_IDENTIFIER = rf"(?:[0-9]*[a-zA-Z-][a-zA-Z0-9-]*|{_NUMERIC})"
_BUILD_IDENTIFIER = r"[a-zA-Z0-9-]+"
_STRICT_VERSION = re.compile(
    rf"v?({_NUMERIC})\.({_NUMERIC})\.({_NUMERIC})"
    rf"(?:-({_PRERELEASE_IDENTIFIER}(?:\.{_PRERELEASE_IDENTIFIER})*))?"
    rf"(?:\+({_BUILD_IDENTIFIER}(?:\.{_BUILD_IDENTIFIER})*))?",
    re.ASCII,
)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True)
class Version:
    """A parsed version. Compare with `compare`, not `==` (which also compares build metadata)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text


def parse(text: str) -> Version | None:
    """Parse like node-semver's `valid(text)`; None if it is not a valid version."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH:
        return None
    match = _STRICT_VERSION.fullmatch(js_trim(text))
    if match is None:
        return None
    major, minor, patch = (int(part) for part in match.group(1, 2, 3))
    if max(major, minor, patch) > MAX_SAFE_INTEGER:
        return None
    prerelease = tuple(match.group(4).split(".")) if match.group(4) else ()
    build = tuple(match.group(5).split(".")) if match.group(5) else ()
    return Version(major, minor, patch, prerelease, build)


def is_clean(text: str) -> bool:
    """True for a version written exactly as SemVer 2.0 defines it: valid, no leading `v`,
    no surrounding whitespace. This is what we accept as a filter's `value` on write."""
    return parse(text) is not None and text == js_trim(text) and not text.startswith("v")


def compare(left: Version, right: Version) -> int:
    """-1, 0 or 1 by SemVer precedence (§11): numeric core, then pre-release (a version without
    pre-release ranks higher; identifiers compared left to right, numeric ones numerically and
    below alphanumeric ones, a shorter list ranks lower when all shared ones are equal)."""
    left_core = (left.major, left.minor, left.patch)
    right_core = (right.major, right.minor, right.patch)
    if left_core != right_core:
        return -1 if left_core < right_core else 1
    if not left.prerelease or not right.prerelease:
        # Exactly one side without pre-release ranks higher; neither means equal.
        return (not left.prerelease) - (not right.prerelease)
    for left_id, right_id in zip(left.prerelease, right.prerelease, strict=False):
        order = _compare_identifiers(left_id, right_id)
        if order:
            return order
    return (len(left.prerelease) > len(right.prerelease)) - (len(left.prerelease) < len(right.prerelease))


def _compare_identifiers(left: str, right: str) -> int:
    left_numeric = _DIGITS.fullmatch(left) is not None
    right_numeric = _DIGITS.fullmatch(right) is not None
    if left_numeric and right_numeric:
        # node-semver compares numeric identifiers as JavaScript numbers (doubles).
        left_value, right_value = _to_double(left), _to_double(right)
        return (left_value > right_value) - (left_value < right_value)
    if left_numeric != right_numeric:
        return -1 if left_numeric else 1
    return (left > right) - (left < right)


def _to_double(digits: str) -> float:
    try:
        return float(int(digits))
    except OverflowError:
        return float("inf")
