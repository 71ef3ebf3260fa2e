"""action set event changes, undo, restore on resolve, change budgets and time boxes

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

The flag states each run of the embedded store changed, undone events, and the policy fields that build on
them: restore on resolve (with the alert's open run) and the change budgets of sets and projects (ADR 0024),
and time boxes, whose
reverts are traced besides the decision of the signal that last renewed them (ADR 0025).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("action_set_policy") as policy:
        policy.add_column(
            sa.Column("restore_on_resolve", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        policy.add_column(sa.Column("max_changes_per_hour", sa.Integer(), nullable=True))
        policy.add_column(sa.Column("revert_after_seconds", sa.Integer(), nullable=True))
    with op.batch_alter_table("action_set_policy_state") as state:
        state.add_column(sa.Column("open_event_id", sa.BigInteger(), nullable=True))
        state.add_column(
            sa.Column("revert_due_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        state.add_column(sa.Column("renewed_by_signal_id", sa.BigInteger(), nullable=True))
        state.create_index("ix_action_set_policy_state_revert_due_at", ["revert_due_at"])
    with op.batch_alter_table("signal_decision") as decision:
        decision.drop_constraint("uq_signal_decision_signal_id_action_set_id", type_="unique")
    op.create_index(
        "uq_signal_decision_signal_id_action_set_id",
        "signal_decision",
        ["signal_id", "action_set_id"],
        unique=True,
        sqlite_where=sa.text("outcome <> 'reverted'"),
        postgresql_where=sa.text("outcome <> 'reverted'"),
    )
    op.create_table(
        "action_set_event_change",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("feature_name", sa.String(length=255), nullable=False),
        sa.Column("environment", sa.String(length=100), nullable=False),
        sa.Column("enabled_before", sa.Boolean(), nullable=False),
        sa.Column("enabled_after", sa.Boolean(), nullable=False),
        sa.Column("changed_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("action_set_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(
            "event_id", "feature_name", "environment", name=op.f("pk_action_set_event_change")
        ),
    )
    op.create_index(
        "ix_action_set_event_change_action_set_id_changed_at",
        "action_set_event_change",
        ["action_set_id", "changed_at"],
    )
    op.create_index(
        "ix_action_set_event_change_project_changed_at", "action_set_event_change", ["project", "changed_at"]
    )
    op.create_table(
        "project_action_budget",
        sa.Column("project_id", sa.String(length=100), nullable=False),
        sa.Column("max_changes_per_hour", sa.Integer(), nullable=False),
        sa.Column("updated_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_project_action_budget_project_id_project"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_action_budget")),
    )
    op.create_table(
        "action_set_event_undo",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("undone_by", sa.String(length=255), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_action_set_event_undo")),
    )


def downgrade() -> None:
    op.drop_table("project_action_budget")
    op.drop_table("action_set_event_undo")
    op.drop_table("action_set_event_change")
    op.execute("DELETE FROM signal_decision WHERE outcome = 'reverted'")
    op.drop_index("uq_signal_decision_signal_id_action_set_id", table_name="signal_decision")
    with op.batch_alter_table("signal_decision") as decision:
        decision.create_unique_constraint(
            "uq_signal_decision_signal_id_action_set_id", ["signal_id", "action_set_id"]
        )
    with op.batch_alter_table("action_set_policy_state") as state:
        state.drop_index("ix_action_set_policy_state_revert_due_at")
        state.drop_column("renewed_by_signal_id")
        state.drop_column("revert_due_at")
        state.drop_column("open_event_id")
    with op.batch_alter_table("action_set_policy") as policy:
        policy.drop_column("revert_after_seconds")
        policy.drop_column("max_changes_per_hour")
        policy.drop_column("restore_on_resolve")
