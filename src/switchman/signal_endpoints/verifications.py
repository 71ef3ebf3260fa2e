"""An endpoint's signature verification (switchman's sub-resource, ADR 0020): stored sealed, audited.

Functions run inside the caller's transaction. The signing secret is sealed with the server's
`SecretBox` before it is stored and never leaves the server again: not in answers, not in audit events.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit.log import record_event
from switchman.auth.principal import Principal
from switchman.db import tables as t
from switchman.errors import BadDataError, ConflictError, NotFoundError
from switchman.secret_box import SecretBox, SecretBoxError
from switchman.signal_endpoints.schemas import (
    SetSignalEndpointVerificationSchema,
    SignalEndpointVerificationSchema,
)
from switchman.signal_endpoints.service import require_endpoint
from switchman.signal_endpoints.verification import (
    DEFAULT_HMAC_HEADER,
    DEFAULT_TOLERANCE_SECONDS,
    TIMED_SCHEMES,
    Scheme,
    SecretError,
    Verifier,
    secret_key,
)
from switchman.timeutil import iso, utcnow

VERIFICATION_SET = "signal-endpoint-verification-set"
VERIFICATION_REMOVED = "signal-endpoint-verification-removed"
_table = t.signal_endpoint_verification
_REASON_MAX = 255


def _schema(row: sa.Row[tuple[object, ...]]) -> SignalEndpointVerificationSchema:
    m = row._mapping
    return SignalEndpointVerificationSchema(
        signal_endpoint_id=m["signal_endpoint_id"],
        scheme=m["scheme"],
        header=m["header"],
        timestamp_header=m["timestamp_header"],
        tolerance_seconds=m["tolerance_seconds"],
        failures=m["failures"],
        last_failure_at=iso(m["last_failure_at"]) if m["last_failure_at"] else None,
        last_failure_reason=m["last_failure_reason"],
        created_at=iso(m["created_at"]),
        updated_at=iso(m["updated_at"]),
    )


async def _row(conn: AsyncConnection, endpoint_id: int) -> sa.Row[tuple[object, ...]] | None:
    result = await conn.execute(sa.select(_table).where(_table.c.signal_endpoint_id == endpoint_id))
    return result.first()


async def get_verification(conn: AsyncConnection, endpoint_id: int) -> SignalEndpointVerificationSchema:
    await require_endpoint(conn, endpoint_id)
    row = await _row(conn, endpoint_id)
    if row is None:
        raise NotFoundError(f"Signal endpoint {endpoint_id} has no signature verification.")
    return _schema(row)


async def set_verification(
    conn: AsyncConnection,
    *,
    endpoint_id: int,
    payload: SetSignalEndpointVerificationSchema,
    actor: Principal,
    box: SecretBox | None,
) -> SignalEndpointVerificationSchema:
    """Create or replace the endpoint's verification; the failure count starts again."""
    await require_endpoint(conn, endpoint_id)
    scheme = Scheme(payload.scheme)
    if scheme == Scheme.SNS:
        if payload.secret is not None:
            raise BadDataError(
                "The sns scheme verifies SNS's certificate signature: it takes no secret.",
                details=[{"path": "/secret", "message": "not for sns"}],
            )
    else:
        if payload.secret is None:
            raise BadDataError(
                f"The {scheme} scheme needs the sender's signing secret.",
                details=[{"path": "/secret", "message": "is required for this scheme"}],
            )
        if box is None:
            raise ConflictError(
                "This server has no SWITCHMAN_SECRET_KEY, so it cannot keep a signing secret. Set one "
                "(`switchman secrets new-key` prints a key) and restart."
            )
        try:
            secret_key(scheme, payload.secret)
        except SecretError as exc:
            raise BadDataError(
                f"The secret is not usable for {scheme}: it {exc}.",
                details=[{"path": "/secret", "message": str(exc)}],
            ) from None
    allowed_by_field = {
        "header": {Scheme.HMAC_SHA256},
        "timestampHeader": {Scheme.HMAC_SHA256},
        "toleranceSeconds": set(TIMED_SCHEMES),
    }
    for camel, allowed in allowed_by_field.items():
        value = getattr(
            payload,
            {"timestampHeader": "timestamp_header", "toleranceSeconds": "tolerance_seconds"}.get(
                camel, camel
            ),
        )
        if value is not None and scheme not in allowed:
            names = ", ".join(sorted(allowed))
            raise BadDataError(
                f"`{camel}` applies to the {names} scheme(s) only.",
                details=[{"path": f"/{camel}", "message": f"only for {names}"}],
            )
    now = utcnow()
    values = {
        "scheme": str(scheme),
        # sns has no secret: nothing to seal (and no key needed)
        "sealed_secret": box.seal(payload.secret.encode()) if box is not None and payload.secret else "",
        "header": (payload.header or DEFAULT_HMAC_HEADER) if scheme == Scheme.HMAC_SHA256 else None,
        "timestamp_header": payload.timestamp_header,
        "tolerance_seconds": payload.tolerance_seconds or DEFAULT_TOLERANCE_SECONDS,
        "failures": 0,
        "last_failure_at": None,
        "last_failure_reason": None,
        "updated_at": now,
    }
    before = await _row(conn, endpoint_id)
    if before is None:
        await conn.execute(_table.insert().values(signal_endpoint_id=endpoint_id, created_at=now, **values))
    else:
        await conn.execute(_table.update().where(_table.c.signal_endpoint_id == endpoint_id).values(**values))
    row = await _row(conn, endpoint_id)
    assert row is not None
    await record_event(
        conn,
        type=VERIFICATION_SET,
        actor=actor,
        visible_to_clients=False,
        data={"signalEndpointId": endpoint_id, "scheme": values["scheme"], "header": values["header"]},
        pre_data={"scheme": before._mapping["scheme"]} if before is not None else None,
    )
    return _schema(row)


