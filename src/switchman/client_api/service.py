"""The client API's logic: who the SDK is (token → scope), what it asked for (query), what it gets.

- `authenticate_client` resolves `Authorization` to a `ClientScope` (client/backend tokens only), with
  Unleash's answers for everything else (401/403 and `{message}` bodies).
- `resolve_query` merges the token's scope with the query string as Unleash's `resolveQuery` does: the
  token's projects and environment override the caller's.
- `features_response` answers `GET /api/client/features`: it reads the flag store's revision first
  (audit.revision); the ETag is `"<queryHash>:<revision>:v1"`, so a matching `If-None-Match` costs one
  token lookup and one one-row read. Otherwise the serialized payload is taken from the per-process cache
  keyed by (query, revision) or built, serialized once with orjson, and cached. The cache needs no
  invalidation: any change in any process moves the revision, which every request reads from the database.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from switchman.api_tokens.configured import ALL
from switchman.audit import revision as flag_revision
from switchman.auth import tokens
from switchman.auth.service import find_api_token
from switchman.client_api import repository
from switchman.client_api.hashsum import UNDEFINED, hash_sum
from switchman.errors import BadDataError, NotFoundError, SwitchmanError
from switchman.timeutil import utcnow

VERSION = 2
DEFAULT_ENVIRONMENT = "development"
# Token types that may read flags through the client API (Unleash: client and its newer name, backend).
SDK_TOKEN_TYPES = frozenset({"client", "backend"})
# `Unleash-Client-Spec` from which an SDK understands `segments` (Unleash's ClientSpecService).
SEGMENTS_SPEC = (4, 2, 0)
CACHE_ENTRIES = 256

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


NO_TOKEN_MESSAGE = (
    "This endpoint requires an API token. Please add an authorization header to your request with a "
    "valid token"
)
WRONG_TYPE_MESSAGE = "invalid token: expected a different token type for this endpoint"


class _BareMessageError(SwitchmanError):
    """Unleash's client-API authentication answers have a bare `{message}` body (no id/name/details)."""

    def body(self) -> dict[str, Any]:
        return {"message": self.message}


class ClientTokenRequired(_BareMessageError):
    status_code = 401
    name = "ClientTokenRequired"

    def __init__(self) -> None:
        super().__init__(NO_TOKEN_MESSAGE)


class WrongTokenType(_BareMessageError):
    status_code = 403
    name = "WrongTokenType"

    def __init__(self) -> None:
        super().__init__(WRONG_TYPE_MESSAGE)


@dataclass(frozen=True)
class ClientScope:
    """What a client/backend token may read: one environment (or `*`) and projects (`("*",)` = all)."""

    token_id: int
    environment: str
    projects: tuple[str, ...]

    @property
    def all_projects(self) -> bool:
        return ALL in self.projects


async def authenticate_client(conn: AsyncConnection, header_value: str | None) -> ClientScope:
    """Unleash's answers, probed on 8.2.0: no/unknown token → 401; a valid admin, frontend or personal
    access token → 403; an unknown token that looks like an admin token (`*:*.…`) or a PAT (`user:…`) → 403.
    """
    secret = tokens.strip_bearer(header_value or "")
    if not secret:
        raise ClientTokenRequired()
    row = await find_api_token(conn, secret, tokens.hash_secret(secret))
    if row is None:
        if secret.startswith(("*:*.", "user:")):
            raise WrongTokenType()
        raise ClientTokenRequired()
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise ClientTokenRequired()
    if row.type not in SDK_TOKEN_TYPES:
        raise WrongTokenType()  # admin and frontend tokens
    return ClientScope(token_id=row.id, environment=row.environment, projects=tuple(row.projects or ()))


# --- the query ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientQuery:
    """Unleash's resolved client query; `None` fields were not given (JavaScript `undefined`)."""

    tag: tuple[tuple[str, str], ...] | None
    project: tuple[str, ...] | None
    name_prefix: str | None
    environment: str
    inline_segment_constraints: bool

    def wire(self) -> dict[str, Any]:
        """The `query` object of the response, in Unleash's key order, absent keys left out."""
        out: dict[str, Any] = {}
        if self.tag is not None:
            out["tag"] = [list(pair) for pair in self.tag]
        if self.project is not None:
            out["project"] = list(self.project)
        if self.name_prefix is not None:
            out["namePrefix"] = self.name_prefix
        out["environment"] = self.environment
        out["inlineSegmentConstraints"] = self.inline_segment_constraints
        return out

    @property
    def query_hash(self) -> str:
        """Unleash's `hashSum(query)` — the same value Unleash computes for the same query."""
        wire = self.wire()
        return hash_sum(
            {
                key: wire.get(key, UNDEFINED)
                for key in ("tag", "project", "namePrefix", "environment", "inlineSegmentConstraints")
            }
        )


