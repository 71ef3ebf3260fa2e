"""`/api/client/*`: what Unleash's server-side SDKs call — features (with ETag/304), register, metrics.

Authentication is the client API's own (`service.authenticate_client`): client/backend tokens only, and
Unleash's bare `{message}` bodies for the 401/403 answers. `GET /api/client/features` returns the
serialized payload as bytes (no response-model validation on the SDKs' polling path).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ValidationError

from switchman.api_tokens import service as api_tokens_service
from switchman.client_api import service
from switchman.client_api.schemas import (
    ClientApplicationSchema,
    ClientFeatureSchema,
    ClientFeaturesSchema,
    ClientMetricsSchema,
)
from switchman.errors import (
    VALIDATION_MESSAGE,
    BadDataError,
    ContentTooLargeError,
    ContentTypeError,
    NotFoundError,
)
from switchman.http import RawJSONResponse
from switchman.openapi import error_responses, model_components, model_ref
from switchman.runtime import runtime_of


async def _embedded_store_only(request: Request) -> None:
    """With a remote Unleash as the flag backend, the flags SDKs need live there, not here: say so (404)."""
    settings = runtime_of(request).settings
    if settings.flag_backend != "embedded":
        raise NotFoundError(
            "The client API serves switchman's embedded flag store; with SWITCHMAN_FLAG_BACKEND="
            f"{settings.flag_backend}, point your SDKs at that Unleash server instead."
        )


router = APIRouter(prefix="/api/client", tags=["Client"], dependencies=[Depends(_embedded_store_only)])

# Largest register/metrics body read (Unleash's Express JSON limit is 100 kB; metrics of many flags are
# larger, so a little more room here). Larger bodies are refused before being read in full.
MAX_BODY_BYTES = 1024 * 1024
_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or unknown API token: `{message}`."},
    403: {"description": "A token of another type (admin, frontend, personal access token): `{message}`."},
}


# The register/metrics bodies are read by hand (415 before parsing, `/body/…` error paths), so FastAPI does
# not see their models: `openapi_components` adds them to the document's components (app.py merges it).
openapi_components: dict[str, Any] = model_components(ClientApplicationSchema, ClientMetricsSchema)


def _sdk_post(model: type[BaseModel]) -> dict[str, Any]:
    """The route arguments of an SDK's POST (202, its errors, its body `model`)."""
    return {
        "status_code": 202,
        "responses": {
            400: {"description": "Malformed body."},
            **_AUTH_RESPONSES,
            **error_responses(413, 415),
        },
        "openapi_extra": _json_body(model),
    }


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    ref = model_ref(model)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


@router.get(
    "/features",
    operation_id="getAllClientFeatures",
    summary="Get all flags (SDK)",
    response_model=ClientFeaturesSchema,
    responses={304: {"description": "`If-None-Match` holds the current ETag."}, **_AUTH_RESPONSES},
)
async def get_all_client_features(
    request: Request,
    tag: Annotated[list[str] | None, Query(description="`type:value`; repeatable")] = None,
    project: Annotated[list[str] | None, Query(description="narrows a `*` token; repeatable")] = None,
    name_prefix: Annotated[str | None, Query(alias="namePrefix")] = None,
    environment: Annotated[str | None, Query(description="used only by tokens for all environments")] = None,
) -> Response:
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        scope = await service.authenticate_client(conn, request.headers.get("authorization"))
        query = service.resolve_query(
            scope,
            tags=tag or [],
            projects=project or [],
            name_prefix=name_prefix,
            environment=environment,
            segments_supported=service.supports_segments(request.headers.get("unleash-client-spec")),
        )
        result = await service.features_response(
            conn,
            query=query,
            if_none_match=request.headers.get("if-none-match"),
            cache=ctx.client_payload_cache,
        )
    if result.body is None:
        return Response(status_code=304, headers={"ETag": result.etag})
    return RawJSONResponse(result.body, headers={"ETag": result.etag})


@router.get(
    "/features/{featureName}",
    operation_id="getClientFeature",
    summary="Get a single feature flag",
    response_model=ClientFeatureSchema,
    responses=_AUTH_RESPONSES,
)
async def get_client_feature(request: Request, featureName: str) -> Response:  # noqa: N803 (Unleash's name)
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        scope = await service.authenticate_client(conn, request.headers.get("authorization"))
        query = service.resolve_query(
            scope,
            tags=[],
            projects=request.query_params.getlist("project"),
            name_prefix=None,
            environment=request.query_params.get("environment"),
            segments_supported=service.supports_segments(request.headers.get("unleash-client-spec")),
        )
        body = await service.feature_response(conn, query=query, feature_name=featureName)
    return RawJSONResponse(body)


@router.post(
    "/register",
    operation_id="registerClientApplication",
    summary="Register a client SDK",
    **_sdk_post(ClientApplicationSchema),
)
async def register_client_application(request: Request) -> Response:
    scope = await _accepted(request, ClientApplicationSchema)
    # The only thing kept: the token's `seenAt` (Unleash lists registered applications; switchman does not).
    async with runtime_of(request).db.transaction() as conn:
        await api_tokens_service.touch_token(conn, scope.token_id)
    return Response(status_code=202)


@router.post(
    "/metrics",
    operation_id="registerClientMetrics",
    summary="Send usage metrics",
    **_sdk_post(ClientMetricsSchema),
)
async def register_client_metrics(request: Request) -> Response:
    await _accepted(request, ClientMetricsSchema)
    return Response(status_code=202)  # accepted and not stored: switchman keeps no usage metrics


async def _accepted(request: Request, model: type[BaseModel]) -> service.ClientScope:
    """An SDK's POST: its token (401/403 first), then its body checked against `model` (400/413/415)."""
    async with runtime_of(request).db.read() as conn:
        scope = await service.authenticate_client(conn, request.headers.get("authorization"))
    await _validated_body(request, model)
    return scope


async def _validated_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """415 unless JSON, 413 over MAX_BODY_BYTES, 400 (Unleash's `/body/…` detail paths) unless valid."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise ContentTypeError(
            "We do not accept the content-type you provided "
            f"({media_type or 'none'}). Try using one of the content-types we do accept "
            "instead (application/json) and make sure the body is in the corresponding format."
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ContentTooLargeError("request entity too large")
        chunks.append(chunk)
    try:
        data = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise BadDataError(
            VALIDATION_MESSAGE, details=[{"path": "/body", "message": "The request body is not valid JSON"}]
        ) from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadDataError(VALIDATION_MESSAGE, details=_details(exc)) from exc


def _details(exc: ValidationError) -> list[dict[str, str]]:
    details = []
    for error in exc.errors():
        pointer = "/body" + "".join(f"/{part}" for part in error["loc"] if not _is_union_tag(part))
        if error["type"] == "missing":
            message = f"The `{pointer}` property is required. It was not present on the data you sent."
        else:
            message = f"The `{pointer}` property is invalid: {error['msg']}."
        details.append({"path": pointer, "message": message})
    # Unions (date-time or number) report once per alternative; one entry per path is enough.
    unique = {d["path"]: d for d in details}
    return list(unique.values())


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and part in {"datetime", "float", "int"}
