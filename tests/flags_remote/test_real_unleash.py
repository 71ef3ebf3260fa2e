"""UnleashFlagBackend against a real Unleash OSS 8.2.0 server, checked through Unleash's own API and event log.

The server is the session's one (tests/unleash_oss.py): installed once into `<repo>/.cache/unleash-oss`
(or `SWITCHMAN_TEST_UNLEASH_DIR`), started on a free port with a throw-away PostgreSQL database. These
tests FAIL, not skip, when npm or the install is missing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from switchman.auth.permissions import EDITOR_ROLE_ID, VIEWER_ROLE_ID, permissions_of_role
from switchman.auth.principal import Principal, PrincipalKind
from switchman.config import ConfigurationError
from switchman.engine.actions import ToggleCommand
from switchman.flags.backend import ActionOptions, FlagActionError, ToggleReport
from switchman.flags.factory import check_flag_backend
from switchman.flags.unleash import UnleashFlagBackend
from tests.conftest import make_settings
from tests.unleash_oss import ADMIN_TOKEN, ADMIN_TOKEN_USER_ID, CLIENT_TOKEN, admin_call, free_port

EDITOR = Principal(
    kind=PrincipalKind.SERVICE_ACCOUNT,
    user_id=5,
    username="incident-bot",
    permissions=permissions_of_role(EDITOR_ROLE_ID),
    root_role=EDITOR_ROLE_ID,
)
VIEWER = Principal(
    kind=PrincipalKind.SERVICE_ACCOUNT,
    user_id=6,
    username="read-only-bot",
    permissions=permissions_of_role(VIEWER_ROLE_ID),
    root_role=VIEWER_ROLE_ID,
)

TAG = ("simple", "kill-switch")
COLON_TAG = ("simple", "team:payments")


@pytest.fixture(scope="module")
def flags(unleash_url: str) -> dict[str, str]:
    """Flags created through Unleash's admin API, by role."""
    names = {
        "single": "checkout-v2",
        "tagged_a": "payments-a",
        "tagged_b": "payments-b",
        "other_tag": "search-v3",
        "archived": "legacy-tagged",
        "colon": "colon-tagged",
    }
    with httpx.Client(base_url=unleash_url, headers={"Authorization": ADMIN_TOKEN}, timeout=30) as http:
        for name in names.values():
            admin_call(
                http, "POST", "/api/admin/projects/default/features", json={"name": name, "type": "release"}
            )
        for key in ("tagged_a", "tagged_b", "archived"):
            admin_call(
                http, "POST", f"/api/admin/features/{names[key]}/tags", json={"type": TAG[0], "value": TAG[1]}
            )
        admin_call(
            http,
            "POST",
            f"/api/admin/features/{names['other_tag']}/tags",
            json={"type": "simple", "value": "other"},
        )
        admin_call(
            http,
            "POST",
            f"/api/admin/features/{names['colon']}/tags",
            json={"type": COLON_TAG[0], "value": COLON_TAG[1]},
        )
        admin_call(http, "DELETE", f"/api/admin/projects/default/features/{names['archived']}")
    return names


@pytest.fixture
async def remote(unleash_url: str) -> AsyncIterator[UnleashFlagBackend]:
    backend = UnleashFlagBackend(unleash_url, ADMIN_TOKEN, timeout=10.0)
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def admin(unleash_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=unleash_url, headers={"Authorization": ADMIN_TOKEN}, timeout=30
    ) as http:
        yield http


async def enabled_in(admin: httpx.AsyncClient, feature: str, environment: str) -> bool:
    response = await admin.get(f"/api/admin/projects/default/features/{feature}")
    assert response.status_code == 200, response.text
    states = {env["name"]: env["enabled"] for env in response.json()["environments"]}
    return bool(states[environment])


async def events_of(admin: httpx.AsyncClient, feature: str) -> list[dict[str, Any]]:
    """The feature's audit events, oldest first."""
    response = await admin.get(f"/api/admin/events/{feature}")
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["events"]))


