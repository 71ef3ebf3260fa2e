"""Configured client tokens (`SWITCHMAN_INIT_CLIENT_API_TOKENS`): their format, checked at start-up.

Kept free of database and web imports: `switchman.config` validates the variable with it.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL = "*"


@dataclass(frozen=True)
class InitClientToken:
    secret: str
    project: str
    environment: str


def parse_init_client_token(secret: str) -> InitClientToken:
    """One `SWITCHMAN_INIT_CLIENT_API_TOKENS` entry: `<project|*>:<environment>.<secret>`."""
    scope, dot, rest = secret.partition(".")
    project, colon, environment = scope.partition(":")
    if not dot or not colon or not project or not environment or len(rest) < 8:
        raise ValueError(
            "each client token must look like '<project>:<environment>.<secret>' "
            "(project may be '*') with a secret of 8+ characters"
        )
    if environment == ALL:
        raise ValueError("a client token cannot be scoped to all environments ('<project>:*.…')")
    if project == "[]":
        raise ValueError("a configured client token names one project or '*', not '[]'")
    return InitClientToken(secret=secret, project=project, environment=environment)
