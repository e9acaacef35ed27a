"""The few error types the domain raises; the admin API maps each to problem+json in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One problem with one part of a request, located by a JSON pointer (RFC 6901)."""

    type: str
    detail: str
    pointer: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"type": self.type, "detail": self.detail, "pointer": self.pointer}


@dataclass
class DomainError(Exception):
    """Base of every error a use case reports to its caller.

    `type` is a stable slug (clients match on it); `detail` is for humans and never echoes secrets.
    """

    type: str
    detail: str
    errors: tuple[FieldError, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

    status = 500
    title = "Internal error"

    def __post_init__(self) -> None:
        super().__init__(self.detail)


class BadRequest(DomainError):
    status = 400
    title = "Bad request"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class ValidationError(DomainError):
    status = 422
    title = "Validation failed"
