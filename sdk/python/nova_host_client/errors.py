"""Typed exceptions: every error answer of the server becomes a NovaError subclass chosen by
its HTTP status, carrying the body's `code`, `message` and `request_id`."""
from typing import Any, Dict, Mapping, Optional, Type


class NovaError(Exception):
    """Base of every exception this SDK raises."""


class NovaConnectionError(NovaError):
    """The server could not be reached, or the connection broke (no HTTP answer)."""


class APIError(NovaError):
    """An error answer of the server: `{"error": {"code", "message", "request_id", ...}}`.

    `status` is the HTTP status, `code` the server's machine-readable code (`not_found`,
    `denied`, `rate_limited`, ...), `request_id` the id the server logged the request under
    (the body's, else the `X-Request-ID` header), `details` the whole error object (it may
    carry `rule`, `run_id`, `tool`, `field`, ...) and `headers` the response's headers.
    """

    def __init__(self, status: int, code: str, message: str, request_id: Optional[str],
                 details: Optional[Dict[str, Any]] = None, headers: Optional[Mapping[str, str]] = None):
        super().__init__(f"{status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.details: Dict[str, Any] = dict(details or {})
        self.headers: Dict[str, str] = dict(headers or {})

    @property
    def rule(self) -> Optional[str]:
        """The policy rule that decided a denial or a rate limit, when the server names it."""
        return self.details.get("rule")

    @property
    def run_id(self) -> Optional[str]:
        """The run the failed call was recorded under, when there is one."""
        return self.details.get("run_id")


class BadRequestError(APIError):
    """400: a malformed request (`invalid_json`, `invalid_parameter`, `invalid_request`)."""


class AuthenticationError(APIError):
    """401: no credentials, or credentials the server does not accept (API key or JWT)."""


class PermissionDeniedError(APIError):
    """403: authenticated but not allowed (a policy denial names its `rule`)."""


class NotFoundError(APIError):
    """404: no such resource, or not the caller's."""


class ConflictError(APIError):
    """409: e.g. `idempotency_conflict`, `already_finished`, `not_leased`, `version_conflict`."""


class PreconditionFailedError(APIError):
    """412: `If-Match` named an old version (`version_mismatch`)."""


class PayloadTooLargeError(APIError):
    """413: the body is larger than the server accepts."""


class UnsupportedMediaTypeError(APIError):
    """415: the body is not JSON."""


class UnprocessableError(APIError):
    """422: well-formed but invalid (`invalid_plan`, `invalid_input`, `tool_error`, ...)."""


class RateLimitError(APIError):
    """429: a policy rate limit is exhausted; `retry_after` is how long to wait, in seconds
    (from `retry_after_ms` in the body, else the `Retry-After` header; None if neither)."""

    def __init__(self, *args: Any, retry_after: Optional[float] = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx other than 503: a driver that failed (502), a deadline (504), an internal error."""


class ServiceUnavailableError(ServerError):
    """503: shutting down, no store, a driver that cannot be loaded, not ready."""


_BY_STATUS: Dict[int, Type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 412: PreconditionFailedError, 413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError, 422: UnprocessableError, 429: RateLimitError, 503: ServiceUnavailableError,
}


def error_class(status: int) -> Type[APIError]:
    """The exception class for an error status."""
    return _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
