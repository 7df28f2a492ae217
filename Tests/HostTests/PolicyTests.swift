import Foundation
import Synchronization
import Testing
import Host
import JSON

/// A clock tests move by hand.
final class ManualClock: Sendable {
    let now = Atomic<Int64>(1_000_000_000)
    func advance(ms: Int64) { now.add(ms * 1_000_000, ordering: .relaxed) }
    var read: @Sendable () -> Int64 { { [self] in now.load(ordering: .relaxed) } }
}

/// In-memory policy persistence with the same transactional contract as the store.
final class MemoryPersistence: PolicyStatePersistence {
    let values = Mutex<[String: JSONValue]>([:])
    func policyState(keys: [String]) async throws -> [String: JSONValue] { values.withLock { v in v.filter { keys.contains($0.key) } } }
    func updatePolicyState(keys: [String], _ update: @escaping @Sendable ([String: JSONValue]) throws -> [String: JSONValue]) async throws {
        try values.withLock { v in
            let new = try update(v.filter { keys.contains($0.key) })
            for (k, x) in new { v[k] = x }
        }
    }
}

@Suite("Policy engine")
struct PolicyTests {
    static let profileJSON: JSONValue = [
        "principals": ["ada": "admin", "uma": "user", "svc": "service"],
        "rules": [
            ["id": "admin-all", "effect": "allow", "roles": ["admin"], "tools": ["*"]],
            ["id": "no-exec", "effect": "deny", "tools": ["postgres.execute"], "reason": "writes need admin"],
            ["id": "hosts", "effect": "allow", "roles": ["user", "service"], "tools": ["http.request"], "conditions": ["http_hosts": ["api.example.com", "*.corp"]]],
            ["id": "progs", "effect": "allow", "roles": ["user"], "tools": ["shell.exec"],
             "conditions": ["shell_programs": ["/bin/echo"], "shell_args": ["/bin/echo": ["[a-z]+"]]]],
            ["id": "pg-ro", "effect": "allow", "roles": ["user"], "tools": ["postgres.*"], "conditions": ["postgres_read_only": true]],
            ["id": "gql", "effect": "allow", "roles": ["user"], "tools": ["graphql.query"], "conditions": ["graphql_operations": ["query"]]],
            ["id": "echo", "effect": "allow", "roles": ["user", "service"], "tools": ["echo.*"]],
        ],
    ]

    func engine(_ extra: [String: JSONValue] = [:], clock: ManualClock = ManualClock(), persistence: (any PolicyStatePersistence)? = nil) throws -> PolicyEngine {
        var p = Self.profileJSON.objectValue!
        for (k, v) in extra { p[k] = v }
        return PolicyEngine(profile: try PolicyProfile(json: .object(p)), persistence: persistence, clock: clock.read)
    }

    /// The policy inputs the built-in drivers declare (AllDriversTests checks the real manifests).
    static let builtInInputs: [String: PolicyInputs] = [
        "http.request": PolicyInputs([.url: "/url"]),
        "shell.exec": PolicyInputs([.program: "/program", .args: "/args"]),
        "postgres.query": PolicyInputs([.allowWrite: "/allow_write"]),
        "graphql.query": PolicyInputs([.graphqlDocument: "/query"]),
    ]

    func req(_ who: String, _ tool: String, _ input: JSONValue = [:], readOnly: Bool = true, run: String = "r") -> GateRequest {
        GateRequest(runId: run, principal: who, tool: tool, input: input,
                    annotations: ToolAnnotations(readOnlyHint: readOnly, destructiveHint: !readOnly, idempotentHint: true, openWorldHint: false),
                    policyInputs: Self.builtInInputs[tool] ?? PolicyInputs())
    }

    @Test func rolesAndDefaultDeny() throws {
        let e = try engine()
        #expect(e.decide(req("ada", "postgres.execute")).allowed)  // admin rule comes first
        let d = e.decide(req("uma", "postgres.execute"))
        #expect(!d.allowed && d.ruleId == "no-exec" && d.reason == "writes need admin")
        let unknown = e.decide(req("uma", "text.upper"))
        #expect(!unknown.allowed && unknown.ruleId == "default-deny")
        let stranger = e.decide(req("eve", "echo.echo"))
        #expect(!stranger.allowed && stranger.ruleId == "unknown-principal")
        #expect(e.decide(req("svc", "echo.echo")).allowed)
        #expect(!e.decide(req("svc", "shell.exec", ["program": "/bin/echo"])).allowed)  // progs is for users only
    }

