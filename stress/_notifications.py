"""Notifications under faults (ADR 0027): a webhook channel on project `default`, a real local receiver.

Every run, restore, revert and undo of the stress scenarios is announced to one `webhook` channel (every
event) whose receiver — a small HTTP/1.1 server on loopback, in this process — records each delivery's
`webhook-id`, checks its Standard Webhooks signature, and answers 500 to about one call in ten so that
retries happen. Checked after the run, once the outbox has no pending message:
- every final run (`success`/`failed` event) has exactly one message, and every undo record one message
  (**nothing lost**: the message was written in the run's transaction);
- every message is `delivered` (none given up) and its `webhook-id` reached the receiver at least once
  (**at least once**); the receiver saw no id that is not in the outbox, and every delivery of an id was
  of the same message (**stable ids**: a re-send after a kill -9 carries the id it was given);
- every signature verified.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa

from stress._checks import Outcome, engine_for
from stress._procs import ADMIN_SECRET
from stress._scenario import PROJECT
from switchman.db import tables as t
from switchman.secret_box import new_key

SECRET_KEY = new_key()  # SWITCHMAN_SECRET_KEY of the run's processes: channels are stored sealed
# Settings of the run's processes: short attempts and retries, so a killed dispatcher's lease ends and
# a 500 is retried within the run.
ENV = {
    "SWITCHMAN_SECRET_KEY": SECRET_KEY,
    "SWITCHMAN_NOTIFICATION_TIMEOUT_SECONDS": "2",
    "SWITCHMAN_NOTIFICATION_RETRY_BASE_SECONDS": "0.2",
    "SWITCHMAN_NOTIFICATION_MAX_ATTEMPTS": "50",
    "SWITCHMAN_NOTIFICATION_POLL_SECONDS": "0.2",
}


@dataclass
class Receiver:
    failure_rate: float = 0.1
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    secret: str = ""
    bodies: dict[str, set[bytes]] = field(default_factory=lambda: defaultdict(set))
    received: Counter[str] = field(default_factory=Counter)
    answered_500: int = 0
    bad_signatures: int = 0
    port: int = 0
    connections: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _verify(self, headers: dict[str, str], body: bytes) -> bool:
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return hmac.compare_digest(expected, headers.get("webhook-signature", ""))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(writer)
        # Cancelled at the end of the run on a kept-alive connection: end quietly (Python 3.11's stream
        # callback reports a cancelled handler as an error).
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                webhook_id = headers.get("webhook-id", "")
                self.received[webhook_id] += 1
                self.bodies[webhook_id].add(body)
                if self.secret and not self._verify(headers, body):
                    self.bad_signatures += 1
                status = 500 if self.rng.random() < self.failure_rate else 200
                self.answered_500 += status == 500
                reason = b"OK" if status == 200 else b"Internal Server Error"
                writer.write(b"HTTP/1.1 %d %s\r\ncontent-length: 0\r\n\r\n" % (status, reason))
                await writer.drain()
        self.connections.discard(writer)
        writer.close()


@contextlib.asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver._serve, "127.0.0.1", 0)
    receiver.port = int(server.sockets[0].getsockname()[1])
    try:
        yield receiver
    finally:
        server.close()
        for writer in list(receiver.connections):  # kept-alive connections end with the run
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 5)


async def create_channel(base_url: str, receiver: Receiver) -> None:
    """One webhook channel of project `default` wanting every event; its secret goes to the receiver."""
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": ADMIN_SECRET}, timeout=30
    ) as admin:
        created = await admin.post(
            f"/api/admin/projects/{PROJECT}/notification-channels",
            json={"name": "stress-receiver", "kind": "webhook", "url": receiver.url},
        )
        if created.status_code != 201:
            raise RuntimeError(f"creating the notification channel: {created.status_code} {created.text}")
        receiver.secret = str(created.json()["signingSecret"])


async def check_notifications(
    database_url: str, receiver: Receiver, out: Outcome, *, timeout: float = 90.0
) -> dict[str, int]:
    """Add the broken promises to `out` (once the outbox has nothing pending); the figures."""
    engine = engine_for(database_url)
    o = t.notification_outbox
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with engine.connect() as conn:
                pending = (
                    await conn.execute(sa.select(sa.func.count()).where(o.c.state == "pending"))
                ).scalar_one()
            if pending == 0 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        async with engine.connect() as conn:
            messages = (await conn.execute(sa.select(o.c.webhook_id, o.c.event_type, o.c.state))).all()
            runs = (await conn.execute(
                sa.select(sa.func.count()).where(t.action_set_event.c.state.in_(["success", "failed"]))
            )).scalar_one()  # fmt: skip
            undos = (
                await conn.execute(sa.select(sa.func.count()).select_from(t.action_set_event_undo))
            ).scalar_one()
    finally:
        await engine.dispose()
    if pending:
        out.problem(f"notifications: {pending} message(s) still pending {timeout:g} s after the run")
    by_type = Counter(m.event_type for m in messages)
    run_messages = by_type["success"] + by_type["failure"]
    put_back = by_type["restored"] + by_type["reverted"] + by_type["undone"]
    if run_messages != runs:
        out.problem(f"notifications: {run_messages} run message(s) for {runs} finished run(s)")
    if put_back != undos:
        out.problem(f"notifications: {put_back} put-back message(s) for {undos} undo record(s)")
    ids = {m.webhook_id for m in messages}
    if len(ids) != len(messages):
        out.problem("notifications: two outbox messages share a webhook-id")
    failed = [m.webhook_id for m in messages if m.state == "failed"]
    if failed:
        out.problem(f"notifications: {len(failed)} message(s) given up, e.g. {failed[0]}")
    never = [
        m.webhook_id for m in messages if m.state == "delivered" and m.webhook_id not in receiver.received
    ]
    if never:
        out.problem(f"notifications: {len(never)} message(s) marked delivered never reached the receiver")
    unknown = set(receiver.received) - ids
    if unknown:
        out.problem(f"notifications: the receiver got {len(unknown)} webhook-id(s) not in the outbox")
    changed = [wid for wid, bodies in receiver.bodies.items() if len(bodies) > 1]
    if changed:
        out.problem(f"notifications: {len(changed)} webhook-id(s) were sent with different bodies")
    if receiver.bad_signatures:
        out.problem(f"notifications: {receiver.bad_signatures} delivery(ies) with a bad signature")
    return {
        "messages": len(messages),
        "run_messages": run_messages,
        "put_back_messages": put_back,
        "deliveries_received": sum(receiver.received.values()),
        "answered_500": receiver.answered_500,
        "received_more_than_once": sum(1 for n in receiver.received.values() if n > 1),
    }
