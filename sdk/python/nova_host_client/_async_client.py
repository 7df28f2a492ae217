"""The asynchronous client (AsyncClient). scripts/gen-sdk.py makes the synchronous Client
(_sync_client.py) from this file: write the code here once, then run the script."""
import asyncio
from time import monotonic
from typing import Any, AsyncIterator, Callable, Dict, Generic, List, Literal, Mapping, Optional, Type, TypeVar, Union, overload

import httpx
from pydantic import BaseModel

from . import models as m
from ._base import (Credential, Options, ServerSentEvent, SSEDecoder, body, compact, make_options, new_idempotency_key,
                    next_offset, parse_error, path, query, retry_delay, version_header)
from .errors import NotFoundError, NovaConnectionError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
_NO_BODY: Any = object()
_TERMINAL_RUN = ("succeeded", "failed", "denied", "cancelled", "interrupted")


class AsyncStream(Generic[T]):
    """A server-sent-event stream as an iterator; it ends when the server closes it. Close it
    (or use it in a `with` block) to stop reading; the request starts at the first item."""

    def __init__(self, source: AsyncIterator[T]):
        self._source = source

    def __aiter__(self) -> "AsyncStream[T]":
        return self

    async def __anext__(self) -> T:
        return await self._source.__anext__()

    async def aclose(self) -> None:
        await self._source.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> "AsyncStream[T]":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class AsyncClient:
    """A client of a nova-host server (`nova-host serve`).

    base_url        the server (default $NOVA_HOST_URL, else http://127.0.0.1:8787)
    api_key         an API key; or token: a JWT, or a function returning a fresh one per request
                    (both are sent as `Authorization: Bearer`; default $NOVA_HOST_API_KEY)
    api_key_header  send the credential as `X-API-Key` instead of `Authorization`
    timeout         seconds per request (streams wait for events without a read timeout)
    max_retries     retries of a 429 or 503 answer (waiting `Retry-After`, else exponential backoff)
    max_retry_delay the longest wait the client accepts; a 429 asking for longer is raised at once
    http_client     an httpx client of your own (transport, proxies, event hooks); not closed by us
    """

    def __init__(self, base_url: Optional[str] = None, *, api_key: Optional[str] = None, token: Optional[Credential] = None,
                 api_key_header: bool = False, timeout: float = 60.0, max_retries: int = 2, max_retry_delay: float = 30.0,
                 backoff: float = 0.5, headers: Optional[Mapping[str, str]] = None,
                 http_client: Optional[httpx.AsyncClient] = None):
        self._options: Options = make_options(base_url, api_key, token, api_key_header, timeout, max_retries,
                                              max_retry_delay, backoff, headers)
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None
        self.runs = AsyncRuns(self)
        self.episodes = AsyncEpisodes(self)
        self.reports = AsyncReports(self)
        self.jobs = AsyncJobs(self)
        self.agents = AsyncAgents(self)
        self.goals = AsyncGoals(self)
        self.state = AsyncState(self)
        self.memory = AsyncMemory(self)
        self.messages = AsyncMessages(self)
        self.tools = AsyncTools(self)
        self.drivers = AsyncDrivers(self)
        self.policy = AsyncPolicy(self)
        self.templates = AsyncTemplates(self)
        self.approvals = AsyncApprovals(self)
        self.audit = AsyncAudit(self)

    @property
    def base_url(self) -> str:
        return self._options.base_url

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # --- system ---------------------------------------------------------------------------

    async def health(self) -> m.HealthResponse:
        """GET /health (public)."""
        return await self._call("GET", "/health", m.HealthResponse)

    async def ready(self) -> m.ReadyResponse:
        """GET /ready: the store answers and the drivers directory is usable (503 otherwise)."""
        return await self._call("GET", "/ready", m.ReadyResponse)

    async def version(self) -> m.VersionResponse:
        """GET /version (public)."""
        return await self._call("GET", "/version", m.VersionResponse)

    async def metrics(self) -> str:
        """GET /metrics: the Prometheus text."""
        return (await self._send("GET", "/metrics")).text

    # --- transport ------------------------------------------------------------------------

    def _headers(self, extra: Optional[Mapping[str, Optional[str]]]) -> Dict[str, str]:
        h = {**self._options.headers, **self._options.auth_headers()}
        h.update({k: v for k, v in (extra or {}).items() if v is not None})
        return h

    async def _send(self, method: str, url_path: str, *, params: Optional[Mapping[str, Any]] = None, json: Any = _NO_BODY,
                    headers: Optional[Mapping[str, Optional[str]]] = None) -> httpx.Response:
        """One request, retried on 429/503 as the options say; an error answer raises its APIError."""
        attempt = 0
        while True:
            kwargs: Dict[str, Any] = {"params": params, "headers": self._headers(headers)}
            if json is not _NO_BODY:
                kwargs["json"] = body(json)
            try:
                resp = await self._http.request(method, self._options.base_url + url_path, **kwargs)
            except httpx.TransportError as e:
                raise NovaConnectionError(f"{method} {url_path}: {e}") from e
            if resp.status_code < 400:
                return resp
            error = parse_error(resp.status_code, resp.headers, resp.content)
            delay = retry_delay(self._options, attempt, error)
            if delay is None:
                raise error
            attempt += 1
            await asyncio.sleep(delay)

    @overload
    async def _call(self, method: str, url_path: str, model: Type[M], **kwargs: Any) -> M: ...

    @overload
    async def _call(self, method: str, url_path: str, model: None = None, **kwargs: Any) -> Any: ...

    async def _call(self, method: str, url_path: str, model: Optional[Type[M]] = None, **kwargs: Any) -> Any:
        resp = await self._send(method, url_path, **kwargs)
        if resp.status_code == 204 or not resp.content:
            return None
        data = resp.json()
        return model.model_validate(data) if model is not None else data

    async def _events(self, url_path: str, params: Mapping[str, Any],
                      headers: Optional[Mapping[str, Optional[str]]] = None) -> AsyncIterator[ServerSentEvent]:
        """The events of a text/event-stream route (opening it is retried like any request)."""
        attempt = 0
        timeout = httpx.Timeout(self._options.timeout, read=None)
        while True:
            request = self._http.build_request("GET", self._options.base_url + url_path, params=params, timeout=timeout,
                                               headers={**self._headers(headers), "Accept": "text/event-stream"})
            try:
                resp = await self._http.send(request, stream=True)
            except httpx.TransportError as e:
                raise NovaConnectionError(f"GET {url_path}: {e}") from e
            if resp.status_code < 400:
                break
            await resp.aread()
            await resp.aclose()
            error = parse_error(resp.status_code, resp.headers, resp.content)
            delay = retry_delay(self._options, attempt, error)
            if delay is None:
                raise error
            attempt += 1
            await asyncio.sleep(delay)
        try:
            decoder = SSEDecoder()
            async for line in resp.aiter_lines():
                event = decoder.feed(line)
                if event is not None:
                    yield event
        except httpx.TransportError as e:
            raise NovaConnectionError(f"GET {url_path}: the stream broke: {e}") from e
        finally:
            await resp.aclose()

    async def _agent_id(self, agent: str) -> str:
        """The id of an agent named `namespace/name`, looked up in the namespace's list: the
        server does not decode a `%2F` in a path, so such a name cannot stand in the URL (an id
        or a plain name is used as it is)."""
        if "/" not in agent:
            return agent
        namespace, name = agent.split("/", 1)
        offset: Optional[int] = 0
        request_id = None
        while offset is not None:
            resp = await self._send("GET", "/v1/agents", params=query(namespace=namespace, limit=500, offset=offset))
            request_id = resp.headers.get("x-request-id")
            page = m.ListAgentsResponse.model_validate(resp.json())
            for a in page.items:
                if a.name == name:
                    return a.id
            offset = page.next_offset
        # The request id is the lookup's (the last page of the namespace's list).
        raise NotFoundError(404, "not_found", f"no agent {agent}", request_id)

    async def _pages(self, fetch: Callable[[int], Any], items: str, limit: int, unique: Optional[str] = None) -> AsyncIterator[Any]:
        """Every item of every page: fetch(offset) answers a page model with a list `items`. With
        `unique` (a field), an item seen on an earlier page is not yielded again."""
        offset: Optional[int] = 0
        seen = set()
        while offset is not None:
            page = await fetch(offset)
            got = getattr(page, items)
            for item in got:
                if unique is not None:
                    if getattr(item, unique) in seen:
                        continue
                    seen.add(getattr(item, unique))
                yield item
            offset = next_offset(page, got, offset, limit)

    async def _cursor_pages(self, fetch: Callable[[Optional[int], Optional[int]], Any], items: str, unique: str) -> AsyncIterator[Any]:
        """Every item of pages read by offset until a page names a cursor (`next_before_seq`),
        then by cursor: fetch(offset, before_seq) answers a page. Items recorded meanwhile shift
        offset pages but not cursor pages; an item seen on an earlier page is not yielded again."""
        offset: Optional[int] = 0
        before: Optional[int] = None
        seen = set()
        while offset is not None or before is not None:
            page = await fetch(offset, before)
            for item in getattr(page, items):
                if getattr(item, unique) in seen:
                    continue
                seen.add(getattr(item, unique))
                yield item
            before = page.next_before_seq
            offset = page.next_offset if before is None and offset is not None else None


