"""signal delivery keys (idempotent deliveries)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

A sender's delivery id per endpoint, unique, so that a repeated delivery answers with the first one's
signal instead of storing another (ADR 0019).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal_delivery",
        sa.Column("signal_endpoint_id", sa.Integer(), nullable=False),
        sa.Column("delivery_key", sa.String(length=255), nullable=False),
        sa.Column("signal_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["signal_endpoint_id"],
            ["signal_endpoint.id"],
            name=op.f("fk_signal_delivery_signal_endpoint_id_signal_endpoint"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("signal_endpoint_id", "delivery_key", name=op.f("pk_signal_delivery")),
    )
    with op.batch_alter_table("signal_delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signal_delivery_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("signal_delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signal_delivery_created_at"))

    op.drop_table("signal_delivery")
