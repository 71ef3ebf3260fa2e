"""Service accounts: the identities action sets run as (ADMIN manages them).

`get_actor` turns an account into the `Principal` the worker acts as; its root role decides what the
account may do, exactly as for requests authenticated with one of its tokens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.audit import log as audit
from switchman.auth.access import check_permission
from switchman.auth.permissions import (
    ADMIN,
    CREATE_ENVIRONMENT,
    CREATE_FEATURE,
    CREATE_FEATURE_STRATEGY,
    CREATE_PROJECT,
    CREATE_TAG_TYPE,
    DELETE_FEATURE,
    ROOT_ROLES,
    UPDATE_FEATURE,
    UPDATE_FEATURE_ENVIRONMENT,
    UPDATE_PROJECT,
    permissions_of_role,
)
from switchman.auth.principal import Principal, PrincipalKind
from switchman.errors import (
    VALIDATION_MESSAGE,
    BadDataError,
    InUse,
    NameExistsError,
    NotFoundError,
    in_use_conflict,
)
from switchman.service_accounts import repository
from switchman.service_accounts.schemas import (
    CreateServiceAccountSchema,
    PatSchema,
    PermissionGrantSchema,
    PermissionOverviewItemSchema,
    PermissionsOverviewSchema,
    RoleSchema,
    ServiceAccountPermissionsSchema,
    ServiceAccountSchema,
    UpdateServiceAccountSchema,
)
from switchman.timeutil import iso, utcnow

# Permissions by the scope Unleash gives them (the permissions endpoint reports them per scope).
ROOT_PERMISSIONS = (ADMIN, CREATE_PROJECT, CREATE_TAG_TYPE, CREATE_ENVIRONMENT)
PROJECT_PERMISSIONS = (CREATE_FEATURE, UPDATE_FEATURE, DELETE_FEATURE, UPDATE_PROJECT)
ENVIRONMENT_PERMISSIONS = (UPDATE_FEATURE_ENVIRONMENT, CREATE_FEATURE_STRATEGY)


# --- for other features ------------------------------------------------------------------------------


async def _audit(conn: AsyncConnection, type: str, actor: Principal, **fields: Any) -> None:
    """Record a service account change in the audit log; none changes what SDK clients are served."""
    await audit.record_event(conn, type=type, actor=actor, visible_to_clients=False, **fields)


async def get_actor(conn: AsyncConnection, actor_id: int) -> Principal | None:
    """The Principal to act as for service account `actor_id`, or None when it does not exist."""
    row = await repository.get_account(conn, actor_id)
    if row is None:
        return None
    return Principal(
        kind=PrincipalKind.SERVICE_ACCOUNT,
        user_id=row.id,
        username=row.username,
        permissions=permissions_of_role(row.root_role),
        root_role=row.root_role,
    )


async def account_name(conn: AsyncConnection, account_id: int) -> str | None:
    """The account's display name, None when it does not exist (any more)."""
    return await repository.account_name(conn, account_id)


async def service_account_exists(conn: AsyncConnection, account_id: int, *, lock: bool = True) -> bool:
    """Whether service account `account_id` exists.

    With `lock` (default) the row is share-locked on PostgreSQL until the transaction ends, so a concurrent
    `delete_service_account` (which locks the row for update first, then looks for action sets using the
    account) waits and then sees the action set that was being written: no action set is left with a
    deleted actor. On SQLite write transactions are exclusive anyway.
    """
    return await repository.get_account(conn, account_id, lock="share" if lock else None) is not None


# --- wire helpers ------------------------------------------------------------------------------------


def pat_schema(row: Any) -> PatSchema:
    return PatSchema(
        id=row.id,
        description=row.description,
        expires_at=iso(row.expires_at),
        created_at=iso(row.created_at),
        seen_at=iso(row.seen_at) if row.seen_at else None,
        user_id=row.user_id,
    )


def role_schema(role_id: int) -> RoleSchema:
    role = ROOT_ROLES[role_id]
    return RoleSchema(id=role_id, name=role["name"], description=role["description"])


