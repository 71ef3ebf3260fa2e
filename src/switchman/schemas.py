"""The base of every wire model: snake_case in Python, camelCase on the wire (Unleash's field names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Output model: serialized by alias (camelCase)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


def refuse_nul(value: Any) -> None:
    """ValueError when `value`, a string or a list of them (however nested), holds U+0000.

    PostgreSQL's text cannot store it, so it failed there as a server error while SQLite stored it;
    refusing it in request fields makes both databases answer the same 400. Free-form JSON objects
    (`dict` fields) are their owners' to check, with the path of the offending key (action sets do).
    """
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain the NUL character (\\u0000)")
    elif isinstance(value, list):
        for item in value:
            refuse_nul(item)


class InputModel(BaseModel):
    """Base of request bodies: no NUL character in a string field (see `refuse_nul`)."""

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        refuse_nul(value)
        return value


class RequestModel(InputModel):
    """Request body model: camelCase keys, unknown keys rejected (Unleash's `additionalProperties: false`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