async def delete_verification(conn: AsyncConnection, *, endpoint_id: int, actor: Principal) -> None:
    await require_endpoint(conn, endpoint_id)
    before = await _row(conn, endpoint_id)
    if before is None:
        raise NotFoundError(f"Signal endpoint {endpoint_id} has no signature verification.")
    await conn.execute(_table.delete().where(_table.c.signal_endpoint_id == endpoint_id))
    await record_event(
        conn,
        type=VERIFICATION_REMOVED,
        actor=actor,
        visible_to_clients=False,
        pre_data={"signalEndpointId": endpoint_id, "scheme": before._mapping["scheme"]},
    )


def verifier_from(
    *,
    scheme: str,
    sealed: str,
    header: str | None,
    tolerance: int,
    timestamp_header: str | None,
    box: SecretBox | None,
) -> Verifier:
    """A stored verification's verifier. Raises SecretBoxError or SecretError when its secret cannot be
    opened or used (the caller then refuses every call, see `EndpointRules`)."""
    if scheme == Scheme.SNS:
        return Verifier(Scheme.SNS, b"")
    if box is None:
        raise SecretBoxError("no SWITCHMAN_SECRET_KEY is configured to open the signing secret")
    key = secret_key(Scheme(scheme), box.open(sealed).decode())
    return Verifier(Scheme(scheme), key, header or DEFAULT_HMAC_HEADER, tolerance, timestamp_header)


async def reseal_all(conn: AsyncConnection, box: SecretBox) -> int:
    """Seal every signing secret with the box's current key (after a key rotation); how many changed.
    All or nothing: a secret no configured key opens raises SecretBoxError and the caller rolls back."""
    rows = (await conn.execute(sa.select(_table.c.signal_endpoint_id, _table.c.sealed_secret))).all()
    changed = 0
    for endpoint_id, sealed in rows:
        if not sealed or box.sealed_with_current(sealed):  # sns keeps no secret
            continue
        resealed = box.seal(box.open(sealed))
        await conn.execute(
            _table.update().where(_table.c.signal_endpoint_id == endpoint_id).values(sealed_secret=resealed)
        )
        changed += 1
    return changed


async def record_failures(
    conn: AsyncConnection, *, endpoint_id: int, count: int, reason: str, at: datetime
) -> None:
    await conn.execute(
        _table.update()
        .where(_table.c.signal_endpoint_id == endpoint_id)
        .values(
            failures=_table.c.failures + count,
            last_failure_at=at,
            last_failure_reason=reason[:_REASON_MAX],
        )
    )
