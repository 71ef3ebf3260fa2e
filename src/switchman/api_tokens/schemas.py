"""Wire models for API tokens (Unleash's `createApiTokenSchema`, `apiTokenSchema`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from switchman.schemas import RequestModel, WireModel


class CreateApiTokenSchema(RequestModel):
    token_name: str | None = Field(default=None, min_length=1, max_length=255)
    username: str | None = Field(default=None, min_length=1, max_length=255, description="Deprecated alias.")
    type: str = Field(description="admin, client, backend or frontend")
    environment: str | None = None
    project: str | None = None
    projects: list[str] | None = None
    expires_at: datetime | None = None


class ApiTokenSchema(WireModel):
    secret: str = Field(description="The full secret in the create response; masked everywhere else.")
    token_name: str
    type: str
    environment: str
    project: str
    projects: list[str]
    expires_at: str | None = None
    created_at: str
    seen_at: str | None = None
    alias: str | None = None


class ApiTokensSchema(WireModel):
    tokens: list[ApiTokenSchema]
