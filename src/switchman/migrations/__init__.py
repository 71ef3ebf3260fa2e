"""Alembic migrations (script location `switchman:migrations`)."""
