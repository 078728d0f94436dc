"""The hub's error tree. Each error carries one code from the documented set; `schema`
maps them to GraphQL errors in one place. Messages are written for the caller: they never hold
SQL text, file paths, URLs or keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

CODES = (
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_USER_INPUT",
    "BAD_PURPOSE",
    "DATA_INTEGRITY",
    "DEPARTMENT_UNAVAILABLE",
    "LIMIT_EXCEEDED",
    "INTERNAL",
)


class HubError(Exception):
    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, extensions: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = dict(extensions or {})


class Unauthenticated(HubError):
    code = "UNAUTHENTICATED"


class Forbidden(HubError):
    code = "FORBIDDEN"


class BadUserInput(HubError):
    code = "BAD_USER_INPUT"


class BadPurpose(HubError):
    code = "BAD_PURPOSE"


class DataIntegrity(HubError):
    code = "DATA_INTEGRITY"


class DepartmentUnavailable(HubError):
    code = "DEPARTMENT_UNAVAILABLE"


class LimitExceeded(HubError):
    code = "LIMIT_EXCEEDED"


class Internal(HubError):
    code = "INTERNAL"
