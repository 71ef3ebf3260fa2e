"""`/api/admin/service-account` routes (ADMIN): accounts, their tokens, their permissions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from switchman.action_sets import service as action_sets_service
from switchman.auth.dependencies import AdminPrincipal, forget_principals
from switchman.openapi import error_responses
from switchman.runtime import runtime_of
from switchman.service_accounts import pats, service
from switchman.service_accounts.schemas import (
    CreatePatSchema,
    CreateServiceAccountSchema,
    PatCreatedSchema,
    PatsSchema,
    ServiceAccountPermissionsSchema,
    ServiceAccountSchema,
    ServiceAccountsSchema,
    UpdateServiceAccountSchema,
)

router = APIRouter(prefix="/api/admin/service-account", tags=["Service Accounts"])

# The id columns are 32-bit integers: an id outside their range names nothing and cannot even be bound
# as a query parameter on PostgreSQL, so it is a 400 (it was a 500).
ID_MIN, ID_MAX = -(2**31), 2**31 - 1
AccountId = Annotated[int, Path(alias="id", ge=ID_MIN, le=ID_MAX)]
TokenId = Annotated[int, Path(alias="tokenId", ge=ID_MIN, le=ID_MAX)]


@router.get("", operation_id="getServiceAccounts", response_model=ServiceAccountsSchema)
async def get_service_accounts(request: Request, _principal: AdminPrincipal) -> ServiceAccountsSchema:
    async with runtime_of(request).db.read() as conn:
        accounts, roles = await service.list_service_accounts(conn)
    return ServiceAccountsSchema(service_accounts=accounts, root_roles=roles)


@router.post(
    "",
    operation_id="createServiceAccount",
    responses=error_responses(409),
    status_code=201,
    response_model=ServiceAccountSchema,
)
async def create_service_account(
    request: Request, response: Response, payload: CreateServiceAccountSchema, principal: AdminPrincipal
) -> ServiceAccountSchema:
    async with runtime_of(request).db.transaction() as conn:
        created = await service.create_service_account(conn, actor=principal, payload=payload)
    response.headers["Location"] = f"service-account/{created.id}"
    return created


@router.put("/{id}", operation_id="updateServiceAccount", response_model=ServiceAccountSchema)
async def update_service_account(
    request: Request, account_id: AccountId, payload: UpdateServiceAccountSchema, principal: AdminPrincipal
) -> ServiceAccountSchema:
    async with runtime_of(request).db.transaction() as conn:
        updated = await service.update_service_account(
            conn, actor=principal, account_id=account_id, payload=payload
        )
    forget_principals(request)  # the role may have changed
    return updated


@router.delete("/{id}", operation_id="deleteServiceAccount", responses=error_responses(409), status_code=200)
async def delete_service_account(
    request: Request, account_id: AccountId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await service.delete_service_account(
            conn, actor=principal, account_id=account_id, users=action_sets_service.sets_run_by
        )
    forget_principals(request)
    return Response(status_code=200)


@router.get("/{id}/token", operation_id="getServiceAccountTokens", response_model=PatsSchema)
async def get_service_account_tokens(
    request: Request, account_id: AccountId, _principal: AdminPrincipal
) -> PatsSchema:
    async with runtime_of(request).db.read() as conn:
        return PatsSchema(pats=await pats.list_tokens(conn, account_id))


@router.post(
    "/{id}/token",
    operation_id="createServiceAccountToken",
    responses=error_responses(409),
    status_code=201,
    response_model=PatCreatedSchema,
)
async def create_service_account_token(
    request: Request,
    response: Response,
    account_id: AccountId,
    payload: CreatePatSchema,
    principal: AdminPrincipal,
) -> PatCreatedSchema:
    async with runtime_of(request).db.transaction() as conn:
        created = await pats.create_token(conn, actor=principal, account_id=account_id, payload=payload)
    response.headers["Location"] = f"service-account/{account_id}/token/{created.id}"
    return created


@router.delete("/{id}/token/{tokenId}", operation_id="deleteServiceAccountToken", status_code=200)
async def delete_service_account_token(
    request: Request, account_id: AccountId, token_id: TokenId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await pats.delete_token(conn, actor=principal, account_id=account_id, token_id=token_id)
    forget_principals(request)
    return Response(status_code=200)


@router.get(
    "/{id}/permissions",
    operation_id="getServiceAccountPermissions",
    response_model=ServiceAccountPermissionsSchema,
)
async def get_service_account_permissions(
    request: Request,
    account_id: AccountId,
    _principal: AdminPrincipal,
    project: Annotated[str | None, Query()] = None,
    environment: Annotated[str | None, Query()] = None,
) -> ServiceAccountPermissionsSchema:
    async with runtime_of(request).db.read() as conn:
        return await service.service_account_permissions(
            conn, account_id, project=project, environment=environment
        )
