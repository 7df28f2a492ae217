"""Client SDK of nova-host (`nova-host serve`): a sync Client and an AsyncClient with typed
methods for runs, episodes, tools, agents, goals, state, memory, jobs, messages, templates,
approvals, drivers, policy, reports and audit; models generated from docs/openapi.yaml."""
from . import models
from ._async_client import AsyncClient, AsyncStream
from ._base import ServerSentEvent
from ._sync_client import Client, Stream
from .errors import (APIError, AuthenticationError, BadRequestError, ConflictError, NotFoundError, NovaConnectionError, NovaError,
                     PayloadTooLargeError, PermissionDeniedError, PreconditionFailedError, RateLimitError, ServerError,
                     ServiceUnavailableError, UnprocessableError, UnsupportedMediaTypeError)

__version__ = "0.1.0"
__all__ = ["Client", "AsyncClient", "Stream", "AsyncStream", "ServerSentEvent", "models", "NovaError", "NovaConnectionError",
           "APIError", "BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError", "ConflictError",
           "PreconditionFailedError", "PayloadTooLargeError", "UnsupportedMediaTypeError", "UnprocessableError", "RateLimitError",
           "ServerError", "ServiceUnavailableError"]
