"""Stress scripts: bounded runs that fail when a promise of switchman is broken (see docs/reliability.md)."""
