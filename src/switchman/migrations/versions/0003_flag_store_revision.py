"""flag store revision (the client API's ETag source)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

One counter row, bumped just before COMMIT by every transaction that changes what SDKs see (ADR 0009).
The row is created by the first bump (an upsert), so no seed row is needed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "flag_store_revision",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flag_store_revision")),
    )


def downgrade() -> None:
    op.drop_table("flag_store_revision")
