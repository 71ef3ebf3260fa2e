"""Unleash's root roles and the permissions they grant.

Admin (1) holds `ADMIN`, which implies every permission. Editor (2) may create and change projects,
flags, their environments, strategies and tags, but not administer the instance. Viewer (3) may only
read. Reading the admin API needs no permission beyond being authenticated, as in Unleash.
"""

from __future__ import annotations

from collections.abc import Iterable

ADMIN = "ADMIN"
CREATE_PROJECT = "CREATE_PROJECT"
UPDATE_PROJECT = "UPDATE_PROJECT"
CREATE_FEATURE = "CREATE_FEATURE"
UPDATE_FEATURE = "UPDATE_FEATURE"
DELETE_FEATURE = "DELETE_FEATURE"
UPDATE_FEATURE_ENVIRONMENT = "UPDATE_FEATURE_ENVIRONMENT"
CREATE_FEATURE_STRATEGY = "CREATE_FEATURE_STRATEGY"
CREATE_TAG_TYPE = "CREATE_TAG_TYPE"
CREATE_ENVIRONMENT = "CREATE_ENVIRONMENT"

ADMIN_ROLE_ID = 1
EDITOR_ROLE_ID = 2
VIEWER_ROLE_ID = 3

ROOT_ROLES: dict[int, dict[str, str]] = {
    ADMIN_ROLE_ID: {"name": "Admin", "description": "Users with the root admin role have superuser access."},
    EDITOR_ROLE_ID: {
        "name": "Editor",
        "description": "Users with the root editor role may create projects and change feature flags.",
    },
    VIEWER_ROLE_ID: {
        "name": "Viewer",
        "description": "Users with the root viewer role can only read root resources.",
    },
}

ROLE_PERMISSIONS: dict[int, frozenset[str]] = {
    ADMIN_ROLE_ID: frozenset({ADMIN}),
    EDITOR_ROLE_ID: frozenset(
        {
            CREATE_PROJECT,
            UPDATE_PROJECT,
            CREATE_FEATURE,
            UPDATE_FEATURE,
            DELETE_FEATURE,
            UPDATE_FEATURE_ENVIRONMENT,
            CREATE_FEATURE_STRATEGY,
            CREATE_TAG_TYPE,
        }
    ),
    VIEWER_ROLE_ID: frozenset(),
}


def permissions_of_role(role_id: int) -> frozenset[str]:
    return ROLE_PERMISSIONS.get(role_id, frozenset())


def grants(granted: Iterable[str], required: str) -> bool:
    """True when `granted` includes `required`; ADMIN implies everything."""
    held = set(granted)
    return ADMIN in held or required in held
