"""Wire models of the client API (Unleash's `clientFeaturesSchema`, `clientApplicationSchema`,
`clientMetricsSchema`).

The feature models document responses only: `/api/client/features` is serialized straight to JSON bytes
by the service (no per-flag pydantic work on the SDKs' polling path). The request models validate the
register and metrics bodies as Unleash's schemas do; unknown keys are accepted (SDKs add fields over time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from switchman.schemas import InputModel, WireModel


class _ClientRequest(InputModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


# --- responses (documentation) ------------------------------------------------------------------------


class ClientStrategySchema(WireModel):
    name: str
    constraints: list[dict[str, Any]]
    parameters: dict[str, str]
    variants: list[dict[str, Any]]


class ClientFeatureSchema(WireModel):
    name: str
    type: str
    enabled: bool
    project: str
    stale: bool
    strategies: list[ClientStrategySchema]
    variants: list[dict[str, Any]]
    description: str | None
    impression_data: bool


class ClientFeaturesQuerySchema(WireModel):
    tag: list[list[str]] | None = None
    project: list[str] | None = None
    name_prefix: str | None = None
    environment: str
    inline_segment_constraints: bool


class ClientFeaturesMetaSchema(WireModel):
    revision_id: int
    etag: str
    query_hash: str


class ClientFeaturesSchema(WireModel):
    version: int = 2
    features: list[ClientFeatureSchema]
    query: ClientFeaturesQuerySchema
    segments: list[dict[str, Any]] | None = Field(
        default=None, description="Present (empty) when the SDK sends `Unleash-Client-Spec` ≥ 4.2.0."
    )
    meta: ClientFeaturesMetaSchema


# --- requests -----------------------------------------------------------------------------------------


class _SdkInstance(_ClientRequest):
    """Who is calling: what every SDK sends about itself with registrations and metrics."""

    instance_id: str | None = None
    sdk_version: str | None = None
    platform_name: str | None = None
    platform_version: str | None = None
    yggdrasil_version: str | None = None
    spec_version: str | None = None


class ClientApplicationSchema(_SdkInstance):
    """`POST /api/client/register`: an SDK instance announcing itself."""

    app_name: str = Field(min_length=1)
    sdk_flavor: str | None = Field(default=None, max_length=256)
    sdk_flavor_version: str | None = Field(default=None, max_length=32)
    interval: float = Field(ge=0)
    started: datetime | float
    strategies: list[str]


class ToggleMetricsSchema(_ClientRequest):
    yes: float | None = Field(default=None, ge=0)
    no: int | None = Field(default=None, ge=0)
    variants: dict[str, Annotated[int, Field(ge=0)]] | None = None


class MetricsBucketSchema(_ClientRequest):
    start: datetime | int
    stop: datetime | int
    toggles: dict[str, ToggleMetricsSchema]


class ClientMetricsSchema(_SdkInstance):
    """`POST /api/client/metrics`: evaluation counts of one SDK instance over a time window."""

    app_name: str
    environment: str | None = None
    bucket: MetricsBucketSchema | None = None
