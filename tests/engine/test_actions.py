"""Action definitions, `executionParams` validation and the flag change each action asks for."""

from __future__ import annotations

import pytest

from switchman.engine.actions import (
    ACTION_DEFINITIONS,
    TOGGLE_FEATURE_OFF,
    TOGGLE_FEATURE_ON,
    TOGGLE_FEATURES_OFF_BY_TAG,
    TOGGLE_FEATURES_ON_BY_TAG,
    InvalidAction,
    ToggleCommand,
    command_for,
    definitions_config,
    split_tag,
    validate_action,
)
from switchman.engine.problems import Problem


def test_definitions_config_shape() -> None:
    config = definitions_config(
        environments=["development", "production"], features=["f1", "f2"], tags=["simple:a"]
    )
    assert list(config) == [
        TOGGLE_FEATURE_ON,
        TOGGLE_FEATURE_OFF,
        TOGGLE_FEATURES_ON_BY_TAG,
        TOGGLE_FEATURES_OFF_BY_TAG,
    ]
    assert config[TOGGLE_FEATURE_ON] == {
        "label": "Enable flag",
        "description": "Enables a feature flag in an environment.",
        "category": "Feature flags",
        "permissions": ["UPDATE_FEATURE_ENVIRONMENT"],
        "parameters": [
            {"name": "project", "label": "Project", "type": "hidden", "optional": False},
            {"name": "environment", "label": "Environment", "type": "select", "optional": False,
             "options": ["development", "production"]},
            {"name": "featureName", "label": "Flag name", "type": "select", "optional": False, "options": ["f1", "f2"]},
        ],
    }  # fmt: skip
    by_tag = config[TOGGLE_FEATURES_OFF_BY_TAG]
    assert isinstance(by_tag, dict)
    assert by_tag["label"] == "Disable flags by tag"
    assert [p["name"] for p in by_tag["parameters"]] == ["project", "environment", "tag"]
    assert by_tag["parameters"][2]["options"] == ["simple:a"]
    for definition in config.values():
        assert isinstance(definition, dict)
        assert set(definition) == {"label", "description", "category", "permissions", "parameters"}
        assert all(p["optional"] is False for p in definition["parameters"])


def test_definitions_config_options_are_fresh_lists() -> None:
    environments = ("dev",)
    config = definitions_config(environments=environments, features=[], tags=[])
    params = config[TOGGLE_FEATURE_ON]["parameters"]  # type: ignore[index]
    assert params[1]["options"] == ["dev"] and isinstance(params[1]["options"], list)
    assert params[2]["options"] == []


def good(action: str = TOGGLE_FEATURE_ON, **params: object) -> dict[str, object]:
    execution: dict[str, object] = {"project": "default", "environment": "production"}
    execution.update({"tag": "simple:a"} if "BY_TAG" in action else {"featureName": "f1"})
    execution.update(params)
    return {"action": action, "sortOrder": 1, "executionParams": execution}


@pytest.mark.parametrize("action", list(ACTION_DEFINITIONS))
def test_valid_actions(action: str) -> None:
    assert validate_action(good(action), index=0, project="default") == []


