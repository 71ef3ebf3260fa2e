"""cluster rate limits

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04

The rate-limit windows shared by every replica on PostgreSQL (ADR 0029).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # UNLOGGED on PostgreSQL: a lease writes no WAL and waits for no flush; a crash empties the table,
    # which forgets only the current window's counts (ADR 0029). SQLite has no such table kind.
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "signal_rate_window",
        sa.Column("endpoint_name", sa.String(length=255), nullable=False),
        sa.Column("window_start", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("granted", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint_name", name=op.f("pk_signal_rate_window")),
        prefixes=unlogged,
    )


def downgrade() -> None:
    op.drop_table("signal_rate_window")
