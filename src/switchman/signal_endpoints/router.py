"""`/api/admin/signal-endpoints` and `/api/admin/signals` routes.

Everything needs ADMIN except the signal query, which any authenticated principal may read (Unleash
opened it for the event timeline). Listings of signals are answered with bytes assembled from the
stored payload fragments, documented with their schemas.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from switchman.action_sets import service as action_sets_service
from switchman.auth.dependencies import AdminPrincipal, AnyPrincipal
from switchman.errors import NotFoundError
from switchman.http import RawJSONResponse, normalize_limit, normalize_offset, parse_path_id
from switchman.openapi import error_responses
from switchman.runtime import runtime_of
from switchman.signal_endpoints import query_token, sender_format, service, verifications
from switchman.signal_endpoints.schemas import (
    CreateSignalEndpointSchema,
    CreateSignalEndpointTokenSchema,
    NormalisedSignalsSchema,
    SetAsideSignalsSchema,
    SetSignalEndpointFormatSchema,
    SetSignalEndpointQueryTokenSchema,
    SetSignalEndpointVerificationSchema,
    SignalEndpointFormatSchema,
    SignalEndpointQueryTokenSchema,
    SignalEndpointSchema,
    SignalEndpointSignalsSchema,
    SignalEndpointsSchema,
    SignalEndpointTokenSchema,
    SignalEndpointTokensSchema,
    SignalEndpointVerificationSchema,
    SignalQueryResponseSchema,
)

router = APIRouter(tags=["Operational"])

BASE = "/api/admin/signal-endpoints"
ENDPOINT = "signal endpoint"

EndpointId = Annotated[str, Path(alias="id", description="The signal endpoint's id.")]
SignalEndpointId = Annotated[str, Path(alias="signalEndpointId", description="The signal endpoint's id.")]
TokenId = Annotated[str, Path(alias="id", description="The token's id.")]
Limit = Annotated[str | None, Query(description="Page size (default 50, maximum 1000).")]
Offset = Annotated[str | None, Query(description="Rows to skip (default 0).")]


@router.get(
    BASE,
    operation_id="get-signal-endpoints",
    summary="[BETA] Get signal endpoints",
    response_model=SignalEndpointsSchema,
    response_model_exclude_unset=True,
)
async def get_signal_endpoints(request: Request, _principal: AdminPrincipal) -> SignalEndpointsSchema:
    ctx = runtime_of(request)
    async with ctx.db.read() as conn:
        return SignalEndpointsSchema(
            signal_endpoints=await service.list_signal_endpoints(conn, base_url=ctx.settings.base_url)
        )


@router.post(
    BASE,
    operation_id="create-signal-endpoint",
    responses=error_responses(409),
    summary="[BETA] Create a signal endpoint",
    status_code=201,
    response_model=SignalEndpointSchema,
    response_model_exclude_unset=True,
)
async def create_signal_endpoint(
    request: Request, response: Response, payload: CreateSignalEndpointSchema, principal: AdminPrincipal
) -> SignalEndpointSchema:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        created = await service.create_signal_endpoint(
            conn,
            payload=payload,
            actor=principal,
            base_url=ctx.settings.base_url,
            limit=ctx.settings.signal_endpoints_limit,
        )
    response.headers["Location"] = f"signal-endpoints/{created.id}"
    return created


@router.put(
    f"{BASE}/{{id}}",
    operation_id="update-signal-endpoint",
    responses=error_responses(409),
    summary="[BETA] Update a signal endpoint",
    response_model=SignalEndpointSchema,
    response_model_exclude_unset=True,
)
async def update_signal_endpoint(
    request: Request, endpoint_id: EndpointId, payload: CreateSignalEndpointSchema, principal: AdminPrincipal
) -> SignalEndpointSchema:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        return await service.update_signal_endpoint(
            conn,
            endpoint_id=parse_path_id(endpoint_id, ENDPOINT),
            payload=payload,
            actor=principal,
            base_url=ctx.settings.base_url,
        )


@router.delete(
    f"{BASE}/{{id}}",
    operation_id="delete-signal-endpoint",
    summary="[BETA] Delete a signal endpoint",
    description="Deletes the endpoint and its tokens; its stored signals stay. 409 (switchman) while enabled "
    "action sets listen to it, naming them: deleting it would silently stop them. Disabled sets may stay; their "
    "warnings then report `source-missing`.",
    responses=error_responses(409),
)
async def delete_signal_endpoint(
    request: Request, endpoint_id: EndpointId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await service.delete_signal_endpoint(
            conn,
            endpoint_id=parse_path_id(endpoint_id, ENDPOINT),
            actor=principal,
            users=action_sets_service.enabled_sets_of_endpoint,
        )
    return Response(status_code=200)


@router.post(
    f"{BASE}/{{id}}/on",
    operation_id="enable-signal-endpoint",
    summary="[BETA] Enable a signal endpoint",
    response_model=SignalEndpointSchema,
    response_model_exclude_unset=True,
)
async def enable_signal_endpoint(
    request: Request, endpoint_id: EndpointId, principal: AdminPrincipal
) -> SignalEndpointSchema:
    return await _set_enabled(request, endpoint_id, principal, enabled=True)


@router.post(
    f"{BASE}/{{id}}/off",
    operation_id="disable-signal-endpoint",
    summary="[BETA] Disable a signal endpoint",
    response_model=SignalEndpointSchema,
    response_model_exclude_unset=True,
)
async def disable_signal_endpoint(
    request: Request, endpoint_id: EndpointId, principal: AdminPrincipal
) -> SignalEndpointSchema:
    return await _set_enabled(request, endpoint_id, principal, enabled=False)


async def _set_enabled(
    request: Request, endpoint_id: str, principal: AdminPrincipal, *, enabled: bool
) -> SignalEndpointSchema:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        return await service.set_signal_endpoint_enabled(
            conn,
            endpoint_id=parse_path_id(endpoint_id, ENDPOINT),
            enabled=enabled,
            actor=principal,
            base_url=ctx.settings.base_url,
        )


# --- tokens ---------------------------------------------------------------------------------------------


@router.get(
    f"{BASE}/{{signalEndpointId}}/tokens",
    operation_id="get-signal-endpoint-tokens",
    summary="[BETA] Get the tokens of a signal endpoint",
    response_model=SignalEndpointTokensSchema,
    response_model_exclude_unset=True,
)
async def get_signal_endpoint_tokens(
    request: Request, signal_endpoint_id: SignalEndpointId, _principal: AdminPrincipal
) -> SignalEndpointTokensSchema:
    try:
        endpoint_id = parse_path_id(signal_endpoint_id, ENDPOINT)
    except NotFoundError:
        return SignalEndpointTokensSchema(signal_endpoint_tokens=[])
    async with runtime_of(request).db.read() as conn:
        return SignalEndpointTokensSchema(
            signal_endpoint_tokens=await service.list_signal_endpoint_tokens(conn, endpoint_id=endpoint_id)
        )


@router.post(
    f"{BASE}/{{signalEndpointId}}/tokens",
    operation_id="create-signal-endpoint-token",
    summary="[BETA] Create a token for a signal endpoint (the secret is shown once)",
    status_code=201,
    response_model=SignalEndpointTokenSchema,
    response_model_exclude_unset=True,
)
async def create_signal_endpoint_token(
    request: Request,
    response: Response,
    signal_endpoint_id: SignalEndpointId,
    payload: CreateSignalEndpointTokenSchema,
    principal: AdminPrincipal,
) -> SignalEndpointTokenSchema:
    ctx = runtime_of(request)
    endpoint_id = parse_path_id(signal_endpoint_id, ENDPOINT)
    async with ctx.db.transaction() as conn:
        created = await service.create_signal_endpoint_token(
            conn,
            endpoint_id=endpoint_id,
            payload=payload,
            actor=principal,
            limit=ctx.settings.signal_tokens_per_endpoint_limit,
        )
    response.headers["Location"] = f"signal-endpoints/{endpoint_id}/tokens/{created.id}"
    return created


@router.put(
    f"{BASE}/{{signalEndpointId}}/tokens/{{id}}",
    operation_id="update-signal-endpoint-token",
    summary="[BETA] Rename a signal endpoint token",
    response_model=SignalEndpointTokenSchema,
    response_model_exclude_unset=True,
)
async def update_signal_endpoint_token(
    request: Request,
    signal_endpoint_id: SignalEndpointId,
    token_id: TokenId,
    payload: CreateSignalEndpointTokenSchema,
    principal: AdminPrincipal,
) -> SignalEndpointTokenSchema:
    async with runtime_of(request).db.transaction() as conn:
        return await service.update_signal_endpoint_token(
            conn,
            endpoint_id=parse_path_id(signal_endpoint_id, ENDPOINT),
            token_id=parse_path_id(token_id, "signal endpoint token"),
            payload=payload,
            actor=principal,
        )


@router.delete(
    f"{BASE}/{{signalEndpointId}}/tokens/{{id}}",
    operation_id="delete-signal-endpoint-token",
    summary="[BETA] Delete a signal endpoint token",
)
async def delete_signal_endpoint_token(
    request: Request, signal_endpoint_id: SignalEndpointId, token_id: TokenId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await service.delete_signal_endpoint_token(
            conn,
            endpoint_id=parse_path_id(signal_endpoint_id, ENDPOINT),
            token_id=parse_path_id(token_id, "signal endpoint token"),
            actor=principal,
        )
    return Response(status_code=200)


# --- signature verification (switchman's, ADR 0020) ----------------------------------------------------

_VERIFICATION_DOC = (
    "switchman's addition: how this endpoint's calls are signed. With a verification, a call whose signature "
    "does not verify is refused (401, nothing stored, counted in `failures`), and a call whose signature "
    "verifies needs no token. The secret is sealed with the server's SWITCHMAN_SECRET_KEY and never shown "
    "again. A change applies to every replica within a second."
)


@router.get(
    f"{BASE}/{{id}}/verification",
    operation_id="get-signal-endpoint-verification",
    summary="Get a signal endpoint's signature verification",
    description=_VERIFICATION_DOC,
    response_model=SignalEndpointVerificationSchema,
)
async def get_signal_endpoint_verification(
    request: Request, endpoint_id: EndpointId, _principal: AdminPrincipal
) -> SignalEndpointVerificationSchema:
    async with runtime_of(request).db.read() as conn:
        return await verifications.get_verification(conn, parse_path_id(endpoint_id, ENDPOINT))


@router.put(
    f"{BASE}/{{id}}/verification",
    operation_id="set-signal-endpoint-verification",
    summary="Set a signal endpoint's signature verification",
    description=_VERIFICATION_DOC + " 409 when the server has no SWITCHMAN_SECRET_KEY.",
    responses=error_responses(409),
    response_model=SignalEndpointVerificationSchema,
)
async def set_signal_endpoint_verification(
    request: Request,
    endpoint_id: EndpointId,
    payload: SetSignalEndpointVerificationSchema,
    principal: AdminPrincipal,
) -> SignalEndpointVerificationSchema:
    ctx = runtime_of(request)
    async with ctx.db.transaction() as conn:
        return await verifications.set_verification(
            conn,
            endpoint_id=parse_path_id(endpoint_id, ENDPOINT),
            payload=payload,
            actor=principal,
            box=ctx.secret_box,
        )


@router.delete(
    f"{BASE}/{{id}}/verification",
    operation_id="delete-signal-endpoint-verification",
    summary="Remove a signal endpoint's signature verification",
    description="Calls are then authenticated by token alone again.",
)
async def delete_signal_endpoint_verification(
    request: Request, endpoint_id: EndpointId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await verifications.delete_verification(
            conn, endpoint_id=parse_path_id(endpoint_id, ENDPOINT), actor=principal
        )
    return Response(status_code=200)


# --- sender format (switchman's, ADR 0021) ----------------------------------------------------------------

_FORMAT_DOC = (
    "switchman's addition: the format this endpoint's sender posts. Filters of the action sets listening to "
    "it then also see a normalised view read from each payload, under reserved keys: `@switchman.status` "
    "(`firing` / `resolved`), `@switchman.alertId`, `@switchman.severity`, `@switchman.title`, "
    "`@switchman.source`. The stored payload is unchanged. See docs/filters.md."
)


@router.get(
    f"{BASE}/{{id}}/format",
    operation_id="get-signal-endpoint-format",
    summary="Get a signal endpoint's sender format",
    description=_FORMAT_DOC,
    response_model=SignalEndpointFormatSchema,
)
async def get_signal_endpoint_format(
    request: Request, endpoint_id: EndpointId, _principal: AdminPrincipal
) -> SignalEndpointFormatSchema:
    async with runtime_of(request).db.read() as conn:
        return await sender_format.get_format(conn, parse_path_id(endpoint_id, ENDPOINT))


@router.put(
    f"{BASE}/{{id}}/format",
    operation_id="set-signal-endpoint-format",
    summary="Set a signal endpoint's sender format",
    description=_FORMAT_DOC,
    response_model=SignalEndpointFormatSchema,
)
async def set_signal_endpoint_format(
    request: Request,
    endpoint_id: EndpointId,
    payload: SetSignalEndpointFormatSchema,
    principal: AdminPrincipal,
) -> SignalEndpointFormatSchema:
    async with runtime_of(request).db.transaction() as conn:
        return await sender_format.set_format(
            conn, endpoint_id=parse_path_id(endpoint_id, ENDPOINT), payload=payload, actor=principal
        )


@router.delete(
    f"{BASE}/{{id}}/format",
    operation_id="delete-signal-endpoint-format",
    summary="Remove a signal endpoint's sender format",
    description="Filters then see the payload's own keys only.",
)
async def delete_signal_endpoint_format(
    request: Request, endpoint_id: EndpointId, principal: AdminPrincipal
) -> Response:
    async with runtime_of(request).db.transaction() as conn:
        await sender_format.delete_format(
            conn, endpoint_id=parse_path_id(endpoint_id, ENDPOINT), actor=principal
        )
    return Response(status_code=200)


@router.get(
    f"{BASE}/{{id}}/normalised-signals",
    operation_id="get-signal-endpoint-normalised-signals",
    summary="Get a signal endpoint's signals as its sender format reads them (newest first)",
    description="switchman's addition (ADR 0021): each signal's normalised view (`status`, `alertId`, "
    "`severity`, `title`, `source`), the values filters read as `@switchman.<field>`. 404 when the endpoint "
    "has no sender format. The signals themselves: `GET …/{id}/signals`.",
    response_model=NormalisedSignalsSchema,
)
async def get_signal_endpoint_normalised_signals(
    request: Request,
    endpoint_id: EndpointId,
    _principal: AdminPrincipal,
    limit: Limit = None,
    offset: Offset = None,
) -> NormalisedSignalsSchema:
    async with runtime_of(request).db.read() as conn:
        return await sender_format.normalised_signals(
            conn,
            endpoint_id=parse_path_id(endpoint_id, ENDPOINT),
            limit=normalize_limit(limit),
            offset=normalize_offset(offset),
        )


# --- token as a query parameter (switchman's, ADR 0020) ----------------------------------------------------


@router.get(
    f"{BASE}/{{id}}/query-token",
    operation_id="get-signal-endpoint-query-token",
    summary="Whether a signal endpoint accepts its token as a query parameter",
    response_model=SignalEndpointQueryTokenSchema,
)
async def get_signal_endpoint_query_token(
    request: Request, endpoint_id: EndpointId, _principal: AdminPrincipal
) -> SignalEndpointQueryTokenSchema:
    async with runtime_of(request).db.read() as conn:
        return await query_token.get_query_token(conn, parse_path_id(endpoint_id, ENDPOINT))


@router.put(
    f"{BASE}/{{id}}/query-token",
    operation_id="set-signal-endpoint-query-token",
    summary="Let a signal endpoint accept its token as a query parameter, or stop it",
    description="switchman's addition, for senders that can set neither an Authorization header nor URL "
    "credentials: `POST /api/signal-endpoint/{name}?token=<token>`. Off by default (URLs end up in proxies' "
    "logs); switchman's request log never writes query strings. Applies within a second.",
    response_model=SignalEndpointQueryTokenSchema,
)
async def set_signal_endpoint_query_token(
    request: Request,
    endpoint_id: EndpointId,
    payload: SetSignalEndpointQueryTokenSchema,
    principal: AdminPrincipal,
) -> SignalEndpointQueryTokenSchema:
    async with runtime_of(request).db.transaction() as conn:
        return await query_token.set_query_token(
            conn, endpoint_id=parse_path_id(endpoint_id, ENDPOINT), accepted=payload.accepted, actor=principal
        )


# --- signals --------------------------------------------------------------------------------------------


@router.get(
    f"{BASE}/{{signalEndpointId}}/signals",
    operation_id="get-signal-endpoint-signals",
    summary="[BETA] Get the signals of a signal endpoint (newest first)",
    response_class=RawJSONResponse,
    responses={200: {"model": SignalEndpointSignalsSchema}},
)
async def get_signal_endpoint_signals(
    request: Request,
    signal_endpoint_id: SignalEndpointId,
    _principal: AdminPrincipal,
    limit: Limit = None,
    offset: Offset = None,
) -> RawJSONResponse:
    endpoint_id = parse_path_id(signal_endpoint_id, ENDPOINT)
    async with runtime_of(request).db.read() as conn:
        body = await service.endpoint_signals_json(
            conn, endpoint_id=endpoint_id, limit=normalize_limit(limit), offset=normalize_offset(offset)
        )
    return RawJSONResponse(body)


@router.get(
    "/api/admin/signals/set-aside",
    operation_id="get-set-aside-signals",
    summary="Signals the worker set aside because processing them kept failing (switchman, ADR 0028)",
    response_model=SetAsideSignalsSchema,
    responses=error_responses(400, 401, 403),
)
async def get_set_aside_signals(
    request: Request, _principal: AdminPrincipal, limit: Limit = None, offset: Offset = None
) -> SetAsideSignalsSchema:
    async with runtime_of(request).db.read() as conn:
        return await service.list_set_aside_signals(
            conn, limit=normalize_limit(limit), offset=normalize_offset(offset)
        )


@router.post(
    "/api/admin/signals/{signalId}/retry",
    operation_id="retry-set-aside-signal",
    summary="Put a set-aside signal back in the queue with a fresh count of failures (switchman, ADR 0028)",
    status_code=202,
    response_class=Response,
    responses=error_responses(400, 401, 403, 404),
)
async def retry_set_aside_signal(
    request: Request,
    principal: AdminPrincipal,
    signal_id: Annotated[str, Path(alias="signalId", description="The set-aside signal's id.")],
) -> Response:
    parsed = parse_path_id(signal_id, "set-aside signal")
    runtime = runtime_of(request)
    async with runtime.db.transaction() as conn:
        await service.retry_set_aside_signal(conn, principal, signal_id=parsed)
        await runtime.wakeup.announce(conn)
    runtime.wakeup.committed()
    return Response(status_code=202)


@router.get(
    "/api/admin/signals",
    operation_id="get-signals",
    summary="[BETA] Search signals (newest first)",
    response_class=RawJSONResponse,
    responses={200: {"model": SignalQueryResponseSchema}},
)
async def get_signals(
    request: Request,
    _principal: AnyPrincipal,
    from_: Annotated[
        str | None,
        Query(alias="from", description="`IS:yyyy-MM-dd`: signals created on or after that day (UTC)."),
    ] = None,
    to: Annotated[
        str | None,
        Query(description="`IS:yyyy-MM-dd`: signals created on or before that day (UTC)."),
    ] = None,
    limit: Limit = None,
    offset: Offset = None,
) -> RawJSONResponse:
    created_from = service.parse_day_filter(from_, "from")
    to_day = service.parse_day_filter(to, "to")
    async with runtime_of(request).db.read() as conn:
        body = await service.query_signals_json(
            conn,
            created_from=created_from,
            to_day=to_day,
            limit=normalize_limit(limit),
            offset=normalize_offset(offset),
        )
    return RawJSONResponse(body)
