"""The Python SDK against a live nova-host serve: every method of Client and AsyncClient (each
test runs with both), typed errors, API key and JWT auth, 429 retries, pagination, SSE."""
import os

import httpx
import pytest

import nova_host_client as nova
from nova_host_client import _base as nova_base
from nova_host_client import models as m

from conftest import ADMIN_KEY, CALLED, METHODS, ECHO_PLAN, URL, USER_KEY, close, jwt, recording_http, sleep_plan, take, unique, until, v


async def test_system_routes(admin, make):
    assert (await v(make().health())).status == "ok"  # public: no credentials
    version = await v(make().version())
    assert version.name == "nova-host" and version.mcp_protocol_versions
    ready = await v(admin.ready())
    assert ready.status == "ready" and ready.checks
    assert "# TYPE" in await v(admin.metrics())


async def test_auth_failures_are_typed(make):
    for client in (make(), make(api_key="nova_not_a_key"), make(token=jwt("carol", secret="another-secret")),
                   make(token=jwt("carol", exp_in=-600))):
        with pytest.raises(nova.AuthenticationError) as e:
            await v(client.runs.list())
        assert e.value.status == 401 and e.value.code and e.value.request_id
        assert e.value.headers.get("www-authenticate", "").startswith("Bearer")
    # A valid JWT whose role the policy does not know: authenticated, refused (403).
    with pytest.raises(nova.PermissionDeniedError) as e:
        await v(make(token=jwt("zed", role="superuser")).runs.list())
    assert e.value.status == 403 and e.value.code and e.value.request_id


async def test_jwt_and_header_auth(make):
    as_carol = make(token=jwt("carol"))
    assert (await v(as_carol.tools.call("echo.echo", {"text": "jwt"}))).status == "succeeded"
    fresh = []
    as_provider = make(token=lambda: fresh.append(1) or jwt("carol"))
    await v(as_provider.tools.list())
    await v(as_provider.tools.list())
    assert len(fresh) == 2  # a provider is asked for a token per request
    with_header = make(api_key=USER_KEY, api_key_header=True)
    assert (await v(with_header.tools.call("echo.echo", {}))).status == "succeeded"
    with pytest.raises(ValueError):
        make(api_key=USER_KEY, token="x")


async def test_errors_carry_code_and_request_id(user, admin):
    with pytest.raises(nova.NotFoundError) as e:
        await v(user.runs.get("r-no-such-run"))
    assert e.value.code == "not_found" and e.value.request_id
    with pytest.raises(nova.PermissionDeniedError) as e:
        await v(user.tools.call("echo.fail", {}))
    assert e.value.code == "denied" and e.value.rule == "no-fail-for-users" and e.value.run_id
    with pytest.raises(nova.UnprocessableError) as e:
        await v(user.runs.create({"name": "bad", "steps": [{"id": "x", "call": "no.such_tool"}]}))
    assert e.value.status == 422 and e.value.request_id
    with pytest.raises(nova.PermissionDeniedError):
        await v(user.templates.create({"name": "nope", "version": "1.0.0", "plan": ECHO_PLAN}))
    with nova.Client("http://127.0.0.1:9", max_retries=0) as unreachable, pytest.raises(nova.NovaConnectionError):
        unreachable.health()


async def test_tools(user):
    tools = await v(user.tools.list())
    by_id = {t.id: t for t in tools}
    assert isinstance(by_id["echo.echo"], m.Tool) and by_id["echo.echo"].allowed is True
    assert by_id["echo.fail"].allowed is False
    out = await v(user.tools.call("text.join", {"parts": ["a", "b"], "separator": "-"}))
    assert out.status == "succeeded" and out.output == {"text": "a-b"} and out.run_id


async def test_rate_limit_is_retried_after_retry_after(kind, make):
    """text.upper: one call per 2 s (rule upper-refills). A second call at once is a 429 with
    Retry-After; the client waits it out and answers the call's success."""
    seen = []
    client = make(api_key=USER_KEY, http_client=recording_http(kind, seen))
    for _ in range(3):
        out = await v(client.tools.call("text.upper", {"text": "abc"}))
        assert out.output == {"text": "ABC"}
        if any(status == 429 for status, _ in seen):
            break
    limited = [(s, ra) for s, ra in seen if s == 429]
    assert limited, seen
    assert all(ra is not None and int(ra) >= 1 for _, ra in limited)
    assert seen[-1][0] == 200


