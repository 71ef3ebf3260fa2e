"""Wire models of the embedded flag store, mirroring Unleash's admin API schemas (camelCase on the wire)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from switchman.schemas import RequestModel, WireModel

# --- projects ----------------------------------------------------------------------------------------


class CreateProjectSchema(RequestModel):
    """Unleash's `createProjectSchema` (the subset switchman implements)."""

    id: str = Field(description="URL-friendly project id, unique.")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=10_000)
    mode: Literal["open"] = Field(default="open", description="Only open projects exist in switchman.")
    environments: list[str] | None = Field(
        default=None, description="Environments to enable in the project; default: every enabled environment."
    )


class ProjectSchema(WireModel):
    id: str
    name: str
    description: str | None
    feature_count: int
    member_count: int = 0
    health: int = 100
    mode: str
    created_at: str
    favorite: bool = False


class ProjectsSchema(WireModel):
    version: int = 1
    projects: list[ProjectSchema]


class ProjectCreatedSchema(WireModel):
    id: str
    name: str
    description: str | None
    mode: str
    environments: list[str]
    created_at: str


class ProjectEnvironmentRefSchema(WireModel):
    environment: str


class AddProjectEnvironmentSchema(RequestModel):
    """Unleash's `projectEnvironmentSchema` body of `POST /api/admin/projects/{projectId}/environments`."""

    environment: str


# --- environments ------------------------------------------------------------------------------------


class CreateEnvironmentSchema(RequestModel):
    name: str
    type: str = Field(min_length=1, max_length=100)
    # The column is a 32-bit integer (as in Unleash): larger values are a 400, not a database error.
    sort_order: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    enabled: bool = True


class _EnvironmentFields(WireModel):
    name: str
    type: str
    sort_order: int
    enabled: bool
    protected: bool
    required_approvals: int | None = None


class EnvironmentSchema(_EnvironmentFields):
    project_count: int | None = None


class EnvironmentsSchema(WireModel):
    version: int = 1
    environments: list[EnvironmentSchema]


class EnvironmentProjectSchema(_EnvironmentFields):
    project_enabled_toggle_count: int
    visible: bool = True


class EnvironmentsProjectSchema(WireModel):
    version: int = 1
    environments: list[EnvironmentProjectSchema]


# --- features ----------------------------------------------------------------------------------------


class CreateFeatureSchema(RequestModel):
    """Unleash's `createFeatureSchema`."""

    name: str
    description: str | None = Field(default=None, max_length=10_000)
    type: str | None = Field(
        default=None, description="release, experiment, operational, kill-switch, permission"
    )
    impression_data: bool | None = None


class TagSchema(WireModel):
    type: str
    value: str


class StrategySchema(WireModel):
    """Unleash's `featureStrategySchema`."""

    id: str
    name: str
    title: str | None = None
    disabled: bool
    feature_name: str
    project_id: str
    environment: str
    parameters: dict[str, Any]
    constraints: list[Any]
    variants: list[Any] = Field(default_factory=list)
    segments: list[int] = Field(default_factory=list)
    sort_order: int


class FeatureSchema(WireModel):
    """A flag as created (Unleash's `featureSchema` core fields)."""

    name: str
    description: str | None
    type: str
    project: str
    stale: bool
    impression_data: bool
    archived: bool
    created_at: str
    archived_at: str | None = None


class FeatureListEnvironmentSchema(WireModel):
    name: str
    enabled: bool
    type: str
    sort_order: int
    has_strategies: bool
    has_enabled_strategies: bool


class FeatureListItemSchema(FeatureSchema):
    last_seen_at: str | None = None
    favorite: bool = False
    environments: list[FeatureListEnvironmentSchema]
    tags: list[TagSchema]


class FeaturesSchema(WireModel):
    version: int = 2
    features: list[FeatureListItemSchema]


class FeatureEnvironmentDetailSchema(WireModel):
    name: str
    enabled: bool
    type: str
    sort_order: int
    strategies: list[StrategySchema]


class CreatedBySchema(WireModel):
    id: int | None
    name: str


class FeatureDetailSchema(FeatureSchema):
    environments: list[FeatureEnvironmentDetailSchema]
    created_by: CreatedBySchema | None = None


class FeatureEnvironmentSchema(WireModel):
    """`GET …/features/{featureName}/environments/{environment}`: `name` is the flag's name."""

    name: str
    environment: str
    enabled: bool
    strategies: list[StrategySchema]


class BulkToggleFeaturesSchema(RequestModel):
    features: list[str] = Field(max_length=1000)


class ProjectOverviewSchema(WireModel):
    version: int = 1
    id: str
    name: str
    description: str | None
    mode: str
    health: int = 100
    feature_count: int
    member_count: int = 0
    created_at: str
    environments: list[ProjectEnvironmentRefSchema]
    features: list[FeatureListItemSchema]


# --- tags --------------------------------------------------------------------------------------------


class CreateTagTypeSchema(RequestModel):
    name: str
    description: str | None = Field(default=None, max_length=10_000)
    icon: str | None = Field(default=None, max_length=50)
    color: str | None = Field(default=None, max_length=50)


class TagTypeSchema(WireModel):
    name: str
    description: str | None
    icon: str | None
    color: str | None


class TagTypesSchema(WireModel):
    version: int = 1
    tag_types: list[TagTypeSchema]


class CreateTagSchema(RequestModel):
    """Unleash's `tagSchema` as a request: `type` defaults to `simple`."""

    type: str = "simple"
    value: str


class TagWithColorSchema(WireModel):
    type: str
    value: str
    color: str | None = None


class TagsSchema(WireModel):
    version: int = 1
    tags: list[TagWithColorSchema]


# --- events ------------------------------------------------------------------------------------------


class EventSchema(WireModel):
    id: int
    type: str
    created_by: str
    created_by_user_id: int | None
    created_at: str
    data: Any = None
    pre_data: Any = None
    tags: list[TagSchema]
    feature_name: str | None
    project: str | None
    environment: str | None


class EventsSchema(WireModel):
    version: int = 1
    events: list[EventSchema]
    total_events: int


class FeatureEventsSchema(WireModel):
    version: int = 1
    toggle_name: str
    events: list[EventSchema]
    total_events: int
