"""action set policy

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

An action set's policy (shadow, cooldown, window, per alert) and the state its decisions leave (ADR 0023).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "action_set_policy",
        sa.Column("action_set_id", sa.Integer(), nullable=False),
        sa.Column("shadow", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("cooldown_seconds", sa.Integer(), nullable=True),
        sa.Column("window_count", sa.Integer(), nullable=True),
        sa.Column("window_seconds", sa.Integer(), nullable=True),
        sa.Column("per_alert", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("alert_key", sa.String(length=255), nullable=True),
        sa.Column("updated_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_set_id"],
            ["action_set.id"],
            name=op.f("fk_action_set_policy_action_set_id_action_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("action_set_id", name=op.f("pk_action_set_policy")),
    )
    op.create_table(
        "action_set_policy_state",
        sa.Column("action_set_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(length=255), nullable=False),
        sa.Column("last_run_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("matches", sa.Text(), nullable=False),
        sa.Column("updated_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_set_id"],
            ["action_set.id"],
            name=op.f("fk_action_set_policy_state_action_set_id_action_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("action_set_id", "alert_id", name=op.f("pk_action_set_policy_state")),
    )


def downgrade() -> None:
    op.drop_table("action_set_policy_state")
    op.drop_table("action_set_policy")
