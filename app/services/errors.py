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


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409


class TooLargeError(RequestError):
    """A field is over a size limit (an uploaded file's bytes): 413, still naming the field."""

    status_code = 413
