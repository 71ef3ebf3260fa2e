"""Wire models for signal endpoints, their tokens and signals (Unleash's schema names, camelCase).

Request models of this feature accept unknown properties and ignore them: Unleash's
`createSignalEndpointSchema` and `createSignalEndpointTokenSchema` do not restrict
`additionalProperties`. The signal models below document responses that are built as bytes from
stored JSON fragments (see `signals.py`); they are never instantiated on the hot paths.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator
from pydantic.alias_generators import to_camel

from switchman.schemas import InputModel, WireModel

# Unleash's `URL_SAFE_BASIC` constant, minus the empty string.
ENDPOINT_NAME_PATTERN = r"^[a-z0-9_-]+$"
NAME_MAX = 255
DESCRIPTION_MAX = 10_000
SIGNAL_SOURCE = "signal-endpoint"


class _LenientRequest(InputModel):
    """camelCase input; unknown properties are ignored (these schemas allow additional properties)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class CreateSignalEndpointSchema(_LenientRequest):
    """Unleash's `createSignalEndpointSchema`: the body of create *and* update."""

    name: str = Field(
        min_length=1,
        max_length=NAME_MAX,
        pattern=ENDPOINT_NAME_PATTERN,
        description="URL-safe: lowercase letters, digits, `-` and `_`. Unique across the instance.",
    )
    enabled: StrictBool | None = Field(
        default=None, description="Defaults to true on create; kept as is on update when absent."
    )
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class CreateSignalEndpointTokenSchema(_LenientRequest):
    """Unleash's `createSignalEndpointTokenSchema`: the body of token create *and* rename."""

    name: str = Field(min_length=1, max_length=NAME_MAX)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class SignalEndpointTokenSchema(WireModel):
    id: int
    token: str | None = Field(default=None, description="The secret: only in the create response.")
    name: str
    signal_endpoint_id: int
    created_at: str
    created_by_user_id: int


class SignalEndpointTokensSchema(WireModel):
    signal_endpoint_tokens: list[SignalEndpointTokenSchema]


class SignalEndpointSchema(WireModel):
    id: int
    enabled: bool
    name: str
    description: str | None = None
    created_at: str
    created_by_user_id: int
    url: str | None = Field(
        default=None, description="The full call URL; in create, update, on and off responses."
    )
    tokens: list[SignalEndpointTokenSchema] | None = Field(
        default=None, description="The endpoint's tokens, never with their secrets."
    )


class SignalEndpointsSchema(WireModel):
    signal_endpoints: list[SignalEndpointSchema]


class _StoredSignalFields(WireModel):
    """What every representation of a stored signal carries."""

    id: int
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    source: Literal["signal-endpoint"]
    source_id: int


class SignalSchema(_StoredSignalFields):
    """A stored signal (`signalSchema`): the 200 body of a call, and the snapshot in action set events."""

    created_by_source_token_id: int | None = None


class SignalsSchema(WireModel):
    signals: list[SignalSchema]


class SetAsideSignalSchema(SignalSchema):
    """A signal the worker set aside because processing it kept raising (ADR 0028; switchman's own)."""

    failures: int = Field(ge=1, description="How many attempts at processing it raised.")
    last_error: str | None = Field(
        description="The last attempt's error: type, message, where it was raised."
    )
    set_aside_at: str = Field(description="When the worker stopped retrying it.")


class SetAsideSignalsSchema(WireModel):
    signals: list[SetAsideSignalSchema]
    total: int = Field(ge=0, description="Signals set aside now, ignoring `limit` and `offset`.")


class SignalEndpointSignalSchema(_StoredSignalFields):
    token_name: str | None = Field(description="Name of the token used; null once it was deleted.")


class SignalEndpointSignalsSchema(WireModel):
    signal_endpoint_signals: list[SignalEndpointSignalSchema]


class SignalQuerySignalSchema(_StoredSignalFields):
    token_name: str | None = None
    source_name: str | None = None
    source_description: str | None = None