class AsyncResource:
    def __init__(self, client: AsyncClient):
        self._client = client


class AsyncRuns(AsyncResource):
    """Runs of plans (POST /v1/runs queues one as a durable job)."""

    async def create(self, plan: Optional[Mapping[str, Any]] = None, *, template: Optional[str] = None,
                     params: Optional[Mapping[str, Any]] = None, inputs: Optional[Mapping[str, Any]] = None,
                     parallelism: Optional[int] = None, queue: Optional[str] = None, priority: Optional[int] = None,
                     idempotency_key: Optional[str] = None) -> m.Run:
        """Queue a run of `plan`, or of `template` (NAME@VERSION) with `params`. Repeating a request
        with the same `idempotency_key` returns the first run; without one, the client makes a key
        so that its own retries never queue a run twice."""
        doc = compact(plan=plan, template=template, params=params, inputs=inputs, parallelism=parallelism, queue=queue, priority=priority)
        return await self._client._call("POST", "/v1/runs", m.Run, json=doc,
                                        headers={"Idempotency-Key": idempotency_key or new_idempotency_key()})

    async def list(self, *, status: Optional[str] = None, principal: Optional[str] = None, plan: Optional[str] = None,
                   agent: Optional[str] = None, limit: Optional[int] = None, offset: Optional[int] = None,
                   before_seq: Optional[int] = None) -> m.ListRunsResponse:
        """One page of runs, newest first; `plan` (a plan's name) and `agent` (an agent's id or
        name: its goals' runs) filter on the server. `before_seq` (a page's `next_before_seq`)
        pages through recorded runs by cursor instead of `offset`."""
        return await self._client._call("GET", "/v1/runs", m.ListRunsResponse,
                                        params=query(status=status, principal=principal, plan=plan, agent=agent, limit=limit,
                                                     offset=offset, before_seq=before_seq))

    def iter(self, *, status: Optional[str] = None, principal: Optional[str] = None, plan: Optional[str] = None,
             agent: Optional[str] = None, page_size: int = 50) -> AsyncIterator[m.Run]:
        """Every run, each once, newest first: queued and running runs, then recorded ones, by
        offset until a page reaches the recorded runs and then by the server's cursor
        (`next_before_seq`), so runs recorded while pages are read shift nothing (a run that
        finishes while the first pages are read can still be missed or come late)."""
        return self._client._cursor_pages(lambda o, b: self.list(status=status, principal=principal, plan=plan, agent=agent,
                                                                 limit=page_size, offset=o, before_seq=b), "runs", unique="run_id")

    def stream(self, *, status: Optional[str] = None, principal: Optional[str] = None, plan: Optional[str] = None,
               agent: Optional[str] = None) -> AsyncStream[m.Run]:
        """Server-sent events: the newest 50 runs the filters match, oldest first, then each run
        that appears or changes, as it happens; ends when the server ends the stream."""
        events = self._client._events("/v1/runs/stream", query(status=status, principal=principal, plan=plan, agent=agent))
        return AsyncStream(self._runs(events))

    async def _runs(self, events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[m.Run]:
        try:
            async for event in events:
                if event.event == "run":
                    yield m.Run.model_validate(event.json())
                elif event.event == "end":
                    return
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def get(self, run_id: str) -> m.Run:
        return await self._client._call("GET", path("/v1/runs/{}", run_id), m.Run)

    async def cancel(self, run_id: str) -> m.CancelRunResponse:
        return await self._client._call("POST", path("/v1/runs/{}/cancel", run_id), m.CancelRunResponse)

    async def wait(self, run_id: str, *, poll_interval: float = 0.2, timeout: Optional[float] = None) -> m.Run:
        """Poll the run until it is finished (not queued or running); TimeoutError after `timeout` s."""
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            run = await self.get(run_id)
            if run.status in _TERMINAL_RUN:
                return run
            if deadline is not None and monotonic() >= deadline:
                raise TimeoutError(f"run {run_id} is still {run.status} after {timeout} s")
            await asyncio.sleep(poll_interval)


class AsyncEpisodes(AsyncResource):
    """The stored, hash-chained episode of each run."""

    async def get(self, run_id: str) -> m.GetEpisodeResponse:
        return await self._client._call("GET", path("/v1/episodes/{}", run_id), m.GetEpisodeResponse)


class AsyncReports(AsyncResource):
    async def status(self, *, since: Optional[str] = None, agent: Optional[str] = None) -> m.StatusReport:
        """The status report of a window (`since`: 30m, 24h, 7d)."""
        return await self._client._call("GET", "/v1/reports/status", m.StatusReport, params=query(since=since, agent=agent))


class AsyncJobs(AsyncResource):
    """Jobs of the durable queue (`state="dead"` is the dead-letter queue)."""

    async def list(self, *, state: Optional[str] = None, queue: Optional[str] = None, kind: Optional[str] = None,
                   limit: Optional[int] = None, offset: Optional[int] = None) -> m.ListJobsResponse:
        return await self._client._call("GET", "/v1/jobs", m.ListJobsResponse,
                                        params=query(state=state, queue=queue, kind=kind, limit=limit, offset=offset))

    def iter(self, *, state: Optional[str] = None, queue: Optional[str] = None, kind: Optional[str] = None,
             page_size: int = 50) -> AsyncIterator[m.Job]:
        return self._client._pages(lambda o: self.list(state=state, queue=queue, kind=kind, limit=page_size, offset=o), "jobs", page_size)

    async def get(self, job_id: str) -> m.Job:
        return await self._client._call("GET", path("/v1/jobs/{}", job_id), m.Job)

    async def discard(self, job_id: str) -> None:
        """Delete a finished job (admin roles)."""
        await self._client._call("DELETE", path("/v1/jobs/{}", job_id))

    async def cancel(self, job_id: str) -> m.CancelJobResponse:
        return await self._client._call("POST", path("/v1/jobs/{}/cancel", job_id), m.CancelJobResponse)

    async def retry(self, job_id: str) -> m.Job:
        """Run a dead, cancelled or retryable job again (admin roles)."""
        return await self._client._call("POST", path("/v1/jobs/{}/retry", job_id), m.Job)


class AsyncAgents(AsyncResource):
    """Agents: definitions with versions (`if_match` takes the version a change is based on)."""

    async def create(self, definition: Union[m.AgentDefinition, Mapping[str, Any]]) -> m.Agent:
        return await self._client._call("POST", "/v1/agents", m.Agent, json=definition)

    async def list(self, *, status: Optional[str] = None, label: Optional[str] = None, namespace: Optional[str] = None,
                   q: Optional[str] = None, limit: Optional[int] = None, offset: Optional[int] = None) -> m.ListAgentsResponse:
        """One page of agents; `q` finds text in the name, id or a label (case-insensitive)."""
        return await self._client._call("GET", "/v1/agents", m.ListAgentsResponse,
                                        params=query(status=status, label=label, namespace=namespace, q=q, limit=limit, offset=offset))

    def iter(self, *, status: Optional[str] = None, label: Optional[str] = None, namespace: Optional[str] = None,
             q: Optional[str] = None, page_size: int = 50) -> AsyncIterator[m.Agent]:
        return self._client._pages(lambda o: self.list(status=status, label=label, namespace=namespace, q=q, limit=page_size, offset=o),
                                   "items", page_size)

    async def get(self, agent: str) -> m.Agent:
        """An agent by id or name (`namespace/name` outside `default`)."""
        return await self._client._call("GET", path("/v1/agents/{}", await self._client._agent_id(agent)), m.Agent)

    async def update(self, agent: str, changes: Union[m.AgentDefinition, Mapping[str, Any]], *,
                     if_match: Union[int, str, None] = None) -> m.Agent:
        """Change fields of the definition as one new version (412 if `if_match` is not current)."""
        return await self._client._call("PATCH", path("/v1/agents/{}", await self._client._agent_id(agent)), m.Agent, json=changes,
                                        headers={"If-Match": version_header(if_match)})

    async def delete(self, agent: str, *, if_match: Union[int, str, None] = None) -> m.Agent:
        """Delete (a tombstone, answered); pending and running goals are cancelled."""
        return await self._client._call("DELETE", path("/v1/agents/{}", await self._client._agent_id(agent)), m.Agent, headers={"If-Match": version_header(if_match)})

    async def pause(self, agent: str, *, if_match: Union[int, str, None] = None) -> m.Agent:
        return await self._action(agent, "pause", if_match)

    async def resume(self, agent: str, *, if_match: Union[int, str, None] = None) -> m.Agent:
        return await self._action(agent, "resume", if_match)

    async def stop(self, agent: str, *, if_match: Union[int, str, None] = None) -> m.Agent:
        return await self._action(agent, "stop", if_match)

    async def _action(self, agent: str, action: str, if_match: Union[int, str, None]) -> m.Agent:
        return await self._client._call("POST", path("/v1/agents/{}/" + action, await self._client._agent_id(agent)), m.Agent,
                                        headers={"If-Match": version_header(if_match)})

    async def versions(self, agent: str) -> m.AgentVersionsResponse:
        """Every version of the definition, oldest first."""
        return await self._client._call("GET", path("/v1/agents/{}/versions", await self._client._agent_id(agent)), m.AgentVersionsResponse)


class AsyncGoals(AsyncResource):
    """Goals of agents: each is a run of the agent's plan (or of a given plan or template)."""

    async def submit(self, agent: str, goal: str, *, plan: Optional[Mapping[str, Any]] = None, template: Optional[str] = None,
                     params: Optional[Mapping[str, Any]] = None, inputs: Optional[Mapping[str, Any]] = None,
                     priority: Optional[int] = None, deadline: Optional[str] = None, deadline_ms: Optional[int] = None,
                     idempotency_key: Optional[str] = None) -> m.Goal:
        """Queue a goal. Like runs.create, a repeated `idempotency_key` returns the first goal."""
        doc = compact(goal=goal, plan=plan, template=template, params=params, inputs=inputs, priority=priority,
                      deadline=deadline, deadline_ms=deadline_ms)
        return await self._client._call("POST", path("/v1/agents/{}/goals", await self._client._agent_id(agent)), m.Goal, json=doc,
                                        headers={"Idempotency-Key": idempotency_key or new_idempotency_key()})

    async def list(self, agent: str, *, limit: Optional[int] = None, offset: Optional[int] = None) -> m.AgentGoalsResponse:
        return await self._client._call("GET", path("/v1/agents/{}/runs", await self._client._agent_id(agent)), m.AgentGoalsResponse,
                                        params=query(limit=limit, offset=offset))

    def iter(self, agent: str, *, page_size: int = 50) -> AsyncIterator[m.Goal]:
        return self._client._pages(lambda o: self.list(agent, limit=page_size, offset=o), "items", page_size)

    async def get(self, agent: str, goal_id: str) -> m.Goal:
        return await self._client._call("GET", path("/v1/agents/{}/runs/{}", await self._client._agent_id(agent), goal_id), m.Goal)

    async def cancel(self, agent: str, goal_id: str) -> m.Goal:
        return await self._client._call("POST", path("/v1/agents/{}/runs/{}/cancel", await self._client._agent_id(agent), goal_id), m.Goal)

    async def provenance_list(self, agent: str, *, limit: Optional[int] = None,
                              offset: Optional[int] = None) -> m.AgentProvenanceListResponse:
        return await self._client._call("GET", path("/v1/agents/{}/provenance", await self._client._agent_id(agent)), m.AgentProvenanceListResponse,
                                        params=query(limit=limit, offset=offset))

    async def provenance(self, agent: str, goal_id: str) -> m.AgentProvenanceResponse:
        """The goal, the plan that ran, each tool call with its policy decision, and the episode."""
        return await self._client._call("GET", path("/v1/agents/{}/provenance/{}", await self._client._agent_id(agent), goal_id), m.AgentProvenanceResponse)


class AsyncState(AsyncResource):
    """An agent's versioned key/value state."""

    async def list(self, agent: str, *, prefix: Optional[str] = None, limit: Optional[int] = None) -> m.ListStateResponse:
        return await self._client._call("GET", path("/v1/agents/{}/state", await self._client._agent_id(agent)), m.ListStateResponse,
                                        params=query(prefix=prefix, limit=limit))

    async def get(self, agent: str, key: str) -> m.StateEntry:
        return await self._client._call("GET", path("/v1/agents/{}/state/{}", await self._client._agent_id(agent), key), m.StateEntry)

    async def put(self, agent: str, key: str, value: Any, *, if_match: Union[int, str, None] = None,
                  if_absent: bool = False) -> m.StateEntry:
        """Set a key; only at version `if_match`, or only if absent (`if_absent`): else ConflictError."""
        return await self._client._call("PUT", path("/v1/agents/{}/state/{}", await self._client._agent_id(agent), key), m.StateEntry, json={"value": value},
                                        headers={"If-Match": version_header(if_match), "If-None-Match": "*" if if_absent else None})

    async def delete(self, agent: str, key: str, *, if_match: Union[int, str, None] = None) -> None:
        await self._client._call("DELETE", path("/v1/agents/{}/state/{}", await self._client._agent_id(agent), key), headers={"If-Match": version_header(if_match)})

    def watch(self, agent: str, *, from_revision: Optional[int] = None) -> AsyncStream[ServerSentEvent]:
        """Server-sent events: every change after `from_revision`, then live ones (`change`; or
        `compacted` then `snapshot`). Each event's `id` is a revision to resume from."""
        return AsyncStream(self._watch(agent, from_revision))

    async def _watch(self, agent: str, from_revision: Optional[int]) -> AsyncIterator[ServerSentEvent]:
        events = self._client._events(path("/v1/agents/{}/watch", await self._client._agent_id(agent)), query(**{"from": from_revision}))
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]


