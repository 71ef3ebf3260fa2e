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
from switchman.auth.service import authenticate
from switchman.context import get_context
from switchman.errors import NoAccessError, PermissionDeniedError


async def current_principal(request: Request) -> Principal:
    """Any valid admin-API credential; non-admin API tokens (client/frontend) are refused with 403."""
    ctx = get_context(request)
    async with ctx.db.read() as conn:
        principal = await authenticate(conn, request.headers.get("authorization"))
    if principal.kind is PrincipalKind.CLIENT_TOKEN:
        raise NoAccessError("invalid token: expected a different token type for this endpoint")
    request.state.principal = principal
    return principal


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.can(permission):
            raise PermissionDeniedError([permission])
        return principal

    check.__name__ = f"require_{permission.lower()}"
    return check


AnyPrincipal = Annotated[Principal, Depends(current_principal)]
AdminPrincipal = Annotated[Principal, Depends(require(ADMIN))]
