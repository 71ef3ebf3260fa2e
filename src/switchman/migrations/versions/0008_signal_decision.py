"""signal decision trace

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

For each processed signal and each enabled action set of its source, the decision and its reasons
(ADR 0022).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal_decision",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("signal_id", sa.BigInteger(), nullable=False),
        sa.Column("action_set_id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("alert_id", sa.String(length=255), nullable=True),
        sa.Column("policy_reason", sa.Text(), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_decision")),
        sa.UniqueConstraint(
            "signal_id", "action_set_id", name=op.f("uq_signal_decision_signal_id_action_set_id")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_signal_decision_action_set_id_id", "signal_decision", ["action_set_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_signal_decision_action_set_id_id", table_name="signal_decision")
    op.drop_table("signal_decision")