async def test_rate_limit_errors_when_not_retried(make):
    no_retries = make(api_key=USER_KEY, max_retries=0)
    with pytest.raises(nova.RateLimitError) as e:
        for _ in range(3):
            await v(no_retries.tools.call("text.upper", {"text": "x"}))
    assert e.value.code == "rate_limited" and e.value.rule == "upper-refills" and 0 < e.value.retry_after <= 2
    # text.length refills once an hour: longer than max_retry_delay, so it is raised, not waited for.
    patient = make(api_key=USER_KEY, max_retry_delay=5)
    with pytest.raises(nova.RateLimitError) as e:
        for _ in range(2):
            await v(patient.tools.call("text.length", {"text": "x"}))
    assert e.value.retry_after > 5 and e.value.headers["retry-after"]


async def test_503_is_retried_with_backoff_then_raised(kind, make):
    """A server whose drivers directory is gone answers /ready 503 not_ready without Retry-After:
    the client retries max_retries times after a backoff, then raises the typed error."""
    unready = os.environ["NOVA_UNREADY_URL"]
    for retries in (0, 2):
        seen = []
        client = make(base_url=unready, api_key=ADMIN_KEY, max_retries=retries, backoff=0.05,
                      http_client=recording_http(kind, seen))
        with pytest.raises(nova.ServiceUnavailableError) as e:
            await v(client.ready())
        assert e.value.code == "not_ready" and e.value.request_id and "drivers" in e.value.details["checks"]
        assert seen == [(503, None)] * (retries + 1)


async def test_runs_idempotency_episodes_and_pagination(admin):
    key = unique("idem")
    first = await v(admin.runs.create(ECHO_PLAN, idempotency_key=key))
    again = await v(admin.runs.create(ECHO_PLAN, idempotency_key=key))
    assert isinstance(first, m.Run) and again.run_id == first.run_id
    with pytest.raises(nova.ConflictError) as e:
        await v(admin.runs.create(sleep_plan(1), idempotency_key=key))
    assert e.value.code == "idempotency_conflict"
    ids = {first.run_id}
    for i in range(4):
        ids.add((await v(admin.runs.create(ECHO_PLAN, inputs={}, priority=i))).run_id)
    # Pages over a set that does not change: every run finished (a run that finishes while pages
    # are read moves from the queue's part of the list to the recorded part).
    for run_id in ids:
        await v(admin.runs.wait(run_id))
    done = await v(admin.runs.wait(first.run_id))
    assert done.status == "succeeded" and done.episode.seq >= 1
    assert (await v(admin.runs.get(first.run_id))).run_id == first.run_id
    episode = await v(admin.episodes.get(first.run_id))
    assert episode.intact and episode.run_id == first.run_id and len(episode.hash) == 64
    page = await v(admin.runs.list(limit=2))
    assert len(page.runs) == 2 and page.next_offset == 2 and page.total >= 5
    every = await take(admin.runs.iter(page_size=2))
    assert len(every) == len({r.run_id for r in every}) >= page.total and ids <= {r.run_id for r in every}
    assert [r.run_id for r in await take(admin.runs.iter(page_size=2), 3)] == [r.run_id for r in every[:3]]
    # The cursor: the page after page's last recorded run; runs recorded while an iteration
    # reads its pages neither repeat nor hide older ones.
    assert isinstance(page.next_before_seq, int)
    older = await v(admin.runs.list(limit=2, before_seq=page.next_before_seq))
    assert older.runs and not {r.run_id for r in older.runs} & {r.run_id for r in page.runs}
    assert all(r.episode.seq < page.next_before_seq for r in older.runs)
    it = admin.runs.iter(page_size=2)
    listed = await take(it, 3)
    await v(admin.runs.wait((await v(admin.runs.create(ECHO_PLAN, inputs={}))).run_id))
    listed += await take(it)
    assert len(listed) == len({r.run_id for r in listed}) and ids <= {r.run_id for r in listed}
    # Server-side filters: by plan name, and by agent (an unknown agent is 404).
    by_plan = await take(admin.runs.iter(plan="sdk-echo", page_size=2))
    assert ids <= {r.run_id for r in by_plan} and all(r.plan_name == "sdk-echo" for r in by_plan)
    assert not (await v(admin.runs.list(plan="no-such-plan"))).runs
    with pytest.raises(nova.NotFoundError):
        await v(admin.runs.list(agent="no-such-agent"))


