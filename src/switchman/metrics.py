"""Prometheus metrics: every metric switchman exposes (name, help, labels, buckets) and their exposition.

Everything else only calls the small recording functions below; no other module touches
`prometheus_client`. Metrics are process-wide (one registry per process, ADR 0030): `serve` exposes them on
`GET /metrics`, `switchman worker --metrics-port N` on a port of its own (both in `metrics_http.py`).

Label values are bounded by construction, never taken from what a caller sends as it is:
- `endpoint`: the signal endpoint's name only once this process has seen that the endpoint exists (a call
  the database checked against it, or its cached ingestion rules); any other name — names in the URL come
  before authentication and are attacker-controlled — is counted under `UNKNOWN_ENDPOINT`;
- `route`: the route template (`/api/admin/projects/{projectId}/…`), `UNMATCHED_ROUTE` for paths no route
  matched; `method`: one of the HTTP methods the API uses, `OTHER_METHOD` for any other;
- `project` and `action_set` (its id): only for runs, which exist only for configured action sets.
No signal id, token or payload value is ever a label.

`configure(enabled=False)` (`SWITCHMAN_METRICS_ENABLED=false`) makes every recording function return at
once and `/metrics` answer 404; it exists so that the benchmark can measure what recording costs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.types import Scope

from switchman.db.engine import Database
from switchman.errors import SwitchmanError
from switchman.signal_endpoints.queue import oldest_pending_at, pending_count, set_aside_count
from switchman.timeutil import utcnow

# `*_created` series (a timestamp per counter and histogram child) double the text of every scrape and
# say nothing a dashboard uses.
disable_created_metrics()  # type: ignore[no-untyped-call]  # (unannotated in prometheus_client)
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

UNKNOWN_ENDPOINT = "_unknown"
UNMATCHED_ROUTE = "_unmatched"
OTHER_METHOD = "OTHER"
# The scope key a raw-ASGI fast path sets to its route template (it bypasses the router, which sets
# `scope["route"]` for every other request).
ROUTE_TEMPLATE = "switchman.route"

# Outcomes of a call to a signal endpoint.
ACCEPTED = "accepted"  # stored (a new signal)
DUPLICATE = "duplicate"  # a repeated delivery id: answered with the first delivery's signal, nothing stored
SUBSCRIPTION = "subscription"  # a verified SNS (un)subscription message: answered, nothing stored
DISCONNECTED = "disconnected"  # the caller left before its body was read
_REFUSALS = {
    400: "invalid",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
    503: "unavailable",
}

# Outcomes of a flag backend call.
SUCCESS = "success"
REFUSED = "refused"  # the backend answered no (not found, no permission, a 4xx)
UNAVAILABLE = "unavailable"  # it did not answer usefully (timeout, unreachable, 5xx, 429)
ERROR = "error"  # anything else (a storage error inside the worker's batch)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MAX_KNOWN_ENDPOINTS = 10_000


class _CallCounter:
    """A counter recorded on every call: plain floats by label values, no lock — so it is recorded from
    the event loop's thread only (ingestion, the request log and the worker are) — turned into a family at
    scrape time. prometheus_client's children take a lock per increment; on the ingestion path that was
    most of what recording cost (ADR 0030), and in a worker batch a few per signal."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...]) -> None:
        self.values[key] = self.values.get(key, 0.0) + 1.0

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, value in list(self.values.items()):
            family.add_metric(list(key), value)
        yield family


