"""The base of every wire model: snake_case in Python, camelCase on the wire (Unleash's field names)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Output model: serialized by alias (camelCase)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestModel(BaseModel):
    """Request body model: camelCase keys, unknown keys rejected (Unleash's `additionalProperties: false`)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