async def test_run_stream(user):
    """GET /v1/runs/stream: the recorded run first, then a new one as it starts and finishes."""
    name = unique("sdk-live")
    first = await v(user.runs.create({"name": name, "steps": [{"id": "say", "call": "echo.echo", "input": {"text": "hi"}}]}))
    await v(user.runs.wait(first.run_id))
    stream = user.runs.stream(plan=name)
    events, second = [], None

    async def seen(run):
        nonlocal second
        events.append(run)
        if second is None and run.run_id == first.run_id:
            second = await v(user.runs.create({"name": name, "steps": [{"id": "nap", "call": "echo.sleep", "input": {"ms": 1500}}]}))
        return second is not None and run.run_id == second.run_id and run.status == "succeeded"

    if hasattr(stream, "__aiter__"):
        async for run in stream:
            if await seen(run):
                break
    else:
        for run in stream:
            if await seen(run):
                break
    await close(stream)
    assert isinstance(events[0], m.Run) and events[0].run_id == first.run_id and events[0].status == "succeeded"
    assert all(r.plan_name == name for r in events)
    assert [r.status for r in events if r.run_id == second.run_id][-1] == "succeeded"


async def test_run_cancel(admin):
    run = await v(admin.runs.create(sleep_plan(60000)))
    answer = await v(admin.runs.cancel(run.run_id))
    assert answer.run_id == run.run_id and answer.status in ("cancelled", "cancelling")
    assert (await v(admin.runs.wait(run.run_id))).status == "cancelled"
    with pytest.raises(nova.ConflictError):
        await v(admin.runs.cancel(run.run_id))


async def test_jobs(admin):
    run = await v(admin.runs.create(sleep_plan(60000)))
    job_id = run.job.id
    assert (await v(admin.jobs.get(job_id))).id == job_id
    assert (await v(admin.jobs.cancel(job_id))).state in ("cancelled", "cancelling")
    await until(lambda: _state(admin, job_id, "cancelled"), "the job cancelled")
    retried = await v(admin.jobs.retry(job_id))
    assert retried.state in ("available", "running")
    await until(lambda: _state(admin, job_id, "succeeded", "cancelled", "dead"), "the retried job finished")
    page = await v(admin.jobs.list(state="succeeded,cancelled,dead", limit=1))
    assert page.jobs and page.total >= 1
    listed = await take(admin.jobs.iter(page_size=1))
    assert job_id in {j.id for j in listed} and len(listed) == len({j.id for j in listed})
    await v(admin.jobs.discard(job_id))
    with pytest.raises(nova.NotFoundError):
        await v(admin.jobs.get(job_id))


async def _state(client, job_id, *states):
    return (await v(client.jobs.get(job_id))).state in states


async def test_agents_goals(user):
    name = unique("sdk-agent")
    agent = await v(user.agents.create(m.AgentDefinition(name=name, description="first", plan=ECHO_PLAN, labels={"suite": "sdk"})))
    assert isinstance(agent, m.Agent) and agent.version == 1 and agent.principal == "alice"
    for i in range(2):
        await v(user.agents.create({"name": f"{name}-{i}", "plan": ECHO_PLAN, "labels": {"suite": "sdk"}}))
    page = await v(user.agents.list(label="suite:sdk", limit=2))
    assert len(page.items) == 2 and page.next_offset == 2
    names = {a.name for a in await take(user.agents.iter(label="suite:sdk", page_size=2))}
    assert {name, f"{name}-0", f"{name}-1"} <= names
    assert {a.name for a in (await v(user.agents.list(q=name))).items} == {name, f"{name}-0", f"{name}-1"}
    assert {a.name for a in await take(user.agents.iter(q=f"{name}-1"))} == {f"{name}-1"}
    assert (await v(user.agents.get(name))).id == agent.id
    updated = await v(user.agents.update(name, {"description": "second"}, if_match=1))
    assert updated.version == 2 and updated.description == "second"
    with pytest.raises(nova.PreconditionFailedError) as e:
        await v(user.agents.update(name, {"description": "stale"}, if_match=1))
    assert e.value.code == "version_mismatch"
    assert [a.version for a in (await v(user.agents.versions(name))).items] == [1, 2]
    assert (await v(user.agents.pause(name))).status == "paused"
    pending = await v(user.goals.submit(name, "waits while paused"))
    assert pending.status == "pending"
    cancelled = await v(user.goals.cancel(name, pending.id))
    assert cancelled.status == "cancelled"
    assert (await v(user.agents.resume(name))).status == "active"
    key = unique("goal")
    goal = await v(user.goals.submit(name, "say hi", idempotency_key=key, inputs={}))
    assert (await v(user.goals.submit(name, "say hi", idempotency_key=key))).id == goal.id
    done = await until(lambda: _goal_done(user, name, goal.id), "the goal completed")
    assert done.status == "completed" and done.run_id
    listed = await v(user.goals.list(name, limit=1))
    assert len(listed.items) == 1 and listed.limit == 1
    assert {g.id for g in await take(user.goals.iter(name, page_size=1))} == {goal.id, pending.id}
    prov = await v(user.goals.provenance(name, goal.id))
    assert prov.goal_id == goal.id and prov.calls and prov.episode
    assert (await v(user.goals.provenance_list(name, limit=5))).items
    assert (await v(user.agents.stop(name))).status == "stopped"
    assert (await v(user.agents.resume(name, if_match=(await v(user.agents.get(name))).version))).status == "active"
    tombstone = await v(user.agents.delete(name))
    assert tombstone.status == "deleted"


