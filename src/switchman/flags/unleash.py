"""The remote flag backend: drives a real Unleash server through its admin API (ADRs 0007 and 0010).

Contract (on top of `FlagBackend`'s):
- The actor's permission is checked here, before any HTTP call: it must hold `UPDATE_FEATURE_ENVIRONMENT`.
  The remote server then acts with switchman's own API token, so Unleash's audit log names that token's user.
- One flag: `POST /api/admin/projects/{project}/features/{feature}/environments/{environment}/on|off`.
  Every path segment is percent-encoded (dot-segments too), so no name can change the path.
- By tag: `GET /api/admin/projects/{project}/features?tag=type:value`, keep the non-archived flags that really
  carry the tag, then ONE `POST …/bulk_features/environments/{env}/on|off` with their names. Unleash applies
  a bulk change all-or-nothing and names only the first bad flag, so when it refuses the bulk call (a 4xx
  other than 401/403) every flag is toggled separately: each is attempted and each failure is named.
  No tagged flag is a success, unless the project itself is unknown to the server (checked with
  `GET /api/admin/projects` only in that case), which is a failure.
- Deadlines: each operation (one flag, or a whole by-tag action) ends within `deadline` seconds; each HTTP
  attempt within `timeout` seconds (and within what is left of the deadline). A worker is never hung.
- Retries: a timeout, a failure to reach the server (refused, reset, dropped keep-alive connection), a 429
  or a 5xx answer is retried up to `retries` times, after exponential backoff with jitter, while the
  deadline leaves room. on/off set a state and the listings only read, so a repeat is harmless. Other HTTP
  answers are final at once.
- Failures raise `FlagActionError` with a human message that never contains the API token.
- `check()` is the start-up probe: one call that tells a wrong URL, a refused token and an unreachable
  server apart. `action_options(project)` lists the project's environments, flags and tags for
  `/actions/config`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from switchman import metrics
from switchman.auth.permissions import UPDATE_FEATURE_ENVIRONMENT
from switchman.auth.principal import Principal
from switchman.engine.actions import ToggleCommand
from switchman.errors import PermissionDeniedError
from switchman.flags.backend import ActionOptions, FlagActionError, ToggleReport, toggle_each

log = logging.getLogger(__name__)

BACKEND = "unleash"  # the `backend` label of its calls in the metrics

_MAX_REMOTE_MESSAGE = 200
# Errors that mean the request got no response from the server: safe to repeat an idempotent call.
_UNREACHABLE = (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)
_PROJECTS = "/api/admin/projects"


def quote_segment(value: str) -> str:
    """Percent-encode one URL path segment: `/`, `?`, `#`, `%` and the dot-segments `.`/`..` included."""
    if value and set(value) == {"."}:
        return "%2E" * len(value)
    return quote(value, safe="")


class UnleashCheckError(Exception):
    """The start-up probe failed. `transient` tells "try again later" (unreachable, timeout, 5xx) from a
    configuration that can never work (wrong URL, refused token). The message never holds the token."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class _Failure:
    """One failed attempt: the message to report, and whether another attempt may succeed."""

    message: str
    retryable: bool


