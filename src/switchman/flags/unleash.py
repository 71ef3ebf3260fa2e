"""The remote flag backend: drives a real Unleash server through its admin API (ADR 0007).

Contract (on top of `FlagBackend`'s):
- The actor's permission is checked here, before any HTTP call: it must hold `UPDATE_FEATURE_ENVIRONMENT`.
  The remote server then acts with switchman's own API token, so Unleash's audit log names that token's user.
- One flag: `POST /api/admin/projects/{project}/features/{feature}/environments/{environment}/on|off`.
  Every path segment is percent-encoded (dot-segments too), so no name can change the path.
- By tag: `GET /api/admin/projects/{project}/features?tag=type:value`, keep the non-archived flags that really
  carry the tag, then toggle each one separately so every flag is attempted and each failure is named.
  No tagged flag is a success, unless the project itself is unknown to the server (checked with
  `GET /api/admin/projects` only in that case), which is a failure.
- Each HTTP call is bounded by `timeout` seconds in total. Calls that failed to reach the server (connection
  refused or reset, the server closing a kept-alive connection) are retried once: on/off sets a state and the
  listing only reads, so a repeat is harmless. Timeouts and HTTP error answers are not retried.
- Failures raise `FlagActionError` with a human message that never contains the API token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.errors import PermissionDeniedError
from switchman.flags.backend import FlagActionError, TagToggleReport

log = logging.getLogger(__name__)

_MAX_REMOTE_MESSAGE = 200
# Errors that mean the request never got a response from the server: safe to repeat an idempotent call.
_RETRYABLE = (httpx.NetworkError, httpx.RemoteProtocolError)


def quote_segment(value: str) -> str:
    """Percent-encode one URL path segment: `/`, `?`, `#`, `%` and the dot-segments `.`/`..` included."""
    if value and set(value) == {"."}:
        return "%2E" * len(value)
    return quote(value, safe="")


class UnleashFlagBackend:
    """A `FlagBackend` that toggles flags on a remote Unleash server (OSS or Enterprise) over HTTP."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`base_url` is the server's root including any base path (e.g. `http://127.0.0.1:4242`);
        `api_token` an admin API token or a personal access token; `timeout` bounds each HTTP call (seconds).

        Raises ValueError for an unusable URL or token (the token is never part of the message).
        """
        url = httpx.URL(base_url.strip())
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("the Unleash URL must be an absolute http:// or https:// URL")
        if url.userinfo:
            raise ValueError("the Unleash URL must not contain credentials; pass the API token instead")
        if url.query or url.fragment:
            raise ValueError("the Unleash URL must not have a query or fragment")
        token = api_token.strip()
        if not token or any(ch.isspace() or not ch.isprintable() for ch in token):
            raise ValueError(
                "the Unleash API token must be a non-empty string without spaces or control characters"
            )
        if timeout <= 0:
            raise ValueError("the Unleash timeout must be positive")
        self._token = token
        self._timeout = timeout
        self._display_url = str(url).rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self._display_url,
            headers={"Authorization": token, "Accept": "application/json", "User-Agent": "switchman"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    async def set_enabled(
        self, *, actor: Principal, project: str, environment: str, feature_name: str, enabled: bool
    ) -> None:
        """Turn one flag on or off in one environment of the remote server, as `actor`."""
        self._check_permission(actor)
        _require_names(project=project, environment=environment, feature_name=feature_name)
        await self._toggle(project, environment, feature_name, enabled)

    async def set_enabled_by_tag(
        self,
        *,
        actor: Principal,
        project: str,
        environment: str,
        tag_type: str,
        tag_value: str,
        enabled: bool,
    ) -> TagToggleReport:
        """Turn every non-archived flag of `project` tagged `tag_type:tag_value` on or off, one by one."""
        self._check_permission(actor)
        _require_names(project=project, environment=environment, tag_type=tag_type, tag_value=tag_value)
        names = await self._tagged_features(project, tag_type, tag_value)
        if not names:
            # Unleash lists an unknown project as empty; tell that apart from "no flag carries the tag".
            await self._require_project(project)
        done: list[str] = []
        failed: list[tuple[str, str]] = []
        for name in names:
            try:
                await self._toggle(project, environment, name, enabled)
            except FlagActionError as exc:
                failed.append((name, str(exc)))
            else:
                done.append(name)
        if failed:
            listed = "; ".join(f"{name}: {reason}" for name, reason in failed)
            raise FlagActionError(
                f"Could not turn {'on' if enabled else 'off'} {len(failed)} of {len(names)} flags tagged "
                f"{tag_type}:{tag_value} in {environment} ({listed})"
            )
        return TagToggleReport(features=tuple(done))

    async def close(self) -> None:
        """Close the HTTP client and its kept-alive connections."""
        await self._client.aclose()

    # -- internals ---------------------------------------------------------------------------------------

    @staticmethod
    def _check_permission(actor: Principal) -> None:
        if not actor.can(UPDATE_FEATURE_ENVIRONMENT):
            raise FlagActionError(PermissionDeniedError([UPDATE_FEATURE_ENVIRONMENT]).message)

    async def _toggle(self, project: str, environment: str, feature_name: str, enabled: bool) -> None:
        path = (
            f"/api/admin/projects/{quote_segment(project)}/features/{quote_segment(feature_name)}"
            f"/environments/{quote_segment(environment)}/{'on' if enabled else 'off'}"
        )
        await self._call("POST", path)

    async def _tagged_features(self, project: str, tag_type: str, tag_value: str) -> list[str]:
        path = f"/api/admin/projects/{quote_segment(project)}/features"
        # Unleash splits `?tag=` on every ':' and fails (HTTP 500) when the value holds one; such tags are
        # matched here on the project's full flag list instead.
        params = None if ":" in tag_type or ":" in tag_value else {"tag": f"{tag_type}:{tag_value}"}
        response = await self._call("GET", path, params=params)
        return _tagged_names(response, tag_type, tag_value, f"GET {path}")

    async def _require_project(self, project: str) -> None:
        path = "/api/admin/projects"
        response = await self._call("GET", path)
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        projects = body.get("projects") if isinstance(body, dict) else None
        if not isinstance(projects, list):
            raise FlagActionError(
                f"The Unleash server sent an unexpected answer to GET {path}: no list of projects"
            )
        if not any(isinstance(item, dict) and item.get("id") == project for item in projects):
            raise FlagActionError(f'Could not find project with id "{project}" on the Unleash server.')

    async def _call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """One HTTP call with the timeout and retry policy; any non-2xx answer becomes FlagActionError."""
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self._timeout):
                    response = await self._client.request(method, path, params=params)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise self._error(
                    f"The Unleash server at {self._display_url} did not answer within {self._timeout:g} s"
                ) from exc
            except _RETRYABLE as exc:
                if attempt == 1:
                    log.debug("retrying %s %s after %s", method, path, type(exc).__name__)
                    continue
                raise self._error(
                    f"Could not reach the Unleash server at {self._display_url}: {_describe(exc)}"
                ) from exc
            except httpx.HTTPError as exc:
                raise self._error(
                    f"Could not call the Unleash server at {self._display_url}: {_describe(exc)}"
                ) from exc
            log.debug("%s %s -> %s", method, path, response.status_code)
            if response.is_success:
                return response
            raise self._error(_status_message(response, method, path))
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(self, message: str) -> FlagActionError:
        return FlagActionError(message.replace(self._token, "***"))


def _require_names(**names: str) -> None:
    for field, value in names.items():
        if not value:
            raise FlagActionError(f"The {field.replace('_', ' ')} must not be empty")


def _remote_message(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return None
    message = " ".join(message.split())
    return message if len(message) <= _MAX_REMOTE_MESSAGE else message[: _MAX_REMOTE_MESSAGE - 1] + "…"


def _status_message(response: httpx.Response, method: str, path: str) -> str:
    status = response.status_code
    message = _remote_message(response)
    request = f"{method} {path}"
    if status == 404:
        return message or f"The Unleash server has no {path} (HTTP 404); check SWITCHMAN_UNLEASH_URL"
    if status in (401, 403):
        suffix = f": {message}" if message else ""
        return f"The Unleash server refused switchman's API token (HTTP {status}){suffix}"
    if status >= 500:
        return f"The Unleash server failed (HTTP {status})"
    if 400 <= status < 500:
        suffix = f": {message}" if message else ""
        return f"The Unleash server rejected {request} (HTTP {status}){suffix}"
    return (
        f"The Unleash server answered {request} with an unexpected HTTP {status}; check SWITCHMAN_UNLEASH_URL"
    )


def _tagged_names(response: httpx.Response, tag_type: str, tag_value: str, request: str) -> list[str]:
    """Names of the non-archived flags in an Unleash features list that carry `tag_type:tag_value`.

    Each flag's own `tags` are checked, so a server that ignored the filter can never widen the selection.
    """
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    features = body.get("features") if isinstance(body, dict) else None
    if not isinstance(features, list):
        raise FlagActionError(
            f"The Unleash server sent an unexpected answer to {request}: no list of features"
        )
    names: set[str] = set()
    for feature in features:
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            raise FlagActionError(
                f"The Unleash server sent an unexpected answer to {request}: a flag without a name"
            )
        # Unleash leaves `tags` out of a flag that has none.
        tags = feature.get("tags", [])
        if not isinstance(tags, list):
            raise FlagActionError(
                f"The Unleash server sent an unexpected answer to {request}: flag {feature['name']} has tags "
                f"that are not a list"
            )
        if feature.get("archived") is True:
            continue
        if any(
            isinstance(tag, dict) and tag.get("type") == tag_type and tag.get("value") == tag_value
            for tag in tags
        ):
            names.add(feature["name"])
    return sorted(names)


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__