async def _goal_done(client, agent, goal_id):
    g = await v(client.goals.get(agent, goal_id))
    return g if g.status not in ("pending", "running") else None


async def test_agents_by_namespace_and_name(user):
    """`namespace/name` refs work although the server cannot take them in a URL (it does not
    decode %2F): the client looks the id up."""
    ns = unique("team")
    agent = await v(user.agents.create({"name": "worker", "namespace": ns, "plan": ECHO_PLAN}))
    ref = f"{ns}/worker"
    assert (await v(user.agents.get(ref))).id == agent.id
    assert (await v(user.state.put(ref, "k", 1))).version == 1
    stream = user.state.watch(ref, from_revision=0)
    assert [e.json()["key"] for e in await take(stream, 1)] == ["k"]
    await close(stream)
    assert (await v(user.goals.submit(ref, "by name"))).agent_id == agent.id
    assert (await v(user.messages.send_to_agent(ref, {"x": 1}))).agent_id == agent.id
    with pytest.raises(nova.NotFoundError) as e:
        await v(user.agents.get(f"{ns}/nobody"))
    assert e.value.code == "not_found" and e.value.request_id


async def test_state_and_watch_stream(user):
    name = unique("sdk-state")
    await v(user.agents.create({"name": name, "plan": ECHO_PLAN}))
    first = await v(user.state.put(name, "count", 1, if_absent=True))
    assert first.version == 1 and first.value == 1
    with pytest.raises(nova.ConflictError):
        await v(user.state.put(name, "count", 5, if_absent=True))
    second = await v(user.state.put(name, "count", 2, if_match=1))
    assert second.version == 2
    await v(user.state.put(name, "other", {"a": [1]}))
    assert (await v(user.state.get(name, "count"))).value == 2
    assert [e.key for e in (await v(user.state.list(name, prefix="c"))).items] == ["count"]
    stream = user.state.watch(name, from_revision=0)
    events = await take(stream, 3)
    await close(stream)
    assert [e.event for e in events] == ["change"] * 3
    assert [(e.json()["key"], e.json()["value"]) for e in events] == [("count", 1), ("count", 2), ("other", {"a": [1]})]
    assert [int(e.id) for e in events] == sorted(int(e.id) for e in events)
    resumed = user.state.watch(name, from_revision=int(events[1].id))
    assert [e.json()["key"] for e in await take(resumed, 1)] == ["other"]
    await close(resumed)
    await v(user.state.delete(name, "other"))
    with pytest.raises(nova.NotFoundError):
        await v(user.state.get(name, "other"))


async def test_memory(user):
    name = unique("sdk-memory")
    await v(user.agents.create({"name": name, "plan": ECHO_PLAN}))
    items = [await v(user.memory.remember(name, f"the harbour crane number {i} lifts containers", tags=["port"], meta={"i": i}))
             for i in range(3)]
    assert all(isinstance(i, m.MemoryItem) for i in items)
    found = await v(user.memory.recall(name, "crane"))
    assert {i.id for i in found.items} == {i.id for i in items} and all(i.score is not None for i in found.items)
    assert {i.id for i in await take(user.memory.iter_recall(name, tag="port", page_size=2))} == {i.id for i in items}
    await v(user.memory.forget(name, items[0].id))
    assert items[0].id not in {i.id for i in (await v(user.memory.recall(name))).items}


