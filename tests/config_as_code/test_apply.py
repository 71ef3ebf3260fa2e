"""`export` and `apply` against real apps on both databases, through httpx clients bound to them."""

from __future__ import annotations

import httpx
import pytest
import yaml

from switchman.config_as_code.commands import apply_document, export_document
from switchman.config_as_code.document import DocumentError, channel_url_variable
from switchman.config_as_code.remote import RemoteError
from tests.config_as_code.conftest import SLACK_URL, WEBHOOK_URL, build_configuration, prerequisites
from tests.factories import PROJECTS, SIGNAL_ENDPOINTS


def _channel_env() -> dict[str, str]:
    return {
        channel_url_variable("default", "ops slack"): SLACK_URL,
        channel_url_variable("default", "audit"): WEBHOOK_URL,
    }


async def test_export_names_everything_and_shows_no_id_and_no_secret(client: httpx.AsyncClient) -> None:
    names = await build_configuration(client)
    token = await client.post(
        f"{SIGNAL_ENDPOINTS}/{await _endpoint_id(client, names['alerts'])}/tokens", json={"name": "ci"}
    )
    secret = token.json()["token"]

    text = await export_document(client)

    for hidden in (secret, SLACK_URL, WEBHOOK_URL, "very-secret", "whsec_", "Id:", "id: 1"):
        assert hidden not in text
    document = yaml.safe_load(text)
    assert document["apiVersion"] == "switchman/v1"
    alerts = next(e for e in document["signalEndpoints"] if e["name"] == names["alerts"])
    assert alerts == {
        "name": names["alerts"],
        "description": "Prom",
        "enabled": True,
        "format": {"format": "alertmanager", "splitAlerts": True},
        "queryTokenAccepted": False,
    }
    quiet = next(e for e in document["signalEndpoints"] if e["name"] == names["quiet"])
    assert quiet == {"name": names["quiet"], "enabled": False, "queryTokenAccepted": True}
    (project,) = document["projects"]
    assert project["actionBudget"] == {"maxChangesPerHour": 12}
    kill = next(s for s in project["actionSets"] if s["name"] == "kill switch")
    assert kill["actor"] == names["account"]
    assert kill["match"] == {
        "source": "signal-endpoint",
        "endpoint": names["alerts"],
        "payload": {"@switchman.status": {"operator": "IN", "values": ["firing"]}},
    }
    assert [a["executionParams"]["environment"] for a in kill["actions"]] == ["production", "development"]
    assert kill["policy"] == {"cooldownSeconds": 60, "perAlert": True, "restoreOnResolve": True}
    slack = next(c for c in project["notificationChannels"] if c["name"] == "ops slack")
    assert slack == {
        "name": "ops slack",
        "kind": "slack",
        "url": "${SWITCHMAN_CHANNEL_URL_DEFAULT_OPS_SLACK}",
        "actionSets": ["kill switch"],
        "events": ["failure", "success"],
        "enabled": True,
    }
    assert await export_document(client) == text  # deterministic