async def test_on_and_off_change_the_flag_and_land_in_unleash_event_log(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    name = flags["single"]
    assert not await enabled_in(admin, name, "production")

    await remote.toggle(
        EDITOR,
        ToggleCommand.one_flag(project="default", environment="production", feature_name=name, enabled=True),
    )
    assert await enabled_in(admin, name, "production")
    assert not await enabled_in(admin, name, "development")
    events = await events_of(admin, name)
    assert [e["type"] for e in events][-2:] == ["feature-strategy-add", "feature-environment-enabled"]
    enabled_event = events[-1]
    assert enabled_event["environment"] == "production"
    assert enabled_event["project"] == "default"
    # The remote audit names switchman's token user, not the acting service account (ADR 0007).
    assert enabled_event["createdByUserId"] == ADMIN_TOKEN_USER_ID

    # Turning on a flag that is on is a success and Unleash records nothing.
    await remote.toggle(
        EDITOR,
        ToggleCommand.one_flag(project="default", environment="production", feature_name=name, enabled=True),
    )
    assert len(await events_of(admin, name)) == len(events)

    await remote.toggle(
        EDITOR,
        ToggleCommand.one_flag(project="default", environment="production", feature_name=name, enabled=False),
    )
    assert not await enabled_in(admin, name, "production")
    last = (await events_of(admin, name))[-1]
    assert (last["type"], last["environment"]) == ("feature-environment-disabled", "production")


async def test_by_tag_toggles_only_live_flags_carrying_the_tag(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    report = await remote.toggle(
        EDITOR,
        ToggleCommand.by_tag(
            project="default", environment="development", enabled=True, tag=(TAG[0], TAG[1])
        ),
    )
    assert report == ToggleReport(features=tuple(sorted((flags["tagged_a"], flags["tagged_b"]))))
    assert await enabled_in(admin, flags["tagged_a"], "development")
    assert await enabled_in(admin, flags["tagged_b"], "development")
    assert not await enabled_in(admin, flags["tagged_a"], "production")
    assert not await enabled_in(admin, flags["other_tag"], "development")
    archived_types = [e["type"] for e in await events_of(admin, flags["archived"])]
    assert "feature-environment-enabled" not in archived_types
    assert "feature-archived" in archived_types

    report = await remote.toggle(
        EDITOR,
        ToggleCommand.by_tag(
            project="default", environment="development", enabled=False, tag=(TAG[0], TAG[1])
        ),
    )
    assert len(report.features) == 2
    for key in ("tagged_a", "tagged_b"):
        assert not await enabled_in(admin, flags[key], "development")
        last = (await events_of(admin, flags[key]))[-1]
        assert (last["type"], last["environment"]) == ("feature-environment-disabled", "development")


async def test_by_tag_value_with_a_colon_works_despite_unleash_filter(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    # Unleash 8.2 answers 500 to `?tag=simple:team:payments`; the backend matches such tags itself.
    broken = await admin.get("/api/admin/projects/default/features", params={"tag": ":".join(COLON_TAG)})
    assert broken.status_code == 500
    report = await remote.toggle(
        EDITOR,
        ToggleCommand.by_tag(
            project="default", environment="production", enabled=True, tag=(COLON_TAG[0], COLON_TAG[1])
        ),
    )
    assert report == ToggleReport(features=(flags["colon"],))
    assert await enabled_in(admin, flags["colon"], "production")


async def test_by_tag_without_tagged_flags_is_success_unless_project_unknown(
    remote: UnleashFlagBackend, flags: dict[str, str]
) -> None:
    report = await remote.toggle(
        EDITOR,
        ToggleCommand.by_tag(
            project="default", environment="production", enabled=True, tag=("simple", "nobody")
        ),
    )
    assert report == ToggleReport(features=())
    with pytest.raises(FlagActionError) as caught:
        await remote.toggle(
            EDITOR,
            ToggleCommand.by_tag(
                project="payments", environment="production", enabled=True, tag=(TAG[0], TAG[1])
            ),
        )
    assert str(caught.value) == 'Could not find project with id "payments" on the Unleash server.'


async def test_by_tag_in_unknown_environment_lists_every_failed_flag(
    remote: UnleashFlagBackend, flags: dict[str, str]
) -> None:
    with pytest.raises(FlagActionError) as caught:
        await remote.toggle(
            EDITOR,
            ToggleCommand.by_tag(
                project="default", environment="staging", enabled=True, tag=(TAG[0], TAG[1])
            ),
        )
    a, b = sorted((flags["tagged_a"], flags["tagged_b"]))
    assert str(caught.value) == (
        f"Could not turn on 2 of 2 flags tagged {TAG[0]}:{TAG[1]} in staging "
        f"({a}: Could not find environment staging for feature: {a}; "
        f"{b}: Could not find environment staging for feature: {b})"
    )


@pytest.mark.parametrize(
    ("feature", "environment", "message"),
    [
        ("does-not-exist", "production", 'There\'s no feature named "does-not-exist" in project "default".'),
        ("a/../b", "production", 'There\'s no feature named "a/../b" in project "default".'),
        ("..", "production", 'There\'s no feature named ".." in project "default".'),
        ("checkout-v2", "nope", "Could not find environment nope for feature: checkout-v2"),
    ],
)
async def test_unleash_not_found_messages_become_the_failure(
    remote: UnleashFlagBackend, flags: dict[str, str], feature: str, environment: str, message: str
) -> None:
    with pytest.raises(FlagActionError) as caught:
        await remote.toggle(
            EDITOR,
            ToggleCommand.one_flag(
                project="default", environment=environment, feature_name=feature, enabled=True
            ),
        )
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (
            "*:*.not-the-right-secret",
            "The Unleash server refused switchman's API token (HTTP 401): You must log in to use Unleash.",
        ),
        (
            CLIENT_TOKEN,
            "The Unleash server refused switchman's API token (HTTP 403): "
            "invalid token: expected a different token type for this endpoint",
        ),
    ],
)
async def test_refused_token_is_reported_without_the_token(
    unleash_url: str, flags: dict[str, str], token: str, message: str
) -> None:
    backend = UnleashFlagBackend(unleash_url, token, timeout=10.0)
    try:
        with pytest.raises(FlagActionError) as caught:
            await backend.toggle(
                EDITOR,
                ToggleCommand.one_flag(
                    project="default", environment="production", feature_name=flags["single"], enabled=True
                ),
            )
    finally:
        await backend.close()
    assert str(caught.value) == message
    assert token not in str(caught.value)


async def test_viewer_changes_nothing_on_the_server(
    remote: UnleashFlagBackend, admin: httpx.AsyncClient, flags: dict[str, str]
) -> None:
    name = flags["other_tag"]
    before = await events_of(admin, name)
    with pytest.raises(FlagActionError, match='"UPDATE_FEATURE_ENVIRONMENT" permission'):
        await remote.toggle(
            VIEWER,
            ToggleCommand.one_flag(
                project="default", environment="production", feature_name=name, enabled=True
            ),
        )
    assert not await enabled_in(admin, name, "production")
    assert await events_of(admin, name) == before


def _remote_settings(url: str, token: str) -> Any:
    return make_settings(
        "sqlite:///./unused.db", flag_backend="unleash", unleash_url=url, unleash_api_token=token
    )


async def test_start_up_probe_accepts_the_admin_token(
    unleash_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="switchman.flags.factory"):
        await check_flag_backend(_remote_settings(unleash_url, ADMIN_TOKEN))
    assert f"the Unleash server at {unleash_url} accepted the API token" in caplog.text


@pytest.mark.parametrize(
    ("path", "token", "expected"),
    [
        ("", "*:*.not-the-right-secret", "refused SWITCHMAN_UNLEASH_API_TOKEN (HTTP 401: You must log in"),
        (
            "",
            CLIENT_TOKEN,
            "does not let SWITCHMAN_UNLEASH_API_TOKEN use its admin API (HTTP 403: invalid token",
        ),
        (
            "/unleash",
            ADMIN_TOKEN,
            "does not look like an Unleash server: GET /api/admin/projects answered HTTP 200 (text/html)",
        ),
    ],
)
async def test_start_up_probe_names_what_is_wrong(
    unleash_url: str, path: str, token: str, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await check_flag_backend(_remote_settings(unleash_url + path, token))
    assert expected in str(caught.value)
    assert token not in str(caught.value)


async def test_start_up_probe_only_warns_when_unleash_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="switchman.flags.factory"):
        await check_flag_backend(_remote_settings(url, ADMIN_TOKEN))
    assert f"could not reach the Unleash server at {url}" in caplog.text
    assert "starting anyway" in caplog.text


async def test_action_options_list_the_remote_project(
    remote: UnleashFlagBackend, flags: dict[str, str]
) -> None:
    options = await remote.action_options("default")
    assert options.environments == ("development", "production")
    live = {flags[key] for key in ("single", "tagged_a", "tagged_b", "other_tag", "colon")}
    assert live <= set(options.features)
    assert flags["archived"] not in options.features
    assert {"simple:kill-switch", "simple:other", "simple:team:payments"} <= set(options.tags)
    assert options == ActionOptions(
        environments=options.environments, features=tuple(sorted(options.features)), tags=options.tags
    )