async def test_messages_bus_and_stream(admin, user):
    topic = unique("sdk-topic")
    created = await v(admin.messages.create_topic(topic, retention={"max_count": 1000}))
    assert created.name == topic
    assert topic in {t.name for t in await v(user.messages.list_topics())}
    sub = unique("sdk-sub")
    s = await v(user.messages.subscribe(sub, topic, start="earliest", max_deliveries=1, visibility_timeout_ms=60000))
    assert s.id == sub and s.max_deliveries == 1
    assert sub in (await v(user.messages.get_topic(topic))).subscriptions
    assert sub in {x.id for x in await v(user.messages.list_subscriptions(topic=topic))}
    sent = [await v(user.messages.publish(topic, {"n": i}, headers={"k": "v"})) for i in range(3)]
    assert [x.seq for x in sent] == sorted(x.seq for x in sent)
    got = await v(user.messages.receive(sub, max=2, wait="2s"))
    assert [d.message.payload for d in got] == [{"n": 0}, {"n": 1}]
    assert (await v(user.messages.ack(sub, [d.receipt for d in got]))).acked == [True, True]
    with pytest.raises(nova.ConflictError) as e:
        await v(user.messages.ack(sub, got[0].receipt))
    assert e.value.code == "not_leased"
    last = await v(user.messages.receive(sub, max=1, wait=2000))
    assert (await v(user.messages.nack(sub, last[0].receipt, error="bad payload"))).outcome == "dead_lettered"
    dead = await v(user.messages.dead_letters(sub))
    assert dead.total == 1 and dead.items[0].last_error == "bad payload"
    assert [d.message.id for d in await take(user.messages.iter_dead_letters(sub, page_size=1))] == [sent[2].id]
    assert (await v(user.messages.get_dead_letter(sub, sent[2].id))).message.payload == {"n": 2}
    assert await v(user.messages.replay_dead_letters(sub)) == 1
    again = await v(user.messages.receive(sub, max=1, wait="2s"))
    await v(user.messages.nack(sub, again[0].receipt))
    assert await v(user.messages.purge_dead_letters(sub, [sent[2].id])) == 1
    # The SSE stream: messages published now arrive as events; each is acked by its receipt.
    for i in range(3, 5):
        await v(user.messages.publish(topic, {"n": i}))
    stream = user.messages.stream(sub, max_in_flight=5)
    deliveries = await take(stream, 2)
    await close(stream)
    assert [d.message.payload for d in deliveries] == [{"n": 3}, {"n": 4}]
    assert all(isinstance(d, m.Delivery) for d in deliveries)
    assert (await v(user.messages.ack(sub, [d.receipt for d in deliveries]))).acked == [True, True]
    stats = (await v(user.messages.get_subscription(sub))).stats
    assert stats is not None
    await v(user.messages.delete_subscription(sub))
    await v(admin.messages.delete_topic(topic))
    with pytest.raises(nova.NotFoundError):
        await v(user.messages.get_topic(topic))


async def test_send_to_agent_inbox(user):
    name = unique("sdk-inbox")
    agent = await v(user.agents.create({"name": name, "plan": ECHO_PLAN}))
    sent = await v(user.messages.send_to_agent(name, "hello", encoding="text"))
    assert sent.payload == "hello" and sent.agent_id == agent.id
    got = await v(user.messages.receive(f"_inbox.{agent.id}", max=1, wait="2s"))
    assert got[0].message.id == sent.id


async def test_templates_and_runs_by_template(admin, user):
    name = unique("sdk-tpl")
    doc = m.TemplateDocument(name=name, version="1.0.0", description="Echoes.",
                             params={"type": "object", "required": ["who"], "properties": {"who": {"type": "string"}}},
                             plan={"steps": [{"id": "say", "call": "echo.echo", "input": {"text": "hi ${params.who}"}}]})
    summary = await v(admin.templates.create(doc))
    assert summary.name == name and summary.version == "1.0.0" and summary.hash.startswith("sha256:")
    assert (await v(admin.templates.create(doc))).hash == summary.hash  # the same content again: 200
    await v(admin.templates.create(doc.model_copy(update={"version": "1.1.0"})))
    assert [t.version for t in await v(user.templates.versions(name))] == ["1.1.0", "1.0.0"]
    assert (name, "1.0.0") in {(t.name, t.version) for t in await v(user.templates.list())}
    got = await v(user.templates.get(name, "1.0"))
    assert got.template.version == "1.0.0" and got.document["name"] == name
    rendered = await v(user.templates.render(name, {"who": "nova"}, version="1"))
    assert rendered.plan["steps"][0]["input"]["text"] == "hi nova" and rendered.template.version == "1.1.0"
    assert (await v(admin.templates.reload())).errors == []
    run = await v(user.runs.create(template=f"{name}@1.0.0", params={"who": "sdk"}))
    assert (await v(user.runs.wait(run.run_id))).status == "succeeded"


