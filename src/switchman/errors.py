"""The error tree. Every error renders as Unleash's body `{id, name, message, details}` with its status.

Handlers raise these; one exception handler in `app.py` renders them. `details` defaults to
`[{"message": message}]` as in Unleash; validation errors carry one `{path, message}` entry per problem.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

# The message of every 400 whose `details` list the problems (Unleash's wording for request validation).
VALIDATION_MESSAGE = (
    "Request validation failed: your request body or params contain invalid data. "
    "Refer to the `details` list for more information."
)


class SwitchmanError(Exception):
    status_code: ClassVar[int] = 500
    name: ClassVar[str] = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        details: Sequence[Mapping[str, str]] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details) if details else [{"message": message}]
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "name": self.name,
            "message": self.message,
            "details": self.details,
            **self.extra,
        }


class BadDataError(SwitchmanError):
    status_code = 400
    name = "BadDataError"


class ExceedsLimitError(SwitchmanError):
    status_code = 400
    name = "ExceedsLimitError"

    def __init__(self, resource: str, limit: int) -> None:
        super().__init__(
            f"Failed to create {resource}. You can't create more than the established limit of {limit}."
        )


class AuthenticationRequired(SwitchmanError):
    status_code = 401
    name = "AuthenticationRequired"

    def __init__(self) -> None:
        super().__init__(
            "You must log in to use Unleash. Your request had no authorization header, so we could not "
            "authorize you. Try logging in at /auth/simple/login",
            extra={"path": "/auth/simple/login", "type": "password", "defaultHidden": False},
        )


class UnauthorizedError(SwitchmanError):
    status_code = 401
    name = "UnauthorizedError"

    def __init__(self, message: str = "You must log in to use Unleash.") -> None:
        super().__init__(message)


class InvalidTokenError(SwitchmanError):
    status_code = 401
    name = "InvalidTokenError"


class PermissionDeniedError(SwitchmanError):
    """Unleash's `PermissionError` (named differently here so it does not shadow the builtin)."""

    status_code = 403
    name = "PermissionError"

    def __init__(self, permissions: Sequence[str], message: str | None = None) -> None:
        quoted = ", ".join(f'"{p}"' for p in permissions)
        text = message or (
            f"You don't have the required permissions to perform this operation. To perform this action, "
            f"you need the {quoted} permission{'s' if len(permissions) > 1 else ''}."
        )
        super().__init__(text, extra={"permissions": list(permissions)})


class NoAccessError(SwitchmanError):
    status_code = 403
    name = "NoAccessError"


class NotFoundError(SwitchmanError):
    status_code = 404
    name = "NotFoundError"


class MethodNotAllowedError(SwitchmanError):
    status_code = 405
    name = "MethodNotAllowedError"


class NameExistsError(SwitchmanError):
    status_code = 409
    name = "NameExistsError"


class ConflictError(SwitchmanError):
    status_code = 409
    name = "ConflictError"


class ContentTooLargeError(SwitchmanError):
    status_code = 413
    name = "ContentTooLargeError"


class ContentTypeError(SwitchmanError):
    status_code = 415
    name = "ContentTypeError"


class RateLimitError(SwitchmanError):
    status_code = 429
    name = "RateLimitError"


class ServiceUnavailableError(SwitchmanError):
    status_code = 503
    name = "ServiceUnavailableError"


@dataclass(frozen=True)
class InUse:
    """How to say that something is still used: `<subject> is <relation> <n> <noun>(s): <users>. <remedy>`,
    and one detail `<noun> <user> <each>` per user."""

    relation: str
    noun: str
    remedy: str
    each: str


def in_use_conflict(subject: str, users: list[str], how: InUse) -> ConflictError:
    """409 naming what still uses `subject`."""
    return ConflictError(
        f"{subject} is {how.relation} {len(users)} {how.noun}{'s' if len(users) > 1 else ''}: "
        f"{'; '.join(users)}. {how.remedy}",
        details=[{"message": f"{how.noun} {user} {how.each}"} for user in users],
    )
