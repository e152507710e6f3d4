"""Domain services: verbs that check state, do the work in one transaction and record what happened."""


class ServiceError(Exception):
    """A refusal the user can act on. `code` is stable (API clients read it); `message` is for people."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


class ValidationError(ServiceError):
    code = "validation_error"
    http_status = 422


class NotFound(ServiceError):
    code = "not_found"
    http_status = 404


class Conflict(ServiceError):
    code = "conflict"
    http_status = 409
