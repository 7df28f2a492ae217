import JSON
import Synchronization
import CHostSupport
import Drivers
import HostSupport
import Store

/// The policy engine: deny by default; ordered allow/deny rules with input conditions; token
/// buckets; budgets checked before every call (failing closed) and charged after it.
///
/// Decisions are made in memory (a few hundred nanoseconds). State shared with other runs and
/// hosts is loaded from `persistence` the first time a key is used and written back, as deltas,
/// by `flush()` (the CLI flushes at the end of every run).
///
/// The profile can be replaced while the host runs (`replaceProfile`, on SIGHUP or
/// `POST /v1/policy/reload`). A run keeps the profile it started with: the profile is pinned to
/// the run id when its role is bound or at its first decision, until `endRun`.
public final class PolicyEngine: CallGate, Sendable {
    /// The current profile: the one new runs start with.
    public var profile: PolicyProfile { current.withLock { $0 } }
    private let current: Mutex<PolicyProfile>
    let persistence: (any PolicyStatePersistence)?
    private let clock: @Sendable () -> Int64

    struct Bucket { var tokens: Double; var lastNanos: Int64; var consumed: Double = 0 }
    struct Window { var startNanos: Int64; var calls: Int; var tokens: UInt64; var deltaCalls = 0; var deltaTokens: UInt64 = 0 }
    struct RunUsage { var startNanos: Int64; var calls: [String: Int] = [:]; var tokens: [String: UInt64] = [:] }
    /// A rate-limit bucket: per limit id (so a reloaded profile keeps it) and principal or tool.
    /// Made of strings the request and profile already hold: a decision builds no key text.
    struct BucketKey: Hashable {
        var limitId: String
        var perPrincipal: Bool
        var subject: String
        /// The name the bucket is stored under (`rate/<id>/principal/<p>`, `rate/<id>/tool/<t>`).
        var storageKey: String { perPrincipal ? "rate/\(limitId)/principal/\(subject)" : "rate/\(limitId)/tool/\(subject)" }
    }
    /// A principal budget's window: per budget id, principal and wall-clock window number.
    struct WindowKey: Hashable {
        var budgetId: String
        var principal: String
        var window: Int64
        /// The name the window is stored under (`budget/<id>/<principal>/<window>`).
        var storageKey: String { "budget/\(budgetId)/\(principal)/\(window)" }
    }
    struct State {
        var buckets: [BucketKey: Bucket] = [:]
        var windows: [WindowKey: Window] = [:]
        var runs: [String: RunUsage] = [:]
        /// Roles bound to runs by an authenticated caller (see `bindRole`).
        var runRoles: [String: String] = [:]
        /// The profile each run in flight started with (see `replaceProfile`).
        var runProfiles: [String: PolicyProfile] = [:]
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - clock: monotonic nanoseconds for buckets and run wall time (tests pass their own).
    public init(profile: PolicyProfile, persistence: (any PolicyStatePersistence)? = nil,
                clock: @escaping @Sendable () -> Int64 = { nova_monotonic_ns() }) {
        self.current = Mutex(profile)
        self.persistence = persistence
        self.clock = clock
    }

    // MARK: Decisions

    public func authorize(_ request: GateRequest) async -> GateDecision {
        await loadState(for: request)
        return decide(request)
    }

    /// The decision for one call, consuming a rate-limit token and a call from each budget when
    /// allowed. Synchronous and allocation-light: this is the hot path.
    public func decide(_ request: GateRequest, consume: Bool = true) -> GateDecision {
        // A decision that consumes belongs to a run: pin the run to the profile it sees first.
        let (bound, profile) = state.withLock { s -> (String?, PolicyProfile) in
            let bound = s.runRoles.isEmpty ? nil : s.runRoles[request.runId]
            if let pinned = s.runProfiles[request.runId] { return (bound, pinned) }
            let now = current.withLock { $0 }
            if consume { s.runProfiles[request.runId] = now }
            return (bound, now)
        }
        var decision = decide(request, profile: profile, role: bound, consume: consume)
        decision.profileHash = profile.hash
        return decision
    }

