// Type-checked (tsc --noEmit --strict) against the compiled SDK's declarations by
// Tests/sdk/run-sdk-tests.sh, which copies it beside dist/: the declarations must describe the
// surface a user writes against. Never run.
import { AuthenticationError, Client, RateLimitError, type Delivery, type Run, type StateEvent } from "./dist/index.js";

export async function usage(): Promise<void> {
  const nova = new Client({ baseUrl: "http://127.0.0.1:8787", apiKey: "key", maxRetries: 3 });
  const run: Run = await nova.runs.create({ plan: { name: "p", steps: [] }, inputs: { who: "x" } }, { idempotencyKey: "k" });
  const done = await nova.runs.wait(run.run_id);
  const status: string = done.status;
  for await (const r of nova.runs.iter({ pageSize: 10 })) console.log(r.run_id, status);
  const stream = nova.messages.stream("sub", { max_in_flight: 5 });
  for await (const d of stream) {
    const delivery: Delivery = d;
    await nova.messages.ack("sub", delivery.receipt);
    break;
  }
  await stream.close();
  for await (const e of nova.state.watch("agent", { fromRevision: 0 })) {
    const ev: StateEvent = e;
    console.log(ev.json.revision, ev.id);
  }
  const viaJwt = new Client({ token: async () => "jwt" });
  try {
    await viaJwt.tools.call("echo.echo", { text: "hi" });
  } catch (e) {
    if (e instanceof RateLimitError) console.log(e.retryAfterMs, e.code, e.requestId);
    if (e instanceof AuthenticationError) console.log(e.status, e.rule);
  }
}
