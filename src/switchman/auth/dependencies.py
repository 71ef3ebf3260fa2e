"""FastAPI dependencies: the caller's Principal, and permission gates declared in route signatures.

@router.post(...)
async def create(principal: AdminPrincipal, ...)   # 401 without a token, 403 without ADMIN
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from switchman.auth.permissions import ADMIN
from switchman.auth.principal import Principal
from switchman.auth.service import admit_to_admin_api, authorize_admin_api
from switchman.runtime import runtime_of


async def current_principal(request: Request) -> Principal:
    """Any valid admin-API credential (`authorize_admin_api` without a permission)."""
    ctx = runtime_of(request)
    principal = await authorize_admin_api(ctx.db, request.headers.get("authorization"), ctx.principal_cache)
    request.state.principal = principal
    return principal


def forget_principals(request: Request) -> None:
    """Call after committing a change that revokes or narrows a credential (token, PAT, service account)."""
    runtime_of(request).principal_cache.forget()


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        return admit_to_admin_api(principal, permission)

    check.__name__ = f"require_{permission.lower()}"
    return check


AnyPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(require(ADMIN))]
