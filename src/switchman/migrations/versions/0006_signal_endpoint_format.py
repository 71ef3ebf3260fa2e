"""signal endpoint format (sender formats)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03

The format an endpoint's sender posts, whose normalised view filters also see (ADR 0021).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal_endpoint_format",
        sa.Column("signal_endpoint_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=50), nullable=False),
        sa.Column("split_alerts", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_endpoint_id"],
            ["signal_endpoint.id"],
            name=op.f("fk_signal_endpoint_format_signal_endpoint_id_signal_endpoint"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("signal_endpoint_id", name=op.f("pk_signal_endpoint_format")),
    )


def downgrade() -> None:
    op.drop_table("signal_endpoint_format")
