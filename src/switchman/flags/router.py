"""Unleash-compatible admin routes of the embedded flag store: a thin layer over the service functions.

Reads need only authentication. Writes declare the permission Unleash checks as a route dependency (so a
caller lacking it gets 403 before body validation, as with Unleash's middleware order), and the service
functions check it again against their `actor`, which is what protects non-HTTP callers (the worker).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, params

from switchman.action_sets import service as action_sets_service
from switchman.audit import log as audit
from switchman.auth.dependencies import AnyPrincipal, require
from switchman.auth.permissions import (
    ADMIN,
    CREATE_FEATURE,
    CREATE_PROJECT,
    CREATE_TAG_TYPE,
    DELETE_FEATURE,
    UPDATE_FEATURE,
    UPDATE_FEATURE_ENVIRONMENT,
    UPDATE_PROJECT,
)
from switchman.flags import environments, features, projects, tags, toggles
from switchman.flags.schemas import (
    AddProjectEnvironmentSchema,
    BulkToggleFeaturesSchema,
    CreateEnvironmentSchema,
    CreateFeatureSchema,
    CreateProjectSchema,
    CreateTagSchema,
    CreateTagTypeSchema,
    EnvironmentSchema,
    EnvironmentsProjectSchema,
    EnvironmentsSchema,
    EventsSchema,
    FeatureDetailSchema,
    FeatureEnvironmentSchema,
    FeatureEventsSchema,
    FeatureSchema,
    FeaturesSchema,
    ProjectCreatedSchema,
    ProjectOverviewSchema,
    ProjectsSchema,
    TagSchema,
    TagsSchema,
    TagTypeSchema,
    TagTypesSchema,
    TagWithColorSchema,
)
from switchman.http import JSONResponse
from switchman.openapi import error_responses
from switchman.runtime import runtime_of

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/admin")

ProjectId = Annotated[str, Path(alias="projectId")]
FeatureName = Annotated[str, Path(alias="featureName")]
Environment = Annotated[str, Path(alias="environment")]


def _permission(name: str) -> list[params.Depends]:
    return [Depends(require(name))]


# --- projects ----------------------------------------------------------------------------------------


@router.get("/projects", tags=["Projects"], operation_id="getProjects", response_model=ProjectsSchema)
async def get_projects(request: Request, _principal: AnyPrincipal) -> ProjectsSchema:
    async with runtime_of(request).db.read() as conn:
        return ProjectsSchema(projects=await projects.list_projects(conn))


@router.post(
    "/projects",
    tags=["Projects"],
    operation_id="createProject",
    responses=error_responses(409),
    status_code=201,
    response_model=ProjectCreatedSchema,
    dependencies=_permission(CREATE_PROJECT),
)
async def create_project(
    request: Request, response: Response, payload: CreateProjectSchema, principal: AnyPrincipal
) -> ProjectCreatedSchema:
    async with runtime_of(request).db.transaction() as conn:
        created = await projects.create_project(conn, actor=principal, payload=payload)
    response.headers["Location"] = f"projects/{created.id}"
    return created


@router.get(
    "/projects/{projectId}",
    tags=["Projects"],
    operation_id="getProjectOverview",
    response_model=ProjectOverviewSchema,
)
async def get_project(
    request: Request, project_id: ProjectId, _principal: AnyPrincipal
) -> ProjectOverviewSchema:
    async with runtime_of(request).db.read() as conn:
        return await features.get_project_overview(conn, project_id)


@router.post(
    "/projects/{projectId}/environments",
    tags=["Projects"],
    operation_id="addEnvironmentToProject",
    responses=error_responses(409),
    dependencies=_permission(UPDATE_PROJECT),
)
async def add_environment_to_project(
    request: Request, project_id: ProjectId, payload: AddProjectEnvironmentSchema, principal: AnyPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await projects.add_environment_to_project(
            conn, actor=principal, project_id=project_id, environment=payload.environment
        )
    return Response(status_code=200)


# --- environments ------------------------------------------------------------------------------------


@router.get(
    "/environments",
    tags=["Environments"],
    operation_id="getAllEnvironments",
    response_model=EnvironmentsSchema,
)
async def get_all_environments(request: Request, _principal: AnyPrincipal) -> EnvironmentsSchema:
    async with runtime_of(request).db.read() as conn:
        return EnvironmentsSchema(environments=await environments.list_environments(conn))


@router.post(
    "/environments",
    tags=["Environments"],
    operation_id="createEnvironment",
    responses=error_responses(409),
    status_code=201,
    response_model=EnvironmentSchema,
    dependencies=_permission(ADMIN),
)
async def create_environment(
    request: Request, payload: CreateEnvironmentSchema, principal: AnyPrincipal
) -> EnvironmentSchema:
    async with runtime_of(request).db.transaction() as conn:
        return await environments.create_environment(conn, actor=principal, payload=payload)


@router.get(
    "/environments/project/{projectId}",
    tags=["Environments"],
    operation_id="getProjectEnvironments",
    response_model=EnvironmentsProjectSchema,
)
async def get_project_environments(
    request: Request, project_id: ProjectId, _principal: AnyPrincipal
) -> EnvironmentsProjectSchema:
    async with runtime_of(request).db.read() as conn:
        return EnvironmentsProjectSchema(
            environments=await environments.list_project_environments(conn, project_id)
        )


@router.get(
    "/environments/{name}",
    tags=["Environments"],
    operation_id="getEnvironment",
    response_model=EnvironmentSchema,
)
async def get_environment(request: Request, name: str, _principal: AnyPrincipal) -> EnvironmentSchema:
    async with runtime_of(request).db.read() as conn:
        return await environments.get_environment(conn, name)


# --- features ----------------------------------------------------------------------------------------


@router.post(
    "/projects/{projectId}/features",
    tags=["Features"],
    operation_id="createFeature",
    responses=error_responses(409),
    status_code=201,
    response_model=FeatureSchema,
    dependencies=_permission(CREATE_FEATURE),
)
async def create_feature(
    request: Request, project_id: ProjectId, payload: CreateFeatureSchema, principal: AnyPrincipal
) -> FeatureSchema:
    async with runtime_of(request).db.transaction() as conn:
        return await features.create_feature(conn, actor=principal, project=project_id, payload=payload)


@router.get(
    "/projects/{projectId}/features",
    tags=["Features"],
    operation_id="getFeatures",
    response_model=FeaturesSchema,
)
async def get_features(
    request: Request,
    project_id: ProjectId,
    _principal: AnyPrincipal,
    tag: Annotated[
        list[str] | None, Query(description="`type:value`; repeat for any of several tags")
    ] = None,
) -> FeaturesSchema:
    wanted = [tags.parse_tag(raw) for raw in tag or []]
    async with runtime_of(request).db.read() as conn:
        return FeaturesSchema(features=await features.list_features(conn, project=project_id, tags=wanted))


@router.get(
    "/projects/{projectId}/features/{featureName}",
    tags=["Features"],
    operation_id="getFeature",
    response_model=FeatureDetailSchema,
)
async def get_feature(
    request: Request, project_id: ProjectId, feature_name: FeatureName, _principal: AnyPrincipal
) -> FeatureDetailSchema:
    async with runtime_of(request).db.read() as conn:
        return await features.get_feature(conn, project=project_id, feature_name=feature_name)


@router.delete(
    "/projects/{projectId}/features/{featureName}",
    tags=["Features"],
    operation_id="archiveFeature",
    status_code=202,
    dependencies=_permission(DELETE_FEATURE),
)
async def archive_feature(
    request: Request, project_id: ProjectId, feature_name: FeatureName, principal: AnyPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await features.archive_feature(conn, actor=principal, project=project_id, feature_name=feature_name)
        dependents = await action_sets_service.action_sets_acting_on_flag(
            conn, project=project_id, feature_name=feature_name
        )
    if dependents:
        # Unleash archives regardless; the sets' warnings (GET …/actions/{id}/warnings) say it too.
        log.warning(
            "flag %r of project %r was archived while action sets act on it: %s; their actions on it will fail",
            feature_name,
            project_id,
            ", ".join(
                f"{record.id} ({record.name!r}{'' if record.enabled else ', disabled'})"
                for record in dependents
            ),
        )
    return Response(status_code=202)


@router.get(
    "/projects/{projectId}/features/{featureName}/environments/{environment}",
    tags=["Features"],
    operation_id="getFeatureEnvironment",
    response_model=FeatureEnvironmentSchema,
)
async def get_feature_environment(
    request: Request,
    project_id: ProjectId,
    feature_name: FeatureName,
    environment: Environment,
    _principal: AnyPrincipal,
) -> FeatureEnvironmentSchema:
    async with runtime_of(request).db.read() as conn:
        return await features.get_feature_environment(
            conn, project=project_id, feature_name=feature_name, environment=environment
        )


async def _toggle(
    request: Request,
    principal: AnyPrincipal,
    project: str,
    feature_name: str,
    environment: str,
    enabled: bool,
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await toggles.set_feature_enabled(
            conn,
            actor=principal,
            project=project,
            feature_name=feature_name,
            environment=environment,
            enabled=enabled,
        )
    return Response(status_code=200)


@router.post(
    "/projects/{projectId}/features/{featureName}/environments/{environment}/on",
    tags=["Features"],
    operation_id="toggleFeatureEnvironmentOn",
    dependencies=_permission(UPDATE_FEATURE_ENVIRONMENT),
)
async def toggle_on(
    request: Request,
    project_id: ProjectId,
    feature_name: FeatureName,
    environment: Environment,
    principal: AnyPrincipal,
) -> Response:
    return await _toggle(request, principal, project_id, feature_name, environment, True)


@router.post(
    "/projects/{projectId}/features/{featureName}/environments/{environment}/off",
    tags=["Features"],
    operation_id="toggleFeatureEnvironmentOff",
    dependencies=_permission(UPDATE_FEATURE_ENVIRONMENT),
)
async def toggle_off(
    request: Request,
    project_id: ProjectId,
    feature_name: FeatureName,
    environment: Environment,
    principal: AnyPrincipal,
) -> Response:
    return await _toggle(request, principal, project_id, feature_name, environment, False)


async def _bulk_toggle(
    request: Request,
    principal: AnyPrincipal,
    project: str,
    environment: str,
    payload: BulkToggleFeaturesSchema,
    enabled: bool,
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await toggles.bulk_set_enabled(
            conn,
            actor=principal,
            project=project,
            environment=environment,
            feature_names=payload.features,
            enabled=enabled,
        )
    return Response(status_code=200)


@router.post(
    "/projects/{projectId}/bulk_features/environments/{environment}/on",
    tags=["Features"],
    operation_id="bulkToggleFeaturesEnvironmentOn",
    dependencies=_permission(UPDATE_FEATURE_ENVIRONMENT),
)
async def bulk_toggle_on(
    request: Request,
    project_id: ProjectId,
    environment: Environment,
    payload: BulkToggleFeaturesSchema,
    principal: AnyPrincipal,
) -> Response:
    return await _bulk_toggle(request, principal, project_id, environment, payload, True)


@router.post(
    "/projects/{projectId}/bulk_features/environments/{environment}/off",
    tags=["Features"],
    operation_id="bulkToggleFeaturesEnvironmentOff",
    dependencies=_permission(UPDATE_FEATURE_ENVIRONMENT),
)
async def bulk_toggle_off(
    request: Request,
    project_id: ProjectId,
    environment: Environment,
    payload: BulkToggleFeaturesSchema,
    principal: AnyPrincipal,
) -> Response:
    return await _bulk_toggle(request, principal, project_id, environment, payload, False)


# --- tags --------------------------------------------------------------------------------------------


@router.get("/tag-types", tags=["Tags"], operation_id="getTagTypes", response_model=TagTypesSchema)
async def get_tag_types(request: Request, _principal: AnyPrincipal) -> TagTypesSchema:
    async with runtime_of(request).db.read() as conn:
        return TagTypesSchema(tag_types=await tags.list_tag_types(conn))


@router.post(
    "/tag-types",
    tags=["Tags"],
    operation_id="createTagType",
    responses=error_responses(409),
    status_code=201,
    response_model=TagTypeSchema,
    dependencies=_permission(CREATE_TAG_TYPE),
)
async def create_tag_type(
    request: Request, payload: CreateTagTypeSchema, principal: AnyPrincipal
) -> TagTypeSchema:
    async with runtime_of(request).db.transaction() as conn:
        return await tags.create_tag_type(conn, actor=principal, payload=payload)


@router.get("/tag-types/{name}", tags=["Tags"], operation_id="getTagType", response_model=TagTypeSchema)
async def get_tag_type(request: Request, name: str, _principal: AnyPrincipal) -> TagTypeSchema:
    async with runtime_of(request).db.read() as conn:
        return await tags.get_tag_type(conn, name)


@router.get("/tags", tags=["Tags"], operation_id="getTags", response_model=TagsSchema)
async def get_tags(request: Request, _principal: AnyPrincipal) -> TagsSchema:
    async with runtime_of(request).db.read() as conn:
        found = await tags.list_tags(conn)
    return TagsSchema(tags=[TagWithColorSchema(type=tag.type, value=tag.value) for tag in found])


@router.get("/tags/{type}", tags=["Tags"], operation_id="getTagsByType", response_model=TagsSchema)
async def get_tags_by_type(
    request: Request, tag_type: Annotated[str, Path(alias="type")], _principal: AnyPrincipal
) -> TagsSchema:
    async with runtime_of(request).db.read() as conn:
        found = await tags.list_tags(conn, tag_type=tag_type)
    return TagsSchema(tags=[TagWithColorSchema(type=tag.type, value=tag.value) for tag in found])


@router.get("/features/{featureName}/tags", tags=["Tags"], operation_id="listTags", response_model=TagsSchema)
async def list_feature_tags(
    request: Request, feature_name: FeatureName, _principal: AnyPrincipal
) -> TagsSchema:
    async with runtime_of(request).db.read() as conn:
        return TagsSchema(tags=await tags.list_feature_tags(conn, feature_name))


@router.post(
    "/features/{featureName}/tags",
    tags=["Tags"],
    operation_id="addTag",
    status_code=201,
    response_model=TagSchema,
    dependencies=_permission(UPDATE_FEATURE),
)
async def add_feature_tag(
    request: Request, feature_name: FeatureName, payload: CreateTagSchema, principal: AnyPrincipal
) -> TagSchema:
    async with runtime_of(request).db.transaction() as conn:
        return await tags.add_feature_tag(
            conn, actor=principal, feature_name=feature_name, tag_type=payload.type, value=payload.value
        )


@router.delete(
    "/features/{featureName}/tags/{type}/{value}",
    tags=["Tags"],
    operation_id="removeTag",
    dependencies=_permission(UPDATE_FEATURE),
)
async def remove_feature_tag(
    request: Request,
    feature_name: FeatureName,
    tag_type: Annotated[str, Path(alias="type")],
    value: str,
    principal: AnyPrincipal,
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await tags.remove_feature_tag(
            conn, actor=principal, feature_name=feature_name, tag_type=tag_type, value=value
        )
    return Response(status_code=200)


# --- events ------------------------------------------------------------------------------------------


@router.get("/events", tags=["Events"], operation_id="getEvents", response_model=EventsSchema)
async def get_events(
    request: Request,
    _principal: AnyPrincipal,
    project: Annotated[str | None, Query(description="Only events of this project")] = None,
) -> Response:
    """The latest 100 events, newest first (plain dicts and orjson: no per-row model work)."""
    async with runtime_of(request).db.read() as conn:
        found, total = await audit.list_events(conn, project=project)
    return JSONResponse({"version": 1, "events": found, "totalEvents": total})


@router.get(
    "/events/{featureName}",
    tags=["Events"],
    operation_id="getEventsForToggle",
    response_model=FeatureEventsSchema,
)
async def get_events_for_feature(
    request: Request, feature_name: FeatureName, _principal: AnyPrincipal
) -> Response:
    async with runtime_of(request).db.read() as conn:
        found, total = await audit.list_events(conn, feature_name=feature_name)
    return JSONResponse({"version": 1, "toggleName": feature_name, "events": found, "totalEvents": total})
