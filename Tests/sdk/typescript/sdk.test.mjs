// The TypeScript SDK (compiled to $NOVA_SDK_TS_DIST by Tests/sdk/run-sdk-tests.sh) against the
// live nova-host serve that script started: every method, typed errors, API key and JWT auth,
// a 429 retried after Retry-After, pagination and both SSE streams.
import assert from "node:assert/strict";
import { createHmac, randomUUID } from "node:crypto";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const sdk = await import(pathToFileURL(`${process.env.NOVA_SDK_TS_DIST}/index.js`).href);
const { Client } = sdk;

// Every public method of Client and its resources, and the ones the tests call: the last test
// checks that none is left out.
const METHODS = new Set();
const CALLED = new Set();
const INTERNAL = new Set(["constructor", "send", "json", "events", "pages"]);  // @internal plumbing
const exported = (v) => v && typeof v === "object" && sdk[v.constructor.name] === v.constructor;
for (const probe of [new Client(), ...Object.values(new Client()).filter(exported)]) {
  const proto = Object.getPrototypeOf(probe);
  for (const name of Object.getOwnPropertyNames(proto)) {
    const d = Object.getOwnPropertyDescriptor(proto, name);
    if (typeof d.value !== "function" || INTERNAL.has(name)) continue;
    const key = `${proto.constructor.name}.${name}`;
    const fn = d.value;
    METHODS.add(key);
    proto[name] = function (...args) {
      CALLED.add(key);
      return fn.apply(this, args);
    };
  }
}
const URL = process.env.NOVA_URL;
const ADMIN_KEY = process.env.NOVA_ADMIN_KEY;
const USER_KEY = process.env.NOVA_USER_KEY;
const admin = new Client({ baseUrl: URL, apiKey: ADMIN_KEY });
const user = new Client({ baseUrl: URL, apiKey: USER_KEY });
const ECHO_PLAN = { name: "sdk-echo", steps: [{ id: "say", call: "echo.echo", input: { text: "hi" } }] };
const sleepPlan = (ms) => ({ name: "sdk-sleep", steps: [{ id: "nap", call: "echo.sleep", input: { ms } }] });
const unique = (prefix) => `${prefix}-ts-${randomUUID().slice(0, 8)}`;
const pause = (ms) => new Promise((r) => setTimeout(r, ms));

function jwt(sub, { role = "user", secret = process.env.NOVA_JWT_SECRET, expIn = 300 } = {}) {
  const b64 = (o) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const signing = `${b64({ alg: "HS256", typ: "JWT", kid: process.env.NOVA_JWT_KID })}.${b64({
    sub, role, iss: process.env.NOVA_JWT_ISSUER, aud: process.env.NOVA_JWT_AUDIENCE, iat: now, exp: now + expIn,
  })}`;
  return `${signing}.${createHmac("sha256", secret).update(signing).digest("base64url")}`;
}

async function until(fn, what, tries = 400) {
  for (let i = 0; i < tries; i++) {
    const v = await fn();
    if (v) return v;
    await pause(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function take(iterable, n = Infinity) {
  const out = [];
  for await (const item of iterable) {
    out.push(item);
    if (out.length >= n) break;
  }
  return out;
}

async function rejects(promise, Kind, check = () => {}) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof Kind, `expected ${Kind.name}, got ${e?.constructor?.name}: ${e}`);
    assert.ok(e instanceof sdk.APIError ? e.requestId : true, "an API error carries the request id");
    check(e);
    return e;
  }
  assert.fail(`expected ${Kind.name}`);
}

