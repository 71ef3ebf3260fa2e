"""signals set aside

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04

Poison signals: failure count, last error and when a signal was set aside (ADR 0028).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy): SQLite supports it for these columns, and the signal table is big.
    op.add_column("signal", sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("signal", sa.Column("last_error", sa.Text(), nullable=True))
    op.add_column(
        "signal", sa.Column("set_aside_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_signal_set_aside",
        "signal",
        ["id"],
        postgresql_where=sa.text("set_aside_at IS NOT NULL"),
        sqlite_where=sa.text("set_aside_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_signal_set_aside", table_name="signal")
    with op.batch_alter_table("signal") as batch_op:
        batch_op.drop_column("set_aside_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("failures")
