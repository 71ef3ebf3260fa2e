"""Service account tokens: personal access tokens (`user:<hex>`) owned by a service account.

The rules are those of Unleash's PAT service: a non-empty description unique per account, an expiry in
the future, at most `PAT_LIMIT` tokens per account. The secret is returned once, by `create_token`;
only its SHA-256 digest is stored (`switchman.auth.service.authenticate` looks tokens up by digest).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import log as audit
from switchman.auth import tokens
from switchman.auth.access import check_permission
from switchman.auth.permissions import ADMIN
from switchman.auth.principal import Principal
from switchman.errors import BadDataError, NameExistsError, NoAccessError, NotFoundError
from switchman.service_accounts import repository
from switchman.service_accounts.schemas import CreatePatSchema, PatCreatedSchema, PatSchema
from switchman.service_accounts.service import pat_schema, require_account
from switchman.timeutil import iso, utcnow

# Unleash's `PAT_LIMIT`.
PAT_LIMIT = 10


async def _audit(conn: AsyncConnection, type: str, actor: Principal, **fields: Any) -> None:
    """Record a service account token change in the audit log; none changes what SDK clients are served."""
    await audit.record_event(conn, type=type, actor=actor, visible_to_clients=False, **fields)


class OperationDeniedError(NoAccessError):
    """Unleash's 403 `OperationDeniedError` (an operation refused by a rule, not by a permission)."""

    name = "OperationDeniedError"


async def list_tokens(conn: AsyncConnection, account_id: int) -> list[PatSchema]:
    await require_account(conn, account_id)
    return [pat_schema(row) for row in await repository.list_pats(conn, account_id)]


async def create_token(
    conn: AsyncConnection, *, actor: Principal, account_id: int, payload: CreatePatSchema
) -> PatCreatedSchema:
    """Create a token for a service account (ADMIN); the only response that carries its secret."""
    check_permission(actor, ADMIN)
    account = await require_account(conn, account_id, for_update=True)
    description = payload.description.strip()
    if not description:
        raise BadDataError(
            "PAT description cannot be empty.",
            details=[{"path": "/description", "message": "PAT description cannot be empty."}],
        )
    expires_at = payload.expires_at
    if expires_at.tzinfo is None:
        raise BadDataError(
            "expiresAt must carry a time zone offset (e.g. 2030-01-01T00:00:00Z)",
            details=[{"path": "/expiresAt", "message": "must carry a time zone offset"}],
        )
    if expires_at <= utcnow():
        raise BadDataError(
            "The expiry date should be in future.",
            details=[{"path": "/expiresAt", "message": "The expiry date should be in future."}],
        )
    if await repository.count_pats(conn, account_id) >= PAT_LIMIT:
        raise OperationDeniedError(f"Too many PATs ({PAT_LIMIT}) already exist for this user.")
    if await repository.pat_description_taken(conn, account_id, description):
        raise NameExistsError("PAT description already exists.")
    secret = tokens.new_pat_secret()
    try:
        row = await repository.insert_pat(
            conn,
            user_id=account_id,
            secret_hash=tokens.hash_secret(secret),
            description=description,
            expires_at=expires_at,
            created_at=utcnow(),
        )
    except IntegrityError as exc:
        raise NameExistsError("PAT description already exists.") from exc
    created = pat_schema(row)
    await _audit(
        conn,
        audit.SERVICE_ACCOUNT_TOKEN_CREATED,
        actor,
        data={
            "id": created.id,
            "description": created.description,
            "expiresAt": iso(row.expires_at),
            "userId": account_id,
            "serviceAccount": account.username,
        },
    )
    return PatCreatedSchema(**created.model_dump(), secret=secret)


async def delete_token(conn: AsyncConnection, *, actor: Principal, account_id: int, token_id: int) -> None:
    """Delete one token of a service account (ADMIN); it stops authenticating at once. 404 when unknown."""
    check_permission(actor, ADMIN)
    account = await require_account(conn, account_id)
    row = await repository.delete_pat(conn, account_id, token_id)
    if row is None:
        raise NotFoundError(f"Could not find a token with id {token_id} for service account {account_id}.")
    await _audit(
        conn,
        audit.SERVICE_ACCOUNT_TOKEN_DELETED,
        actor,
        pre_data={
            "id": row.id,
            "description": row.description,
            "userId": account_id,
            "serviceAccount": account.username,
        },
    )
