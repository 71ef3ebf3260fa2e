"""signal endpoint verification (signed calls)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

An endpoint's signature scheme and its sealed secret, and the count of calls that failed verification
(ADR 0020).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal_endpoint_verification",
        sa.Column("signal_endpoint_id", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(length=50), nullable=False),
        sa.Column("sealed_secret", sa.Text(), nullable=False),
        sa.Column("header", sa.String(length=255), nullable=True),
        sa.Column("timestamp_header", sa.String(length=255), nullable=True),
        sa.Column("tolerance_seconds", sa.Integer(), nullable=False),
        sa.Column("failures", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_failure_at", switchman.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_failure_reason", sa.String(length=255), nullable=True),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_endpoint_id"],
            ["signal_endpoint.id"],
            name=op.f("fk_signal_endpoint_verification_signal_endpoint_id_signal_endpoint"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("signal_endpoint_id", name=op.f("pk_signal_endpoint_verification")),
    )


def downgrade() -> None:
    op.drop_table("signal_endpoint_verification")