class AsyncMemory(AsyncResource):
    """An agent's memory: items remembered, recalled by full text, forgotten."""

    async def remember(self, agent: str, text: str, *, memory_type: Optional[str] = None, meta: Optional[Mapping[str, Any]] = None,
                       tags: Optional[List[str]] = None, ttl_seconds: Optional[int] = None) -> m.MemoryItem:
        doc = compact(text=text, memory_type=memory_type, meta=meta, tags=tags, ttl_seconds=ttl_seconds)
        return await self._client._call("POST", path("/v1/agents/{}/memory", await self._client._agent_id(agent)), m.MemoryItem, json=doc)

    async def recall(self, agent: str, q: Optional[str] = None, *, type: Optional[str] = None, tag: Optional[str] = None,
                     since: Optional[int] = None, until: Optional[int] = None, limit: Optional[int] = None,
                     offset: Optional[int] = None) -> m.RecallResponse:
        """Items ranked by full text `q` (best first), or newest first without `q`."""
        return await self._client._call("GET", path("/v1/agents/{}/recall", await self._client._agent_id(agent)), m.RecallResponse,
                                        params=query(q=q, type=type, tag=tag, since=since, until=until, limit=limit, offset=offset))

    def iter_recall(self, agent: str, q: Optional[str] = None, *, type: Optional[str] = None, tag: Optional[str] = None,
                    page_size: int = 20) -> AsyncIterator[m.MemoryItem]:
        return self._client._pages(lambda o: self.recall(agent, q, type=type, tag=tag, limit=page_size, offset=o), "items", page_size)

    async def forget(self, agent: str, memory_id: str) -> None:
        await self._client._call("DELETE", path("/v1/agents/{}/memory/{}", await self._client._agent_id(agent), memory_id))


