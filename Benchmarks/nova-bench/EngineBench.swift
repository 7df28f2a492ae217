import CHostSupport
import DriverABI
import Foundation
import Host
import JSON

/// Policy decision latency (goal ≤ 2 µs).
enum PolicyBench {
    static func run() async throws {
        let profile = try PolicyProfile.load("configs/policy.default.json")
        let engine = PolicyEngine(profile: profile)
        let annotations = ToolAnnotations(readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true)
        // The http driver's manifest declares where the URL is (`policyInputs`); without it the
        // http_hosts rule cannot read the host and the call is denied (fail closed).
        let request = GateRequest(runId: "bench", principal: "local", tool: "http.request",
                                  input: ["url": "https://api.example.com/v1/items?limit=10", "method": "GET"],
                                  annotations: annotations, policyInputs: PolicyInputs([.url: "/url"]))
        let deny = GateRequest(runId: "bench", principal: "local", tool: "postgres.execute", input: ["sql": "drop table x"], annotations: nil)
        var undeclared = request
        undeclared.policyInputs = PolicyInputs()
        precondition(engine.decide(request, consume: false).allowed, "the allow case is denied: \(engine.decide(request, consume: false).reason)")
        precondition(!engine.decide(deny, consume: false).allowed && !engine.decide(undeclared, consume: false).allowed)
        nonisolated(unsafe) var allowed = 0
        // consume: false so that rate limits do not turn the benchmark into a denial benchmark.
        let ns = Measure.nsPerOp(iterations: 100_000) { if engine.decide(request, consume: false).allowed { allowed += 1 } }
        let nsDeny = Measure.nsPerOp(iterations: 100_000) { if engine.decide(deny, consume: false).allowed { allowed += 1 } }
        let nsUndeclared = Measure.nsPerOp(iterations: 100_000) { if engine.decide(undeclared, consume: false).allowed { allowed += 1 } }
        print("  decision, default profile (\(profile.rules.count) rules, \(profile.rateLimits.count) rate limits, \(profile.budgets.count) budgets), median of 7 × 100k:")
        print("    allow http.request via host allowlist  \(Measure.fmt(ns))   (goal ≤ 2 µs)")
        print("    deny postgres.execute                  \(Measure.fmt(nsDeny))")
        print("    deny http.request, no policyInputs     \(Measure.fmt(nsUndeclared))   (fails closed: the rule cannot read the URL)")
    }
}

/// Interpreter overhead per step with a no-op driver (goal ≤ 20 µs).
enum InterpreterBench {
    static func run() async throws {
        let candidates = [".build/release", "drivers"]
        guard let dir = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/libnova_echo.so") }) else {
            print("  c-echo driver not found (build it: make bench)"); return
        }
        let steps = 200
        var list: [JSONValue] = []
        for i in 0..<steps {
            list.append(["id": .string("s\(i)"), "call": "echo.echo", "input": i == 0 ? ["v": 0] : ["v": .string("${steps.s\(i - 1).output.v}")]])
        }
        let plan = try Plan.parse(["name": "chain", "steps": .array(list)])
        let registry = DriverRegistry(driversDirectory: dir)
        // Policy on, with budgets big enough for the chain (the default profile's rate limit
        // would deny a 200-call burst, which is what it is for).
        let profile = try PolicyProfile(json: ["principals": ["bench": "service"],
                                               "rules": [["id": "echo", "effect": "allow", "roles": ["service"], "tools": ["echo.*"]]],
                                               "budgets": [["id": "run", "scope": "run", "calls": 100_000, "tokens": 100_000_000]]])
        let echo = try await registry.driver(named: "echo")
        let call = try await Measure.nsPerOpAsync(rounds: 5, iterations: 20_000) { _ = try await echo.call(ToolCallRequest(tool: "echo", input: Array(#"{"v":0}"#.utf8))) }
        var samples: [Double] = []
        for i in 0..<7 {
            let runner = PlanRunner(registry: registry, gate: PolicyEngine(profile: profile))
            let t0 = nova_monotonic_ns()
            let r = await runner.run(plan, inputs: [:], principal: "bench", runId: "bench-\(i)", options: RunOptions(parallelism: 1))
            precondition(r.status == .succeeded, "bench run failed: \(r.error ?? "")")
            samples.append(Double(nova_monotonic_ns() - t0) / Double(steps))
        }
        let perStep = Measure.median(samples)
        print("  \(steps)-step chain of echo.echo with references, policy on (median of 7 runs):")
        print("    per step, total                 \(Measure.fmt(perStep))")
        print("    of which the driver call path   \(Measure.fmt(call))")
        print("    interpreter overhead per step   \(Measure.fmt(perStep - call))   (goal ≤ 20 µs)")
    }
}
