"""The founding document's response schema (transcribed in founding_schema.json) as a jsonschema validator.

The founding document, `seed-get-actions-events.md` beside this file, is a verbatim copy of the
project's founding specification: Unleash's OpenAPI description of the operation `get-actions-events`
(`GET /api/admin/projects/{projectId}/actions/{id}/events`, Unleash Enterprise; published at
https://docs.getunleash.io/api/get-actions-events), whose YAML
lost its line breaks in that copy. It is vendored so that a clone checks the schema on its own.

`strict_validator()` adds `additionalProperties: false` where the reference (spec §3.2, §3.5) says the
schema forbids other properties: actionSetEventsSchema, actionSetEventSchema, its actionSet object,
actionEventSchema and signalSchema. `date-time` strings are checked (RFC 3339 with an offset).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import jsonschema

FOUNDING_DOC = Path(__file__).with_name("seed-get-actions-events.md")
TRANSCRIPTION = Path(__file__).with_name("founding_schema.json")
AP_FALSE = (
    "actionSetEventsSchema",
    "actionSetEventSchema",
    "ActionSetEventSchemaActionSet",
    "actionEventSchema",
    "signalSchema",
)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def transcription() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(TRANSCRIPTION.read_text())
    return data


def components() -> dict[str, Any]:
    schemas: dict[str, Any] = transcription()["components"]["schemas"]
    return schemas


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time")
    def _date_time(value: object) -> bool:
        if not isinstance(value, str) or not _RFC3339.match(value):
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return checker


def validator(
    schema_name: str = "actionSetEventsSchema", *, strict: bool = True
) -> jsonschema.Draft202012Validator:
    document = transcription()
    if strict:
        document = copy.deepcopy(document)
        for name in AP_FALSE:
            document["components"]["schemas"][name]["additionalProperties"] = False
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=_format_checker())


def assert_valid(instance: object, schema_name: str = "actionSetEventsSchema") -> None:
    errors = sorted(validator(schema_name).iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
