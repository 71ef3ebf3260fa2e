"""Run outcomes reach the receivers (ADR 0027): a real run writes the outbox in its transaction, the
dispatcher delivers it over a process edge (httpx.MockTransport), retries, gives up, logs every attempt."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from switchman.notifications.dispatcher import Dispatcher, backoff_seconds
from switchman.notifications.service import reseal_all
from switchman.runtime import Runtime
from switchman.secret_box import SecretBox, new_key, parse_key
from switchman.timeutil import utcnow
from switchman.worker.loop import SignalWorker
from tests.conftest import make_settings
from tests.factories import list_events
from tests.notifications.conftest import CHANNELS, KEY, Receiver, add_channel, never, outbox
from tests.worker.conftest import Scenario, drain, toggle

ACTIONS = "/api/admin/projects/default/actions"


def dispatcher_of(app: FastAPI, receiver: Receiver) -> Dispatcher:
    ctx: Runtime = app.state.runtime
    return Dispatcher(settings=ctx.settings, db=ctx.db, box=ctx.secret_box, transport=receiver.transport())


async def one_run(client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker) -> tuple[int, int]:
    """A filterless set turning the scenario's flag on, run by one signal: (set id, event id)."""
    set_id = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_ON", scenario.feature, 1)])
    await scenario.send(client, {"status": "firing"})
    await drain(worker)
    [event] = await list_events(client, set_id)
    return set_id, int(event["id"])


