"""FastAPI dependencies: the caller's Principal, and permission gates declared in route signatures.

@router.post(...)
async def create(principal: AdminPrincipal, ...)   # 401 without a token, 403 without ADMIN
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from switchman.auth.permissions import ADMIN
from switchman.auth.principal import Principal, PrincipalKind
from switchman.auth.service import authenticate_cached
from switchman.errors import NoAccessError, PermissionDeniedError
from switchman.runtime import runtime_of


async def current_principal(request: Request) -> Principal:
    """Any valid admin-API credential; non-admin API tokens (client/frontend) are refused with 403."""
    ctx = runtime_of(request)
    principal = await authenticate_cached(ctx.db, request.headers.get("authorization"), ctx.principal_cache)
    if principal.kind is PrincipalKind.CLIENT_TOKEN:
        raise NoAccessError("invalid token: expected a different token type for this endpoint")
    request.state.principal = principal
    return principal


def forget_principals(request: Request) -> None:
    """Call after committing a change that revokes or narrows a credential (token, PAT, service account)."""
    runtime_of(request).principal_cache.forget()


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(permission):
            raise PermissionDeniedError([permission])
        return principal

    check.__name__ = f"require_{permission.lower()}"
    return check


AnyPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(require(ADMIN))]
