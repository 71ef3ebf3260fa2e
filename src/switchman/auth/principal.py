"""Who is calling (or acting): an admin API token, a service account, or a non-admin API token."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from switchman.auth.permissions import ADMIN, grants

# Unleash's synthetic user ids: admin API tokens act as -42, the system itself as -1337.
ADMIN_TOKEN_USER_ID = -42
SYSTEM_USER_ID = -1337


class PrincipalKind(StrEnum):
    ADMIN_TOKEN = "admin-token"
    SERVICE_ACCOUNT = "service-account"
    CLIENT_TOKEN = "client-token"
    SYSTEM = "system"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    user_id: int
    username: str
    permissions: frozenset[str]
    root_role: int | None = None

    def can(self, permission: str) -> bool:
        return grants(self.permissions, permission)

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.permissions


SYSTEM = Principal(
    kind=PrincipalKind.SYSTEM, user_id=SYSTEM_USER_ID, username="system", permissions=frozenset({ADMIN})
)
