"""Wire models for service accounts and their tokens (Unleash's `serviceAccountSchema`, `patSchema`, …)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from switchman.schemas import RequestModel, WireModel


class CreateServiceAccountSchema(RequestModel):
    username: str = Field(min_length=1, max_length=255)
    name: str = Field(min_length=1, max_length=255)
    root_role: int = Field(description="1 Admin, 2 Editor, 3 Viewer")


class UpdateServiceAccountSchema(RequestModel):
    """Unleash's `updateServiceAccountSchema` allows extra properties; its UI sends `username` too, which is
    accepted and ignored (a service account's username never changes: it is the actor name in events)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    root_role: int | None = None
    username: str | None = None


class PatSchema(WireModel):
    id: int
    description: str
    expires_at: str
    created_at: str
    seen_at: str | None = None
    user_id: int


class PatCreatedSchema(PatSchema):
    secret: str = Field(description="The token; shown only in this response.")


class PatsSchema(WireModel):
    pats: list[PatSchema]


class CreatePatSchema(RequestModel):
    description: str = Field(max_length=255)
    expires_at: datetime


class ServiceAccountSchema(WireModel):
    id: int
    username: str
    name: str
    root_role: int
    created_at: str
    tokens: list[PatSchema] = Field(default_factory=list)


class RoleSchema(WireModel):
    id: int
    type: str = "root"
    name: str
    description: str | None = None
    project: str | None = None


class ServiceAccountsSchema(WireModel):
    service_accounts: list[ServiceAccountSchema]
    root_roles: list[RoleSchema]


class PermissionGrantSchema(WireModel):
    """One held permission; `project`/`environment` are present for project/environment permissions."""

    permission: str
    project: str | None = None
    environment: str | None = None


class PermissionOverviewItemSchema(WireModel):
    name: str
    display_name: str
    type: str
    has_permission: bool


class PermissionsOverviewSchema(WireModel):
    root: list[PermissionOverviewItemSchema]
    project: list[PermissionOverviewItemSchema]
    environment: list[PermissionOverviewItemSchema]


class ServiceAccountPermissionsSchema(WireModel):
    permissions: list[PermissionGrantSchema]
    overview: PermissionsOverviewSchema
    project_roles: list[RoleSchema] = Field(default_factory=list)
    root_role: RoleSchema
    service_account: ServiceAccountSchema
