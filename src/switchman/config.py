"""Settings, read once from the environment (prefix `SWITCHMAN_`) or a `.env` file, then passed down."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from switchman.api_tokens.configured import parse_init_client_token
from switchman.secret_box import SecretBoxError, parse_key


class ConfigurationError(Exception):
    """Configuration that cannot work; its message is one line meant for the operator."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHMAN_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = "sqlite:///./switchman.db"
    init_admin_api_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Client (backend) tokens for Unleash SDKs, `<project|*>:<environment>.<secret>`, created at start-up.
    init_client_api_tokens: Annotated[list[str], NoDecode] = Field(default_factory=list, repr=False)
    host: str = "127.0.0.1"
    port: int = Field(default=4242, ge=1, le=65535)
    # Public base URL used to build the `url` of signal endpoints; defaults to http://{host}:{port}.
    public_url: str | None = None
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    # Prometheus metrics (ADR 0030): recorded and served on `GET /metrics` unless off (then /metrics is 404).
    metrics_enabled: bool = True
    # When set, a scrape must send `Authorization: Bearer <token>`; never logged or shown.
    metrics_token: str | None = Field(default=None, repr=False)
    # `switchman worker` serves /metrics and /health on this port (0: no HTTP; `--metrics-port` sets it).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # Connections kept open per process (as many again may be opened as overflow, and are closed when
    # returned). Kept above the concurrency an API process meets: overflow churn (a connect per request,
    # TLS negotiation included) halved the events listing's throughput at 16 connections with 10.
    database_pool_size: int = Field(default=20, ge=1)
    # Apply pending migrations when the service starts (`switchman migrate` does it alone).
    migrate_on_start: bool = True
    # Run the signal worker inside the API process (`switchman serve --no-worker` turns it off).
    run_worker: bool = True

    # How long a verified admin-API credential is trusted without a database look-up (ADR 0011): the bound
    # on how late a revocation made through another replica takes effect here. 0 turns the cache off.
    auth_cache_seconds: float = Field(default=1.0, ge=0)
    # Bytes of settled event-listing pages kept per process (ADR 0011; exact, see action_sets/page_cache.py).
    # 0 turns the cache off.
    event_page_cache_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    # Action set events older than this many days are pruned in the background, with the flag changes and
    # undo they recorded (ADR 0032); 0 keeps every event.
    action_set_event_retention_days: int = Field(default=0, ge=0)

    # Resource limits (Unleash defaults are 5/5/5/10/5/25; switchman's are more generous).
    signal_endpoints_limit: int = Field(default=100, ge=1)
    signal_tokens_per_endpoint_limit: int = Field(default=20, ge=1)
    action_sets_per_project_limit: int = Field(default=100, ge=1)
    action_set_actions_limit: int = Field(default=25, ge=1)
    action_set_filters_limit: int = Field(default=25, ge=1)
    action_set_filter_values_limit: int = Field(default=100, ge=1)

    # Ingestion.
    signal_max_bytes: int = Field(default=100 * 1024, ge=1)
    # The body of a call to an endpoint that splits alert groups (ADR 0021): each alert's signal is still
    # at most `signal_max_bytes`.
    signal_max_group_bytes: int = Field(default=1024 * 1024, ge=1)
    signal_rate_limit_per_second: float = Field(default=1000.0, ge=0)
    # Who shares that rate on PostgreSQL: `cluster` (every replica together, through leased blocks of
    # tokens, ADR 0029) or `process` (each replica alone). SQLite always limits per process.
    signal_rate_limit_scope: Literal["cluster", "process"] = "cluster"
    signal_retention_days: int = Field(default=30, ge=0)
    # A repeated delivery id (Idempotency-Key, webhook-id, X-GitHub-Delivery) within this many seconds is
    # answered with the first delivery's signal and stores nothing (ADR 0019); 0 ignores delivery ids.
    signal_delivery_window_seconds: int = Field(default=86_400, ge=0)
    # The key that seals webhook signing secrets at rest (32 bytes, URL-safe base64; `switchman secrets
    # new-key` prints one), and earlier keys that still open what they sealed (comma-separated; ADR 0020).
    # Without a key, endpoints cannot be given a signing secret. Never logged or shown.
    secret_key: str | None = Field(default=None, repr=False)
    previous_secret_keys: str = Field(default="", repr=False)
    # Hosts SNS certificates and subscription confirmations may be fetched from (a regular expression
    # matched against the whole host name; ADR 0020).
    sns_host_pattern: str = r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$"
    group_commit_max_batch: int = Field(default=256, ge=1)

    # Worker.
    # Record every (signal, action set) decision with its reasons (ADR 0022); off only to measure its cost.
    decision_trace: bool = True
    # The smallest claim; a claim that took every pending signal keeps twice what it found (ADR 0017).
    worker_batch_size: int = Field(default=10, ge=1)
    # While a backlog lasts (each claim comes back full), the next claim doubles, up to this (ADR 0012).
    worker_max_batch_size: int = Field(default=500, ge=1)
    # ... but only while a batch stays this short: a batch holds its locks (on SQLite the database's one
    # write lock, which ingestion waits for) until it commits, so its duration is bounded, not its size.
    worker_batch_target_seconds: float = Field(default=0.1, gt=0)
    worker_poll_interval_seconds: float = Field(default=1.0, gt=0)
    worker_lease_seconds: float = Field(default=30.0, gt=0)
    # A signal whose processing raised this many times is set aside with its error, so the queue moves
    # on; an operator retries it (ADR 0028). Database outages do not count.
    worker_max_signal_failures: int = Field(default=5, ge=1)
    action_timeout_seconds: float = Field(default=10.0, gt=0)

    # Flag backend the actions drive: the embedded store, or a remote Unleash via its admin API (ADR 0007).
    flag_backend: Literal["embedded", "unleash"] = "embedded"
    # Remote Unleash root including any base path, e.g. http://127.0.0.1:4242.
    unleash_url: str | None = None
    # Admin API token or personal access token for the remote Unleash; never logged or shown.
    unleash_api_token: str | None = Field(default=None, repr=False)
    # Bound of one HTTP attempt to the remote Unleash (the whole action stays within action_timeout_seconds).
    unleash_timeout_seconds: float = Field(default=5.0, gt=0)
    # Extra attempts after a timeout, connection error, 429 or 5xx (backoff with jitter between them).
    unleash_retries: int = Field(default=2, ge=0, le=10)

    # Notifications of run outcomes (ADR 0027), delivered from the outbox by every process running a worker.
    # One attempt's bound (connect to last byte); a receiver slower than this is retried.
    notification_timeout_seconds: float = Field(default=5.0, gt=0)
    # Deliveries in flight at once per process (and messages claimed per round).
    notification_concurrency: int = Field(default=8, ge=1)
    # Backoff before the n-th retry: this * 2^(n-1), capped at an hour, with full jitter in its upper half.
    notification_retry_base_seconds: float = Field(default=5.0, gt=0)
    # A message is given up (`failed`) after this many attempts, or once this old, whichever comes first.
    notification_max_attempts: int = Field(default=10, ge=1)
    notification_max_age_seconds: int = Field(default=86_400, ge=1)
    # How often an idle dispatcher looks for due messages.
    notification_poll_seconds: float = Field(default=1.0, gt=0)
    # Delivered and given-up messages (with their delivery log) are deleted this many days after they
    # finished, by the dispatchers, hourly; 0 keeps them.
    notification_retention_days: int = Field(default=30, ge=0)

    @field_validator("sns_host_pattern")
    @classmethod
    def _a_regular_expression(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"SWITCHMAN_SNS_HOST_PATTERN is not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _secret_keys_usable(self) -> Settings:
        self.secret_keys()  # raises on a malformed key, at start-up rather than at the first signed call
        return self

    def secret_keys(self) -> list[bytes]:
        """The sealing key first, then the previous ones; empty when no key is configured."""
        texts = [self.secret_key or "", *self.previous_secret_keys.split(",")]
        try:
            return [parse_key(text) for text in texts if text.strip()]
        except SecretBoxError as exc:
            raise ValueError(f"SWITCHMAN_SECRET_KEY / SWITCHMAN_PREVIOUS_SECRET_KEYS: {exc}") from None

    @model_validator(mode="after")
    def _delivery_window_within_retention(self) -> Settings:
        # A repeat is answered with the first delivery's signal, which must still exist.
        retention = self.signal_retention_days * 86_400
        if retention and self.signal_delivery_window_seconds > retention:
            raise ValueError(
                "SWITCHMAN_SIGNAL_DELIVERY_WINDOW_SECONDS must not exceed SWITCHMAN_SIGNAL_RETENTION_DAYS "
                f"({self.signal_retention_days} days = {retention} s)"
            )
        return self

    @model_validator(mode="after")
    def _unleash_backend_configured(self) -> Settings:
        if self.flag_backend == "unleash":
            missing = [
                f"SWITCHMAN_{name.upper()}"
                for name in ("unleash_url", "unleash_api_token")
                if not (getattr(self, name) or "").strip()
            ]
            if missing:
                raise ValueError(f"SWITCHMAN_FLAG_BACKEND=unleash requires {' and '.join(missing)}")
            if not str(self.unleash_url).strip().lower().startswith(("http://", "https://")):
                raise ValueError("SWITCHMAN_UNLEASH_URL must be an http:// or https:// URL")
        return self

    @field_validator("init_admin_api_tokens", "init_client_api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("init_admin_api_tokens")
    @classmethod
    def _admin_token_format(cls, value: list[str]) -> list[str]:
        for token in value:
            scope, dot, secret = token.partition(".")
            if scope != "*:*" or not dot or len(secret) < 8:
                raise ValueError(
                    "each admin token must look like '*:*.<secret>' with a secret of 8+ characters"
                )
        return value

    @field_validator("init_client_api_tokens")
    @classmethod
    def _client_token_format(cls, value: list[str]) -> list[str]:
        for token in value:
            parse_init_client_token(token)  # ValueError names the expected form
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @cached_property
    def async_database_url(self) -> URL:
        """The database URL with the async driver switchman uses (aiosqlite or asyncpg)."""
        return to_async_url(self.database_url)

    @property
    def is_sqlite(self) -> bool:
        return self.async_database_url.get_backend_name() == "sqlite"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def to_async_url(raw: str) -> URL:
    """Map `sqlite:///…` and `postgresql://…` (or `postgres://`) to their async drivers; reject others."""
    try:
        url = make_url(
            raw.replace("postgres://", "postgresql://", 1) if raw.startswith("postgres://") else raw
        )
    except ArgumentError as exc:
        raise ConfigurationError(f"SWITCHMAN_DATABASE_URL is not a database URL: {raw!r}") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database in (None, "", ":memory:"):
            raise ConfigurationError(
                "SWITCHMAN_DATABASE_URL must name a SQLite file, e.g. sqlite:///./switchman.db"
            )
        return url.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql":
        return url.set(drivername="postgresql+asyncpg")
    raise ConfigurationError(
        f"SWITCHMAN_DATABASE_URL uses unsupported database {backend!r}; use sqlite:/// or postgresql://"
    )


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; turn validation errors into one-line ConfigurationErrors."""
    from pydantic import ValidationError

    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:  # a whole-model rule, whose message names its variables
            raise ConfigurationError(f"invalid configuration: {message}") from exc
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"invalid configuration SWITCHMAN_{where.upper()}: {message}") from exc
    _ = settings.async_database_url  # validate eagerly
    return settings
