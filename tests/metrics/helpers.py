"""Reading a Prometheus scrape in tests: one sample's value by name and labels (0 when absent).

Metrics are process-wide and many apps run in one test process, so tests compare a scrape taken before
with one taken after (`delta`), never absolute counter values.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    text: str

    def value(self, sample: str, **labels: str) -> float:
        """The value of the sample named `sample` whose labels include `labels`; 0 when none has them."""
        found = 0.0
        for family in text_string_to_metric_families(self.text):
            for entry in family.samples:
                if entry.name == sample and all(entry.labels.get(k) == v for k, v in labels.items()):
                    found += entry.value
        return found

    def label_values(self, label: str) -> set[str]:
        return {
            entry.labels[label]
            for family in text_string_to_metric_families(self.text)
            for entry in family.samples
            if label in entry.labels
        }

    def sample_names(self) -> set[str]:
        return {
            entry.name for family in text_string_to_metric_families(self.text) for entry in family.samples
        }


async def scrape(client: httpx.AsyncClient, **headers: str) -> Scrape:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


def delta(before: Scrape, after: Scrape, sample: str, **labels: str) -> float:
    return after.value(sample, **labels) - before.value(sample, **labels)
