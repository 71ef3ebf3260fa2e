"""Permission checks inside service functions: every write is checked against its actor, whoever calls it."""

from __future__ import annotations

from switchman.auth.principal import Principal
from switchman.errors import PermissionDeniedError


def check_permission(actor: Principal, permission: str) -> None:
    """Raise PermissionDeniedError (403 `PermissionError`) unless `actor` holds `permission` (ADMIN implies all)."""
    if not actor.can(permission):
        raise PermissionDeniedError([permission])