class UnleashFlagBackend:
    """A `FlagBackend` that toggles flags on a remote Unleash server (OSS or Enterprise) over HTTP."""

    def __init__(
        self,
        base_url: str,
        api_token: str,
        *,
        timeout: float,
        deadline: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        max_backoff: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """`base_url` is the server's root including any base path (e.g. `http://127.0.0.1:4242`);
        `api_token` an admin API token or a personal access token; `timeout` bounds each HTTP attempt and
        `deadline` each whole operation (seconds); `retries` extra attempts follow a retryable failure after
        a delay drawn from [b/2, b] with b = min(max_backoff, backoff * 2^(attempt-1)).

        Raises ValueError for an unusable URL, token or bound (the token is never part of the message).
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
        if timeout <= 0 or deadline <= 0:
            raise ValueError("the Unleash timeout and deadline must be positive")
        if retries < 0 or backoff < 0 or max_backoff < 0:
            raise ValueError("the Unleash retries and backoff must not be negative")
        self._token = token
        self._timeout = timeout
        self._deadline = deadline
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._rng = rng or random.Random()  # jitter, not a secret
        self._sleep = sleep
        self._display_url = str(url).rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self._display_url,
            headers={"Authorization": token, "Accept": "application/json", "User-Agent": "switchman"},
            timeout=httpx.Timeout(timeout),
            transport=transport,
            follow_redirects=False,
        )

    @property
    def url(self) -> str:
        """The server's root URL as configured (no credentials in it)."""
        return self._display_url

    async def toggle(self, actor: Principal, command: ToggleCommand) -> ToggleReport:
        """Perform `command` on the remote server as `actor`: one flag, or every non-archived flag of the
        project carrying the tag."""
        self._check_permission(actor)
        if command.tag is not None:
            return await self._toggle_by_tag(command, command.tag)
        assert command.feature_name is not None
        _require_names(
            project=command.project, environment=command.environment, feature_name=command.feature_name
        )
        await self._toggle(
            command.project, command.environment, command.feature_name, command.enabled, self._ends_at()
        )
        return ToggleReport(features=(command.feature_name,))

    async def _toggle_by_tag(self, command: ToggleCommand, tag: tuple[str, str]) -> ToggleReport:
        project, environment, enabled = command.project, command.environment, command.enabled
        tag_type, tag_value = tag
        _require_names(project=project, environment=environment, tag_type=tag_type, tag_value=tag_value)
        ends_at = self._ends_at()
        names = await self._tagged_features(project, tag_type, tag_value, ends_at)
        if not names:
            # Unleash lists an unknown project as empty; tell that apart from "no flag carries the tag".
            await self._require_project(project, ends_at)
            return ToggleReport(features=())
        turn = "on" if enabled else "off"
        what = f"flags tagged {tag_type}:{tag_value} in {environment}"
        path = (
            f"/api/admin/projects/{quote_segment(project)}/bulk_features/environments/"
            f"{quote_segment(environment)}/{turn}"
        )
        failure = await self._attempts("POST", path, ends_at, json={"features": names})
        if isinstance(failure, httpx.Response):
            return ToggleReport(features=tuple(names))
        if failure.retryable or failure.message.startswith(_REFUSED):
            # Unreachable, failing or refusing us: one-by-one calls could only fail the same way.
            raise FlagActionError(
                f"Could not turn {turn} {len(names)} of {len(names)} {what} "
                f"({', '.join(names)}: {failure.message})"
            )
        # The bulk change was refused as a whole (a missing flag or environment, or no bulk endpoint):
        # toggle each flag so the others are applied and each failure carries Unleash's own message.
        log.debug("bulk %s refused (%s); toggling %d flags one by one", path, failure.message, len(names))
        return await toggle_each(
            names, command, lambda name: self._toggle(project, environment, name, enabled, ends_at)
        )

    async def action_options(self, project: str) -> ActionOptions:
        """The project's environments, flags and tags on the remote server (for `/actions/config`).

        Environments: those Unleash shows as enabled and visible in the project, in its sort order.
        Flags: the project's non-archived flags by name. Tags: `type:value` of every tag on those flags.
        """
        ends_at = self._ends_at()
        environments_path = f"/api/admin/environments/project/{quote_segment(project)}"
        features_path = f"{_PROJECTS}/{quote_segment(project)}/features"
        environments_answer, features_answer = await asyncio.gather(
            self._call("GET", environments_path, ends_at), self._call("GET", features_path, ends_at)
        )
        environments = _listed(environments_answer, "environments", f"GET {environments_path}")
        features = _listed(features_answer, "features", f"GET {features_path}")
        env_names = [
            env["name"]
            for env in sorted(
                (e for e in environments if isinstance(e, dict) and isinstance(e.get("name"), str)),
                key=lambda e: (e.get("sortOrder") if isinstance(e.get("sortOrder"), int) else 0, e["name"]),
            )
            if env.get("enabled", True) is not False and env.get("visible", True) is not False
        ]
        flag_names: set[str] = set()
        tags: set[str] = set()
        for feature in features:
            if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
                continue
            if feature.get("archived") is True:
                continue
            flag_names.add(feature["name"])
            for tag in feature.get("tags") or []:
                if (
                    isinstance(tag, dict)
                    and isinstance(tag.get("type"), str)
                    and isinstance(tag.get("value"), str)
                ):
                    tags.add(f"{tag['type']}:{tag['value']}")
        return ActionOptions(
            environments=tuple(env_names), features=tuple(sorted(flag_names)), tags=tuple(sorted(tags))
        )

    async def check(self) -> None:
        """Start-up probe: one `GET /api/admin/projects`, which needs an admin-capable token.

        Raises UnleashCheckError naming what is wrong: the URL (no Unleash admin API there), the token
        (refused: 401, or not allowed on the admin API: 403), or the server's reachability (transient).
        """
        where = f"the Unleash server at {self._display_url}"
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(_PROJECTS)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise self._check_error(f"{where} did not answer within {self._timeout:g} s", True) from exc
        except httpx.HTTPError as exc:
            raise self._check_error(f"could not reach {where}: {_describe(exc)}", True) from exc
        status = response.status_code
        message = _remote_message(response)
        reason = f"HTTP {status}" + (f": {message}" if message else "")
        if status == 401:
            raise self._check_error(
                f"{where} refused SWITCHMAN_UNLEASH_API_TOKEN ({reason}); use an admin API token or a "
                "personal access token of that server",
                False,
            )
        if status == 403:
            raise self._check_error(
                f"{where} does not let SWITCHMAN_UNLEASH_API_TOKEN use its admin API ({reason}); client, "
                "backend and frontend tokens cannot change flags: use an admin API token or a personal "
                "access token",
                False,
            )
        if status >= 500 or status == 429:
            raise self._check_error(f"{where} failed (HTTP {status})", True)
        projects = _projects_of(response) if response.is_success else None
        if projects is None:
            content_type = response.headers.get("content-type", "no content type").split(";")[0]
            raise self._check_error(
                f"SWITCHMAN_UNLEASH_URL={self._display_url} does not look like an Unleash server: "
                f"GET {_PROJECTS} answered HTTP {status} ({content_type}) without a list of projects; "
                "give the server's root URL including any base path, e.g. http://unleash:4242",
                False,
            )

    async def close(self) -> None:
        """Close the HTTP client and its kept-alive connections."""
        await self._client.aclose()

    # -- internals ---------------------------------------------------------------------------------------

    @staticmethod
    def _check_permission(actor: Principal) -> None:
        if not actor.can(UPDATE_FEATURE_ENVIRONMENT):
            raise FlagActionError(PermissionDeniedError([UPDATE_FEATURE_ENVIRONMENT]).message)

    def _ends_at(self) -> float:
        return asyncio.get_running_loop().time() + self._deadline

    async def _toggle(
        self, project: str, environment: str, feature_name: str, enabled: bool, ends_at: float
    ) -> None:
        path = (
            f"/api/admin/projects/{quote_segment(project)}/features/{quote_segment(feature_name)}"
            f"/environments/{quote_segment(environment)}/{'on' if enabled else 'off'}"
        )
        await self._call("POST", path, ends_at)

    async def _tagged_features(
        self, project: str, tag_type: str, tag_value: str, ends_at: float
    ) -> list[str]:
        path = f"{_PROJECTS}/{quote_segment(project)}/features"
        # Unleash splits `?tag=` on every ':' and fails (HTTP 500) when the value holds one; such tags are
        # matched here on the project's full flag list instead.
        params = None if ":" in tag_type or ":" in tag_value else {"tag": f"{tag_type}:{tag_value}"}
        response = await self._call("GET", path, ends_at, params=params)
        return _tagged_names(response, tag_type, tag_value, f"GET {path}")

    async def _require_project(self, project: str, ends_at: float) -> None:
        response = await self._call("GET", _PROJECTS, ends_at)
        projects = _projects_of(response)
        if projects is None:
            raise FlagActionError(
                f"The Unleash server sent an unexpected answer to GET {_PROJECTS}: no list of projects"
            )
        if not any(isinstance(item, dict) and item.get("id") == project for item in projects):
            raise FlagActionError(f'Could not find project with id "{project}" on the Unleash server.')

    async def _call(self, method: str, path: str, ends_at: float, **request: Any) -> httpx.Response:
        """`_attempts` (same arguments), with a failure raised as FlagActionError."""
        outcome = await self._attempts(method, path, ends_at, **request)
        if isinstance(outcome, httpx.Response):
            return outcome
        raise FlagActionError(outcome.message)

    async def _attempts(
        self,
        method: str,
        path: str,
        ends_at: float,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response | _Failure:
        """The 2xx response, or the last failure once retries, or the time before `ends_at`, run out."""
        loop = asyncio.get_running_loop()
        attempts = self._retries + 1
        failure = _Failure(
            f"The Unleash server at {self._display_url} was not called: the action's time ran out", True
        )
        attempt = 0
        while attempt < attempts:
            left = ends_at - loop.time()
            if left <= 0:
                break
            attempt += 1
            bound = min(self._timeout, left)
            try:
                async with asyncio.timeout(bound):
                    response = await self._client.request(method, path, params=params, json=json)
            except (TimeoutError, httpx.TimeoutException):
                failure = _Failure(
                    f"The Unleash server at {self._display_url} did not answer within {bound:.3g} s", True
                )
            except _UNREACHABLE as exc:
                failure = _Failure(
                    f"Could not reach the Unleash server at {self._display_url}: {_describe(exc)}", True
                )
            except httpx.HTTPError as exc:
                return self._scrub(
                    _Failure(
                        f"Could not call the Unleash server at {self._display_url}: {_describe(exc)}", False
                    )
                )
            else:
                log.debug("%s %s -> %s", method, path, response.status_code)
                if response.is_success:
                    metrics.flag_backend_call(BACKEND, metrics.SUCCESS)
                    return response
                status = response.status_code
                failure = _Failure(_status_message(response, method, path), status >= 500 or status == 429)
            if not failure.retryable or attempt >= attempts:
                break
            delay = self._delay(attempt)
            if loop.time() + delay >= ends_at:
                break  # no time left for another attempt
            log.debug("retrying %s %s in %.3f s after: %s", method, path, delay, failure.message)
            await self._sleep(delay)
        if failure.retryable and attempt > 1:
            failure = _Failure(f"{failure.message} ({attempt} attempts)", True)
        return self._scrub(failure)

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: uniform in [b/2, b], b = min(max_backoff, backoff * 2^(n-1))."""
        ceiling = min(self._max_backoff, self._backoff * 2 ** (attempt - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def _scrub(self, failure: _Failure) -> _Failure:
        """`failure` without the API token in its message (every failed call ends here: it is counted)."""
        metrics.flag_backend_call(BACKEND, metrics.UNAVAILABLE if failure.retryable else metrics.REFUSED)
        return _Failure(failure.message.replace(self._token, "***"), failure.retryable)

    def _check_error(self, message: str, transient: bool) -> UnleashCheckError:
        return UnleashCheckError(message.replace(self._token, "***"), transient=transient)


_REFUSED = "The Unleash server refused switchman's API token"


def _projects_of(response: httpx.Response) -> list[Any] | None:
    try:
        body: Any = response.json()
    except ValueError:
        return None
    projects = body.get("projects") if isinstance(body, dict) else None
    return projects if isinstance(projects, list) else None


def _listed(response: httpx.Response, key: str, request: str) -> list[Any]:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    items = body.get(key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise FlagActionError(f"The Unleash server sent an unexpected answer to {request}: no list of {key}")
    return items


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
        return f"{_REFUSED} (HTTP {status}){suffix}"
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