async def test_round_trip_to_an_empty_instance_gives_the_same_document(
    client: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    names = await build_configuration(client)
    exported = await export_document(client)
    await prerequisites(other, flags=[names["flag"]], accounts=[names["account"]])

    applied = await apply_document(other, exported, environ=_channel_env())

    assert {(s.op, s.kind) for s in applied.steps} >= {
        ("create", "signal endpoint"),
        ("create", "action set"),
        ("create", "policy"),
        ("create", "action budget"),
        ("create", "notification channel"),
    }
    assert await export_document(other) == exported  # byte for byte
    channels = (await other.get(f"{PROJECTS}/default/notification-channels")).json()["notificationChannels"]
    assert sorted(c["url"] for c in channels) == [
        "https://hooks.slack.test/…",
        "https://receiver.example.test/…",
    ]
    # The new webhook channel's signing secret, which the server shows once, is handed on once.
    [(channel, secret)] = applied.signing_secrets
    assert channel == "default/audit" and secret.startswith("whsec_")
    assert applied.report()[-1].endswith(f"(shown once; give it to the receiver): {secret}")
    assert secret not in await export_document(other)


async def test_applying_twice_changes_nothing_the_second_time(
    client: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    names = await build_configuration(client)
    exported = await export_document(client)
    await prerequisites(other, flags=[names["flag"]], accounts=[names["account"]])
    await apply_document(other, exported, environ=_channel_env())

    again = await apply_document(other, exported, environ=_channel_env())

    assert again.steps == []
    assert again.report() == ["no changes"]
    # The source instance already matches its own export, too.
    assert (await apply_document(client, exported, environ=_channel_env())).steps == []


async def test_a_hand_written_document_with_defaults_left_out_is_idempotent(
    client: httpx.AsyncClient,
) -> None:
    await prerequisites(client, flags=["checkout"], accounts=["bot"])
    text = """
apiVersion: switchman/v1
signalEndpoints:
  - name: pager
projects:
  - id: default
    actionSets:
      - name: "off"
        actor: bot
        match: {source: signal-endpoint, endpoint: pager, payload: {severity: {operator: IN, values: [critical]}}}
        actions:
          - {action: TOGGLE_FEATURE_OFF, executionParams: {project: default, environment: production, featureName: checkout}}
        policy: {shadow: false, cooldownSeconds: 30}
"""
    first = await apply_document(client, text)
    assert [s.describe() for s in first.steps] == [
        "create signal endpoint pager",
        "create action set default/off",
        "create policy default/off",
    ]
    assert (await apply_document(client, text)).steps == []


async def test_dry_run_plans_and_changes_nothing(client: httpx.AsyncClient, other: httpx.AsyncClient) -> None:
    names = await build_configuration(client)
    exported = await export_document(client)
    await prerequisites(other, flags=[names["flag"]], accounts=[names["account"]])
    before = await export_document(other)

    planned = await apply_document(other, exported, dry_run=True, environ=_channel_env())

    assert len(planned.steps) == 8  # 2 endpoints, 2 sets, 1 policy, 1 budget, 2 channels
    assert planned.report()[-1].endswith("(dry run: nothing changed)")
    assert await export_document(other) == before


async def test_changes_are_updates_and_prune_deletes_only_what_the_file_does_not_name(
    client: httpx.AsyncClient,
) -> None:
    names = await build_configuration(client)
    document = yaml.safe_load(await export_document(client))
    project = document["projects"][0]
    project["actionSets"] = [s for s in project["actionSets"] if s["name"] == "kill switch"]
    project["actionSets"][0]["enabled"] = False
    del project["actionSets"][0]["policy"]
    project["notificationChannels"] = [c for c in project["notificationChannels"] if c["name"] == "audit"]
    document["signalEndpoints"] = [e for e in document["signalEndpoints"] if e["name"] == names["alerts"]]
    text = yaml.safe_dump(document)

    kept = await apply_document(client, text, environ=_channel_env())
    assert [s.describe() for s in kept.steps] == [
        "update action set default/kill switch",
        "delete policy default/kill switch",
    ]
    left = yaml.safe_load(await export_document(client))
    assert len(left["projects"][0]["actionSets"]) == 2  # not pruned: "recover" is still there
    assert len(left["signalEndpoints"]) == 2

    pruned = await apply_document(client, text, prune=True, environ=_channel_env())
    assert [s.describe() for s in pruned.steps] == [
        "delete notification channel default/ops slack",
        "delete action set default/recover",
        f"delete signal endpoint {names['quiet']}",
    ]
    assert await export_document(client) == _render(document)
    assert (await apply_document(client, text, prune=True, environ=_channel_env())).steps == []


async def test_a_missing_service_account_flag_or_endpoint_changes_nothing(client: httpx.AsyncClient) -> None:
    await prerequisites(client, flags=["checkout"], accounts=["bot"])
    good = {
        "apiVersion": "switchman/v1",
        "signalEndpoints": [{"name": "pager"}],
        "projects": [
            {
                "id": "default",
                "actionSets": [
                    {
                        "name": "off",
                        "actor": "bot",
                        "match": {"source": "signal-endpoint", "endpoint": "pager"},
                        "actions": [
                            {
                                "action": "TOGGLE_FEATURE_OFF",
                                "executionParams": {
                                    "project": "default",
                                    "environment": "production",
                                    "featureName": "checkout",
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    cases = [
        (
            ("actor",),
            "nobody",
            "projects[0].actionSets[0] (off).actor: no service account with username 'nobody'",
        ),
        (("match", "endpoint"), "elsewhere", "no signal endpoint 'elsewhere'"),
        (
            ("actions",),
            [
                {
                    "action": "TOGGLE_FEATURE_OFF",
                    "executionParams": {
                        "project": "default",
                        "environment": "production",
                        "featureName": "ghost",
                    },
                }
            ],
            "no flag 'ghost'",
        ),
    ]
    before = await export_document(client)
    for path, value, message in cases:
        document = yaml.safe_load(yaml.safe_dump(good))
        target = document["projects"][0]["actionSets"][0]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(
            RemoteError,
            match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]"),
        ):
            await apply_document(client, yaml.safe_dump(document))
        assert await export_document(client) == before  # the endpoint was not created either


async def test_an_unset_channel_url_variable_is_a_document_error(client: httpx.AsyncClient) -> None:
    text = """
apiVersion: switchman/v1
projects:
  - id: default
    notificationChannels:
      - {name: ops, kind: slack, url: "${NOT_SET_ANYWHERE}"}
"""
    with pytest.raises(
        DocumentError,
        match=r"projects\[0\]\.notificationChannels\[0\]\.url: environment variable NOT_SET_ANYWHERE is not set",
    ):
        await apply_document(client, text, environ={})


async def test_an_unknown_project_is_refused(client: httpx.AsyncClient) -> None:
    with pytest.raises(RemoteError, match=r"projects\[0\]\.id: project 'nope' does not exist"):
        await apply_document(client, "apiVersion: switchman/v1\nprojects: [{id: nope}]\n")


async def test_a_bad_token_is_one_clear_error(anon: httpx.AsyncClient) -> None:
    with pytest.raises(RemoteError, match="refused the token in SWITCHMAN_API_TOKEN"):
        await export_document(anon)


async def _endpoint_id(client: httpx.AsyncClient, name: str) -> int:
    listed = (await client.get(SIGNAL_ENDPOINTS)).json()["signalEndpoints"]
    return int(next(e["id"] for e in listed if e["name"] == name))


def _render(document: dict[str, object]) -> str:
    from switchman.config_as_code.document import normalise, render

    return render(normalise(document))


async def test_a_change_the_server_refuses_stops_there_and_says_which_and_why(
    client: httpx.AsyncClient,
) -> None:
    await prerequisites(client, flags=["checkout"], accounts=["bot"])
    text = """
apiVersion: switchman/v1
signalEndpoints: [{name: pager}]
projects:
  - id: default
    actionSets:
      - name: broken
        actor: bot
        match: {source: signal-endpoint, endpoint: pager, payload: {severity: {operator: NOT_AN_OPERATOR, values: [x]}}}
        actions: [{action: TOGGLE_FEATURE_OFF, executionParams: {project: default, environment: production, featureName: checkout}}]
"""
    with pytest.raises(RemoteError) as raised:
        await apply_document(client, text)
    message = str(raised.value)
    assert message.startswith(
        "create action set default/broken: POST /api/admin/projects/default/actions failed with 400"
    )
    assert "NOT_AN_OPERATOR" in message or "operator" in message
    assert message.endswith("(1 of 2 step(s) done before)")
    # What was done stays done; applying a fixed document continues from there.
    fixed = text.replace("NOT_AN_OPERATOR", "IN")
    assert [s.describe() for s in (await apply_document(client, fixed)).steps] == [
        "create action set default/broken"
    ]


async def test_with_prune_a_set_may_not_name_an_endpoint_the_document_leaves_out(
    client: httpx.AsyncClient,
) -> None:
    await prerequisites(client, flags=["checkout"], accounts=["bot"])
    await client.post(SIGNAL_ENDPOINTS, json={"name": "made-by-hand"})
    text = """
apiVersion: switchman/v1
projects:
  - id: default
    actionSets:
      - name: uses the hand-made endpoint
        actor: bot
        match: {source: signal-endpoint, endpoint: made-by-hand}
        actions: [{action: TOGGLE_FEATURE_OFF, executionParams: {project: default, environment: production, featureName: checkout}}]
"""
    before = await export_document(client)
    with pytest.raises(
        RemoteError, match=r"no signal endpoint 'made-by-hand' in the document \(--prune deletes"
    ):
        await apply_document(client, text, prune=True)
    assert await export_document(client) == before
    assert [s.describe() for s in (await apply_document(client, text)).steps] == [
        "create action set default/uses the hand-made endpoint"
    ]