class AsyncMessages(AsyncResource):
    """The message bus: topics, subscriptions (consumer groups), agents' inboxes, dead letters."""

    async def create_topic(self, name: str, *, schema: Optional[Mapping[str, Any]] = None,
                           retention: Optional[Mapping[str, Any]] = None) -> m.Topic:
        """Create a topic (admin roles); the same settings again return it."""
        return await self._client._call("POST", "/v1/topics", m.Topic, json=compact(name=name, schema=schema, retention=retention))

    async def list_topics(self) -> List[m.Topic]:
        return (await self._client._call("GET", "/v1/topics", m.ListTopicsResponse)).items

    async def get_topic(self, topic: str) -> m.Topic:
        return await self._client._call("GET", path("/v1/topics/{}", topic), m.Topic)

    async def delete_topic(self, topic: str) -> None:
        await self._client._call("DELETE", path("/v1/topics/{}", topic))

    async def publish(self, topic: str, payload: Any, *, encoding: Optional[Literal["json", "text", "base64"]] = None,
                      headers: Optional[Mapping[str, str]] = None, ordering_key: Optional[str] = None) -> m.Message:
        doc = {"payload": payload, **compact(encoding=encoding, headers=headers, ordering_key=ordering_key)}
        return await self._client._call("POST", path("/v1/topics/{}/messages", topic), m.Message, json=doc)

    async def send_to_agent(self, agent: str, payload: Any, *, encoding: Optional[Literal["json", "text", "base64"]] = None,
                            headers: Optional[Mapping[str, str]] = None, ordering_key: Optional[str] = None) -> m.Message:
        """Send a message to the agent's inbox (subscription `_inbox.<agent id>`)."""
        doc = {"payload": payload, **compact(encoding=encoding, headers=headers, ordering_key=ordering_key)}
        return await self._client._call("POST", path("/v1/agents/{}/messages", await self._client._agent_id(agent)), m.Message, json=doc)

    async def subscribe(self, subscription_id: str, topic: str, *, start: Optional[Literal["now", "earliest"]] = None,
                        max_deliveries: Optional[int] = None, visibility_timeout_ms: Optional[int] = None,
                        trigger: Optional[Mapping[str, Any]] = None) -> m.Subscription:
        doc = compact(id=subscription_id, topic=topic, start=start, max_deliveries=max_deliveries,
                      visibility_timeout_ms=visibility_timeout_ms, trigger=trigger)
        return await self._client._call("POST", "/v1/subscriptions", m.Subscription, json=doc)

    async def list_subscriptions(self, *, topic: Optional[str] = None) -> List[m.Subscription]:
        return (await self._client._call("GET", "/v1/subscriptions", m.ListSubscriptionsResponse, params=query(topic=topic))).items

    async def get_subscription(self, subscription_id: str) -> m.Subscription:
        return await self._client._call("GET", path("/v1/subscriptions/{}", subscription_id), m.Subscription)

    async def delete_subscription(self, subscription_id: str) -> None:
        await self._client._call("DELETE", path("/v1/subscriptions/{}", subscription_id))

    async def receive(self, subscription_id: str, *, max: Optional[int] = None, wait: Union[str, int, None] = None,
                      visibility_timeout_ms: Optional[int] = None, consumer: Optional[str] = None) -> List[m.Delivery]:
        """Lease up to `max` messages, waiting up to `wait` (ms, or "5s") for the first."""
        params = query(max=max, wait=wait, visibility_timeout_ms=visibility_timeout_ms, consumer=consumer)
        return (await self._client._call("GET", path("/v1/subscriptions/{}/messages", subscription_id), m.ReceiveResponse,
                                         params=params)).messages

    def stream(self, subscription_id: str, *, max_in_flight: Optional[int] = None, visibility_timeout_ms: Optional[int] = None,
               consumer: Optional[str] = None) -> AsyncStream[m.Delivery]:
        """Server-sent events: each leased message as it comes (ack each by its receipt)."""
        events = self._client._events(path("/v1/subscriptions/{}/stream", subscription_id),
                                      query(max_in_flight=max_in_flight, visibility_timeout_ms=visibility_timeout_ms, consumer=consumer))
        return AsyncStream(self._deliveries(events))

    async def _deliveries(self, events: AsyncIterator[ServerSentEvent]) -> AsyncIterator[m.Delivery]:
        try:
            async for event in events:
                if event.event == "message":
                    yield m.Delivery.model_validate(event.json())
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    async def ack(self, subscription_id: str, receipts: Union[str, List[str]]) -> m.AckResponse:
        """Ack leased messages; ConflictError `not_leased` when one holds no lease (the others are acked)."""
        doc = {"receipt": receipts} if isinstance(receipts, str) else {"receipts": list(receipts)}
        return await self._client._call("POST", path("/v1/subscriptions/{}/ack", subscription_id), m.AckResponse, json=doc)

    async def nack(self, subscription_id: str, receipt: str, *, delay_ms: Optional[int] = None,
                   error: Optional[str] = None) -> m.NackResponse:
        doc = compact(receipt=receipt, delay_ms=delay_ms, error=error)
        return await self._client._call("POST", path("/v1/subscriptions/{}/nack", subscription_id), m.NackResponse, json=doc)

    async def dead_letters(self, subscription_id: str, *, limit: Optional[int] = None,
                           offset: Optional[int] = None) -> m.ListDeadLettersResponse:
        return await self._client._call("GET", path("/v1/subscriptions/{}/dlq", subscription_id), m.ListDeadLettersResponse,
                                        params=query(limit=limit, offset=offset))

    def iter_dead_letters(self, subscription_id: str, *, page_size: int = 50) -> AsyncIterator[m.DeadLetter]:
        return self._client._pages(lambda o: self.dead_letters(subscription_id, limit=page_size, offset=o), "items", page_size)

    async def get_dead_letter(self, subscription_id: str, message_id: str) -> m.DeadLetter:
        return await self._client._call("GET", path("/v1/subscriptions/{}/dlq/{}", subscription_id, message_id), m.DeadLetter)

    async def replay_dead_letters(self, subscription_id: str, message_ids: Optional[List[str]] = None) -> int:
        """Deliver dead letters again (all, or these); answers how many."""
        return (await self._client._call("POST", path("/v1/subscriptions/{}/dlq/replay", subscription_id),
                                         m.ReplayDeadLettersResponse, json=compact(message_ids=message_ids))).replayed

    async def purge_dead_letters(self, subscription_id: str, message_ids: Optional[List[str]] = None) -> int:
        """Delete dead letters (all, or these); answers how many."""
        return (await self._client._call("POST", path("/v1/subscriptions/{}/dlq/purge", subscription_id),
                                         m.PurgeDeadLettersResponse, json=compact(message_ids=message_ids))).purged


