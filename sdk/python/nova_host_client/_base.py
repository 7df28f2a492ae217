"""What the sync and the async client share and that does no I/O: options, headers, error
parsing, the retry decision, the server-sent-events decoder and request bodies."""
import email.utils
import json
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Union
from urllib.parse import quote

from pydantic import BaseModel

from .errors import APIError, RateLimitError, error_class

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
#: Statuses retried with backoff: 429 (a rate limit: the call was refused before it ran) and 503
#: (shutting down, no store, a driver not loadable: nothing ran). 502 and 504 are not retried:
#: the tool may have run.
RETRY_STATUSES = (429, 503)
Credential = Union[str, Callable[[], str]]


@dataclass
class Options:
    """Settings of a client (see Client's docstring)."""
    base_url: str
    credential: Optional[Credential]
    api_key_header: bool
    timeout: float
    max_retries: int
    max_retry_delay: float
    backoff: float
    headers: Dict[str, str] = field(default_factory=dict)

    def auth_headers(self) -> Dict[str, str]:
        cred = self.credential() if callable(self.credential) else self.credential
        if not cred:
            return {}
        return {"X-API-Key": cred} if self.api_key_header else {"Authorization": f"Bearer {cred}"}


def make_options(base_url: Optional[str], api_key: Optional[str], token: Optional[Credential], api_key_header: bool,
                 timeout: float, max_retries: int, max_retry_delay: float, backoff: float,
                 headers: Optional[Mapping[str, str]]) -> Options:
    if api_key and token:
        raise ValueError("give api_key or token, not both (both are bearer credentials)")
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")
    credential = api_key or token or os.environ.get("NOVA_HOST_API_KEY") or None
    url = (base_url or os.environ.get("NOVA_HOST_URL") or DEFAULT_BASE_URL).rstrip("/")
    return Options(url, credential, api_key_header, timeout, max_retries, max_retry_delay, backoff, dict(headers or {}))


def path(template: str, *segments: Any) -> str:
    """`template` with each `{}` replaced by a percent-encoded segment (`/` too: `ns/name` stays one)."""
    return template.format(*(quote(str(s), safe="") for s in segments))


def query(**params: Any) -> Dict[str, Any]:
    """The query parameters that are set (None means: not sent); booleans as true/false."""
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}


def body(value: Any) -> Any:
    """A request body from a model (the fields that were set, by their JSON names) or plain data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    return value


def compact(**fields: Any) -> Dict[str, Any]:
    """A JSON object of the fields that are set."""
    return {k: body(v) for k, v in fields.items() if v is not None}


def version_header(version: Union[int, str, None]) -> Optional[str]:
    """An `If-Match` value: an int n becomes `"n"`, a string is sent as it is (an ETag)."""
    if version is None:
        return None
    return f'"{version}"' if isinstance(version, int) else version


def new_idempotency_key() -> str:
    return f"sdk-{uuid.uuid4()}"


def parse_error(status: int, headers: Mapping[str, str], content: bytes) -> APIError:
    """The typed exception for an error answer (a non-JSON body keeps its text as the message)."""
    try:
        doc = json.loads(content or b"null")
    except ValueError:
        doc = None
    err: Dict[str, Any] = doc["error"] if isinstance(doc, dict) and isinstance(doc.get("error"), dict) else {}
    code = str(err.get("code") or f"http_{status}")
    message = str(err.get("message") or (content.decode("utf-8", "replace")[:500] if content else f"HTTP {status}"))
    request_id = err.get("request_id") or headers.get("x-request-id")
    cls = error_class(status)
    if cls is RateLimitError:
        return RateLimitError(status, code, message, request_id, err, headers, retry_after=retry_after(headers, err))
    return cls(status, code, message, request_id, err, headers)


def retry_after(headers: Mapping[str, str], err: Mapping[str, Any]) -> Optional[float]:
    """Seconds to wait, from the body's `retry_after_ms` (exact) or the `Retry-After` header
    (seconds, or an HTTP date); None when the answer says nothing."""
    ms = err.get("retry_after_ms")
    if isinstance(ms, (int, float)) and ms >= 0:
        return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_delay(options: Options, attempt: int, error: APIError) -> Optional[float]:
    """How long to wait before retry number `attempt + 1` after `error`, or None: do not retry
    (not a retried status, retries used up, or the server asks for longer than max_retry_delay)."""
    if error.status not in RETRY_STATUSES or attempt >= options.max_retries:
        return None
    asked = error.retry_after if isinstance(error, RateLimitError) else retry_after(error.headers, error.details)
    if asked is not None:
        return asked if asked <= options.max_retry_delay else None
    # No hint: exponential backoff with full jitter, capped.
    return float(min(options.max_retry_delay, options.backoff * (2 ** attempt)) * (0.5 + random.random() / 2))


@dataclass
class ServerSentEvent:
    """One event of a text/event-stream: `event` (default "message"), `data`, `id`, `retry`."""
    event: str
    data: str
    id: Optional[str] = None
    retry: Optional[int] = None

    def json(self) -> Any:
        return json.loads(self.data)


class SSEDecoder:
    """Turns lines of a text/event-stream into events (the WHATWG rules: comments skipped,
    multi-line data joined with newlines, an event dispatched at a blank line)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: List[str] = []
        self._id: Optional[str] = None
        self._retry: Optional[int] = None
        self.last_event_id: Optional[str] = None

    def feed(self, line: str) -> Optional[ServerSentEvent]:
        line = line.rstrip("\r\n")
        if line == "":
            if not self._data and not self._event:
                return None
            ev = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id, self._retry)
            self._event, self._data, self._retry = "", [], None
            return ev
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = self.last_event_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None


def next_offset(page: Any, items: List[Any], offset: int, limit: int) -> Optional[int]:
    """The offset of the page after `page` (a response model): the server's `next_offset` when
    the route sends one; else, with a `total`, offset + items until the total; else offset +
    limit while pages are full (routes that answer only items, limit and offset)."""
    if "next_offset" in type(page).model_fields:
        following: Optional[int] = page.next_offset
        return following
    if not items:
        return None
    total = getattr(page, "total", None)
    if isinstance(total, int):
        return offset + len(items) if offset + len(items) < total else None
    return offset + len(items) if len(items) >= limit else None