class _CallHistogram:
    """A histogram recorded on every call, kept like `_CallCounter` (event loop thread only, no lock):
    per label values, a count per bucket (the last one +Inf) and the sum."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, list(labels)
        self.bounds = tuple(buckets)
        self._edges = [repr(float(bound)) for bound in self.bounds] + [
            "+Inf"
        ]  # as prometheus_client writes them
        self.series: dict[tuple[str, ...], list[float]] = {}
        if not self.labels:  # exposed from the start, at zero, as prometheus_client's unlabelled ones
            self.series[()] = [0.0] * (len(self.bounds) + 2)

    def observe(self, key: tuple[str, ...], value: float) -> None:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = [0.0] * (len(self.bounds) + 2)  # buckets, +Inf, sum
        series[bisect_left(self.bounds, value)] += 1.0  # the first bucket whose bound is ≥ value
        series[-1] += value

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for key, series in list(self.series.items()):
            cumulative, buckets = 0.0, []
            for edge, count in zip(self._edges, series, strict=False):
                cumulative += count
                buckets.append((edge, cumulative))
            family.add_metric(list(key), buckets, sum_value=series[-1])
        yield family


signals_received = _CallCounter(
    "switchman_signals_received_total",
    "Calls to signal endpoints, by endpoint (its name once known to exist, else _unknown) and outcome.",
    ["endpoint", "outcome"],
)
REGISTRY.register(signals_received)
signal_queue_depth = Gauge(
    "switchman_signal_queue_depth",
    "Signals waiting for a worker (read from the database at scrape time).",
    registry=REGISTRY,
)
signal_oldest_pending_age = Gauge(
    "switchman_signal_oldest_pending_age_seconds",
    "Age of the oldest signal waiting for a worker, 0 when none waits (read at scrape time).",
    registry=REGISTRY,
)
signals_set_aside = Gauge(
    "switchman_signals_set_aside",
    "Signals set aside because processing them kept failing, until retried (read at scrape time; ADR 0028).",
    registry=REGISTRY,
)
signal_failures = Counter(
    "switchman_signal_failures_total",
    "Attempts at processing a signal that raised (not database outages), by what followed: retried later "
    "or set aside.",
    ["outcome"],
    registry=REGISTRY,
)
signal_processing = _CallHistogram(
    "switchman_signal_processing_seconds",
    "From a signal's arrival to the commit that made it processed (its runs final).",
    [],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0),
)
REGISTRY.register(signal_processing)
action_runs = _CallCounter(
    "switchman_action_runs_total",
    "Committed runs of action sets, by project, action set id and final state.",
    ["project", "action_set", "state"],
)
REGISTRY.register(action_runs)
flag_backend_calls = _CallCounter(
    "switchman_flag_backend_calls_total",
    "Calls to the flag backend, by backend (embedded, unleash) and outcome.",
    ["backend", "outcome"],
)
REGISTRY.register(flag_backend_calls)
http_request_duration = _CallHistogram(
    "switchman_http_request_duration_seconds",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REGISTRY.register(http_request_duration)

# Every metric name a scrape shows (the Grafana dashboard test checks its queries against these).
METRIC_NAMES = (
    "switchman_signals_received_total",
    "switchman_signal_queue_depth",
    "switchman_signal_oldest_pending_age_seconds",
    "switchman_signals_set_aside",
    "switchman_signal_failures_total",
    "switchman_signal_processing_seconds",
    "switchman_action_runs_total",
    "switchman_flag_backend_calls_total",
    "switchman_http_request_duration_seconds",
)

_enabled = True
_known_endpoints: set[str] = set()
_STATUS_TEXT = {code: str(code) for code in range(100, 600)}


def configure(*, enabled: bool) -> None:
    """Turn recording on or off for the whole process (the last application or worker built decides)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


# --- recording ----------------------------------------------------------------------------------------


def signal_received(name: str, outcome: str, *, exists: bool | None) -> None:
    """Count one call to endpoint `name`. `exists`: what the call showed about the endpoint (True: it
    exists, False: it does not, None: the call did not get that far); the name becomes a label value only
    for endpoints this process has seen exist."""
    if not _enabled:
        return
    if exists:
        if name not in _known_endpoints:
            if len(_known_endpoints) >= _MAX_KNOWN_ENDPOINTS:
                _known_endpoints.clear()
            _known_endpoints.add(name)
    elif exists is False:
        _known_endpoints.discard(name)
    signals_received.inc((name if name in _known_endpoints else UNKNOWN_ENDPOINT, outcome))


def refusal_outcome(error: SwitchmanError) -> str:
    """The outcome label of a call refused with `error`."""
    return _REFUSALS.get(error.status_code, ERROR)


def signals_processed(arrivals: Iterable[datetime]) -> None:
    """Observe arrival → now for signals whose processing has just committed."""
    if not _enabled:
        return
    now = utcnow()
    for created_at in arrivals:
        signal_processing.observe((), max(0.0, (now - created_at).total_seconds()))


def signal_failed(*, set_aside: bool) -> None:
    """An attempt at processing a signal raised (ADR 0028)."""
    if _enabled:
        signal_failures.labels("set_aside" if set_aside else "retried").inc()


def run_finished(project: str, action_set_id: int, state: str) -> None:
    """Count one committed run of an action set."""
    if _enabled:
        action_runs.inc((project, str(action_set_id), str(state)))


def flag_backend_call(backend: str, outcome: str) -> None:
    if _enabled:
        flag_backend_calls.inc((backend, outcome))


def request_finished(scope: Scope, status: int, seconds: float) -> None:
    """Observe one HTTP request by its route template (see the module docstring for the labels)."""
    if not _enabled:
        return
    route = scope.get(ROUTE_TEMPLATE)
    if route is None:
        route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
    method = scope.get("method", "")
    if method not in _METHODS:
        method = OTHER_METHOD
    http_request_duration.observe((method, route, _STATUS_TEXT.get(status) or str(status)), seconds)


# --- exposition ---------------------------------------------------------------------------------------


async def exposition(db: Database) -> bytes:
    """The Prometheus text of every metric, the queue's gauges read from `db` now."""
    async with db.read() as conn:
        depth = await pending_count(conn)
        oldest = await oldest_pending_at(conn)
        set_aside = await set_aside_count(conn)
    signal_queue_depth.set(depth)
    signals_set_aside.set(set_aside)
    signal_oldest_pending_age.set(max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0)
    return generate_latest(REGISTRY)


CONTENT_TYPE = CONTENT_TYPE_LATEST
