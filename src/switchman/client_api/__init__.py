"""Unleash's client (server-side SDK) API over the embedded flag store: features, register, metrics."""