def test_extra_execution_params_are_allowed() -> None:
    assert validate_action(good(extra="x"), index=0, project="default") == []


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("x", [("/actions/3", "must be an object")]),
        ({**good(), "id": 1}, [("/actions/3/id", "unknown property; allowed: action, sortOrder, executionParams")]),
        ({"sortOrder": 1}, [("/actions/3/action", "is required")]),
        ({**good(), "action": "TOGGLE_ALL"},
         [("/actions/3/action", "unknown action type; expected one of TOGGLE_FEATURE_ON, TOGGLE_FEATURE_OFF, "
                                "TOGGLE_FEATURES_ON_BY_TAG, TOGGLE_FEATURES_OFF_BY_TAG")]),
        ({**good(), "action": 7},
         [("/actions/3/action", "unknown action type; expected one of TOGGLE_FEATURE_ON, TOGGLE_FEATURE_OFF, "
                                "TOGGLE_FEATURES_ON_BY_TAG, TOGGLE_FEATURES_OFF_BY_TAG")]),
        ({**good(), "sortOrder": None}, [("/actions/3/sortOrder", "is required")]),
        ({**good(), "sortOrder": 0}, [("/actions/3/sortOrder", "must be at least 1")]),
        ({**good(), "sortOrder": True}, [("/actions/3/sortOrder", "must be an integer")]),
        ({**good(), "sortOrder": 1.5}, [("/actions/3/sortOrder", "must be an integer")]),
        ({**good(), "sortOrder": "1"}, [("/actions/3/sortOrder", "must be an integer")]),
        ({**good(), "executionParams": []}, [("/actions/3/executionParams", "must be an object")]),
        ({"action": TOGGLE_FEATURE_ON, "sortOrder": 2},
         [("/actions/3/executionParams/project", "is required"),
          ("/actions/3/executionParams/environment", "is required"),
          ("/actions/3/executionParams/featureName", "is required")]),
        (good(project="other"), [("/actions/3/executionParams/project", "must be the action set's project 'default'")]),
        (good(environment=5), [("/actions/3/executionParams/environment", "must be a string")]),
        (good(featureName=""), [("/actions/3/executionParams/featureName", "must not be empty")]),
        (good(TOGGLE_FEATURES_ON_BY_TAG, tag="simple"), [("/actions/3/executionParams/tag", "must be written type:value")]),
        (good(TOGGLE_FEATURES_ON_BY_TAG, tag=":a"), [("/actions/3/executionParams/tag", "must be written type:value")]),
        (good(TOGGLE_FEATURES_ON_BY_TAG, tag="simple:"), [("/actions/3/executionParams/tag", "must be written type:value")]),
    ],
)  # fmt: skip
def test_invalid_actions(item: object, expected: list[tuple[str, str]]) -> None:
    found = validate_action(item, index=3, project="default")
    assert [(p.path, p.message) for p in found] == expected


def test_custom_base_path() -> None:
    assert validate_action(None, index=0, project="p", path="/body/actions") == [
        Problem("/body/actions/0", "must be an object")
    ]


def test_split_tag() -> None:
    assert split_tag("simple:a") == ("simple", "a")
    assert split_tag("url:https://x") == ("url", "https://x")
    assert split_tag("simple") is None
    assert split_tag(":") is None


@pytest.mark.parametrize(
    ("action", "params", "expected"),
    [
        (TOGGLE_FEATURE_ON, {"project": "p", "environment": "e", "featureName": "f"},
         ToggleCommand("p", "e", True, "f", None)),
        (TOGGLE_FEATURE_OFF, {"project": "p", "environment": "e", "featureName": "f", "more": 1},
         ToggleCommand("p", "e", False, "f", None)),
        (TOGGLE_FEATURES_ON_BY_TAG, {"project": "p", "environment": "e", "tag": "simple:a:b"},
         ToggleCommand("p", "e", True, None, ("simple", "a:b"))),
        (TOGGLE_FEATURES_OFF_BY_TAG, {"project": "p", "environment": "e", "tag": "t:v"},
         ToggleCommand("p", "e", False, None, ("t", "v"))),
    ],
)  # fmt: skip
def test_command_for(action: str, params: dict[str, object], expected: ToggleCommand) -> None:
    assert command_for(action, params) == expected
    assert command_for(action, params, expected_project="p") == expected


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("NOPE", {}, "Unknown action type 'NOPE'"),
        (TOGGLE_FEATURE_ON, {"project": "p", "environment": "e"}, "Missing required parameter 'featureName' for TOGGLE_FEATURE_ON"),
        (TOGGLE_FEATURE_ON, {"project": "p", "environment": 3, "featureName": "f"},
         "Missing required parameter 'environment' for TOGGLE_FEATURE_ON"),
        (TOGGLE_FEATURES_ON_BY_TAG, {"project": "p", "environment": "e", "tag": "x"}, "Tag 'x' is not written type:value"),
        (TOGGLE_FEATURE_ON, [], "executionParams must be an object"),
        (TOGGLE_FEATURE_ON, {"project": "q", "environment": "e", "featureName": "f"},
         "Action targets project 'q' but the action set belongs to 'p'"),
    ],
)  # fmt: skip
def test_command_for_refuses_unusable_actions(action: str, params: object, message: str) -> None:
    with pytest.raises(InvalidAction) as caught:
        command_for(action, params, expected_project="p")  # type: ignore[arg-type]
    assert str(caught.value) == message
