"""Benchmark data: a signal payload shaped like what monitoring tools send, and the action sets that react."""

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


# `alert.state` firing turns the flag off, resolved turns it on: each signal matches exactly one set.
ALERT_STATE_ACTIONS = (("firing", "TOGGLE_FEATURE_OFF"), ("resolved", "TOGGLE_FEATURE_ON"))


def alert_state_action_set(
    *, state: str, action: str, actor_id: int, endpoint_id: int, feature: str
) -> dict[str, Any]:
    """The body of `POST /api/admin/projects/default/actions` for one of `ALERT_STATE_ACTIONS`."""
    return {
        "name": f"on-{state}",
        "actorId": actor_id,
        "match": {
            "source": "signal-endpoint",
            "sourceId": endpoint_id,
            "payload": {"alert.state": {"operator": "IN", "values": [state]}},
        },
        "actions": [
            {
                "action": action,
                "sortOrder": 1,
                "executionParams": {
                    "project": "default",
                    "environment": "production",
                    "featureName": feature,
                },
            }
        ],
    }
