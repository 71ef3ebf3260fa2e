"""The request-duration histogram kept without locks writes Prometheus' cumulative buckets: a value equal
to a bound falls in that bound's bucket, one above every bound only in +Inf; count and sum follow."""

from __future__ import annotations

from switchman import metrics
from tests.conftest import unique


def test_buckets_are_cumulative_and_bounds_inclusive() -> None:
    metrics.configure(enabled=True)
    route = "/" + unique("route")
    scope = {"type": "http", "method": "GET", metrics.ROUTE_TEMPLATE: route}
    for seconds in (0.001, 0.004, 20.0):
        metrics.request_finished(scope, 200, seconds)
    labels = {"method": "GET", "route": route, "status": "200"}

    def bucket(le: str) -> float | None:
        name = "switchman_http_request_duration_seconds_bucket"
        return metrics.REGISTRY.get_sample_value(name, {**labels, "le": le})

    assert bucket("0.001") == 1
    assert bucket("0.0025") == 1
    assert bucket("0.005") == 2
    assert bucket("10.0") == 2
    assert bucket("+Inf") == 3
    count = metrics.REGISTRY.get_sample_value("switchman_http_request_duration_seconds_count", labels)
    total = metrics.REGISTRY.get_sample_value("switchman_http_request_duration_seconds_sum", labels)
    assert count == 3
    assert total is not None and abs(total - 20.005) < 1e-9
