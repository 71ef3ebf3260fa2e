"""The four action types: their definitions (spec §3.6), parameter rules (§3.7) and the flag
change each one asks for (§5.7)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from switchman.engine.problems import Problem, pointer

TOGGLE_FEATURE_ON = "TOGGLE_FEATURE_ON"
TOGGLE_FEATURE_OFF = "TOGGLE_FEATURE_OFF"
TOGGLE_FEATURES_ON_BY_TAG = "TOGGLE_FEATURES_ON_BY_TAG"
TOGGLE_FEATURES_OFF_BY_TAG = "TOGGLE_FEATURES_OFF_BY_TAG"

# The permission on Unleash's own on/off routes; environment-scoped, which the UI's check needs.
UPDATE_FEATURE_ENVIRONMENT = "UPDATE_FEATURE_ENVIRONMENT"

_ACTION_FIELDS = ("action", "sortOrder", "executionParams")


class InvalidAction(ValueError):
    """An action that cannot be run; the message is meant for the action's `details`."""


@dataclass(frozen=True)
class ActionParameter:
    """One entry of `executionParams`, as the action definition presents it."""

    name: Literal["project", "environment", "featureName", "tag"]
    label: str
    type: Literal["select", "hidden"]
    optional: bool = False


@dataclass(frozen=True)
class ActionDefinition:
    """What an action type is, for the `config` endpoint and for running it."""

    action: str
    label: str
    description: str
    category: str
    permissions: tuple[str, ...]
    parameters: tuple[ActionParameter, ...]
    enables: bool  # True turns flags on, False off
    by_tag: bool  # True targets flags by `tag`, False one flag by `featureName`

    @functools.cached_property
    def required_parameters(self) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in self.parameters if not parameter.optional)


_PROJECT = ActionParameter("project", "Project", "hidden")
_ENVIRONMENT = ActionParameter("environment", "Environment", "select")
_FEATURE_NAME = ActionParameter("featureName", "Flag name", "select")
_TAG = ActionParameter("tag", "Tag", "select")
_CATEGORY = "Feature flags"


def _definition(
    action: str, label: str, description: str, *, enables: bool, by_tag: bool
) -> ActionDefinition:
    target = _TAG if by_tag else _FEATURE_NAME
    return ActionDefinition(
        action=action,
        label=label,
        description=description,
        category=_CATEGORY,
        permissions=(UPDATE_FEATURE_ENVIRONMENT,),
        parameters=(_PROJECT, _ENVIRONMENT, target),
        enables=enables,
        by_tag=by_tag,
    )


ACTION_DEFINITIONS: Mapping[str, ActionDefinition] = {
    definition.action: definition
    for definition in (
        _definition(
            TOGGLE_FEATURE_ON,
            "Enable flag",
            "Enables a feature flag in an environment.",
            enables=True,
            by_tag=False,
        ),
        _definition(
            TOGGLE_FEATURE_OFF,
            "Disable flag",
            "Disables a feature flag in an environment.",
            enables=False,
            by_tag=False,
        ),
        _definition(
            TOGGLE_FEATURES_ON_BY_TAG,
            "Enable flags by tag",
            "Enables every feature flag of the project that has the given tag, in an environment.",
            enables=True,
            by_tag=True,
        ),
        _definition(
            TOGGLE_FEATURES_OFF_BY_TAG,
            "Disable flags by tag",
            "Disables every feature flag of the project that has the given tag, in an environment.",
            enables=False,
            by_tag=True,
        ),
    )
}


def definitions_config(
    *, environments: Sequence[str], features: Sequence[str], tags: Sequence[str]
) -> dict[str, object]:
    """The `actionDefinitionsConfigSchema` body for one project.

    `select` parameters get `options` (environment ← `environments`, featureName ← `features`,
    tag ← `tags`, in the order given); `optional` is always sent because Unleash's UI treats a
    missing `optional` as required.
    """
    options: dict[str, Sequence[str]] = {"environment": environments, "featureName": features, "tag": tags}
    config: dict[str, object] = {}
    for definition in ACTION_DEFINITIONS.values():
        parameters: list[dict[str, object]] = []
        for parameter in definition.parameters:
            wire: dict[str, object] = {
                "name": parameter.name,
                "label": parameter.label,
                "type": parameter.type,
                "optional": parameter.optional,
            }
            if parameter.type == "select":
                wire["options"] = list(options[parameter.name])
            parameters.append(wire)
        config[definition.action] = {
            "label": definition.label,
            "description": definition.description,
            "category": definition.category,
            "permissions": list(definition.permissions),
            "parameters": parameters,
        }
    return config


def split_tag(tag: str) -> tuple[str, str] | None:
    """`"type:value"` → `("type", "value")`; None unless both parts are non-empty.

    Splits at the first colon, so a tag value may itself contain colons.
    """
    tag_type, colon, value = tag.partition(":")
    if not colon or not tag_type or not value:
        return None
    return tag_type, value