def _account_schema(row: Any, tokens: list[PatSchema] | None = None) -> ServiceAccountSchema:
    return ServiceAccountSchema(
        id=row.id,
        username=row.username,
        name=row.name,
        root_role=row.root_role,
        created_at=iso(row.created_at),
        tokens=tokens or [],
    )


def _audit_data(account: ServiceAccountSchema) -> dict[str, Any]:
    return account.model_dump(by_alias=True, exclude={"tokens"})


def _check_root_role(role_id: int) -> int:
    if role_id not in ROOT_ROLES:
        known = ", ".join(f"{rid} ({role['name']})" for rid, role in ROOT_ROLES.items())
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[
                {"path": "/rootRole", "message": f"rootRole {role_id} is not a root role; use one of {known}"}
            ],
        )
    return role_id


def _not_found(account_id: int) -> NotFoundError:
    return NotFoundError(f"Could not find a service account with id {account_id}.")


async def require_account(conn: AsyncConnection, account_id: int, *, for_update: bool = False) -> Any:
    row = await repository.get_account(conn, account_id, lock="update" if for_update else None)
    if row is None:
        raise _not_found(account_id)
    return row


# --- CRUD --------------------------------------------------------------------------------------------


async def list_service_accounts(conn: AsyncConnection) -> tuple[list[ServiceAccountSchema], list[RoleSchema]]:
    """Every service account (ascending id) with its tokens (no secrets), and the root roles they use."""
    rows = await repository.list_accounts(conn)
    pats: dict[int, list[PatSchema]] = defaultdict(list)
    for pat in await repository.list_pats(conn):
        pats[pat.user_id].append(pat_schema(pat))
    accounts = [_account_schema(row, pats.get(row.id)) for row in rows]
    roles = [
        role_schema(role_id) for role_id in sorted({row.root_role for row in rows}) if role_id in ROOT_ROLES
    ]
    return accounts, roles


async def get_service_account(conn: AsyncConnection, account_id: int) -> ServiceAccountSchema:
    row = await require_account(conn, account_id)
    pats = await repository.list_pats(conn, account_id)
    return _account_schema(row, [pat_schema(pat) for pat in pats])


async def create_service_account(
    conn: AsyncConnection, *, actor: Principal, payload: CreateServiceAccountSchema
) -> ServiceAccountSchema:
    """Create a service account (ADMIN). 409 NameExistsError when the username is taken; 400 unknown role."""
    check_permission(actor, ADMIN)
    username = payload.username.strip()
    if not username or not payload.name.strip():
        raise BadDataError(
            VALIDATION_MESSAGE,
            details=[{"path": "/username", "message": "username and name must not be blank"}],
        )
    _check_root_role(payload.root_role)
    if await repository.username_taken(conn, username):
        raise NameExistsError(f'A service account with the username "{username}" already exists')
    try:
        row = await repository.insert_account(
            conn, username=username, name=payload.name, root_role=payload.root_role, created_at=utcnow()
        )
    except IntegrityError as exc:  # a concurrent create won the race for the username
        raise NameExistsError(f'A service account with the username "{username}" already exists') from exc
    created = _account_schema(row)
    await _audit(conn, audit.SERVICE_ACCOUNT_CREATED, actor, data=_audit_data(created))
    return created


async def update_service_account(
    conn: AsyncConnection, *, actor: Principal, account_id: int, payload: UpdateServiceAccountSchema
) -> ServiceAccountSchema:
    """Change the name and/or root role (ADMIN); `username` is ignored. 404 unknown id, 400 unknown role."""
    check_permission(actor, ADMIN)
    before = await require_account(conn, account_id, for_update=True)
    values: dict[str, Any] = {}
    if payload.name is not None:
        if not payload.name.strip():
            raise BadDataError(
                VALIDATION_MESSAGE, details=[{"path": "/name", "message": "name must not be blank"}]
            )
        values["name"] = payload.name
    if payload.root_role is not None:
        values["root_role"] = _check_root_role(payload.root_role)
    row = before
    if values:
        row = await repository.update_account(conn, account_id, **values)
    updated = await get_service_account(conn, account_id)
    if row != before:
        await _audit(
            conn,
            audit.SERVICE_ACCOUNT_UPDATED,
            actor,
            data=_audit_data(updated),
            pre_data=_audit_data(_account_schema(before)),
        )
    return updated