    @Test func conditions() throws {
        let e = try engine()
        #expect(e.decide(req("uma", "http.request", ["url": "https://api.example.com/v1"])).allowed)
        #expect(e.decide(req("uma", "http.request", ["url": "http://user@db.corp:8080/x"])).allowed)
        let evil = e.decide(req("uma", "http.request", ["url": "https://evil.com/"]))
        #expect(!evil.allowed && evil.reason.contains("host 'evil.com' is not in http_hosts"))
        #expect(e.decide(req("uma", "shell.exec", ["program": "/bin/echo", "args": ["hello"]])).allowed)
        #expect(!e.decide(req("uma", "shell.exec", ["program": "/bin/sh", "args": []])).allowed)
        let badArg = e.decide(req("uma", "shell.exec", ["program": "/bin/echo", "args": ["; rm -rf /"]]))
        #expect(!badArg.allowed && badArg.reason.contains("matches no pattern"))
        #expect(e.decide(req("uma", "postgres.query", ["sql": "select 1"])).allowed)
        #expect(!e.decide(req("uma", "postgres.query", ["sql": "x", "allow_write": true])).allowed)
        #expect(!e.decide(req("uma", "postgres.schema", [:], readOnly: false)).allowed)
        #expect(e.decide(req("uma", "graphql.query", ["query": "{ users { id } }"])).allowed)
        #expect(e.decide(req("uma", "graphql.query", ["query": "query Q { a }"])).allowed)
        let m = e.decide(req("uma", "graphql.query", ["query": "# comment\nmutation { drop }"]))
        #expect(!m.allowed && m.reason.contains("GraphQL mutation is not in graphql_operations"))
    }

    /// shell_args patterns use the project's ECMA-262 engine: a pattern that used to kill the
    /// process inside Swift's Regex compiles, an invalid one is a profile error naming the rule,
    /// and a pattern that would backtrack exponentially denies instead of hanging.
    @Test func shellArgPatternsCannotCrashOrHangTheHost() throws {
        func profile(_ patterns: [JSONValue]) throws -> PolicyProfile {
            try PolicyProfile(json: ["principals": ["uma": "user"], "rules": [
                ["id": "args", "effect": "allow", "tools": ["shell.exec"],
                 "conditions": ["shell_programs": ["/bin/echo"], "shell_args": ["/bin/echo": .array(patterns)]]]]])
        }
        let backref = PolicyEngine(profile: try profile(["(a){0}\\1", "[a-z]+"]))
        #expect(backref.decide(req("uma", "shell.exec", ["program": "/bin/echo", "args": ["", "abc"]])).allowed)
        #expect(!backref.decide(req("uma", "shell.exec", ["program": "/bin/echo", "args": ["a1"]])).allowed)
        #expect(throws: PolicyError.self) { try profile(["{"]) }
        do { _ = try profile(["a", "("]); Issue.record("an invalid pattern loaded") } catch let error as PolicyError {
            #expect(error.message.contains("rules[0].conditions.shell_args[/bin/echo]") && error.message.contains("'('"), "\(error.message)")
        }
        let explosive = PolicyEngine(profile: try profile(["(a|a)*\\1?b"]))
        let d = explosive.decide(req("uma", "shell.exec", ["program": "/bin/echo", "args": [.string(String(repeating: "a", count: 40) + "!")]]))
        #expect(!d.allowed && d.reason.contains("matches no pattern"))
    }

    @Test func ruleOrderMatters() throws {
        let allowFirst = try PolicyProfile(json: ["principals": ["u": "user"], "rules": [
            ["id": "a", "effect": "allow", "tools": ["echo.*"]], ["id": "d", "effect": "deny", "tools": ["echo.echo"]]]])
        let denyFirst = try PolicyProfile(json: ["principals": ["u": "user"], "rules": [
            ["id": "d", "effect": "deny", "tools": ["echo.echo"]], ["id": "a", "effect": "allow", "tools": ["echo.*"]]]])
        #expect(PolicyEngine(profile: allowFirst).decide(req("u", "echo.echo")).ruleId == "a")
        #expect(PolicyEngine(profile: denyFirst).decide(req("u", "echo.echo")).ruleId == "d")
    }

