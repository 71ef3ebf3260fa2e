"""The Grafana dashboard in the repository queries only metrics that `/metrics` exposes, and every metric
switchman defines has a panel."""

from __future__ import annotations

import json
import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from switchman import metrics
from tests.conftest import REPO_ROOT

DASHBOARD = REPO_ROOT / "docs" / "grafana" / "switchman.json"
_METRIC = re.compile(r"\bswitchman_[a-z_]+\b")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _family(sample: str) -> str:
    for suffix in _SUFFIXES:
        if sample.endswith(suffix):
            return sample.removesuffix(suffix)
    return sample


def _queried() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in _METRIC.findall(expr)}


async def test_every_query_uses_an_exposed_metric_and_every_metric_is_shown(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    exposed = {family.name for family in text_string_to_metric_families(response.text)}
    assert {name for name in exposed if name.startswith("switchman_")} == {
        _family(name) for name in metrics.METRIC_NAMES
    }
    queried = _queried()
    assert {_family(name) for name in queried} <= exposed
    assert {_family(name) for name in metrics.METRIC_NAMES} <= {_family(name) for name in queried}
