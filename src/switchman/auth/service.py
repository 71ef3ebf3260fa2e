"""Resolving an `Authorization` header to a Principal; creating the configured admin tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.auth import tokens
from switchman.auth.cache import PrincipalCache
from switchman.auth.permissions import ADMIN, permissions_of_role
from switchman.auth.principal import ADMIN_TOKEN_USER_ID, Principal, PrincipalKind
from switchman.db import tables as t
from switchman.db.engine import Database
from switchman.errors import (
    AuthenticationRequired,
    BadDataError,
    NoAccessError,
    PermissionDeniedError,
    UnauthorizedError,
)
from switchman.timeutil import utcnow

ADMIN_TOKEN_TYPE = "admin"
CLIENT_TOKEN_TYPES = ("client", "backend", "frontend")
API_TOKEN_TYPES = (ADMIN_TOKEN_TYPE, *CLIENT_TOKEN_TYPES)


async def authenticate(conn: AsyncConnection, header_value: str | None) -> Principal:
    """Missing header → AuthenticationRequired (401); unknown, expired or malformed → UnauthorizedError (401)."""
    secret = _secret_of(header_value)
    principal, _expires_at = await _lookup(conn, secret, tokens.hash_secret(secret), utcnow())
    return principal


async def authenticate_cached(db: Database, header_value: str | None, cache: PrincipalCache) -> Principal:
    """`authenticate`, answered from `cache` when the same secret was verified less than its TTL ago.

    On a hit no database connection is taken at all; see `auth.cache` for what stays exact.
    """
    secret = _secret_of(header_value)
    digest = tokens.hash_secret(secret)
    now = utcnow()
    cached = cache.get(digest, now) if cache.enabled else None
    if cached is not None:
        return cached
    async with db.read() as conn:
        principal, expires_at = await _lookup(conn, secret, digest, now)
    cache.put(digest, principal, expires_at)
    return principal


def admit_to_admin_api(principal: Principal, permission: str | None = None) -> Principal:
    """The admin API's one authorization rule, for its route dependencies and its fast paths alike:
    403 `NoAccessError` for SDK tokens (client/frontend), which only the client API accepts; 403
    `PermissionDeniedError` unless the principal holds `permission` (when one is asked)."""
    if principal.kind is PrincipalKind.CLIENT_TOKEN:
        raise NoAccessError("invalid token: expected a different token type for this endpoint")
    if permission is not None and not principal.can(permission):
        raise PermissionDeniedError([permission])
    return principal


async def authorize_admin_api(
    db: Database, header_value: str | None, cache: PrincipalCache, *, permission: str | None = None
) -> Principal:
    """Authenticate (401 without a valid credential), then `admit_to_admin_api`."""
    return admit_to_admin_api(await authenticate_cached(db, header_value, cache), permission)


async def find_api_token(conn: AsyncConnection, secret: str, digest: str) -> sa.Row[Any] | None:
    """The `api_token` row of `secret` (whose SHA-256 hex is `digest`), or None.

    Looked up by digest, then the stored digest is compared with the presented secret's in constant time
    (`tokens.digests_match`): the one place API-token secrets are checked, for the admin and client APIs.
    """
    row = (await conn.execute(sa.select(t.api_token).where(t.api_token.c.secret_hash == digest))).first()
    if row is None or not tokens.digests_match(row.secret_hash, secret):
        return None
    return row


def _secret_of(header_value: str | None) -> str:
    if header_value is None or not header_value.strip():
        raise AuthenticationRequired()
    secret = tokens.strip_bearer(header_value)
    if not secret:
        raise AuthenticationRequired()
    return secret


async def principal_of_digest(conn: AsyncConnection, digest: str, *, personal: bool) -> Principal:
    """The Principal of a credential verified once before and kept only by its SHA-256 hex (a console
    session, ADR 0026): 401 when it has since been deleted or has expired. `personal`: a service account's
    personal access token (else an API token)."""
    principal, _expires_at = await _lookup(conn, None, digest, utcnow(), personal=personal)
    return principal


def is_personal_token(secret: str) -> bool:
    return secret.startswith("user:")


async def _lookup(
    conn: AsyncConnection, secret: str | None, digest: str, now: datetime, *, personal: bool | None = None
) -> tuple[Principal, datetime | None]:
    """The Principal of `secret` (whose SHA-256 hex is `digest`) and the credential's expiry, or 401.
    Without `secret`, the digest alone identifies a credential verified before (`principal_of_digest`)."""
    if personal is None:
        personal = secret is not None and is_personal_token(secret)
    if personal:
        row = (
            await conn.execute(
                sa.select(
                    t.personal_access_token.c.secret_hash,
                    t.personal_access_token.c.expires_at,
                    t.service_account.c.id,
                    t.service_account.c.username,
                    t.service_account.c.root_role,
                )
                .join(t.service_account, t.service_account.c.id == t.personal_access_token.c.user_id)
                .where(t.personal_access_token.c.secret_hash == digest)
            )
        ).first()
        verified = row is not None and (secret is None or tokens.digests_match(row.secret_hash, secret))
        if row is None or not verified or row.expires_at <= now:
            raise UnauthorizedError()
        account = Principal(
            kind=PrincipalKind.SERVICE_ACCOUNT,
            user_id=row.id,
            username=row.username,
            permissions=permissions_of_role(row.root_role),
            root_role=row.root_role,
        )
        return account, row.expires_at
    if secret is None:
        token = (
            await conn.execute(sa.select(t.api_token).where(t.api_token.c.secret_hash == digest))
        ).first()
    else:
        token = await find_api_token(conn, secret, digest)
    if token is None:
        raise UnauthorizedError()
    if token.expires_at is not None and token.expires_at <= now:
        raise UnauthorizedError()
    if token.type == ADMIN_TOKEN_TYPE:
        admin = Principal(
            kind=PrincipalKind.ADMIN_TOKEN,
            user_id=ADMIN_TOKEN_USER_ID,
            username=token.token_name,
            permissions=frozenset({ADMIN}),
            root_role=1,
        )
        return admin, token.expires_at
    client = Principal(
        kind=PrincipalKind.CLIENT_TOKEN,
        user_id=ADMIN_TOKEN_USER_ID,
        username=token.token_name,
        permissions=frozenset(),
    )
    return client, token.expires_at


def parse_init_admin_token(secret: str) -> str:
    """Validate one SWITCHMAN_INIT_ADMIN_API_TOKENS entry: `*:*.<secret>` with a non-empty secret."""
    prefix = tokens.secret_prefix(secret)
    if prefix != "*:*" or not secret.partition(".")[2]:
        raise BadDataError(
            f"admin API tokens must look like '*:*.<secret>', got a token with prefix {prefix!r}"
        )
    return secret


async def ensure_admin_tokens(conn: AsyncConnection, secrets: list[str]) -> int:
    """Create each configured admin token unless it exists already; returns how many were created.

    Safe when several replicas start at once: the insert skips a token another process has just
    created (`ON CONFLICT DO NOTHING` on the secret's digest) instead of failing start-up.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    created = 0
    for secret in secrets:
        parse_init_admin_token(secret)
        result = await conn.execute(
            insert(t.api_token)
            .values(
                secret_hash=tokens.hash_secret(secret),
                secret_prefix="*:*",
                token_name="admin",
                type=ADMIN_TOKEN_TYPE,
                environment="*",
                projects=["*"],
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["secret_hash"])
        )
        created += result.rowcount
    return created