    private func decide(_ request: GateRequest, profile: PolicyProfile, role bound: String?, consume: Bool) -> GateDecision {
        guard let role = bound ?? profile.role(of: request.principal) else {
            return GateDecision(allowed: false, ruleId: "unknown-principal",
                                reason: "principal '\(request.principal)' is not in the policy and there is no default_role")
        }
        // Only the rules whose tool patterns match this tool, in profile order.
        let plan = profile.index.plan(for: request.tool)
        var misses: [String] = []
        var matched: PolicyIndex.Rule?
        for rule in plan.rules {
            if let roles = rule.roles, !roles.contains(role) { continue }
            if let ps = rule.principals, !ps.contains(request.principal) { continue }
            if let conditions = rule.conditions, let failed = Conditions.check(conditions, request) {
                // A rule written for this very tool that cannot read its input: fail closed.
                if let problem = rule.rule.problem(tool: request.tool, inputs: request.policyInputs) {
                    return GateDecision(allowed: false, ruleId: rule.id, reason: "the policy cannot decide this call: \(problem)", role: role)
                }
                if rule.effect == .allow { misses.append("rule '\(rule.id)' did not apply: \(failed)") }
                continue
            }
            matched = rule
            break
        }
        guard let rule = matched else {
            var reason = "no rule allows \(request.tool) for principal '\(request.principal)' (role \(role)); deny by default"
            if !misses.isEmpty { reason += "; " + misses.joined(separator: "; ") }
            return GateDecision(allowed: false, ruleId: "default-deny", reason: reason, role: role)
        }
        if rule.effect == .deny {
            return GateDecision(allowed: false, ruleId: rule.id, reason: rule.decisionReason, role: role)
        }
        if rule.effect == .requireApproval && !request.approved {
            // Ask a person only for a call that limits and budgets would let through now.
            var decision = admit(request, plan: plan, rule: rule, role: role, consume: false)
            guard decision.allowed else { return decision }
            decision.allowed = false
            decision.requiresApproval = true
            return decision
        }
        return admit(request, plan: plan, rule: rule, role: role, consume: consume)
    }

    /// Rate limits and budgets for an allowed call, checked and consumed under one lock.
    private func admit(_ request: GateRequest, plan: PolicyIndex.ToolPlan, rule: PolicyIndex.Rule, role: String, consume: Bool) -> GateDecision {
        let now = clock()
        let limits = plan.limits, budgets = plan.budgets
        // One wall-clock reading for the windows this decision checks and charges.
        let wall = plan.principalBudgets.isEmpty ? 0 : Timestamps.wallNanos()
        return state.withLock { s -> GateDecision in
            var remaining = RemainingFigures(capacity: limits.count + budgets.count)
            // Rate limits.
            for limit in limits {
                let key = bucketKey(limit, request)
                var b = s.buckets[key] ?? Bucket(tokens: limit.capacity, lastNanos: now)
                b.tokens = min(limit.capacity, b.tokens + Double(max(0, now - b.lastNanos)) / 1e9 * limit.refillPerSecond)
                b.lastNanos = now
                s.buckets[key] = b
                if b.tokens < 1 {
                    let wait = limit.refillPerSecond > 0 ? (1 - b.tokens) / limit.refillPerSecond : .infinity
                    let waitMs = wait.isFinite ? Int((min(wait, 86_400 * 365) * 1000).rounded(.up)) : nil
                    let waitText = waitMs.map { "next call possible in \($0) ms" } ?? "it does not refill"
                    return GateDecision(allowed: false, ruleId: limit.id, reason: "rate limit '\(limit.id)' exhausted for \(limit.scope == .principal ? "principal '\(request.principal)'" : request.tool); \(waitText)", role: role,
                                        retryAfterMs: waitMs)
                }
                remaining.append(.rateLimit(id: limit.id, tokens: (b.tokens - 1).rounded(toPlaces: 3)))
            }
            // Budgets (checked on a copy of the run's usage that ends with this block, so that
            // charging below mutates the stored one in place).
            if s.runs[request.runId] == nil { s.runs[request.runId] = RunUsage(startNanos: now) }
            do {
                let run = s.runs[request.runId]!
                for budget in budgets {
                    switch budget.scope {
                    case .run:
                        let calls = run.calls[budget.id, default: 0], tokens = run.tokens[budget.id, default: 0]
                        if let max = budget.calls, calls + 1 > max {
                            return GateDecision(allowed: false, ruleId: budget.id, reason: "run budget '\(budget.id)' exhausted: \(calls) of \(max) calls used", role: role)
                        }
                        if let max = budget.tokens, tokens >= max {
                            return GateDecision(allowed: false, ruleId: budget.id, reason: "run budget '\(budget.id)' exhausted: \(tokens) of \(max) tokens used", role: role)
                        }
                        if let max = budget.wallMs, Double(now - run.startNanos) / 1e6 > Double(max) {
                            return GateDecision(allowed: false, ruleId: budget.id, reason: "run budget '\(budget.id)' exhausted: wall time over \(max) ms", role: role)
                        }
                        remaining.append(.budget(id: budget.id, calls: budget.calls.map { $0 - calls - 1 }, tokens: budget.tokens.map { Int($0 - tokens) },
                                                 wallMs: budget.wallMs.map { $0 - Int((now - run.startNanos) / 1_000_000) }))
                    case .principal:
                        let w = s.windows[windowKey(budget, request, wall: wall)] ?? Window(startNanos: now, calls: 0, tokens: 0)
                        if let max = budget.calls, w.calls + 1 > max {
                            return GateDecision(allowed: false, ruleId: budget.id, reason: "budget '\(budget.id)' for principal '\(request.principal)' exhausted: \(w.calls) of \(max) calls used this window", role: role)
                        }
                        if let max = budget.tokens, w.tokens >= max {
                            return GateDecision(allowed: false, ruleId: budget.id, reason: "budget '\(budget.id)' for principal '\(request.principal)' exhausted: \(w.tokens) of \(max) tokens used this window", role: role)
                        }
                        remaining.append(.budget(id: budget.id, calls: budget.calls.map { $0 - w.calls - 1 }, tokens: budget.tokens.map { Int($0 - w.tokens) }, wallMs: nil))
                    }
                }
            }
            guard consume else {
                return GateDecision(allowed: true, ruleId: rule.id, reason: rule.decisionReason, role: role, figures: remaining)
            }
            for limit in limits {
                // In place: the bucket was stored above.
                let key = bucketKey(limit, request)
                s.buckets[key]!.tokens -= 1
                s.buckets[key]!.consumed += 1
            }
            for budget in budgets {
                switch budget.scope {
                case .run: s.runs[request.runId]!.calls[budget.id, default: 0] += 1
                case .principal:
                    let key = windowKey(budget, request, wall: wall)
                    var w = s.windows[key] ?? Window(startNanos: now, calls: 0, tokens: 0)
                    w.calls += 1; w.deltaCalls += 1
                    s.windows[key] = w
                }
            }
            return GateDecision(allowed: true, ruleId: rule.id, reason: rule.decisionReason, role: role, figures: remaining)
        }
    }

