"""console sessions, failed runs index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04

The web console's sessions, and the index its list of failed runs reads (ADR 0026).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import switchman.db.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_session",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("credential_digest", sa.String(length=64), nullable=False),
        sa.Column("personal_token", sa.Boolean(), nullable=False),
        sa.Column("created_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", switchman.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_session")),
    )
    op.create_index("ix_console_session_expires_at", "console_session", ["expires_at"])
    op.create_index(
        "ix_action_set_event_failed",
        "action_set_event",
        ["id"],
        postgresql_where=sa.text("state = 'failed'"),
        sqlite_where=sa.text("state = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_action_set_event_failed", table_name="action_set_event")
    op.drop_table("console_session")