class AsyncTools(AsyncResource):
    async def list(self) -> List[m.Tool]:
        """Every tool, with whether the caller may use it (`allowed`)."""
        return (await self._client._call("GET", "/v1/tools", m.ListToolsResponse)).tools

    async def call(self, tool_id: str, input: Optional[Mapping[str, Any]] = None) -> m.CallToolResponse:
        """One tool call (`driver.tool`) through policy and an episode; a rate limit is retried
        after its Retry-After when it is within max_retry_delay (RateLimitError otherwise)."""
        return await self._client._call("POST", path("/tools/{}", tool_id), m.CallToolResponse, json=dict(input or {}))


class AsyncDrivers(AsyncResource):
    async def list(self) -> m.ListDriversResponse:
        return await self._client._call("GET", "/v1/drivers", m.ListDriversResponse)

    async def get(self, name: str) -> m.GetDriverResponse:
        return await self._client._call("GET", path("/v1/drivers/{}", name), m.GetDriverResponse)

    async def reload(self) -> m.ReloadDriversResponse:
        """Rescan the drivers directory (admin roles)."""
        return await self._client._call("POST", "/v1/drivers/reload", m.ReloadDriversResponse)


class AsyncPolicy(AsyncResource):
    async def get(self) -> m.GetPolicyResponse:
        return await self._client._call("GET", "/v1/policy", m.GetPolicyResponse)

    async def reload(self) -> m.ReloadPolicyResponse:
        """Re-read the policy file (admin roles)."""
        return await self._client._call("POST", "/v1/policy/reload", m.ReloadPolicyResponse)