    public func charge(_ request: GateRequest, usage: ToolUsage, durationNanos: Int64) async {
        let now = clock()
        let profile = state.withLock { $0.runProfiles[request.runId] } ?? self.profile
        let budgets = profile.index.plan(for: request.tool).budgets
        let wall = Timestamps.wallNanos()
        state.withLock { s in
            for budget in budgets {
                switch budget.scope {
                case .run: s.runs[request.runId, default: RunUsage(startNanos: now)].tokens[budget.id, default: 0] += usage.tokens
                case .principal:
                    let key = windowKey(budget, request, wall: wall)
                    var w = s.windows[key] ?? Window(startNanos: now, calls: 0, tokens: 0)
                    w.tokens += usage.tokens; w.deltaTokens += usage.tokens
                    s.windows[key] = w
                }
            }
        }
    }

    /// Forgets a finished run's per-run budget counters and role binding.
    public func endRun(_ runId: String) {
        state.withLock { s in
            s.runs.removeValue(forKey: runId)
            s.runRoles.removeValue(forKey: runId)
            s.runProfiles.removeValue(forKey: runId)
        }
    }

    // MARK: Reload

    /// Makes `profile` the one new runs start with; runs in flight keep theirs. Rate-limit
    /// buckets and budget windows are keyed by id, so limits that keep their id keep their state.
    public func replaceProfile(_ profile: PolicyProfile) {
        current.withLock { $0 = profile }
    }

    // MARK: Authenticated roles

    /// Binds `role` to the calls of run `runId`: decisions for that run use it instead of the
    /// profile's mapping of the principal. The server binds the role its caller authenticated
    /// with (an API key's role, a JWT's role claim) before the run starts; `endRun` unbinds it.
    /// Throws if the profile has no such role.
    /// The role bound to `runId` (the caller's authenticated role), else the profile's role of `principal`.
    public func role(ofRun runId: String?, principal: String) -> String? {
        if let runId, let bound = state.withLock({ $0.runRoles[runId] }) { return bound }
        return profile.role(of: principal)
    }

    public func bindRole(_ role: String, toRun runId: String) throws(PolicyError) {
        let profile = state.withLock { s -> PolicyProfile in
            if let pinned = s.runProfiles[runId] { return pinned }
            let now = current.withLock { $0 }
            s.runProfiles[runId] = now
            return now
        }
        guard profile.roles.contains(role) else {
            throw PolicyError("unknown role '\(role)' (the policy has: \(profile.roles.joined(separator: ", ")))")
        }
        state.withLock { $0.runRoles[runId] = role }
    }

    // MARK: Persistence

    // Principal windows are keyed by the wall-clock window they fall in, so that they line up
    // across processes and hosts.
    private func windowKey(_ b: BudgetSpec, _ r: GateRequest, wall: Int64) -> WindowKey {
        WindowKey(budgetId: b.id, principal: r.principal, window: wall / (Int64(b.windowSeconds) * 1_000_000_000))
    }

