"""Tests of the pure engine (switchman.engine)."""
