"""signal endpoint query token (opt-in)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

Endpoints that accept their token as a `token` query parameter (ADR 0020).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal_endpoint_query_token",
        sa.Column("signal_endpoint_id", sa.Integer(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_endpoint_id"],
            ["signal_endpoint.id"],
            name=op.f("fk_signal_endpoint_query_token_signal_endpoint_id_signal_endpoint"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("signal_endpoint_id", name=op.f("pk_signal_endpoint_query_token")),
    )


def downgrade() -> None:
    op.drop_table("signal_endpoint_query_token")