def expected_signature(secret: str, request: httpx.Request) -> str:
    """Standard Webhooks, computed here independently of switchman.notifications.signing."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = b".".join([request.headers["webhook-id"].encode(), request.headers["webhook-timestamp"].encode(),
                        request.content])  # fmt: skip
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


async def deliveries(client: httpx.AsyncClient, channel_id: int) -> list[dict[str, Any]]:
    answer = await client.get(f"{CHANNELS}/{channel_id}/deliveries")
    assert answer.status_code == 200, answer.text
    listed: list[dict[str, Any]] = answer.json()["deliveries"]
    return listed


async def test_a_run_is_announced_to_a_signed_webhook(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    channel = await add_channel(client, name="hook", url="https://receiver.test/hook")
    set_id, event_id = await one_run(client, scenario, worker)

    [message] = await outbox(app.state.runtime.db)  # committed with the run, before any delivery
    assert (message.event_type, message.state, message.attempts) == ("success", "pending", 0)
    assert message.webhook_id.startswith("msg_")

    dispatcher = dispatcher_of(app, receiver)
    try:
        assert await dispatcher.dispatch_once() == 1
        assert await dispatcher.dispatch_once() == 0  # delivered: nothing left
    finally:
        await dispatcher.close()
    [request] = receiver.requests
    assert str(request.url) == "https://receiver.test/hook"
    assert request.headers["webhook-id"] == message.webhook_id
    assert abs(int(request.headers["webhook-timestamp"]) - utcnow().timestamp()) < 3600
    assert request.headers["webhook-signature"] == expected_signature(channel["signingSecret"], request)
    body = json.loads(request.content)
    assert body["type"] == "action-set-event.success"
    data = body["data"]
    assert (data["project"], data["actionSetId"], data["eventId"], data["state"]) == (
        "default", set_id, event_id, "success"
    )  # fmt: skip
    assert data["actions"] == [
        {"action": "TOGGLE_FEATURE_ON", "environment": "production", "state": "success", "details": None,
         "featureName": scenario.feature},
    ]  # fmt: skip
    assert data["url"] == f"http://switchman.test/ui/projects/default/actions/{set_id}"

    [logged] = await deliveries(client, channel["id"])
    assert logged["webhookId"] == message.webhook_id and logged["statusCode"] == 200
    assert (logged["attempt"], logged["messageState"], logged["event"]) == (1, "delivered", "success")


async def test_only_the_channels_that_want_an_outcome_get_it_and_slack_reads_well(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    other_set = await scenario.add_set(client, [toggle("TOGGLE_FEATURE_OFF", scenario.other_feature, 1)],
                                       filters={"never": {"operator": "IN", "values": ["x"]}})  # fmt: skip
    await add_channel(client, name="failures-only", events=["failure"])
    await add_channel(client, name="other-set", actionSetIds=[other_set])
    await add_channel(client, name="off", enabled=False)
    slack = await add_channel(
        client, name="slack", kind="slack", url="https://hooks.slack.test/services/T/B/s3cr3t"
    )
    await one_run(client, scenario, worker)

    messages = await outbox(app.state.runtime.db)
    assert [m.channel_id for m in messages] == [slack["id"]]
    dispatcher = dispatcher_of(app, receiver)
    try:
        await dispatcher.dispatch_once()
    finally:
        await dispatcher.close()
    [request] = receiver.requests
    assert str(request.url) == "https://hooks.slack.test/services/T/B/s3cr3t"
    body = json.loads(request.content)
    assert "ran" in body["text"] and "default" in body["text"]
    blocks = json.dumps(body["blocks"])
    assert scenario.feature in blocks and "production" in blocks and "success" in blocks
    assert "http://switchman.test/ui/projects/default/actions/" in blocks


async def test_a_failed_attempt_is_retried_with_backoff_and_the_same_id(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    channel = await add_channel(client, name="flaky")
    await one_run(client, scenario, worker)
    receiver.answers = [500, 204]
    dispatcher = dispatcher_of(app, receiver)
    try:
        before = utcnow()
        assert await dispatcher.dispatch_once() == 1
        [message] = await outbox(app.state.runtime.db)
        assert (message.state, message.attempts) == ("pending", 1)
        base = app.state.runtime.settings.notification_retry_base_seconds
        assert before + timedelta(seconds=base / 2) <= message.due_at <= utcnow() + timedelta(seconds=base)
        assert await dispatcher.dispatch_once() == 0  # not due yet
        assert await dispatcher.dispatch_once(now=message.due_at) == 1
    finally:
        await dispatcher.close()
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message.webhook_id
    logged = await deliveries(client, channel["id"])
    assert [(d["attempt"], d["statusCode"], d["messageState"]) for d in logged] == [
        (2, 204, "delivered"), (1, 500, "delivered")
    ]  # fmt: skip


async def test_a_message_is_given_up_after_the_maximum_attempts(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    channel = await add_channel(client, name="gone")
    await one_run(client, scenario, worker)
    receiver.answers = [503]
    dispatcher = dispatcher_of(app, receiver)
    later = utcnow()
    try:
        for _ in range(3):  # notification_max_attempts=3 in these tests
            later += timedelta(hours=2)  # past any backoff
            assert await dispatcher.dispatch_once(now=later) == 1
        assert await dispatcher.dispatch_once(now=later + timedelta(days=1)) == 0
    finally:
        await dispatcher.close()
    [message] = await outbox(app.state.runtime.db)
    assert (message.state, message.attempts) == ("failed", 3) and message.finished_at is not None
    assert len(receiver.requests) == 3
    logged = await deliveries(client, channel["id"])
    assert [d["statusCode"] for d in logged] == [503, 503, 503]
    assert {d["messageState"] for d in logged} == {"failed"}


async def test_an_unreachable_receiver_is_logged_without_its_url(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}")

    channel = await add_channel(client, name="down", url="https://down.test/path/token-xyz")
    await one_run(client, scenario, worker)
    ctx: Runtime = app.state.runtime
    dispatcher = Dispatcher(
        settings=ctx.settings, db=ctx.db, box=ctx.secret_box, transport=httpx.MockTransport(refuse)
    )
    try:
        await dispatcher.dispatch_once()
    finally:
        await dispatcher.close()
    [logged] = await deliveries(client, channel["id"])
    assert logged["statusCode"] is None and logged["messageState"] == "pending"
    assert "ConnectError" in logged["error"] and "token-xyz" not in logged["error"]


async def test_a_claim_cut_by_a_crash_is_retaken_after_its_lease_with_the_same_id(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    await add_channel(client, name="crash")
    await one_run(client, scenario, worker)
    [message] = await outbox(app.state.runtime.db)
    hanging = Receiver(answers=[never])
    first = dispatcher_of(app, hanging)
    cut = asyncio.create_task(first.dispatch_once())
    await hanging.arrived.wait()  # the attempt is in flight: the message is claimed
    cut.cancel()  # the process dies mid-attempt: nothing is recorded
    await asyncio.gather(cut, return_exceptions=True)
    await first.close()

    second = dispatcher_of(app, receiver)
    try:
        assert await second.dispatch_once() == 0  # leased to the dead dispatcher
        [claimed] = await outbox(app.state.runtime.db)
        assert await second.dispatch_once(now=claimed.due_at) == 1
    finally:
        await second.close()
    assert (
        hanging.requests[0].headers["webhook-id"]
        == receiver.requests[0].headers["webhook-id"]
        == message.webhook_id
    )


async def test_a_hanging_receiver_does_not_hold_up_signal_processing(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    await add_channel(client, name="slow")
    set_id, _ = await one_run(client, scenario, worker)
    hanging = Receiver(answers=[never])
    dispatcher = dispatcher_of(app, hanging)
    delivering = asyncio.create_task(dispatcher.dispatch_once())
    try:
        await hanging.arrived.wait()
        await scenario.send(client, {"status": "firing again"})
        assert await drain(worker) == 1  # processed while the delivery hangs
        assert not delivering.done()
        assert len(await list_events(client, set_id)) == 2
        assert len(await outbox(app.state.runtime.db)) == 2  # the second run's message is queued behind
    finally:
        delivering.cancel()
        await asyncio.gather(delivering, return_exceptions=True)
        await dispatcher.close()


async def test_an_undo_is_announced(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    channel = await add_channel(client, name="undo", events=["undone"])
    set_id, event_id = await one_run(client, scenario, worker)
    assert await outbox(app.state.runtime.db) == []  # a success is not wanted
    undone = await client.post(f"{ACTIONS}/{set_id}/events/{event_id}/undo")
    assert undone.status_code == 200, undone.text
    [message] = await outbox(app.state.runtime.db)
    assert (message.channel_id, message.event_type) == (channel["id"], "undone")
    dispatcher = dispatcher_of(app, receiver)
    try:
        await dispatcher.dispatch_once()
    finally:
        await dispatcher.close()
    data = json.loads(receiver.requests[0].content)["data"]
    assert data["eventId"] == event_id and data["actionSetName"]
    assert data["restored"] == [
        {"featureName": scenario.feature, "environment": "production", "enabled": False}
    ]


def test_backoff_doubles_within_its_jitter_and_is_capped() -> None:
    for attempts, ceiling in [(1, 5.0), (2, 10.0), (3, 20.0), (30, 3600.0)]:
        wait = backoff_seconds(attempts, base=5.0)
        assert ceiling / 2 <= wait <= ceiling


async def test_after_a_key_rotation_the_resealed_channel_still_delivers(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    channel = await add_channel(client, name="rotated", url="https://receiver.test/rotated")
    await one_run(client, scenario, worker)
    ctx: Runtime = app.state.runtime
    new = new_key()
    async with ctx.db.transaction() as conn:
        assert await reseal_all(conn, SecretBox([parse_key(new), parse_key(KEY)])) == 1
    new_only = make_settings(ctx.settings.database_url, secret_key=new)
    dispatcher = Dispatcher(
        settings=new_only, db=ctx.db, box=SecretBox([parse_key(new)]), transport=receiver.transport()
    )
    try:
        assert await dispatcher.dispatch_once() == 1
    finally:
        await dispatcher.close()
    [request] = receiver.requests
    assert str(request.url) == "https://receiver.test/rotated"
    assert request.headers["webhook-signature"] == expected_signature(channel["signingSecret"], request)


async def test_a_delivery_logs_no_url(
    app: FastAPI,
    client: httpx.AsyncClient,
    scenario: Scenario,
    worker: SignalWorker,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_channel(client, name="quiet", kind="slack", url="https://hooks.slack.test/services/T/B/s3cr3t")
    await one_run(client, scenario, worker)
    receiver.answers = [500]
    dispatcher = dispatcher_of(app, receiver)
    caplog.set_level(logging.DEBUG)
    try:
        later = utcnow()
        for _ in range(3):  # up to the give-up, which is logged as a warning
            later += timedelta(hours=2)
            await dispatcher.dispatch_once(now=later)
    finally:
        await dispatcher.close()
    assert len(receiver.requests) == 3
    assert "given up" in caplog.text
    assert "s3cr3t" not in caplog.text and "hooks.slack.test" not in caplog.text
    with caplog.at_level(logging.INFO):  # other clients' requests are still logged by httpx
        async with httpx.AsyncClient(transport=receiver.transport()) as other:
            await other.get("https://elsewhere.test/visible")
    assert "elsewhere.test/visible" in caplog.text


async def test_finished_messages_are_pruned_after_the_retention_with_their_log(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker, receiver: Receiver
) -> None:
    delivered = await add_channel(client, name="ok")
    stuck = await add_channel(client, name="down", url="https://down.test/x")
    await one_run(client, scenario, worker)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500 if request.url.host == "down.test" else 200)

    ctx: Runtime = app.state.runtime
    dispatcher = Dispatcher(
        settings=ctx.settings, db=ctx.db, box=ctx.secret_box, transport=httpx.MockTransport(answer)
    )
    try:
        assert await dispatcher.dispatch_once() == 2
        days = ctx.settings.notification_retention_days
        assert await dispatcher.prune(now=utcnow() + timedelta(days=days) - timedelta(minutes=1)) == 0
        assert await dispatcher.prune(now=utcnow() + timedelta(days=days, minutes=1)) == 1
    finally:
        await dispatcher.close()
    [kept] = await outbox(ctx.db)
    assert (kept.channel_id, kept.state) == (stuck["id"], "pending")  # pending messages are never pruned
    assert await deliveries(client, delivered["id"]) == []
    assert len(await deliveries(client, stuck["id"])) == 1


async def test_a_receiver_that_never_answers_is_cut_at_the_timeout_and_retried(
    app: FastAPI, client: httpx.AsyncClient, scenario: Scenario, worker: SignalWorker
) -> None:
    channel = await add_channel(client, name="silent")
    await one_run(client, scenario, worker)
    ctx: Runtime = app.state.runtime
    short = make_settings(ctx.settings.database_url, secret_key=KEY, notification_timeout_seconds=0.2)
    hanging = Receiver(answers=[never])
    dispatcher = Dispatcher(settings=short, db=ctx.db, box=ctx.secret_box, transport=hanging.transport())
    try:
        assert await dispatcher.dispatch_once() == 1  # returns: the attempt was cut
    finally:
        await dispatcher.close()
    [logged] = await deliveries(client, channel["id"])
    assert logged["error"] == "no answer within 0.2 s" and logged["messageState"] == "pending"
