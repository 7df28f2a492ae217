"""Fixtures of the Python SDK tests: every test runs twice, with the sync Client and with the
AsyncClient, against the live server Tests/sdk/run-sdk-tests.sh started (NOVA_URL, the keys)."""
import base64
import functools
import hashlib
import hmac
import inspect
import json
import os
import time
import uuid

import httpx
import pytest

import nova_host_client as nova

URL = os.environ["NOVA_URL"]

# Every public method of both clients and their resources, and the ones the tests called:
# test_every_method_was_called (run last) checks that none is left out.
CALLED = set()
METHODS = set()


def _record_calls():
    from nova_host_client import _async_client, _sync_client
    owners = [nova.Client, nova.AsyncClient, *_sync_client.Resource.__subclasses__(), *_async_client.AsyncResource.__subclasses__()]
    for owner in owners:
        for name, fn in list(vars(owner).items()):
            if name.startswith("_") or not callable(fn) or name in ("close", "aclose"):
                continue
            key = f"{owner.__name__}.{name}"
            METHODS.add(key)

            def wrapper(*args, __fn=fn, __key=key, **kwargs):
                CALLED.add(__key)
                return __fn(*args, **kwargs)
            setattr(owner, name, functools.wraps(fn)(wrapper))


_record_calls()


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.name == "test_every_method_was_called")
ADMIN_KEY = os.environ["NOVA_ADMIN_KEY"]
USER_KEY = os.environ["NOVA_USER_KEY"]


@pytest.fixture(params=["sync", "async"])
def kind(request):
    return request.param


@pytest.fixture
async def make(kind):
    """make(**options) → a client of the test's kind; closed after the test."""
    made = []

    def factory(**options):
        options.setdefault("base_url", URL)
        c = nova.Client(**options) if kind == "sync" else nova.AsyncClient(**options)
        made.append(c)
        if options.get("http_client") is not None:
            made.append(options["http_client"])  # a client given to the SDK is the caller's to close
        return c
    yield factory
    for c in made:
        await v(c.close() if kind == "sync" else c.aclose())


@pytest.fixture
def admin(make):
    return make(api_key=ADMIN_KEY)


@pytest.fixture
def user(make):
    return make(api_key=USER_KEY)


async def v(x):
    """The value of a sync call, or of an async one once awaited."""
    return await x if inspect.isawaitable(x) else x


async def take(iterable, n=None):
    """Items of a sync or async iterator (all of them, or the first n)."""
    out = []
    if hasattr(iterable, "__aiter__"):
        async for item in iterable:
            out.append(item)
            if n is not None and len(out) >= n:
                break
    else:
        for item in iterable:
            out.append(item)
            if n is not None and len(out) >= n:
                break
    return out


async def close(stream):
    await v(stream.aclose() if hasattr(stream, "aclose") else stream.close())


async def until(fn, what, tries=400, pause=0.05):
    """Polls `fn` (sync or async) until it answers something truthy; fails after `tries` polls."""
    for _ in range(tries):
        value = await v(fn())
        if value:
            return value
        await v(_sleep(pause))
    pytest.fail(f"timed out waiting for {what}")


async def _sleep(seconds):
    import asyncio
    await asyncio.sleep(seconds)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def jwt(sub, role="user", secret=None, exp_in=300):
    """An HS256 JWT the server's `jwt` configuration accepts (or not, with another secret)."""
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    header = {"alg": "HS256", "typ": "JWT", "kid": os.environ["NOVA_JWT_KID"]}
    now = int(time.time())
    claims = {"sub": sub, "role": role, "iss": os.environ["NOVA_JWT_ISSUER"], "aud": os.environ["NOVA_JWT_AUDIENCE"],
              "iat": now, "exp": now + exp_in}
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    key = (secret or os.environ["NOVA_JWT_SECRET"]).encode()
    return signing + "." + b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def recording_http(kind, seen):
    """An httpx client of the test's kind whose responses are recorded (status, Retry-After)."""
    if kind == "sync":
        return httpx.Client(event_hooks={"response": [lambda r: seen.append((r.status_code, r.headers.get("retry-after")))]})

    async def hook(r):
        seen.append((r.status_code, r.headers.get("retry-after")))
    return httpx.AsyncClient(event_hooks={"response": [hook]})


ECHO_PLAN = {"name": "sdk-echo", "steps": [{"id": "say", "call": "echo.echo", "input": {"text": "hi"}}]}


def sleep_plan(ms):
    return {"name": "sdk-sleep", "steps": [{"id": "nap", "call": "echo.sleep", "input": {"ms": ms}}]}