def validate_action(action: object, *, index: int, project: str, path: str = "/actions") -> list[Problem]:
    """Every problem with one `createActionSchema` item (`actions[index]` of the request body).

    The item has only `action`, `sortOrder`, `executionParams`; `action` is a known action type;
    `sortOrder` an integer ≥ 1 (booleans are not integers); `executionParams` an object holding
    each required parameter as a non-empty string, `project` equal to the action set's project
    and `tag` written `type:value`. Extra `executionParams` keys are allowed (schema AP true).
    """
    here = path + pointer(index)
    if not isinstance(action, Mapping):
        return [Problem(here, "must be an object")]
    problems = [
        Problem(here + pointer(str(field)), f"unknown property; allowed: {', '.join(_ACTION_FIELDS)}")
        for field in action
        if field not in _ACTION_FIELDS
    ]
    problems.extend(_sort_order_problems(action.get("sortOrder"), here + pointer("sortOrder")))
    action_type = action.get("action")
    definition = ACTION_DEFINITIONS.get(action_type) if isinstance(action_type, str) else None
    if action_type is None:
        problems.append(Problem(here + pointer("action"), "is required"))
    elif definition is None:
        known = ", ".join(ACTION_DEFINITIONS)
        problems.append(Problem(here + pointer("action"), f"unknown action type; expected one of {known}"))
    params = action.get("executionParams", {})
    params_path = here + pointer("executionParams")
    if not isinstance(params, Mapping):
        problems.append(Problem(params_path, "must be an object"))
    elif definition is not None:
        problems.extend(_params_problems(definition, params, params_path, project))
    return problems


def _sort_order_problems(sort_order: object, at: str) -> list[Problem]:
    if sort_order is None:
        return [Problem(at, "is required")]
    if isinstance(sort_order, bool) or not isinstance(sort_order, int):
        return [Problem(at, "must be an integer")]
    if sort_order < 1:
        return [Problem(at, "must be at least 1")]
    return []


def _params_problems(
    definition: ActionDefinition, params: Mapping[str, object], at: str, project: str
) -> list[Problem]:
    problems: list[Problem] = []
    for name in definition.required_parameters:
        value = params.get(name)
        here = at + pointer(name)
        if value is None:
            problems.append(Problem(here, "is required"))
        elif not isinstance(value, str):
            problems.append(Problem(here, "must be a string"))
        elif value == "":
            problems.append(Problem(here, "must not be empty"))
        elif name == "project" and value != project:
            problems.append(Problem(here, f"must be the action set's project {project!r}"))
        elif name == "tag" and split_tag(value) is None:
            problems.append(Problem(here, "must be written type:value"))
    return problems


@dataclass(frozen=True)
class ToggleCommand:
    """A flag change to perform: one flag (`feature_name`) or every flag with `tag`."""

    project: str
    environment: str
    enabled: bool
    feature_name: str | None
    tag: tuple[str, str] | None  # (type, value)

    @classmethod
    def one_flag(cls, *, project: str, environment: str, feature_name: str, enabled: bool) -> ToggleCommand:
        return cls(
            project=project, environment=environment, enabled=enabled, feature_name=feature_name, tag=None
        )

    @classmethod
    def by_tag(cls, *, project: str, environment: str, tag: tuple[str, str], enabled: bool) -> ToggleCommand:
        return cls(project=project, environment=environment, enabled=enabled, feature_name=None, tag=tag)


def command_for(
    action: str, params: Mapping[str, object], *, expected_project: str | None = None
) -> ToggleCommand:
    """The flag change that action type `action` with `executionParams` `params` asks for.

    Raises `InvalidAction` (message suitable for the action's `details`) when the action
    type is unknown, a required parameter is missing or not a non-empty string, the tag is not
    `type:value`, or `project` differs from `expected_project` (the action set's project).
    """
    definition = ACTION_DEFINITIONS.get(action) if isinstance(action, str) else None
    if definition is None:
        raise InvalidAction(f"Unknown action type {action!r}")
    if not isinstance(params, Mapping):
        raise InvalidAction("executionParams must be an object")
    values: dict[str, str] = {}
    for name in definition.required_parameters:
        value = params.get(name)
        if not isinstance(value, str) or value == "":
            raise InvalidAction(f"Missing required parameter {name!r} for {action}")
        values[name] = value
    if expected_project is not None and values["project"] != expected_project:
        raise InvalidAction(
            f"Action targets project {values['project']!r} but the action set belongs to {expected_project!r}"
        )
    tag = None
    if definition.by_tag:
        tag = split_tag(values["tag"])
        if tag is None:
            raise InvalidAction(f"Tag {values['tag']!r} is not written type:value")
    return ToggleCommand(
        project=values["project"],
        environment=values["environment"],
        enabled=definition.enables,
        feature_name=None if definition.by_tag else values["featureName"],
        tag=tag,
    )
