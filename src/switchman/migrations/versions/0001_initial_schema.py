"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-29 02:38:58.661185
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import switchman.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_set_event",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("action_set_id", sa.Integer(), nullable=False),
        sa.Column("signal_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_set_event")),
        sa.UniqueConstraint("action_set_id", "seq", name=op.f("uq_action_set_event_action_set_id_seq")),
        sa.UniqueConstraint(
            "signal_id", "action_set_id", name=op.f("uq_action_set_event_signal_id_action_set_id")
        ),
    )
    with op.batch_alter_table("action_set_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_action_set_event_started",
            ["id"],
            unique=False,
            postgresql_where=sa.text("state = 'started'"),
            sqlite_where=sa.text("state = 'started'"),
        )

    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("secret_prefix", sa.String(length=255), nullable=False),
        sa.Column("token_name", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column(
            "projects",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seen_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_api_token_secret_hash")),
    )
    op.create_table(
        "environment",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("sort_order", sa.Integer(), server_default="1", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("protected", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_environment")),
    )
    op.create_table(
        "event",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "pre_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("feature_name", sa.String(length=255), nullable=True),
        sa.Column("project", sa.String(length=100), nullable=True),
        sa.Column("environment", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_feature_name"), ["feature_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_project"), ["project"], unique=False)

    op.create_table(
        "project",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("mode", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
    )
    op.create_table(
        "service_account",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("root_role", sa.Integer(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_account")),
        sa.UniqueConstraint("username", name=op.f("uq_service_account_username")),
    )
    op.create_table(
        "signal",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("created_by_source_token_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claim_expires_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal")),
    )
    with op.batch_alter_table("signal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signal_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            "ix_signal_pending",
            ["id"],
            unique=False,
            postgresql_where=sa.text("processed_at IS NULL"),
            sqlite_where=sa.text("processed_at IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_signal_source_id_id"), ["source_id", "id"], unique=False)

    op.create_table(
        "signal_endpoint",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_endpoint")),
        sa.UniqueConstraint("name", name=op.f("uq_signal_endpoint_name")),
    )
    op.create_table(
        "tag_type",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("icon", sa.String(length=50), nullable=True),
        sa.Column("color", sa.String(length=50), nullable=True),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_tag_type")),
    )
    op.create_table(
        "action_set",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("match_source", sa.String(length=50), nullable=False),
        sa.Column("match_source_id", sa.Integer(), nullable=False),
        sa.Column(
            "match_payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.Column("last_event_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_action_set_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_set")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_action_set_project_id_name")),
    )
    with op.batch_alter_table("action_set", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_action_set_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_action_set_match_source_match_source_id"),
            ["match_source", "match_source_id"],
            unique=False,
        )

    op.create_table(
        "feature",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("project_id", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.String(length=50), server_default="release", nullable=False),
        sa.Column("stale", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("impression_data", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("archived_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_feature_project_id_project"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_feature")),
    )
    with op.batch_alter_table("feature", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feature_project_id"), ["project_id"], unique=False)

    op.create_table(
        "personal_access_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("expires_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seen_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["service_account.id"],
            name=op.f("fk_personal_access_token_user_id_service_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_access_token")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_personal_access_token_secret_hash")),
        sa.UniqueConstraint(
            "user_id", "description", name=op.f("uq_personal_access_token_user_id_description")
        ),
    )
    with op.batch_alter_table("personal_access_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_personal_access_token_user_id"), ["user_id"], unique=False)

    op.create_table(
        "project_environment",
        sa.Column("project_id", sa.String(length=100), nullable=False),
        sa.Column("environment_name", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_name"],
            ["environment.name"],
            name=op.f("fk_project_environment_environment_name_environment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_project_environment_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "environment_name", name=op.f("pk_project_environment")),
    )
    op.create_table(
        "signal_endpoint_token",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("signal_endpoint_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_endpoint_id"],
            ["signal_endpoint.id"],
            name=op.f("fk_signal_endpoint_token_signal_endpoint_id_signal_endpoint"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_endpoint_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_signal_endpoint_token_token_hash")),
    )
    with op.batch_alter_table("signal_endpoint_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signal_endpoint_token_signal_endpoint_id"), ["signal_endpoint_id"], unique=False
        )

    op.create_table(
        "tag",
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["type"], ["tag_type.name"], name=op.f("fk_tag_type_tag_type"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("type", "value", name=op.f("pk_tag")),
    )
    op.create_table(
        "action",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action_set_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column(
            "execution_params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_set_id"],
            ["action_set.id"],
            name=op.f("fk_action_action_set_id_action_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action")),
    )
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_action_action_set_id"), ["action_set_id"], unique=False)

    op.create_table(
        "feature_environment",
        sa.Column("feature_name", sa.String(length=255), nullable=False),
        sa.Column("environment_name", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["environment_name"],
            ["environment.name"],
            name=op.f("fk_feature_environment_environment_name_environment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["feature_name"],
            ["feature.name"],
            name=op.f("fk_feature_environment_feature_name_feature"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feature_name", "environment_name", name=op.f("pk_feature_environment")),
    )
    op.create_table(
        "feature_strategy",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("feature_name", sa.String(length=255), nullable=False),
        sa.Column("environment_name", sa.String(length=100), nullable=False),
        sa.Column("strategy_name", sa.String(length=255), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "constraints",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("sort_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_name"],
            ["feature.name"],
            name=op.f("fk_feature_strategy_feature_name_feature"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feature_strategy")),
    )
    with op.batch_alter_table("feature_strategy", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feature_strategy_feature_name_environment_name"),
            ["feature_name", "environment_name"],
            unique=False,
        )

    op.create_table(
        "feature_tag",
        sa.Column("feature_name", sa.String(length=255), nullable=False),
        sa.Column("tag_type", sa.String(length=50), nullable=False),
        sa.Column("tag_value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["feature_name"],
            ["feature.name"],
            name=op.f("fk_feature_tag_feature_name_feature"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_type", "tag_value"],
            ["tag.type", "tag.value"],
            name=op.f("fk_feature_tag_tag_type_tag"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("feature_name", "tag_type", "tag_value", name=op.f("pk_feature_tag")),
    )
    with op.batch_alter_table("feature_tag", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feature_tag_tag_type_tag_value"), ["tag_type", "tag_value"], unique=False
        )

    _seed()


def _seed() -> None:
    """What exists from the start, as in Unleash: project `default`, environments `development` and
    `production` (both enabled in `default`) and the tag type `simple`."""
    now = datetime.now(UTC)
    project = sa.table(
        "project",
        sa.column("id", sa.String),
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("mode", sa.String),
        sa.column("created_at", switchman.db.types.UTCDateTime()),
    )
    environment = sa.table(
        "environment",
        sa.column("name", sa.String),
        sa.column("type", sa.String),
        sa.column("sort_order", sa.Integer),
        sa.column("enabled", sa.Boolean),
        sa.column("protected", sa.Boolean),
        sa.column("created_at", switchman.db.types.UTCDateTime()),
    )
    project_environment = sa.table(
        "project_environment", sa.column("project_id", sa.String), sa.column("environment_name", sa.String)
    )
    tag_type = sa.table(
        "tag_type",
        sa.column("name", sa.String),
        sa.column("description", sa.Text),
        sa.column("icon", sa.String),
        sa.column("color", sa.String),
        sa.column("created_at", switchman.db.types.UTCDateTime()),
    )
    op.bulk_insert(
        project,
        [
            {
                "id": "default",
                "name": "Default",
                "description": "Default project",
                "mode": "open",
                "created_at": now,
            }
        ],
    )
    op.bulk_insert(
        environment,
        [
            {
                "name": "development",
                "type": "development",
                "sort_order": 2,
                "enabled": True,
                "protected": False,
                "created_at": now,
            },
            {
                "name": "production",
                "type": "production",
                "sort_order": 3,
                "enabled": True,
                "protected": False,
                "created_at": now,
            },
        ],
    )
    op.bulk_insert(
        project_environment,
        [
            {"project_id": "default", "environment_name": "development"},
            {"project_id": "default", "environment_name": "production"},
        ],
    )
    op.bulk_insert(
        tag_type,
        [
            {
                "name": "simple",
                "description": "Used to simplify filtering of features",
                "icon": "#",
                "color": "#FFFFFF",
                "created_at": now,
            }
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("feature_tag", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_tag_tag_type_tag_value"))

    op.drop_table("feature_tag")
    with op.batch_alter_table("feature_strategy", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_strategy_feature_name_environment_name"))

    op.drop_table("feature_strategy")
    op.drop_table("feature_environment")
    with op.batch_alter_table("action", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_action_set_id"))

    op.drop_table("action")
    op.drop_table("tag")
    with op.batch_alter_table("signal_endpoint_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_endpoint_token_signal_endpoint_id"))

    op.drop_table("signal_endpoint_token")
    op.drop_table("project_environment")
    with op.batch_alter_table("personal_access_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_personal_access_token_user_id"))

    op.drop_table("personal_access_token")
    with op.batch_alter_table("feature", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feature_project_id"))

    op.drop_table("feature")
    with op.batch_alter_table("action_set", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_action_set_match_source_match_source_id"))
        batch_op.drop_index(batch_op.f("ix_action_set_actor_id"))

    op.drop_table("action_set")
    op.drop_table("tag_type")
    op.drop_table("signal_endpoint")
    with op.batch_alter_table("signal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_source_id_id"))
        batch_op.drop_index(
            "ix_signal_pending",
            postgresql_where=sa.text("processed_at IS NULL"),
            sqlite_where=sa.text("processed_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_signal_created_at"))

    op.drop_table("signal")
    op.drop_table("service_account")
    op.drop_table("project")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_project"))
        batch_op.drop_index(batch_op.f("ix_event_feature_name"))

    op.drop_table("event")
    op.drop_table("environment")
    op.drop_table("api_token")
    with op.batch_alter_table("action_set_event", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_action_set_event_started",
            postgresql_where=sa.text("state = 'started'"),
            sqlite_where=sa.text("state = 'started'"),
        )

    op.drop_table("action_set_event")