class AsyncTemplates(AsyncResource):
    async def list(self) -> List[m.TemplateSummary]:
        return (await self._client._call("GET", "/v1/templates", m.ListTemplatesResponse)).templates

    async def create(self, document: Union[m.TemplateDocument, Mapping[str, Any]]) -> m.TemplateSummary:
        """Store a template version (admin); the same version with other content is a ConflictError."""
        return await self._client._call("POST", "/v1/templates", m.TemplateSummary, json=document)

    async def reload(self) -> m.ReloadTemplatesResponse:
        return await self._client._call("POST", "/v1/templates/reload", m.ReloadTemplatesResponse)

    async def versions(self, name: str) -> List[m.TemplateSummary]:
        return (await self._client._call("GET", path("/v1/templates/{}", name), m.GetTemplateVersionsResponse)).versions

    async def get(self, name: str, version: str = "latest") -> m.GetTemplateResponse:
        """One version (exact, or a requirement like 1, 1.2, latest) with its document."""
        return await self._client._call("GET", path("/v1/templates/{}/{}", name, version), m.GetTemplateResponse)

    async def render(self, name: str, params: Optional[Mapping[str, Any]] = None, *,
                     version: Optional[str] = None) -> m.RenderTemplateResponse:
        """The plan the template makes with `params` (nothing runs)."""
        return await self._client._call("POST", path("/v1/templates/{}/render", name), m.RenderTemplateResponse,
                                        json=compact(params=params, version=version))


