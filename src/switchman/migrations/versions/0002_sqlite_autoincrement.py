"""SQLite: never reuse ids of referenced rows (AUTOINCREMENT)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Without AUTOINCREMENT, SQLite gives a new row the highest id + 1, so deleting the newest signal
endpoint or action set and creating another would hand the new one the old id — with the old
endpoint's signals and action sets, or the old set's events. PostgreSQL sequences never reuse ids:
nothing to do there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "service_account",
    "personal_access_token",
    "signal_endpoint",
    "signal_endpoint_token",
    "signal",
    "action_set",
    "action",
    "action_set_event",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