    private func bucketKey(_ l: RateLimitSpec, _ r: GateRequest) -> BucketKey {
        l.scope == .principal ? BucketKey(limitId: l.id, perPrincipal: true, subject: r.principal)
            : BucketKey(limitId: l.id, perPrincipal: false, subject: r.tool)
    }

    /// Loads from `persistence` the bucket and window state `request` may touch and this process
    /// has not seen yet (other runs and hosts share it), before the synchronous decision.
    func loadState(for request: GateRequest) async {
        guard persistence != nil else { return }
        let profile = state.withLock { s in s.runProfiles[request.runId] } ?? current.withLock { $0 }
        let plan = profile.index.plan(for: request.tool)
        let wall = Timestamps.wallNanos()
        let buckets = plan.limits.map { bucketKey($0, request) }
        let windows = plan.principalBudgets.map { windowKey($0, request, wall: wall) }
        if !buckets.isEmpty || !windows.isEmpty { await preload(buckets: buckets, windows: windows) }
    }

    private func preload(buckets: [BucketKey], windows: [WindowKey]) async {
        guard let persistence else { return }
        let (missingBuckets, missingWindows) = state.withLock { s in
            (buckets.filter { s.buckets[$0] == nil }, windows.filter { s.windows[$0] == nil })
        }
        let bucketNames = missingBuckets.map { ($0, $0.storageKey) }, windowNames = missingWindows.map { ($0, $0.storageKey) }
        let names = bucketNames.map(\.1) + windowNames.map(\.1)
        guard !names.isEmpty, let stored = try? await persistence.policyState(keys: names) else { return }
        let now = clock()
        let wall = Timestamps.wallNanos()
        state.withLock { s in
            for (key, name) in bucketNames {
                if s.buckets[key] == nil, let v = stored[name], let t = v["tokens"]?.doubleValue, let at = v["at_wall_ns"]?.intValue {
                    // Convert the stored wall-clock time into our monotonic clock.
                    s.buckets[key] = Bucket(tokens: t, lastNanos: now - max(0, wall - Int64(at)))
                }
            }
            for (key, name) in windowNames {
                if s.windows[key] == nil, let v = stored[name] {
                    s.windows[key] = Window(startNanos: now, calls: v["calls"]?.intValue ?? 0, tokens: UInt64(max(0, v["tokens"]?.intValue ?? 0)))
                }
            }
        }
    }

    /// Writes what this process consumed back to the store, merging with other processes'
    /// consumption in one transaction. Throws if the store fails.
    public func flush() async throws {
        guard let persistence else { return }
        let (buckets, windows) = state.withLock { s -> ([BucketKey: Bucket], [WindowKey: Window]) in
            let b = s.buckets.filter { $0.value.consumed > 0 }
            let w = s.windows.filter { $0.value.deltaCalls > 0 || $0.value.deltaTokens > 0 }
            for k in b.keys { s.buckets[k]!.consumed = 0 }
            for k in w.keys { s.windows[k]!.deltaCalls = 0; s.windows[k]!.deltaTokens = 0 }
            return (b, w)
        }
        guard !buckets.isEmpty || !windows.isEmpty else { return }
        let limits = Dictionary(profile.rateLimits.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let wall = Timestamps.wallNanos()
        let bucketsByName = buckets.map { (name: $0.key.storageKey, limitId: $0.key.limitId, bucket: $0.value) }
        let windowsByName = windows.map { (name: $0.key.storageKey, window: $0.value) }
        try await persistence.updatePolicyState(keys: bucketsByName.map(\.name) + windowsByName.map(\.name)) { stored in
            var out: [String: JSONValue] = [:]
            for (key, id, b) in bucketsByName {
                guard let limit = limits[id] else { continue }
                var tokens = limit.capacity
                if let v = stored[key], let t = v["tokens"]?.doubleValue, let at = v["at_wall_ns"]?.intValue {
                    tokens = min(limit.capacity, t + Double(max(0, wall - Int64(at))) / 1e9 * limit.refillPerSecond)
                }
                out[key] = ["tokens": .double(max(0, tokens - b.consumed)), "at_wall_ns": .int(Int(wall))]
            }
            for (key, w) in windowsByName {
                let calls = (stored[key]?["calls"]?.intValue ?? 0) + w.deltaCalls
                let tokens = (stored[key]?["tokens"]?.intValue ?? 0) + Int(w.deltaTokens)
                out[key] = ["calls": .int(calls), "tokens": .int(tokens)]
            }
            return out
        }
    }
}

extension Double {
    func rounded(toPlaces p: Int) -> Double {
        var m = 1.0
        for _ in 0..<p { m *= 10 }
        return (self * m).rounded() / m
    }
}
