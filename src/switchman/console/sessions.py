"""Console sessions (ADR 0026): a sign-in with an API token becomes a random session id in a cookie.

The row keeps the session id's SHA-256, the credential's digest (never the token) and an expiry. Each
request re-resolves the credential from its digest, so a revoked or expired token ends its sessions at
once; sign-out deletes the row. The session's CSRF token is an HMAC of the session id: pages can show it
and requests are checked against it without storing it, and it is worthless without the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.auth.principal import Principal, PrincipalKind
from switchman.auth.service import authenticate, is_personal_token, principal_of_digest
from switchman.auth.tokens import hash_secret, strip_bearer
from switchman.db import tables as t
from switchman.errors import SwitchmanError, UnauthorizedError
from switchman.timeutil import utcnow

SESSION_HOURS = 8
_s = t.console_session


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str  # the token every state-changing request of this session must carry


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    """A random 256-bit value, URL-safe (session ids, CSRF tokens)."""
    return secrets.token_urlsafe(32)


def csrf_of(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"switchman console csrf", hashlib.sha256).hexdigest()


def csrf_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented CSRF token with the expected one."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


async def sign_in(conn: AsyncConnection, token: str) -> str:
    """Check `token` (an admin API token or a personal access token) and open a session: returns the
    session id for the cookie. 401 `UnauthorizedError` otherwise, also for SDK (client) tokens, which the
    console does not accept."""
    secret = strip_bearer(token.strip())
    if not secret:
        raise UnauthorizedError()
    principal = await authenticate(conn, secret)
    if principal.kind is PrincipalKind.CLIENT_TOKEN:
        raise UnauthorizedError()
    session_id = new_secret()
    now = utcnow()
    await conn.execute(
        sa.insert(_s).values(
            id_hash=_digest(session_id),
            credential_digest=hash_secret(secret),
            personal_token=is_personal_token(secret),
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )
    )
    await conn.execute(sa.delete(_s).where(_s.c.expires_at < now))  # expired sessions go on the way
    return session_id


async def resume(conn: AsyncConnection, session_id: str | None) -> Session | None:
    """The session of the cookie `session_id`, None when there is none, it expired, or its credential no
    longer exists or expired."""
    if not session_id:
        return None
    row = (await conn.execute(sa.select(_s).where(_s.c.id_hash == _digest(session_id)))).first()
    if row is None or row.expires_at <= utcnow():
        return None
    try:
        principal = await principal_of_digest(conn, row.credential_digest, personal=bool(row.personal_token))
    except SwitchmanError:
        return None
    return Session(principal, csrf_of(session_id))


async def sign_out(conn: AsyncConnection, session_id: str | None) -> None:
    if session_id:
        await conn.execute(sa.delete(_s).where(_s.c.id_hash == _digest(session_id)))