class AsyncApprovals(AsyncResource):
    async def list(self, *, status: Optional[Literal["pending", "approved", "denied", "expired", "all"]] = None,
                   run_id: Optional[str] = None, limit: Optional[int] = None) -> List[m.Approval]:
        return (await self._client._call("GET", "/v1/approvals", m.ListApprovalsResponse,
                                         params=query(status=status, run_id=run_id, limit=limit))).approvals

    async def get(self, approval_id: str) -> m.Approval:
        return await self._client._call("GET", path("/v1/approvals/{}", approval_id), m.Approval)

    async def decide(self, approval_id: str, decision: Literal["approve", "deny"], *, comment: Optional[str] = None) -> m.Approval:
        return await self._client._call("POST", path("/v1/approvals/{}", approval_id), m.Approval,
                                        json=compact(decision=decision, comment=comment))

    async def approve(self, approval_id: str, *, comment: Optional[str] = None) -> m.Approval:
        return await self.decide(approval_id, "approve", comment=comment)

    async def deny(self, approval_id: str, *, comment: Optional[str] = None) -> m.Approval:
        return await self.decide(approval_id, "deny", comment=comment)


class AsyncAudit(AsyncResource):
    """The control-plane audit log (admin roles)."""

    async def list(self, *, actor: Optional[str] = None, action: Optional[str] = None, since: Optional[str] = None,
                   after_seq: Optional[int] = None, limit: Optional[int] = None) -> m.ListAuditResponse:
        return await self._client._call("GET", "/v1/audit", m.ListAuditResponse,
                                        params=query(actor=actor, action=action, since=since, after_seq=after_seq, limit=limit))

    async def iter(self, *, actor: Optional[str] = None, action: Optional[str] = None, since: Optional[str] = None,
                   page_size: int = 100) -> AsyncIterator[m.AuditEntry]:
        """Every entry, oldest first, following the `next_after_seq` cursor."""
        after: Optional[int] = 0
        while after is not None:
            page = await self.list(actor=actor, action=action, since=since, after_seq=after, limit=page_size)
            for entry in page.entries:
                yield entry
            after = page.next_after_seq

    async def verify(self) -> m.VerifyAuditResponse:
        return await self._client._call("GET", "/v1/audit/verify", m.VerifyAuditResponse)