_ACTED_AS = InUse(
    relation="the actor of",
    noun="action set",
    remedy="Give them another actor or delete them first.",
    each="runs as this account",
)

# Who uses an account (the action sets that run as it), named for a person; injected by the router so
# that this feature needs nothing of the action sets feature.
AccountUsers = Callable[[AsyncConnection, int], Awaitable[list[str]]]


async def delete_service_account(
    conn: AsyncConnection, *, actor: Principal, account_id: int, users: AccountUsers
) -> None:
    """Delete a service account and its tokens (ADMIN). 404 unknown id.

    Refused with 409 ConflictError naming them while `users` reports any (the action sets that run as the
    account, Q-13): an action set must never run as nobody. The row is locked before the check (see
    `service_account_exists`), so the check cannot miss an action set being created concurrently.
    """
    check_permission(actor, ADMIN)
    row = await require_account(conn, account_id, for_update=True)
    using = await users(conn, account_id)
    if using:
        raise in_use_conflict(f'Service account "{row.username}"', using, _ACTED_AS)
    deleted = _account_schema(row)
    await repository.delete_account(conn, account_id)
    await _audit(conn, audit.SERVICE_ACCOUNT_DELETED, actor, pre_data=_audit_data(deleted))


# --- permissions -------------------------------------------------------------------------------------


async def service_account_permissions(
    conn: AsyncConnection, account_id: int, *, project: str | None = None, environment: str | None = None
) -> ServiceAccountPermissionsSchema:
    """What the account's root role grants, in Unleash's access-overview shape.

    `permissions` lists one entry per held permission: root permissions bare, project permissions with
    `project` (the asked project, or `*`: root roles hold them in every project), environment permissions
    with `project` and `environment` likewise. Admin holds ADMIN and, through it, every permission.
    """
    account = await get_service_account(conn, account_id)
    granted = permissions_of_role(account.root_role)
    held = set(granted) | (
        set(ROOT_PERMISSIONS + PROJECT_PERMISSIONS + ENVIRONMENT_PERMISSIONS) if ADMIN in granted else set()
    )
    scope_project = project or "*"
    scope_environment = environment or "*"
    grants: list[PermissionGrantSchema] = []
    for name in ROOT_PERMISSIONS:
        if name in held:
            grants.append(PermissionGrantSchema(permission=name))
    for name in PROJECT_PERMISSIONS:
        if name in held:
            grants.append(PermissionGrantSchema(permission=name, project=scope_project))
    for name in ENVIRONMENT_PERMISSIONS:
        if name in held:
            grants.append(
                PermissionGrantSchema(permission=name, project=scope_project, environment=scope_environment)
            )

    def overview(names: tuple[str, ...], kind: str) -> list[PermissionOverviewItemSchema]:
        return [
            PermissionOverviewItemSchema(
                name=name,
                display_name=name.replace("_", " ").capitalize(),
                type=kind,
                has_permission=name in held,
            )
            for name in names
        ]

    return ServiceAccountPermissionsSchema(
        permissions=grants,
        overview=PermissionsOverviewSchema(
            root=overview(ROOT_PERMISSIONS, "root"),
            project=overview(PROJECT_PERMISSIONS, "project"),
            environment=overview(ENVIRONMENT_PERMISSIONS, "environment"),
        ),
        root_role=role_schema(account.root_role)
        if account.root_role in ROOT_ROLES
        else RoleSchema(id=account.root_role, name="Unknown"),
        service_account=account,
    )
