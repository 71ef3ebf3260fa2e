"""Configuration as code (ADR 0031): `switchman export` and `switchman apply -f FILE`.

A client of the admin API over HTTP, never of the storage: `document` reads and writes the YAML
document, `planner` (pure) turns a desired and a current document into ordered steps, `remote` reads a
running switchman's state and executes a plan through its admin API.
"""