async def test_approvals(admin, user):
    plan = {"name": "sdk-approval", "steps": [{"id": "v", "call": "echo.version", "input": {}}]}
    for decision in ("approve", "deny"):
        run = await v(user.runs.create(plan))
        pending = await until(lambda run=run: v(user.approvals.list(run_id=run.run_id)), "an approval request")
        request = pending[0]
        assert request.status == "pending" and request.tool == "echo.version" and request.principal == "alice"
        assert (await v(admin.approvals.get(request.id))).id == request.id
        with pytest.raises(nova.PermissionDeniedError):  # self-approval is off, and alice is no approver
            await v(user.approvals.approve(request.id))
        call = admin.approvals.approve if decision == "approve" else admin.approvals.deny
        decided = await v(call(request.id, comment=f"sdk {decision}"))
        assert decided.status == ("approved" if decision == "approve" else "denied") and decided.decided_by == "admin"
        final = await v(user.runs.wait(run.run_id))
        assert final.status == ("succeeded" if decision == "approve" else "denied")
        with pytest.raises(nova.ConflictError) as e:
            await v(admin.approvals.decide(request.id, "approve"))
        assert e.value.code == "not_pending"
    assert len(await v(admin.approvals.list(status="all", limit=2))) == 2


async def test_drivers_policy_reports_audit(admin, user):
    drivers = await v(admin.drivers.list())
    assert "echo" in {d.name for d in drivers.drivers}
    echo = await v(admin.drivers.get("echo"))
    assert isinstance(echo, m.DriverStatus) and echo.name == "echo" and echo.tools
    try:
        reloaded = await v(admin.drivers.reload())
        assert isinstance(reloaded.failed, list)
    except nova.ServerError as e:  # a build without hot reload answers 501 not_implemented
        assert e.status == 501
    policy = await v(admin.policy.get())
    assert policy.hash.startswith("sha256:") and policy.profile
    assert (await v(admin.policy.reload())).outcome == "unchanged"
    with pytest.raises(nova.PermissionDeniedError):
        await v(user.policy.reload())
    report = await v(admin.reports.status(since="1h"))
    assert isinstance(report, m.StatusReport) and report.window
    entries = await v(admin.audit.list(limit=1))
    assert len(entries.entries) == 1 and entries.next_after_seq
    every = await take(admin.audit.iter(page_size=2))
    assert len(every) >= 3 and [e.seq for e in every] == sorted({e.seq for e in every})
    assert (await v(admin.audit.verify())).intact is True


async def test_models_keep_unknown_fields_and_raw_http_errors():
    run = m.Run.model_validate({"run_id": "r", "status": "queued", "plan_name": "p", "principal": "a", "started_at": "t",
                                "cancel_requested": False, "episode": None, "new_field": 1})
    assert run.model_extra == {"new_field": 1}
    # A 404 of a path the server does not have still becomes a typed error.
    with nova.Client(URL, api_key=ADMIN_KEY) as c:
        with pytest.raises(nova.NotFoundError) as e:
            c._call("GET", "/v1/no-such-route")
        assert e.value.request_id
    assert isinstance(httpx.__version__, str)


def test_sse_decoder_follows_the_event_stream_rules():
    d = nova_base.SSEDecoder()
    lines = [": comment", "id: 7", "event: change", 'data: {"a":', "data: 1}", "", "", "data:x", "retry: 50", "", "data: tail"]
    events = [e for e in map(d.feed, lines) if e is not None]
    assert [(e.event, e.data, e.id, e.retry) for e in events] == [("change", '{"a":\n1}', "7", None), ("message", "x", "7", 50)]
    assert events[0].json() == {"a": 1} and d.last_event_id == "7"


def test_every_method_was_called():
    """Runs last (conftest orders it): each public method of Client, AsyncClient and their
    resources was called by the tests above."""
    assert len(METHODS) > 150
    assert sorted(METHODS - CALLED) == []
