"""Notifications of run outcomes (ADR 0027): channels, a durable outbox written with the run, a dispatcher."""
