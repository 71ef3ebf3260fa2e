"""Unleash's official Python SDK reads a flag from a real Unleash that switchman drives.

The SDK polls `/api/client/features` every `REFRESH_INTERVAL` seconds; Unleash itself refreshes the
revision behind that payload once a second (its revision scheduler; ADR 0010). So the promise checked here is
the one the issue states: after a signal's 200, the SDK sees the flag off within refresh interval + 1 s.
Measured on the 2-core development machine (ADR 0010): toggle → SDK 0.41 to 1.45 s over 30 direct toggles;
the theoretical worst case is 1 s revision tick + 1 s poll + switchman's few milliseconds, reached only when
the signal lands just after an SDK poll. The test sends it half a poll after one, where the worst case is
1.5 s plus switchman's part, so the 2 s bound is checked with a margin instead of on a knife's edge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from UnleashClient import UnleashClient

from tests.conftest import unique
from tests.integration.conftest import Endpoint, action, create_action_set, final_event, send_signal
from tests.unleash_oss import PRODUCTION_CLIENT_TOKEN, UnleashServer, create_flag_on

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

REFRESH_INTERVAL = 1  # seconds, the SDK's smallest
BOUND = REFRESH_INTERVAL + 1.0
SEEN_ON_WAIT = 30.0  # a bound on a broken set-up, not a timing assertion


@pytest.fixture
def sdk(unleash_server: UnleashServer, tmp_path: Path) -> Iterator[UnleashClient]:
    client = UnleashClient(
        url=f"{unleash_server.url}/api",
        app_name=unique("switchman-sdk-test"),
        refresh_interval=REFRESH_INTERVAL,
        disable_metrics=True,
        disable_registration=True,
        custom_headers={"Authorization": PRODUCTION_CLIENT_TOKEN},
        cache_directory=str(tmp_path),
    )
    client.initialize_client()
    try:
        yield client
    finally:
        client.destroy()


async def test_sdk_sees_the_flag_off_within_its_refresh_interval_plus_one_second(
    client: httpx.AsyncClient,
    endpoint: Endpoint,
    unleash_server: UnleashServer,
    sdk: UnleashClient,
) -> None:
    name = unique("checkout")
    with unleash_server.admin() as unleash:
        create_flag_on(unleash, name, "production")
    set_id = await create_action_set(client, endpoint, [action("TOGGLE_FEATURE_OFF", featureName=name)])
    loop = asyncio.get_running_loop()
    give_up = loop.time() + SEEN_ON_WAIT
    while not sdk.is_enabled(name):
        assert loop.time() < give_up, "the SDK never saw the flag on"
        await asyncio.sleep(0.02)
    # The SDK has just polled. Send the signal half a poll later: a signal that arrives right after a
    # poll is the one phase in which Unleash's own 1 s revision tick plus the next two polls can reach
    # exactly refresh interval + 1 s, so the bound would then hinge on two HTTP round trips' jitter.
    await asyncio.sleep(REFRESH_INTERVAL / 2)

    signal_id = await send_signal(client, endpoint)
    acknowledged = loop.time()  # the signal's 200
    # Poll the SDK without blocking the event loop: the in-process worker runs on it.
    # The SDK updates from its own scheduler thread: there is no event to wait on, only its state to poll.
    while sdk.is_enabled(name) and loop.time() - acknowledged < SEEN_ON_WAIT:  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    seen_off_after = loop.time() - acknowledged
    log.info("the SDK saw the flag off %.3f s after the signal's 200", seen_off_after)

    assert not sdk.is_enabled(name), "the SDK never saw the flag off"
    assert (await final_event(client, set_id, signal_id))["state"] == "success"
    assert seen_off_after <= BOUND, f"the SDK saw the flag off {seen_off_after:.3f} s after the signal's 200"