class SignalQueryResponseSchema(WireModel):
    signals: list[SignalQuerySignalSchema]
    total: int = Field(ge=0, description="Signals matching `from`/`to`, ignoring `limit` and `offset`.")


# --- signature verification (switchman's sub-resource, ADR 0020) -------------------------------------


class SetSignalEndpointVerificationSchema(InputModel):
    """How an endpoint's calls are signed. The secret is write-only: it is sealed and never shown again."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    scheme: Literal["github", "standard-webhooks", "hmac-sha256", "pagerduty", "sentry", "stripe", "sns"] = (
        Field(
            description="`github` (X-Hub-Signature-256), `standard-webhooks` (webhook-id / webhook-timestamp / "
            "webhook-signature, Svix), `hmac-sha256` (the body's HMAC-SHA256 in `header`, hex or base64; "
            "Grafana's contact point with `timestampHeader`), `pagerduty` (X-PagerDuty-Signature), `sentry` "
            "(Sentry-Hook-Signature), `stripe` (Stripe-Signature `t=…,v1=…`) or `sns` (Amazon SNS: the "
            "message's certificate signature; subscriptions are confirmed)."
        )
    )
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        repr=False,
        description="The sender's signing secret (`whsec_…` for standard-webhooks); required by every "
        "scheme but `sns`, which signs with a certificate.",
    )
    header: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9-]+$",
        description="`hmac-sha256` only: the header that carries the signature (default `X-Signature`).",
    )
    timestamp_header: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9-]+$",
        description="`hmac-sha256` only: a header with the Unix time the sender signed along as "
        "`<timestamp>:<body>` (Grafana: `X-Grafana-Alerting-Signature-Timestamp`).",
    )
    tolerance_seconds: int | None = Field(
        default=None,
        ge=1,
        le=86_400,
        description="Schemes with a signed timestamp: how far it may be from now (default 300).",
    )


class SignalEndpointVerificationSchema(WireModel):
    signal_endpoint_id: int
    scheme: str
    header: str | None = None
    timestamp_header: str | None = None
    tolerance_seconds: int
    failures: int = Field(description="Calls refused because their signature did not verify.")
    last_failure_at: str | None = None
    last_failure_reason: str | None = None
    created_at: str
    updated_at: str


# --- sender format (switchman's sub-resource, ADR 0021) ---------------------------------------------------


class SetSignalEndpointFormatSchema(InputModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    format: Literal[
        "alertmanager",
        "grafana",
        "datadog",
        "pagerduty",
        "sentry",
        "github",
        "cloudwatch-sns",
        "newrelic",
        "opsgenie",
        "generic",
    ] = Field(description="The format the endpoint's sender posts; filters also see its normalised view.")
    split_alerts: StrictBool = Field(
        default=False,
        description="`alertmanager` and `grafana` only: store a group as one signal per alert (each with the "
        "group's fields, its own `status`, and `alerts` holding that alert alone), so that each alert fires "
        "and resolves on its own; `@switchman.alertId` is then the alert's fingerprint.",
    )


class SignalEndpointFormatSchema(WireModel):
    signal_endpoint_id: int
    format: str
    split_alerts: bool
    normalised_keys: list[str] = Field(
        description="The reserved filter keys this format fills (`@switchman.status`, …), when the payload "
        "carries them."
    )
    updated_at: str


class NormalisedSignalSchema(WireModel):
    id: int
    created_at: str
    normalised: dict[str, str] = Field(
        description="What the endpoint's sender format reads from the signal's payload (`status`, `alertId`, "
        "`severity`, `title`, `source`); filters read it as `@switchman.<field>`."
    )


class NormalisedSignalsSchema(WireModel):
    format: str
    split_alerts: bool
    signals: list[NormalisedSignalSchema]


class SetSignalEndpointQueryTokenSchema(InputModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    accepted: StrictBool = Field(
        description="Whether calls may carry the endpoint token as a `token` query parameter (off by default: "
        "URLs end up in proxies' logs)."
    )


class SignalEndpointQueryTokenSchema(WireModel):
    signal_endpoint_id: int
    accepted: bool