test("system routes", async () => {
  const anonymous = new Client({ baseUrl: URL });
  assert.equal((await anonymous.health()).status, "ok");
  assert.equal((await anonymous.version()).name, "nova-host");
  assert.equal((await admin.ready()).status, "ready");
  assert.match(await admin.metrics(), /# TYPE/);
});

test("auth failures are typed errors", async () => {
  for (const c of [new Client({ baseUrl: URL }), new Client({ baseUrl: URL, apiKey: "nova_not_a_key" }),
    new Client({ baseUrl: URL, token: jwt("carol", { secret: "another-secret" }) }),
    new Client({ baseUrl: URL, token: jwt("carol", { expIn: -600 }) })]) {
    await rejects(c.runs.list(), sdk.AuthenticationError, (e) => {
      assert.equal(e.status, 401);
      assert.ok(e.code);
      assert.match(e.headers.get("www-authenticate"), /^Bearer/);
    });
  }
  // A valid JWT whose role the policy does not know: authenticated, refused (403).
  await rejects(new Client({ baseUrl: URL, token: jwt("zed", { role: "superuser" }) }).runs.list(), sdk.PermissionDeniedError,
    (e) => assert.equal(e.status, 403));
  assert.throws(() => new Client({ baseUrl: URL, apiKey: "a", token: "b" }), TypeError);
});

test("JWT, token providers and X-API-Key", async () => {
  const carol = new Client({ baseUrl: URL, token: jwt("carol") });
  assert.equal((await carol.tools.call("echo.echo", { text: "jwt" })).status, "succeeded");
  let asked = 0;
  const provider = new Client({ baseUrl: URL, token: async () => { asked++; return jwt("carol"); } });
  await provider.tools.list();
  await provider.tools.list();
  assert.equal(asked, 2);
  const header = new Client({ baseUrl: URL, apiKey: USER_KEY, apiKeyHeader: true });
  assert.equal((await header.tools.call("echo.echo")).status, "succeeded");
});

test("errors carry code, request id and rule", async () => {
  await rejects(user.runs.get("r-no-such-run"), sdk.NotFoundError, (e) => assert.equal(e.code, "not_found"));
  await rejects(user.tools.call("echo.fail"), sdk.PermissionDeniedError, (e) => {
    assert.equal(e.code, "denied");
    assert.equal(e.rule, "no-fail-for-users");
    assert.ok(e.runId);
  });
  await rejects(user.runs.create({ plan: { name: "bad", steps: [{ id: "x", call: "no.such_tool" }] } }), sdk.UnprocessableError);
  await rejects(new Client({ baseUrl: "http://127.0.0.1:9", maxRetries: 0 }).health(), sdk.NovaConnectionError);
});

test("tools", async () => {
  const tools = await user.tools.list();
  const byId = Object.fromEntries(tools.map((t) => [t.id, t]));
  assert.equal(byId["echo.echo"].allowed, true);
  assert.equal(byId["echo.fail"].allowed, false);
  const out = await user.tools.call("text.join", { parts: ["a", "b"], separator: "-" });
  assert.deepEqual(out.output, { text: "a-b" });
});

test("a 429 is retried after Retry-After and the call succeeds", async () => {
  const seen = [];
  const recording = new Client({
    baseUrl: URL, apiKey: USER_KEY,
    fetch: async (input, init) => {
      const r = await fetch(input, init);
      seen.push([r.status, r.headers.get("retry-after")]);
      return r;
    },
  });
  for (let i = 0; i < 3 && !seen.some(([s]) => s === 429); i++) {
    assert.deepEqual((await recording.tools.call("text.upper", { text: "abc" })).output, { text: "ABC" });
  }
  const limited = seen.filter(([s]) => s === 429);
  assert.ok(limited.length > 0, JSON.stringify(seen));
  assert.ok(limited.every(([, ra]) => Number(ra) >= 1));
  assert.equal(seen.at(-1)[0], 200);
});

test("a 429 is thrown when not retried, or when it asks for too long", async () => {
  const noRetries = new Client({ baseUrl: URL, apiKey: USER_KEY, maxRetries: 0 });
  const e = await rejects((async () => { for (let i = 0; i < 3; i++) await noRetries.tools.call("text.upper", { text: "x" }); })(), sdk.RateLimitError);
  assert.equal(e.code, "rate_limited");
  assert.equal(e.rule, "upper-refills");
  assert.ok(e.retryAfterMs > 0 && e.retryAfterMs <= 2000);
  const patient = new Client({ baseUrl: URL, apiKey: USER_KEY, maxRetryDelayMs: 5000 });
  const long = await rejects((async () => { for (let i = 0; i < 2; i++) await patient.tools.call("text.length", { text: "x" }); })(), sdk.RateLimitError);
  assert.ok(long.retryAfterMs > 5000 && long.headers.get("retry-after"));
});

test("a 503 without Retry-After is retried with backoff, then thrown", async () => {
  for (const maxRetries of [0, 2]) {
    const seen = [];
    const client = new Client({
      baseUrl: process.env.NOVA_UNREADY_URL, apiKey: ADMIN_KEY, maxRetries, backoffMs: 50,
      fetch: async (input, init) => {
        const r = await fetch(input, init);
        seen.push([r.status, r.headers.get("retry-after")]);
        return r;
      },
    });
    await rejects(client.ready(), sdk.ServiceUnavailableError, (e) => {
      assert.equal(e.code, "not_ready");
      assert.ok(e.details.checks.drivers);
    });
    assert.deepEqual(seen, Array(maxRetries + 1).fill([503, null]));
  }
});

test("runs: idempotency, episodes, pagination, cancel", async () => {
  const key = unique("idem");
  const first = await admin.runs.create({ plan: ECHO_PLAN }, { idempotencyKey: key });
  assert.equal((await admin.runs.create({ plan: ECHO_PLAN }, { idempotencyKey: key })).run_id, first.run_id);
  await rejects(admin.runs.create({ plan: sleepPlan(1) }, { idempotencyKey: key }), sdk.ConflictError, (e) => assert.equal(e.code, "idempotency_conflict"));
  const ids = new Set([first.run_id]);
  for (let i = 0; i < 4; i++) ids.add((await admin.runs.create({ plan: ECHO_PLAN, priority: i })).run_id);
  // Pages over a set that does not change: every run finished (a run that finishes while pages
  // are read moves from the queue's part of the list to the recorded part).
  for (const id of ids) await admin.runs.wait(id);
  const done = await admin.runs.wait(first.run_id);
  assert.equal(done.status, "succeeded");
  assert.equal((await admin.runs.get(first.run_id)).run_id, first.run_id);
  const episode = await admin.episodes.get(first.run_id);
  assert.ok(episode.intact && episode.hash.length === 64);
  const page = await admin.runs.list({ limit: 2 });
  assert.equal(page.runs.length, 2);
  assert.equal(page.next_offset, 2);
  const every = await take(admin.runs.iter({ pageSize: 2 }));
  const seen = new Set(every.map((r) => r.run_id));
  assert.equal(seen.size, every.length);
  for (const id of ids) assert.ok(seen.has(id));
  // The cursor: the page after page's last recorded run; runs recorded while an iteration
  // reads its pages neither repeat nor hide older ones.
  assert.equal(typeof page.next_before_seq, "number");
  const older = await admin.runs.list({ limit: 2, before_seq: page.next_before_seq });
  assert.ok(older.runs.length > 0 && older.runs.every((r) => r.episode.seq < page.next_before_seq));
  assert.ok(!older.runs.some((r) => page.runs.some((p) => p.run_id === r.run_id)));
  // (`next()` by hand: leaving a for-await loop early would close the generator.)
  const it = admin.runs.iter({ pageSize: 2 });
  const listed = [];
  for (let i = 0; i < 3; i++) listed.push((await it.next()).value);
  await admin.runs.wait((await admin.runs.create({ plan: ECHO_PLAN })).run_id);
  for (let r = await it.next(); !r.done; r = await it.next()) listed.push(r.value);
  assert.equal(new Set(listed.map((r) => r.run_id)).size, listed.length);
  for (const id of ids) assert.ok(listed.some((r) => r.run_id === id));
  const byPlan = await take(admin.runs.iter({ plan: "sdk-echo", pageSize: 2 }));
  for (const id of ids) assert.ok(byPlan.some((r) => r.run_id === id));
  assert.ok(byPlan.every((r) => r.plan_name === "sdk-echo"));
  assert.equal((await admin.runs.list({ plan: "no-such-plan" })).runs.length, 0);
  await rejects(admin.runs.list({ agent: "no-such-agent" }), sdk.NotFoundError);
  const sleeping = await admin.runs.create({ plan: sleepPlan(60000) });
  assert.ok(["cancelled", "cancelling"].includes((await admin.runs.cancel(sleeping.run_id)).status));
  assert.equal((await admin.runs.wait(sleeping.run_id)).status, "cancelled");
  await rejects(admin.runs.cancel(sleeping.run_id), sdk.ConflictError);
});

test("runs as a stream", async () => {
  const name = unique("sdk-live");
  const first = await user.runs.create({ plan: { name, steps: [{ id: "say", call: "echo.echo", input: { text: "hi" } }] } });
  await user.runs.wait(first.run_id);
  const stream = user.runs.stream({ plan: name });
  const events = [];
  let second;
  for await (const run of stream) {
    events.push(run);
    if (!second && run.run_id === first.run_id) {
      second = await user.runs.create({ plan: { name, steps: [{ id: "nap", call: "echo.sleep", input: { ms: 1500 } }] } });
    }
    if (second && run.run_id === second.run_id && run.status === "succeeded") break;
  }
  await stream.close();
  assert.equal(events[0].run_id, first.run_id);
  assert.equal(events[0].status, "succeeded");
  assert.ok(events.every((r) => r.plan_name === name));
});

test("jobs", async () => {
  const run = await admin.runs.create({ plan: sleepPlan(60000) });
  const jobId = run.job.id;
  assert.equal((await admin.jobs.get(jobId)).id, jobId);
  assert.ok(["cancelled", "cancelling"].includes((await admin.jobs.cancel(jobId)).state));
  const state = async (...states) => states.includes((await admin.jobs.get(jobId)).state);
  await until(() => state("cancelled"), "the job cancelled");
  assert.ok(["available", "running"].includes((await admin.jobs.retry(jobId)).state));
  await until(() => state("succeeded", "cancelled", "dead"), "the retried job finished");
  const page = await admin.jobs.list({ state: "succeeded,cancelled,dead", limit: 1 });
  assert.equal(page.jobs.length, 1);
  const listed = await take(admin.jobs.iter({ pageSize: 1 }));
  assert.ok(listed.some((j) => j.id === jobId));
  assert.equal(new Set(listed.map((j) => j.id)).size, listed.length);
  await admin.jobs.discard(jobId);
  await rejects(admin.jobs.get(jobId), sdk.NotFoundError);
});

test("agents and goals", async () => {
  const name = unique("sdk-agent");
  const agent = await user.agents.create({ name, description: "first", plan: ECHO_PLAN, labels: { suite: "ts" } });
  assert.equal(agent.version, 1);
  for (let i = 0; i < 2; i++) await user.agents.create({ name: `${name}-${i}`, plan: ECHO_PLAN, labels: { suite: "ts" } });
  const page = await user.agents.list({ label: "suite:ts", limit: 2 });
  assert.equal(page.items.length, 2);
  assert.equal(page.next_offset, 2);
  const names = new Set((await take(user.agents.iter({ label: "suite:ts", pageSize: 2 }))).map((a) => a.name));
  for (const n of [name, `${name}-0`, `${name}-1`]) assert.ok(names.has(n));
  assert.deepEqual((await user.agents.list({ q: name })).items.map((a) => a.name).sort(), [name, `${name}-0`, `${name}-1`].sort());
  assert.deepEqual((await take(user.agents.iter({ q: `${name}-1` }))).map((a) => a.name), [`${name}-1`]);
  assert.equal((await user.agents.get(name)).id, agent.id);
  assert.equal((await user.agents.update(name, { description: "second" }, { ifMatch: 1 })).version, 2);
  await rejects(user.agents.update(name, { description: "stale" }, { ifMatch: 1 }), sdk.PreconditionFailedError);
  assert.deepEqual((await user.agents.versions(name)).items.map((a) => a.version), [1, 2]);
  assert.equal((await user.agents.pause(name)).status, "paused");
  const pending = await user.goals.submit(name, { goal: "waits while paused" });
  assert.equal(pending.status, "pending");
  assert.equal((await user.goals.cancel(name, pending.id)).status, "cancelled");
  assert.equal((await user.agents.resume(name)).status, "active");
  const key = unique("goal");
  const goal = await user.goals.submit(name, { goal: "say hi" }, { idempotencyKey: key });
  assert.equal((await user.goals.submit(name, { goal: "say hi" }, { idempotencyKey: key })).id, goal.id);
  const done = await until(async () => { const g = await user.goals.get(name, goal.id); return ["pending", "running"].includes(g.status) ? null : g; }, "the goal");
  assert.equal(done.status, "completed");
  assert.equal((await user.goals.list(name, { limit: 1 })).items.length, 1);
  assert.deepEqual(new Set((await take(user.goals.iter(name, { pageSize: 1 }))).map((g) => g.id)), new Set([goal.id, pending.id]));
  const prov = await user.goals.provenance(name, goal.id);
  assert.ok(prov.goal_id === goal.id && prov.calls.length > 0 && prov.episode);
  assert.ok((await user.goals.provenanceList(name, { limit: 5 })).items.length > 0);
  assert.equal((await user.agents.stop(name)).status, "stopped");
  assert.equal((await user.agents.resume(name, { ifMatch: (await user.agents.get(name)).version })).status, "active");
  assert.equal((await user.agents.delete(name)).status, "deleted");
});

test("agents by namespace/name (looked up: the server does not decode %2F in a path)", async () => {
  const ns = unique("team");
  const agent = await user.agents.create({ name: "worker", namespace: ns, plan: ECHO_PLAN });
  const ref = `${ns}/worker`;
  assert.equal((await user.agents.get(ref)).id, agent.id);
  assert.equal((await user.state.put(ref, "k", 1)).version, 1);
  const stream = user.state.watch(ref, { fromRevision: 0 });
  assert.deepEqual((await take(stream, 1)).map((e) => e.json.key), ["k"]);
  await stream.close();
  assert.equal((await user.goals.submit(ref, { goal: "by name" })).agent_id, agent.id);
  assert.equal((await user.messages.sendToAgent(ref, { payload: { x: 1 } })).agent_id, agent.id);
  await rejects(user.agents.get(`${ns}/nobody`), sdk.NotFoundError);
});

test("state and the watch stream", async () => {
  const name = unique("sdk-state");
  await user.agents.create({ name, plan: ECHO_PLAN });
  assert.equal((await user.state.put(name, "count", 1, { ifAbsent: true })).version, 1);
  await rejects(user.state.put(name, "count", 5, { ifAbsent: true }), sdk.ConflictError);
  assert.equal((await user.state.put(name, "count", 2, { ifMatch: 1 })).version, 2);
  await user.state.put(name, "other", { a: [1] });
  assert.equal((await user.state.get(name, "count")).value, 2);
  assert.deepEqual((await user.state.list(name, { prefix: "c" })).items.map((e) => e.key), ["count"]);
  const stream = user.state.watch(name, { fromRevision: 0 });
  const events = await take(stream, 3);
  await stream.close();
  assert.deepEqual(events.map((e) => [e.event, e.json.key, e.json.value]), [["change", "count", 1], ["change", "count", 2], ["change", "other", { a: [1] }]]);
  const resumed = user.state.watch(name, { fromRevision: Number(events[1].id) });
  assert.deepEqual((await take(resumed, 1)).map((e) => e.json.key), ["other"]);
  await resumed.close();
  await user.state.delete(name, "other");
  await rejects(user.state.get(name, "other"), sdk.NotFoundError);
});

test("memory", async () => {
  const name = unique("sdk-memory");
  await user.agents.create({ name, plan: ECHO_PLAN });
  const items = [];
  for (let i = 0; i < 3; i++) items.push(await user.memory.remember(name, { text: `the harbour crane number ${i} lifts containers`, tags: ["port"], meta: { i } }));
  const found = await user.memory.recall(name, { q: "crane" });
  assert.deepEqual(new Set(found.items.map((i) => i.id)), new Set(items.map((i) => i.id)));
  assert.deepEqual(new Set((await take(user.memory.iterRecall(name, { tag: "port", pageSize: 2 }))).map((i) => i.id)), new Set(items.map((i) => i.id)));
  await user.memory.forget(name, items[0].id);
  assert.ok(!(await user.memory.recall(name)).items.some((i) => i.id === items[0].id));
});

test("messages: topics, subscriptions, dead letters and the SSE stream", async () => {
  const topic = unique("sdk-topic");
  assert.equal((await admin.messages.createTopic({ name: topic, retention: { max_count: 1000 } })).name, topic);
  assert.ok((await user.messages.listTopics()).some((t) => t.name === topic));
  const sub = unique("sdk-sub");
  assert.equal((await user.messages.subscribe({ id: sub, topic, start: "earliest", max_deliveries: 1, visibility_timeout_ms: 60000 })).id, sub);
  assert.ok((await user.messages.getTopic(topic)).subscriptions.includes(sub));
  assert.ok((await user.messages.listSubscriptions({ topic })).some((s) => s.id === sub));
  const sent = [];
  for (let i = 0; i < 3; i++) sent.push(await user.messages.publish(topic, { payload: { n: i }, headers: { k: "v" } }));
  const got = await user.messages.receive(sub, { max: 2, wait: "2s" });
  assert.deepEqual(got.map((d) => d.message.payload), [{ n: 0 }, { n: 1 }]);
  assert.deepEqual((await user.messages.ack(sub, got.map((d) => d.receipt))).acked, [true, true]);
  await rejects(user.messages.ack(sub, got[0].receipt), sdk.ConflictError, (e) => assert.equal(e.code, "not_leased"));
  const last = await user.messages.receive(sub, { max: 1, wait: 2000 });
  assert.equal((await user.messages.nack(sub, { receipt: last[0].receipt, error: "bad payload" })).outcome, "dead_lettered");
  const dead = await user.messages.deadLetters(sub);
  assert.equal(dead.total, 1);
  assert.deepEqual((await take(user.messages.iterDeadLetters(sub, { pageSize: 1 }))).map((d) => d.message.id), [sent[2].id]);
  assert.deepEqual((await user.messages.getDeadLetter(sub, sent[2].id)).message.payload, { n: 2 });
  assert.equal(await user.messages.replayDeadLetters(sub), 1);
  const again = await user.messages.receive(sub, { max: 1, wait: "2s" });
  await user.messages.nack(sub, { receipt: again[0].receipt });
  assert.equal(await user.messages.purgeDeadLetters(sub, [sent[2].id]), 1);
  for (let i = 3; i < 5; i++) await user.messages.publish(topic, { payload: { n: i } });
  const stream = user.messages.stream(sub, { max_in_flight: 5 });
  const deliveries = await take(stream, 2);
  await stream.close();
  assert.deepEqual(deliveries.map((d) => d.message.payload), [{ n: 3 }, { n: 4 }]);
  assert.deepEqual((await user.messages.ack(sub, deliveries.map((d) => d.receipt))).acked, [true, true]);
  assert.ok((await user.messages.getSubscription(sub)).stats);
  await user.messages.deleteSubscription(sub);
  await admin.messages.deleteTopic(topic);
  await rejects(user.messages.getTopic(topic), sdk.NotFoundError);
});

test("an agent's inbox", async () => {
  const name = unique("sdk-inbox");
  const agent = await user.agents.create({ name, plan: ECHO_PLAN });
  const sent = await user.messages.sendToAgent(name, { payload: "hello", encoding: "text" });
  assert.equal(sent.agent_id, agent.id);
  assert.equal((await user.messages.receive(`_inbox.${agent.id}`, { max: 1, wait: "2s" }))[0].message.id, sent.id);
});

test("templates and a run by template", async () => {
  const name = unique("sdk-tpl");
  const doc = {
    name, version: "1.0.0", description: "Echoes.",
    params: { type: "object", required: ["who"], properties: { who: { type: "string" } } },
    plan: { steps: [{ id: "say", call: "echo.echo", input: { text: "hi ${params.who}" } }] },
  };
  const summary = await admin.templates.create(doc);
  assert.ok(summary.hash.startsWith("sha256:"));
  assert.equal((await admin.templates.create(doc)).hash, summary.hash);
  await admin.templates.create({ ...doc, version: "1.1.0" });
  assert.deepEqual((await user.templates.versions(name)).map((t) => t.version), ["1.1.0", "1.0.0"]);
  assert.ok((await user.templates.list()).some((t) => t.name === name && t.version === "1.0.0"));
  assert.equal((await user.templates.get(name, "1.0")).template.version, "1.0.0");
  const rendered = await user.templates.render(name, { params: { who: "nova" }, version: "1" });
  assert.equal(rendered.plan.steps[0].input.text, "hi nova");
  assert.deepEqual((await admin.templates.reload()).errors, []);
  await rejects(user.templates.create({ ...doc, version: "9.0.0" }), sdk.PermissionDeniedError);
  const run = await user.runs.create({ template: `${name}@1.0.0`, params: { who: "sdk" } });
  assert.equal((await user.runs.wait(run.run_id)).status, "succeeded");
});

test("approvals", async () => {
  const plan = { name: "sdk-approval", steps: [{ id: "v", call: "echo.version", input: {} }] };
  for (const decision of ["approve", "deny"]) {
    const run = await user.runs.create({ plan });
    const [request] = await until(async () => { const l = await user.approvals.list({ run_id: run.run_id }); return l.length ? l : null; }, "an approval request");
    assert.equal(request.status, "pending");
    assert.equal((await admin.approvals.get(request.id)).id, request.id);
    await rejects(user.approvals.approve(request.id), sdk.PermissionDeniedError);
    const decided = decision === "approve" ? await admin.approvals.approve(request.id, "ts approve") : await admin.approvals.deny(request.id, "ts deny");
    assert.equal(decided.decided_by, "admin");
    assert.equal((await user.runs.wait(run.run_id)).status, decision === "approve" ? "succeeded" : "denied");
    await rejects(admin.approvals.decide(request.id, { decision: "approve" }), sdk.ConflictError, (e) => assert.equal(e.code, "not_pending"));
  }
  assert.equal((await admin.approvals.list({ status: "all", limit: 2 })).length, 2);
});

test("drivers, policy, reports, audit", async () => {
  assert.ok((await admin.drivers.list()).drivers.some((d) => d.name === "echo"));
  assert.ok((await admin.drivers.get("echo")).tools.length > 0);
  try {
    assert.ok(Array.isArray((await admin.drivers.reload()).failed));
  } catch (e) {
    assert.ok(e instanceof sdk.ServerError && e.status === 501, String(e));
  }
  assert.ok((await admin.policy.get()).hash.startsWith("sha256:"));
  assert.equal((await admin.policy.reload()).outcome, "unchanged");
  await rejects(user.policy.reload(), sdk.PermissionDeniedError);
  assert.ok((await admin.reports.status({ since: "1h" })).window);
  const one = await admin.audit.list({ limit: 1 });
  assert.equal(one.entries.length, 1);
  const every = await take(admin.audit.iter({ pageSize: 2 }));
  assert.ok(every.length >= 3);
  assert.deepEqual(every.map((e) => e.seq), [...new Set(every.map((e) => e.seq))].sort((a, b) => a - b));
  assert.equal((await admin.audit.verify()).intact, true);
});

test("the event-stream decoder follows the WHATWG rules across chunks", () => {
  const d = new sdk.SSEDecoder();
  const chunks = [": hello\r", "\nid: 7\nevent: change\ndata: {\"a\":", "\ndata: 1}\r", "\n\r\ndata:x\rretry: 50\r\r", "\n", "data: tail"];
  const events = chunks.flatMap((c) => d.feed(c));
  assert.deepEqual(events, [
    { event: "change", data: '{"a":\n1}', id: "7" },
    { event: "message", data: "x", id: "7", retry: 50 },
  ]);
  assert.equal(d.lastEventId, "7");
});

test("every public method was called by the tests above", () => {
  assert.ok(METHODS.size > 80, String(METHODS.size));
  assert.deepEqual([...METHODS].filter((k) => !CALLED.has(k)).sort(), []);
});
