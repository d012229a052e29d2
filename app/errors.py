"""Errors the services raise; the API turns each into a 4xx that names the field and the reason."""

from __future__ import annotations


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class RequestError(ServiceError):
    """A field of the request is invalid."""

    status_code = 422

    def __init__(self, field: str, message: str):
        super().__init__(message, field)


class RequestErrors(RequestError):
    """Several fields or rows are invalid at once (an uploaded file's problems): each is reported."""

    def __init__(self, problems: list[tuple[str, str]], more: int = 0):
        field, message = problems[0]
        super().__init__(field, message)
        self.problems = problems + ([("file", f"and {more:,} more problems not listed")] if more else [])


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409


class TooLargeError(RequestError):
    """A field is over a size limit (an uploaded file's bytes): 413, still naming the field."""

    status_code = 413