    @Test func rateLimitExhaustsAndRefills() throws {
        let clock = ManualClock()
        let e = try engine(["rate_limits": [["id": "rl", "scope": "principal", "capacity": 3, "refill_per_second": 1]]], clock: clock)
        for _ in 0..<3 { #expect(e.decide(req("uma", "echo.echo")).allowed) }
        let d = e.decide(req("uma", "echo.echo"))
        #expect(!d.allowed && d.ruleId == "rl" && d.reason.contains("next call possible in 1000 ms"))
        #expect(e.decide(req("svc", "echo.echo")).allowed)  // another principal has its own bucket
        clock.advance(ms: 1000)
        #expect(e.decide(req("uma", "echo.echo")).allowed)
        #expect(!e.decide(req("uma", "echo.echo")).allowed)
    }

    @Test func budgetsFailClosedBeforeTheCall() async throws {
        let clock = ManualClock()
        let e = try engine(["budgets": [["id": "run", "scope": "run", "calls": 2, "tokens": 100, "wall_ms": 5000]]], clock: clock)
        #expect(e.decide(req("uma", "echo.echo")).allowed)
        await e.charge(req("uma", "echo.echo"), usage: ToolUsage(tokens: 150), durationNanos: 0)
        let d = e.decide(req("uma", "echo.echo"))
        #expect(!d.allowed && d.reason.contains("150 of 100 tokens used"))
        // Another run has its own budget; calls and wall time are limited too.
        #expect(e.decide(req("uma", "echo.echo", run: "r2")).allowed)
        #expect(e.decide(req("uma", "echo.echo", run: "r2")).allowed)
        #expect(e.decide(req("uma", "echo.echo", run: "r2")).reason.contains("2 of 2 calls used"))
        _ = e.decide(req("uma", "echo.echo", run: "r3"))
        clock.advance(ms: 6000)
        #expect(e.decide(req("uma", "echo.echo", run: "r3")).reason.contains("wall time over 5000 ms"))
    }

    @Test func budgetExhaustionMidRunStopsTheNextCall() async throws {
        let dir = Fixtures.tempDir("budget")
        try Fixtures.buildEcho(into: dir)
        let e = try engine(["budgets": [["id": "tok", "scope": "run", "tokens": 5]]])
        let runner = PlanRunner(registry: DriverRegistry(driversDirectory: dir), gate: e)
        // Each echo of this input reports 6 tokens (24 bytes / 4): the first call runs, the
        // budget is then spent, and the second is denied before it reaches the driver.
        let plan = try Plan.parse(JSONValue.parse(#"{"steps": [{"id": "a", "call": "echo.echo", "input": {"pad": "xxxxxxxxxxxx"}}, {"id": "b", "call": "echo.echo", "input": {"pad": "${steps.a.output.pad}"}}]}"#))
        let r = await runner.run(plan, inputs: [:], principal: "uma", runId: "budget-run")
        #expect(r.status == .denied)
        #expect(r.steps[0].status == .succeeded && r.steps[0].attempts[0].usage.tokens == 6)
        #expect(r.steps[1].status == .denied)
        #expect(r.steps[1].attempts.count == 1 && r.steps[1].attempts[0].output == nil)
        #expect(r.steps[1].attempts[0].decision?.ruleId == "tok")
    }

    @Test func stateSurvivesAcrossEngines() async throws {
        let store = MemoryPersistence()
        let limits: [String: JSONValue] = ["rate_limits": [["id": "rl", "scope": "principal", "capacity": 2, "refill_per_second": 0]],
                                           "budgets": [["id": "day", "scope": "principal", "calls": 3, "window_seconds": 86400]]]
        let first = try engine(limits, persistence: store)
        #expect(await first.authorize(req("uma", "echo.echo")).allowed)
        #expect(await first.authorize(req("uma", "echo.echo")).allowed)
        try await first.flush()
        // A new process (new engine) sees the spent bucket and window (loaded before deciding).
        let second = try engine(limits, persistence: store)
        let d = await second.authorize(req("uma", "echo.echo"))
        #expect(!d.allowed && d.ruleId == "rl")
    }

    /// The `remaining` an allowed decision reports (recorded in the episode): tokens left in
    /// each rate limit that applies, calls, tokens and wall time left in each budget.
    @Test func remainingReportsEveryLimitAndBudgetThatApplies() throws {
        let e = try engine(["rate_limits": [["id": "rl", "scope": "principal", "capacity": 3, "refill_per_second": 1],
                                            ["id": "http-only", "scope": "tool", "tools": ["http.*"], "capacity": 5, "refill_per_second": 1]],
                            "budgets": [["id": "run", "scope": "run", "calls": 5, "tokens": 100, "wall_ms": 5000],
                                        ["id": "day", "scope": "principal", "calls": 10, "tokens": 1000, "window_seconds": 86400]]])
        let expected: JSONValue = ["rl": ["tokens": 2.0], "run": ["calls": 4, "tokens": 100, "wall_ms": 5000], "day": ["calls": 9, "tokens": 1000]]
        let probe = e.decide(req("uma", "echo.echo"), consume: false)
        #expect(probe.allowed && probe.remaining == expected)
        let first = e.decide(req("uma", "echo.echo"))
        #expect(first.allowed && first.remaining == expected && first.json["remaining"] == expected)
        #expect(first.reason == "allowed by rule 'echo'" && first.role == "user")
        let second = e.decide(req("uma", "echo.echo"))
        #expect(second.remaining == ["rl": ["tokens": 1.0], "run": ["calls": 3, "tokens": 100, "wall_ms": 5000], "day": ["calls": 8, "tokens": 1000]])
        // A decision with nothing to report has no `remaining`.
        #expect(try engine().decide(req("uma", "echo.echo")).remaining == nil)
        // `remaining` can be replaced like any other field.
        var edited = second
        edited.remaining = ["x": 1]
        #expect(edited.remaining == ["x": 1] && edited.json["remaining"] == ["x": 1])
    }

    /// Buckets and windows are stored under the same names by every version: hosts share them.
    @Test func persistedStateKeepsItsKeys() async throws {
        let store = MemoryPersistence()
        let e = try engine(["rate_limits": [["id": "rl", "scope": "principal", "capacity": 5, "refill_per_second": 0],
                                            ["id": "per-tool", "scope": "tool", "capacity": 5, "refill_per_second": 0]],
                            "budgets": [["id": "day", "scope": "principal", "calls": 9, "window_seconds": 86400]]], persistence: store)
        #expect(await e.authorize(req("uma", "echo.echo")).allowed)
        #expect(await e.authorize(req("uma", "echo.echo")).allowed)
        await e.charge(req("uma", "echo.echo"), usage: ToolUsage(tokens: 7), durationNanos: 0)
        try await e.flush()
        let stored = store.values.withLock { $0 }
        #expect(stored["rate/rl/principal/uma"]?["tokens"] == 3.0)
        #expect(stored["rate/per-tool/tool/echo.echo"]?["tokens"] == 3.0)
        let windows = stored.filter { $0.key.hasPrefix("budget/day/uma/") }
        #expect(windows.count == 1 && windows.first?.value == ["calls": 2, "tokens": 7])
        #expect(windows.first.map { Int64($0.key.dropFirst("budget/day/uma/".count)) != nil } == true)
        #expect(stored.count == 3)
    }

    /// A reloaded profile keeps the state of the limits and budgets that keep their id, even when
    /// they moved in the list or apply to other tools now.
    @Test func reloadKeepsStateByIdWhateverTheOrder() throws {
        let e = try engine(["rate_limits": [["id": "a", "scope": "principal", "capacity": 50, "refill_per_second": 0],
                                            ["id": "rl", "scope": "principal", "capacity": 2, "refill_per_second": 0]]])
        #expect(e.decide(req("uma", "echo.echo", run: "r1")).allowed)
        #expect(e.decide(req("uma", "echo.echo", run: "r1")).allowed)
        var p = Self.profileJSON.objectValue!
        p["rate_limits"] = [["id": "rl", "scope": "principal", "tools": ["echo.*"], "capacity": 2, "refill_per_second": 0],
                            ["id": "b", "scope": "principal", "capacity": 50, "refill_per_second": 0]]
        e.replaceProfile(try PolicyProfile(json: .object(p)))
        let d = e.decide(req("uma", "echo.echo", run: "r2"))
        #expect(!d.allowed && d.ruleId == "rl")
        #expect(e.decide(req("uma", "http.request", ["url": "https://api.example.com/"], run: "r2")).allowed)  // rl is for echo.* now
    }

    /// Rules are indexed by tool when the profile loads; every kind of pattern still finds its
    /// tools, in rule order, and a principal list narrows a rule.
    @Test func rulesMatchThroughEveryKindOfPattern() throws {
        let p = try PolicyProfile(json: ["principals": ["u": "user", "v": "user"], "rules": [
            ["id": "only-v", "effect": "deny", "principals": ["v"], "tools": ["*"]],
            ["id": "suffix", "effect": "allow", "tools": ["*.upper"]],
            ["id": "infix", "effect": "deny", "tools": ["te*x*.lower"]],
            ["id": "prefix", "effect": "allow", "tools": ["text.*"]],
            ["id": "exact", "effect": "allow", "tools": "echo.echo"],
        ]])
        let e = PolicyEngine(profile: p)
        #expect(e.decide(req("u", "text.upper")).ruleId == "suffix")
        #expect(e.decide(req("u", "shout.upper")).ruleId == "suffix")
        #expect(e.decide(req("u", "text.lower")).ruleId == "infix")
        #expect(e.decide(req("u", "text.trim")).ruleId == "prefix")
        #expect(e.decide(req("u", "echo.echo")).ruleId == "exact")
        #expect(e.decide(req("u", "echo.echoes")).ruleId == "default-deny")
        #expect(e.decide(req("u", "text.upper")).ruleId == "suffix")  // again: from the index
        #expect(e.decide(req("v", "echo.echo")).ruleId == "only-v")
    }

    /// http_hosts: exact names, leading-wildcard suffixes and other globs, case-insensitively,
    /// without port, userinfo, trailing dot or IPv6 brackets.
    @Test func httpHostsMatchersAgreeWithTheGlobs() throws {
        let p = try PolicyProfile(json: ["principals": ["u": "user"], "rules": [
            ["id": "h", "effect": "allow", "tools": ["http.request"],
             "conditions": ["http_hosts": ["API.example.com", "*.corp", "10.*.1", "[::1]", "::1", "*"]]]]])
        let q = try PolicyProfile(json: ["principals": ["u": "user"], "rules": [
            ["id": "h", "effect": "allow", "tools": ["http.request"],
             "conditions": ["http_hosts": ["api.example.com", "*.corp", "10.*.1", "::1"]]]]])
        let all = PolicyEngine(profile: p), some = PolicyEngine(profile: q)
        func allowed(_ e: PolicyEngine, _ url: String) -> Bool { e.decide(req("u", "http.request", ["url": .string(url)]), consume: false).allowed }
        for url in ["https://api.example.com/x", "https://API.Example.COM:443/", "http://a@db.corp", "http://corp.corp.", "http://10.0.0.1/",
                    "http://[::1]:8080/", "http://10.1/"] {
            #expect(allowed(all, url), "\(url)")
        }
        for url in ["https://api.example.com/x", "https://API.Example.COM:443/", "http://a@db.corp", "http://corp.corp.", "http://10.0.0.1/",
                    "http://[::1]:8080/", "http://.corp/"] {
            #expect(allowed(some, url), "\(url)")
        }
        for url in ["https://evil.com/", "https://api.example.com.evil/", "http://corp/", "http://10.1/", "http://10.0.0.2/", "no-scheme",
                    "http:///path", "http://x.corp@evil.com/"] {
            #expect(!allowed(some, url), "\(url)")
        }
    }

    @Test func invalidProfilesAreRejectedWithTheField() {
        #expect(throws: PolicyError.self) { try PolicyProfile(json: ["rules": [["id": "x", "effect": "maybe"]]]) }
        do { _ = try PolicyProfile(json: ["rules": [["id": "x", "effect": "allow", "conditions": ["nope": 1]]]]); Issue.record("accepted") } catch {
            #expect(error.message.hasPrefix("rules[0].conditions.nope is not a known condition"))
        }
        do { _ = try PolicyProfile(json: ["principals": ["a": "root"]]); Issue.record("accepted") } catch {
            #expect(error.message == "principals.a: unknown role 'root' (roles: admin, user, service)")
        }
    }
}
