"""SQLAlchemy Core table definitions: the single source of truth for the schema.

Migrations in `switchman/migrations/versions` create exactly these tables; a test compares both.
Tables whose ids are referenced by other rows use `sqlite_autoincrement`: SQLite would otherwise reuse
the highest id after a delete, and a new endpoint or action set would inherit a deleted one's signals
and events (PostgreSQL sequences never reuse ids).
Singular snake_case table names, `_at` UTC timestamps, `_id` keys.
"""

from __future__ import annotations

import sqlalchemy as sa

from switchman.db.types import BigId, UTCDateTime, json_type

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


def _endpoint_key() -> sa.Column[object]:
    """The key of a table holding one thing per signal endpoint (or part of its key); goes with it."""
    return sa.Column(
        "signal_endpoint_id",
        sa.Integer,
        sa.ForeignKey("signal_endpoint.id", ondelete="CASCADE"),
        primary_key=True,
    )


# --- auth -------------------------------------------------------------------------------------------

api_token = sa.Table(
    "api_token",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # SHA-256 hex of the whole secret string; the secret itself is never stored.
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    # The non-secret prefix (`*:*`, `default:development`), kept to display and to re-derive scope.
    sa.Column("secret_prefix", sa.String(255), nullable=False),
    sa.Column("token_name", sa.String(255), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("environment", sa.String(100), nullable=False),
    sa.Column("projects", json_type(), nullable=False),
    _created_at(),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("seen_at", UTCDateTime(), nullable=True),
)

service_account = sa.Table(
    "service_account",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(255), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("root_role", sa.Integer, nullable=False),
    _created_at(),
    sqlite_autoincrement=True,
)

personal_access_token = sa.Table(
    "personal_access_token",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("service_account.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.String(255), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    _created_at(),
    sa.Column("seen_at", UTCDateTime(), nullable=True),
    sa.UniqueConstraint("user_id", "description"),
    sqlite_autoincrement=True,
)

# --- embedded flag store ---------------------------------------------------------------------------

project = sa.Table(
    "project",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("mode", sa.String(20), nullable=False, server_default="open"),
    _created_at(),
)

environment = sa.Table(
    "environment",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("sort_order", sa.Integer, nullable=False, server_default="1"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    _created_at(),
)

project_environment = sa.Table(
    "project_environment",
    metadata,
    sa.Column(
        "project_id", sa.String(100), sa.ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "environment_name",
        sa.String(100),
        sa.ForeignKey("environment.name", ondelete="CASCADE"),
        primary_key=True,
    ),
)

feature = sa.Table(
    "feature",
    metadata,
    # Feature names are unique across projects, as in Unleash.
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column(
        "project_id",
        sa.String(100),
        sa.ForeignKey("project.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("type", sa.String(50), nullable=False, server_default="release"),
    sa.Column("stale", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("impression_data", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("archived_at", UTCDateTime(), nullable=True),
    _created_at(),
    sa.Column("created_by_user_id", sa.Integer, nullable=True),
)

feature_environment = sa.Table(
    "feature_environment",
    metadata,
    sa.Column(
        "feature_name", sa.String(255), sa.ForeignKey("feature.name", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "environment_name",
        sa.String(100),
        sa.ForeignKey("environment.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.false()),
)

feature_strategy = sa.Table(
    "feature_strategy",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column(
        "feature_name", sa.String(255), sa.ForeignKey("feature.name", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("environment_name", sa.String(100), nullable=False),
    sa.Column("strategy_name", sa.String(255), nullable=False),
    sa.Column("parameters", json_type(), nullable=False),
    sa.Column("constraints", json_type(), nullable=False),
    sa.Column("sort_order", sa.Integer, nullable=False, server_default="0"),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    _created_at(),
    sa.Index(None, "feature_name", "environment_name"),
)

tag_type = sa.Table(
    "tag_type",
    metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("icon", sa.String(50), nullable=True),
    sa.Column("color", sa.String(50), nullable=True),
    _created_at(),
)

tag = sa.Table(
    "tag",
    metadata,
    sa.Column("type", sa.String(50), sa.ForeignKey("tag_type.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("value", sa.String(255), primary_key=True),
    _created_at(),
)

feature_tag = sa.Table(
    "feature_tag",
    metadata,
    sa.Column(
        "feature_name", sa.String(255), sa.ForeignKey("feature.name", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("tag_type", sa.String(50), primary_key=True),
    sa.Column("tag_value", sa.String(255), primary_key=True),
    sa.ForeignKeyConstraint(["tag_type", "tag_value"], ["tag.type", "tag.value"], ondelete="CASCADE"),
    sa.Index(None, "tag_type", "tag_value"),
)

# The audit log (Unleash's `events`).
event = sa.Table(
    "event",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(100), nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_by_user_id", sa.Integer, nullable=True),
    _created_at(),
    sa.Column("data", json_type(), nullable=True),
    sa.Column("pre_data", json_type(), nullable=True),
    sa.Column("tags", json_type(), nullable=False),
    sa.Column("feature_name", sa.String(255), nullable=True, index=True),
    sa.Column("project", sa.String(100), nullable=True, index=True),
    sa.Column("environment", sa.String(100), nullable=True),
)

# One row (id 1): a counter bumped by every transaction that changes what SDKs see (flags, their states
# and strategies, project environments), in commit order (ADR 0009). The client API's ETag is built on it.
flag_store_revision = sa.Table(
    "flag_store_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

# --- signals ---------------------------------------------------------------------------------------

signal_endpoint = sa.Table(
    "signal_endpoint",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    _created_at(),
    sa.Column("created_by_user_id", sa.Integer, nullable=False),
    sqlite_autoincrement=True,
)

signal_endpoint_token = sa.Table(
    "signal_endpoint_token",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "signal_endpoint_id",
        sa.Integer,
        sa.ForeignKey("signal_endpoint.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    _created_at(),
    sa.Column("created_by_user_id", sa.Integer, nullable=False),
    sqlite_autoincrement=True,
)

# A received call. No foreign keys: signals outlive their endpoint and token (Unleash keeps them too).
signal = sa.Table(
    "signal",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(50), nullable=False),
    sa.Column("source_id", sa.Integer, nullable=False),
    sa.Column("created_by_source_token_id", sa.Integer, nullable=True),
    # The payload as compact JSON text: written once, served as a pre-serialized fragment.
    sa.Column("payload", sa.Text, nullable=False),
    _created_at(),
    # Worker bookkeeping: pending while processed_at is NULL; a claim is a lease that can expire.
    sa.Column("processed_at", UTCDateTime(), nullable=True),
    sa.Column("claimed_by", sa.String(100), nullable=True),
    sa.Column("claim_expires_at", UTCDateTime(), nullable=True),
    # Poison signals (ADR 0028): how often processing raised, the last error, and when the signal was set
    # aside (with `processed_at`, so no claim sees it) after `SWITCHMAN_WORKER_MAX_SIGNAL_FAILURES`.
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("set_aside_at", UTCDateTime(), nullable=True),
    sa.Index(None, "source_id", "id"),
    sa.Index(None, "created_at"),
    sa.Index(
        "ix_signal_pending",
        "id",
        postgresql_where=sa.text("processed_at IS NULL"),
        sqlite_where=sa.text("processed_at IS NULL"),
    ),
    sa.Index(
        "ix_signal_set_aside",
        "id",
        postgresql_where=sa.text("set_aside_at IS NOT NULL"),
        sqlite_where=sa.text("set_aside_at IS NOT NULL"),
    ),
    sqlite_autoincrement=True,
)

# How an endpoint's calls are signed (ADR 0020): the scheme and its secret, sealed with the server's secret
# key (switchman.secret_box), never shown again; and how many calls failed verification, for operators.
signal_endpoint_verification = sa.Table(
    "signal_endpoint_verification",
    metadata,
    _endpoint_key(),
    sa.Column("scheme", sa.String(50), nullable=False),
    sa.Column("sealed_secret", sa.Text, nullable=False),
    sa.Column("header", sa.String(255), nullable=True),
    sa.Column("timestamp_header", sa.String(255), nullable=True),
    sa.Column("tolerance_seconds", sa.Integer, nullable=False),
    sa.Column("failures", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_failure_at", UTCDateTime(), nullable=True),
    sa.Column("last_failure_reason", sa.String(255), nullable=True),
    _created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# The format an endpoint's sender posts (switchman.engine.formats, ADR 0021): filters also see the
# normalised view it reads from each payload (`@switchman.status`, …).
signal_endpoint_format = sa.Table(
    "signal_endpoint_format",
    metadata,
    _endpoint_key(),
    sa.Column("format", sa.String(50), nullable=False),
    # Alertmanager and Grafana groups: one signal per alert instead of one per group.
    sa.Column("split_alerts", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# Endpoints that accept their token as a `token` query parameter, for senders that can set neither a header
# nor URL credentials (opt-in: URLs end up in proxies' logs; ADR 0020). A row means "accepted".
signal_endpoint_query_token = sa.Table(
    "signal_endpoint_query_token",
    metadata,
    _endpoint_key(),
    _created_at(),
)

# A delivery id a sender put on a call (`Idempotency-Key`, `webhook-id`, `X-GitHub-Delivery`): the key is
# the uniqueness that makes a repeated delivery answer with the first one's signal, also across replicas
# (ADR 0019). `created_at` is when the key was first stored; after the window the key is new again.
# No foreign key to `signal`: the window is shorter than signal retention (config), and signals have none.
signal_delivery = sa.Table(
    "signal_delivery",
    metadata,
    _endpoint_key(),
    sa.Column("delivery_key", sa.String(255), primary_key=True),
    sa.Column("signal_id", BigId, nullable=False),
    _created_at(),
    sa.Index(None, "created_at"),
)

# An endpoint name's current rate-limit window, shared by every replica on PostgreSQL (ADR 0029): of the
# window that starts at `window_start`, `used` tokens are leased to replicas, the latest lease got
# `granted`. Keyed by name, not id: the limit applies before the endpoint is looked up. A new window
# overwrites its name's row; rows of windows long past are deleted by the replicas. No index on
# `window_start`: a lease must stay a HOT update. UNLOGGED on PostgreSQL (the migration creates it so):
# a crash loses only the current window's counts. Unused on SQLite (one process's limiter, ADR 0029).
signal_rate_window = sa.Table(
    "signal_rate_window",
    metadata,
    sa.Column("endpoint_name", sa.String(255), primary_key=True),
    sa.Column("window_start", UTCDateTime(), nullable=False),
    sa.Column("used", sa.Integer, nullable=False),
    sa.Column("granted", sa.Integer, nullable=False),
)

# --- action sets -----------------------------------------------------------------------------------

action_set = sa.Table(
    "action_set",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.String(100), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("actor_id", sa.Integer, nullable=False, index=True),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("match_source", sa.String(50), nullable=False),
    sa.Column("match_source_id", sa.Integer, nullable=False),
    sa.Column("match_payload", json_type(), nullable=False),
    _created_at(),
    sa.Column("created_by_user_id", sa.Integer, nullable=False),
    # Sequence number of this set's latest event: events are numbered 1, 2, 3… per set, so that
    # "offset k, newest first" is the range predicate `seq <= last_event_seq - k` instead of a scan.
    sa.Column("last_event_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.UniqueConstraint("project_id", "name"),
    sa.Index(None, "match_source", "match_source_id"),
    sqlite_autoincrement=True,
)

action = sa.Table(
    "action",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "action_set_id",
        sa.Integer,
        sa.ForeignKey("action_set.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("sort_order", sa.Integer, nullable=False),
    sa.Column("execution_params", json_type(), nullable=False),
    _created_at(),
    sa.Column("created_by_user_id", sa.Integer, nullable=False),
    sqlite_autoincrement=True,
)

# One execution of one action set for one signal. No foreign keys: the event is a self-contained
# snapshot that outlives edits and deletions of its action set and the pruning of its signal.
# The flag states a run of the embedded store changed (ADR 0024): what undo, restore on resolve and time
# boxes put back. One row per (event, flag, environment): the state before the run and the one it left.
action_set_event_change = sa.Table(
    "action_set_event_change",
    metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("feature_name", sa.String(255), primary_key=True),
    sa.Column("environment", sa.String(100), primary_key=True),
    sa.Column("enabled_before", sa.Boolean, nullable=False),
    sa.Column("enabled_after", sa.Boolean, nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
    # The run's set and project, so that change budgets count the last hour by an index range scan.
    sa.Column("action_set_id", sa.Integer, nullable=False),
    sa.Column("project", sa.String(100), nullable=False),
    sa.Index(None, "action_set_id", "changed_at"),
    sa.Index(None, "project", "changed_at"),
)

# A project's change budget for its action sets (ADR 0024): at most this many flag changes by all of its
# sets' runs per hour.
project_action_budget = sa.Table(
    "project_action_budget",
    metadata,
    sa.Column(
        "project_id", sa.String(100), sa.ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("max_changes_per_hour", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# An undone action set event (ADR 0024): at most once, by whom, and what it restored or skipped.
action_set_event_undo = sa.Table(
    "action_set_event_undo",
    metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("undone_by", sa.String(255), nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    _created_at(),
)

# An action set's policy (ADR 0023): switchman's own rules on top of "every match runs". No row: none.
action_set_policy = sa.Table(
    "action_set_policy",
    metadata,
    sa.Column(
        "action_set_id", sa.Integer, sa.ForeignKey("action_set.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("shadow", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cooldown_seconds", sa.Integer, nullable=True),
    sa.Column("window_count", sa.Integer, nullable=True),
    sa.Column("window_seconds", sa.Integer, nullable=True),
    sa.Column("per_alert", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("alert_key", sa.String(255), nullable=True),
    sa.Column("restore_on_resolve", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("max_changes_per_hour", sa.Integer, nullable=True),
    sa.Column("revert_after_seconds", sa.Integer, nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

# What a policy's decisions left, per action set and alert identity ("" = the whole set): the arrival time
# of the last run and of the latest matching signals (a JSON list, at most window_count - 1), and the run to
# put back when the alert resolves.
action_set_policy_state = sa.Table(
    "action_set_policy_state",
    metadata,
    sa.Column(
        "action_set_id", sa.Integer, sa.ForeignKey("action_set.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("alert_id", sa.String(255), primary_key=True),
    sa.Column("last_run_at", UTCDateTime(), nullable=True),
    sa.Column("matches", sa.Text, nullable=False),
    # Restore on resolve and time boxes: the alert's first run whose changes are not put back yet (ADR
    # 0024), when a time box puts them back unless renewed, and the signal that last renewed it (ADR 0025).
    sa.Column("open_event_id", sa.BigInteger, nullable=True),
    sa.Column("revert_due_at", UTCDateTime(), nullable=True),
    sa.Column("renewed_by_signal_id", sa.BigInteger, nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "revert_due_at"),
)

# The trace: for each processed signal and each enabled action set of its source, what was decided and why
# (ADR 0022). One row per (signal, action set); pruned with the signals (by `created_at`, oldest ids first).
signal_decision = sa.Table(
    "signal_decision",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("signal_id", sa.BigInteger, nullable=False),
    sa.Column("action_set_id", sa.Integer, nullable=False),
    sa.Column("project", sa.String(100), nullable=False),
    # matched | failed | not-matched | suppressed | shadow | restored | reverted
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=True),
    # The alert identity a per-alert policy counted by, and the policy's reason (ADR 0023).
    sa.Column("alert_id", sa.String(255), nullable=True),
    sa.Column("policy_reason", sa.Text, nullable=True),
    # The filters' results as compact JSON: every filter for a match, the first failing one otherwise.
    sa.Column("reasons", sa.Text, nullable=False),
    _created_at(),
    # One decision per (signal, set); a time box's revert (ADR 0025) is recorded besides the decision of the
    # signal that last renewed it.
    sa.Index(
        "uq_signal_decision_signal_id_action_set_id",
        "signal_id",
        "action_set_id",
        unique=True,
        sqlite_where=sa.text("outcome <> 'reverted'"),
        postgresql_where=sa.text("outcome <> 'reverted'"),
    ),
    sa.Index("ix_signal_decision_action_set_id_id", "action_set_id", "id"),
    sqlite_autoincrement=True,
)

action_set_event = sa.Table(
    "action_set_event",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("action_set_id", sa.Integer, nullable=False),
    sa.Column("signal_id", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    _created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # The whole actionSetEventSchema object as compact JSON text, rewritten on each state change, so a
    # listing concatenates stored fragments instead of building models per row.
    sa.Column("doc", sa.Text, nullable=False),
    sa.UniqueConstraint("signal_id", "action_set_id"),
    sa.UniqueConstraint("action_set_id", "seq"),
    sa.Index(
        "ix_action_set_event_started",
        "id",
        postgresql_where=sa.text("state = 'started'"),
        sqlite_where=sa.text("state = 'started'"),
    ),
    # The console's list of failed runs, newest first, O(limit) however rare failures are (ADR 0026).
    sa.Index(
        "ix_action_set_event_failed",
        "id",
        postgresql_where=sa.text("state = 'failed'"),
        sqlite_where=sa.text("state = 'failed'"),
    ),
    sqlite_autoincrement=True,
)

# A web console session (ADR 0026): the session id's SHA-256, the credential's digest (never the token) and
# an expiry. The session's CSRF token is derived from its id, so it is not stored.
console_session = sa.Table(
    "console_session",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("credential_digest", sa.String(64), nullable=False),
    sa.Column("personal_token", sa.Boolean, nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Index(None, "expires_at"),
)

# --- notifications ---------------------------------------------------------------------------------

# Where a project's run outcomes are announced (ADR 0027): a Slack incoming webhook or a Standard Webhooks
# receiver. The URL (a Slack URL is a credential) and a webhook's signing secret are sealed with the
# server's secret key (switchman.secret_box); `url_hint` is the part shown back (scheme and host).
# `action_set_ids` NULL: every action set of the project. `events`: the outcomes it wants, a JSON list.
notification_channel = sa.Table(
    "notification_channel",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.String(100), sa.ForeignKey("project.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("sealed_url", sa.Text, nullable=False),
    sa.Column("url_hint", sa.String(255), nullable=False),
    sa.Column("sealed_secret", sa.Text, nullable=True),
    sa.Column("action_set_ids", json_type(), nullable=True),
    sa.Column("events", json_type(), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    _created_at(),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("project_id", "name"),
    sqlite_autoincrement=True,
)

# The durable outbox (ADR 0027): one message per (outcome, channel), written in the transaction that made
# the outcome. `webhook_id` is fixed here, so every attempt (after a crash too) sends the same id.
# `state` pending → delivered | failed; a pending message is due at `due_at`, which a dispatcher moves
# forward when it claims the message (its lease) and again by the backoff after a failed attempt.
notification_outbox = sa.Table(
    "notification_outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "channel_id",
        sa.Integer,
        sa.ForeignKey("notification_channel.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("webhook_id", sa.String(64), nullable=False, unique=True),
    sa.Column("event_type", sa.String(50), nullable=False),
    sa.Column("payload", json_type(), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("due_at", UTCDateTime(), nullable=False),
    _created_at(),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Index(
        "ix_notification_outbox_due",
        "due_at",
        postgresql_where=sa.text("state = 'pending'"),
        sqlite_where=sa.text("state = 'pending'"),
    ),
    sa.Index(None, "channel_id"),
    sqlite_autoincrement=True,
)

# Every delivery attempt (the delivery log): the receiver's status code or the error, and how long it took.
# Never the URL, never the secret.
notification_delivery = sa.Table(
    "notification_delivery",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "outbox_id",
        sa.BigInteger,
        sa.ForeignKey("notification_outbox.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "channel_id",
        sa.Integer,
        sa.ForeignKey("notification_channel.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("attempted_at", UTCDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(255), nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index(None, "channel_id", "id"),
    sa.Index(None, "outbox_id"),
    sqlite_autoincrement=True,
)
