"""Benchmark data: a signal payload shaped like what monitoring tools send."""

from __future__ import annotations

from typing import Any


def alert_payload(fingerprint: str) -> dict[str, Any]:
    """An Alertmanager-style alert (~450 bytes as compact JSON)."""
    return {
        "receiver": "switchman",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "CheckoutErrorRateHigh",
                    "service": "checkout",
                    "severity": "critical",
                    "env": "production",
                    "region": "eu-west-1",
                },
                "annotations": {
                    "summary": "Checkout error rate above 5% for 5 minutes",
                    "runbook": "https://runbooks.example.com/checkout/error-rate",
                },
                "startsAt": "2026-05-04T09:11:58.001Z",
                "fingerprint": fingerprint,
            }
        ],
        "errorRate": 7.5,
        "unleashTitle": "Checkout errors",
    }
