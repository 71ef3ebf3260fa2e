"""Creating, listing and deleting API tokens. Secrets are returned by `create_api_token` only."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.api_tokens import repository
from switchman.api_tokens.configured import ALL, parse_init_client_token
from switchman.api_tokens.schemas import ApiTokenSchema, CreateApiTokenSchema
from switchman.auth import tokens
from switchman.auth.service import ADMIN_TOKEN_TYPE, API_TOKEN_TYPES
from switchman.config import ConfigurationError
from switchman.errors import BadDataError, NotFoundError
from switchman.flags import environments as flag_environments
from switchman.flags import projects as flag_projects
from switchman.timeutil import iso, utcnow


def _to_schema(row: Any, secret: str | None = None) -> ApiTokenSchema:
    projects = list(row.projects)
    return ApiTokenSchema(
        secret=secret if secret is not None else f"{row.secret_prefix}.****",
        token_name=row.token_name,
        type=row.type,
        environment=row.environment,
        project=projects[0] if len(projects) == 1 else "[]",
        projects=projects,
        expires_at=iso(row.expires_at) if row.expires_at else None,
        created_at=iso(row.created_at),
        seen_at=iso(row.seen_at) if row.seen_at else None,
    )


async def list_api_tokens(conn: AsyncConnection) -> list[ApiTokenSchema]:
    rows = await repository.list_tokens(conn)
    return [_to_schema(row) for row in rows]


async def create_api_token(conn: AsyncConnection, *, payload: CreateApiTokenSchema) -> ApiTokenSchema:
    name = payload.token_name or payload.username
    if not name:
        raise BadDataError(
            "tokenName is required", details=[{"path": "/tokenName", "message": "is required"}]
        )
    token_type = payload.type.lower()
    if token_type not in API_TOKEN_TYPES:
        raise BadDataError(
            f"Invalid token type {payload.type!r}; use one of {', '.join(API_TOKEN_TYPES)}",
            details=[{"path": "/type", "message": f"must be one of {', '.join(API_TOKEN_TYPES)}"}],
        )
    if payload.expires_at is not None and payload.expires_at.tzinfo is None:
        raise BadDataError("expiresAt must carry a time zone offset")
    if token_type == ADMIN_TOKEN_TYPE:
        environment, projects = "*", ["*"]
        secret = tokens.new_admin_token_secret()
    else:
        environment = payload.environment or "development"
        projects = payload.projects or [payload.project or "*"]
        await _check_scope(conn, environment=environment, projects=projects)
        secret = tokens.new_api_token_secret(projects[0] if len(projects) == 1 else "[]", environment)
    values = {
        "secret_hash": tokens.hash_secret(secret),
        "secret_prefix": tokens.secret_prefix(secret),
        "token_name": name,
        "type": token_type,
        "environment": environment,
        "projects": projects,
        "created_at": utcnow(),
        "expires_at": payload.expires_at,
    }
    row = await repository.insert_token(conn, **values)
    return _to_schema(row, secret=secret)


async def _check_scope(conn: AsyncConnection, *, environment: str, projects: list[str]) -> None:
    if environment != "*" and not await flag_environments.environment_exists(conn, environment):
        raise BadDataError(f"Environment {environment!r} does not exist")
    named = [p for p in projects if p != "*"]
    if named:
        missing = sorted(set(named) - await flag_projects.existing_projects(conn, named))
        if missing:
            raise BadDataError(f"Project(s) {', '.join(missing)} do not exist")


async def delete_api_token(conn: AsyncConnection, *, secret: str) -> None:
    if not await repository.delete_token(conn, tokens.hash_secret(secret)):
        raise NotFoundError("Could not find an API token with that secret")


# --- SDK tokens: use, and the configured ones ---------------------------------------------------------------------------------


async def touch_token(conn: AsyncConnection, token_id: int) -> None:
    """Record that the token was used (`seenAt` in the token list)."""
    await repository.touch_token(conn, token_id)


# --- configured tokens ----------------------------------------------------------------------------------


async def ensure_client_tokens(conn: AsyncConnection, secrets: Iterable[str]) -> int:
    """Create each configured client token unless it exists; returns how many were created.

    The project (unless `*`) and the environment must exist: a typo would otherwise hand SDKs an empty
    flag list, which they evaluate as "everything off". Safe when several replicas start at once: the
    insert skips a token another process has just created (`ON CONFLICT DO NOTHING` on the digest).
    """
    created = 0
    for raw in secrets:
        token = parse_init_client_token(raw)
        if not await flag_environments.environment_exists(conn, token.environment):
            raise ConfigurationError(
                f"SWITCHMAN_INIT_CLIENT_API_TOKENS: environment {token.environment!r} does not exist"
            )
        if token.project != ALL and not await flag_projects.existing_projects(conn, [token.project]):
            raise ConfigurationError(
                f"SWITCHMAN_INIT_CLIENT_API_TOKENS: project {token.project!r} does not exist"
            )
        created += await repository.insert_token_unless_present(
            conn,
            secret_hash=tokens.hash_secret(token.secret),
            secret_prefix=f"{token.project}:{token.environment}",
            token_name="client",
            type="client",
            environment=token.environment,
            projects=[token.project],
            created_at=utcnow(),
        )
    return created