def supports_segments(spec_header: str | None) -> bool:
    """Whether `Unleash-Client-Spec` is ≥ 4.2.0; a malformed header is 400, as in Unleash."""
    if not spec_header:
        return False
    match = _SEMVER.match(spec_header)
    if match is None:
        kind = "prefix" if not spec_header[:1].isdigit() else "SemVer"
        message = f'Invalid {kind} in the Unleash-Client-Spec header: "{spec_header}".'
        raise BadDataError(
            f"Request validation failed: your request body or params contain invalid data: {message}"
        )
    return tuple(int(part) for part in match.groups()) >= SEGMENTS_SPEC


def resolve_query(
    scope: ClientScope,
    *,
    tags: Sequence[str],
    projects: Sequence[str],
    name_prefix: str | None,
    environment: str | None,
    segments_supported: bool,
) -> ClientQuery:
    """The token's projects (unless `*`) and environment (unless `*`) override the query string's."""
    if name_prefix is not None and name_prefix == "":
        raise _invalid_query('"namePrefix" is not allowed to be empty.')
    tag_pairs: list[tuple[str, str]] = []
    for raw in tags:
        tag_type, sep, value = raw.partition(":")
        if not sep or not tag_type or not value:
            raise _invalid_query(f'"tag" must look like "type:value", got "{raw}".')
        tag_pairs.append((tag_type, value))
    if not scope.all_projects:
        project: tuple[str, ...] | None = scope.projects
    else:
        project = tuple(projects) or None
    env = scope.environment if scope.environment != ALL else (environment or DEFAULT_ENVIRONMENT)
    return ClientQuery(
        tag=tuple(tag_pairs) or None,
        project=project,
        name_prefix=name_prefix,
        environment=env,
        inline_segment_constraints=not segments_supported,
    )


def _invalid_query(message: str) -> BadDataError:
    return BadDataError(
        "Request validation failed: your request body or params contain invalid data. "
        "Refer to the `details` list for more information.",
        details=[{"message": message}],
    )


# --- GET /api/client/features -------------------------------------------------------------------------


@dataclass(frozen=True)
class FeaturesResponse:
    etag: str
    body: bytes | None  # None: the caller's If-None-Match matched (304)


class PayloadCache:
    """Serialized payloads by query, each for one revision; the least recently used query is dropped."""

    def __init__(self, max_entries: int = CACHE_ENTRIES) -> None:
        self._entries: OrderedDict[ClientQuery, tuple[int, bytes]] = OrderedDict()
        self._max = max_entries

    def get(self, query: ClientQuery, revision: int) -> bytes | None:
        entry = self._entries.get(query)
        if entry is None or entry[0] != revision:
            return None
        self._entries.move_to_end(query)
        return entry[1]

    def put(self, query: ClientQuery, revision: int, body: bytes) -> None:
        current = self._entries.get(query)
        if current is not None and current[0] > revision:
            return  # a concurrent request already cached a newer revision
        self._entries[query] = (revision, body)
        self._entries.move_to_end(query)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


async def _load(conn: AsyncConnection, query: ClientQuery) -> list[dict[str, Any]]:
    return await repository.load_features(
        conn,
        environment=query.environment,
        projects=query.project,
        name_prefix=query.name_prefix,
        tags=query.tag,
    )


def etag_for(query: ClientQuery, revision: int) -> str:
    return f'"{query.query_hash}:{revision}:v1"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison against a list of tags, or `*` (Express's `fresh`, which Unleash uses)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(part.strip().removeprefix("W/") == wanted for part in if_none_match.split(","))


async def features_response(
    conn: AsyncConnection, *, query: ClientQuery, if_none_match: str | None, cache: PayloadCache
) -> FeaturesResponse:
    # The revision is read before the flags: the payload is then at least as new as its ETag says, so a
    # concurrent change can only make a response newer than its ETag, never older (the next poll fetches).
    revision = await flag_revision.current_revision(conn)
    etag = etag_for(query, revision)
    if etag_matches(if_none_match, etag):
        return FeaturesResponse(etag=etag, body=None)
    body = cache.get(query, revision)
    if body is None:
        features = await _load(conn, query)
        document: dict[str, Any] = {"version": VERSION, "features": features, "query": query.wire()}
        if not query.inline_segment_constraints:
            document["segments"] = []
        document["meta"] = {"revisionId": revision, "etag": etag, "queryHash": query.query_hash}
        body = orjson.dumps(document)
        cache.put(query, revision, body)
    return FeaturesResponse(etag=etag, body=body)


async def feature_response(conn: AsyncConnection, *, query: ClientQuery, feature_name: str) -> bytes:
    """`GET /api/client/features/{name}`: one flag as in the list, or Unleash's 404."""
    narrowed = ClientQuery(
        tag=query.tag,
        project=query.project,
        name_prefix=feature_name,
        environment=query.environment,
        inline_segment_constraints=query.inline_segment_constraints,
    )
    for feature in await _load(conn, narrowed):
        if feature["name"] == feature_name:
            return orjson.dumps(feature)
    raise NotFoundError(f"Could not find feature flag {feature_name}")
