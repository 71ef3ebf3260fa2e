"""`/api/admin/api-tokens`: list, create (the secret is shown once), delete by secret."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from switchman.api_tokens import service
from switchman.api_tokens.schemas import ApiTokenSchema, ApiTokensSchema, CreateApiTokenSchema
from switchman.auth.dependencies import AdminPrincipal, forget_principals
from switchman.runtime import runtime_of

router = APIRouter(prefix="/api/admin/api-tokens", tags=["API tokens"])


@router.get("", operation_id="getAllApiTokens", response_model=ApiTokensSchema)
async def get_all_api_tokens(request: Request, _principal: AdminPrincipal) -> ApiTokensSchema:
    async with runtime_of(request).db.read() as conn:
        return ApiTokensSchema(tokens=await service.list_api_tokens(conn))


@router.post("", operation_id="createApiToken", status_code=201, response_model=ApiTokenSchema)
async def create_api_token(
    request: Request, response: Response, payload: CreateApiTokenSchema, _principal: AdminPrincipal
) -> ApiTokenSchema:
    async with runtime_of(request).db.transaction() as conn:
        created = await service.create_api_token(conn, payload=payload)
    response.headers["Location"] = "api-tokens"
    return created


@router.delete("/{token}", operation_id="deleteApiToken", status_code=200)
async def delete_api_token(request: Request, token: str, _principal: AdminPrincipal) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await service.delete_api_token(conn, secret=token)
    forget_principals(request)
    return Response(status_code=200)
