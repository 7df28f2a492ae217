import Episodes
import HostSupport
import JSON
import Store

/// Nearest-rank percentiles over durations in milliseconds.
public struct DurationStats: Sendable, Equatable {
    /// How many values.
    public var count: Int
    public var p50Ms: Double
    public var p95Ms: Double
    public var maxMs: Double

    /// The statistics of `values` (all zero when empty).
    public init(_ values: [Double]) {
        let sorted = values.sorted()
        count = sorted.count
        func rank(_ p: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let i = Int((p * Double(sorted.count)).rounded(.up)) - 1
            return sorted[min(max(i, 0), sorted.count - 1)]
        }
        p50Ms = rank(0.50)
        p95Ms = rank(0.95)
        maxMs = sorted.last ?? 0
    }

    public var json: JSONValue {
        ["count": .int(count), "p50_ms": .double(Self.round(p50Ms)), "p95_ms": .double(Self.round(p95Ms)), "max_ms": .double(Self.round(maxMs))]
    }

    static func round(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
}

/// One plan's runs in the window.
public struct PlanKPI: Sendable {
    /// The plan's name, or `template:NAME@VERSION` for a plan rendered from a template.
    public var plan: String
    public var runs: Int
    public var succeeded: Int
    public var duration: DurationStats
}

/// One tool's calls (allowed attempts) in the window.
public struct ToolKPI: Sendable {
    public var tool: String
    public var calls: Int
    /// Calls that ended with an error.
    public var errors: Int
    public var duration: DurationStats
}

/// Denials by one rule (or rate limit, budget, `default-deny`).
public struct DenialKPI: Sendable {
    public var rule: String
    public var count: Int
    /// The tools it denied, sorted.
    public var tools: [String]
    /// Up to three runs it denied a call of.
    public var exampleRuns: [String]
}

/// One error message and how often runs ended with it.
public struct ErrorKPI: Sendable {
    public var message: String
    public var count: Int
    public var exampleRuns: [String]
}

/// What a principal consumed in the window, and the budgets' remaining figures as its latest
/// decision saw them.
public struct BudgetKPI: Sendable {
    public var principal: String
    public var calls: Int
    public var tokens: Int
    public var costMicros: Int
    /// `{id: {"calls"|"tokens"|"wall_ms": n}}` from the principal's latest allowed decision
    /// (budgets and rate limits; run budgets as they stood in that run).
    public var remaining: JSONValue
}

/// An agent and its lifecycle state.
public struct AgentKPI: Sendable {
    public var name: String
    public var namespace: String
    public var principal: String
    public var status: String
    public var version: Int
}

/// The status of a host over a time window: runs, durations, denials, budgets, errors, agents
/// and jobs. Computed by `StatusReportBuilder` from the episodes recorded in the window; rendered
/// by `StatusReportRenderer`.
public struct StatusReport: Sendable {
    /// RFC 3339 bounds of the window.
    public var since: String
    public var until: String
    /// The window as asked (`24h`).
    public var window: String
    /// The agent the report is limited to, if any.
    public var agent: String?
    /// The principal the report is limited to (an agent's, or a non-admin caller's), if any.
    public var principal: String?
    /// Whether more runs were in the window than the builder reads (the figures cover the newest).
    public var truncated: Bool
    public var runsByStatus: [String: Int]
    public var plans: [PlanKPI]
    public var tools: [ToolKPI]
    public var denials: [DenialKPI]
    public var errors: [ErrorKPI]
    public var budgets: [BudgetKPI]
    public var agents: [AgentKPI]
    /// Jobs by state (nil: the store has no job queue); `dead` is the dead-letter queue depth.
    public var jobsByState: [String: Int]?
    /// Runs per time bucket over the window (oldest first), with the failed and denied among them.
    public var timeline: [(start: String, runs: Int, unsuccessful: Int)]
    public var durations: DurationStats

    /// Runs in the window.
    public var totalRuns: Int { runsByStatus.values.reduce(0, +) }
    /// Succeeded runs over finished runs (0 when there are none).
    public var successRate: Double {
        let finished = runsByStatus.filter { $0.key != "running" }.values.reduce(0, +)
        return finished == 0 ? 0 : Double(runsByStatus["succeeded", default: 0]) / Double(finished)
    }
    /// Dead jobs (the dead-letter queue).
    public var dlqDepth: Int? { jobsByState.map { $0["dead", default: 0] } }

    /// The JSON form (`--format json`, `GET /v1/reports/status`).
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "since": .string(since), "until": .string(until), "window": .string(window), "truncated": .bool(truncated),
            "runs": [
                "total": .int(totalRuns), "by_status": .object(runsByStatus.mapValues { .int($0) }),
                "success_rate": .double((successRate * 10_000).rounded() / 10_000), "duration": durations.json,
            ],
            "plans": .array(plans.map { p in
                ["plan": .string(p.plan), "runs": .int(p.runs), "succeeded": .int(p.succeeded), "duration": p.duration.json]
            }),
            "tools": .array(tools.map { t in ["tool": .string(t.tool), "calls": .int(t.calls), "errors": .int(t.errors), "duration": t.duration.json] }),
            "denials": .array(denials.map { d in
                ["rule": .string(d.rule), "count": .int(d.count), "tools": .array(d.tools.map { .string($0) }),
                 "example_runs": .array(d.exampleRuns.map { .string($0) })]
            }),
            "errors": .array(errors.map { e in
                ["message": .string(e.message), "count": .int(e.count), "example_runs": .array(e.exampleRuns.map { .string($0) })]
            }),
            "budgets": .array(budgets.map { b in
                ["principal": .string(b.principal), "consumed": ["calls": .int(b.calls), "tokens": .int(b.tokens), "cost_micros": .int(b.costMicros)],
                 "remaining": b.remaining]
            }),
            "agents": .array(agents.map { a in
                ["name": .string(a.name), "namespace": .string(a.namespace), "principal": .string(a.principal), "status": .string(a.status),
                 "version": .int(a.version)]
            }),
            "timeline": .array(timeline.map { ["start": .string($0.start), "runs": .int($0.runs), "unsuccessful": .int($0.unsuccessful)] }),
        ]
        o["agent"] = agent.map(JSONValue.string) ?? .null
        o["principal"] = principal.map(JSONValue.string) ?? .null
        if let jobsByState {
            o["jobs"] = ["by_state": .object(jobsByState.mapValues { .int($0) }), "dlq_depth": .int(jobsByState["dead", default: 0])]
        } else {
            o["jobs"] = .null
        }
        return .object(o)
    }
}

/// Why a report cannot be made as asked.
public struct ReportError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The window of a report: `30m`, `24h`, `7d`, `2w`, `90s`.
public enum ReportWindow {
    /// The window's length in milliseconds, or nil when `text` is not `<n><s|m|h|d|w>` (1 s to 366 d).
    public static func milliseconds(_ text: String) -> Int64? {
        guard let unit = text.last, let n = Int64(text.dropLast()), n > 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1_000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "d": scale = 86_400_000
        case "w": scale = 7 * 86_400_000
        default: return nil
        }
        let (ms, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow || ms > 366 * 86_400_000 ? nil : ms
    }

    /// The message for a window that does not parse.
    public static let help = "since must be a duration such as 30m, 24h, 7d or 2w (at most 366d)"
}

/// Builds a `StatusReport` from the episode index and documents, the agent store and the job queue.
public struct StatusReportBuilder: Sendable {
    let log: EpisodeLog
    /// At most this many runs are read (newest first); the report says when the window had more.
    public var maxRuns: Int
    /// Time buckets of the timeline.
    public var buckets: Int = 24

    static let emptyObject: JSONValue = [:]

    public init(log: EpisodeLog, maxRuns: Int = 10_000) {
        self.log = log
        self.maxRuns = maxRuns
    }

    /// The agent named `name` (`namespace/name` or a name in `default`), if any.
    public func agent(named name: String) async throws -> Agent? {
        guard let store = log.store.agentStore else { return nil }
        let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
        return parts.count == 2 ? try await store.agent(namespace: parts[0], name: parts[1]) : try await store.agent(namespace: "default", name: name)
    }

    /// The report over the `window` (`24h`) ending now, for `principal`'s runs (nil: everyone's),
    /// limited to `agent` (its runs are its principal's) when given.
    public func build(window: String, principal: String? = nil, agent: String? = nil,
                      nowMs: Int64 = Timestamps.wallNanos() / 1_000_000) async throws -> StatusReport {
        guard let span = ReportWindow.milliseconds(window) else { throw ReportError(ReportWindow.help) }
        let sinceMs = nowMs - span
        var principalFilter = principal
        var agents: [AgentKPI] = []
        if let agent {
            guard let a = try await self.agent(named: agent) else { throw ReportError("no agent \(agent)") }
            if let principal, principal != a.principal { throw ReportError("no agent \(agent)") }
            principalFilter = a.principal
            agents = [AgentKPI(name: a.name, namespace: a.namespace, principal: a.principal, status: a.status.rawValue, version: a.version)]
        } else if let store = log.store.agentStore {
            agents = try await store.listAgents(AgentFilter(limit: 500)).filter { principal == nil || $0.principal == principal }.map {
                AgentKPI(name: $0.name, namespace: $0.namespace, principal: $0.principal, status: $0.status.rawValue, version: $0.version)
            }
        }

        // The index, newest first, until a whole page finished before the window.
        var rows: [EpisodeSummary] = []
        var truncated = false
        var offset = 0
        paging: while true {
            let page = try await log.list(status: nil, principal: principalFilter, limit: 500, offset: offset)
            if page.isEmpty { break }
            var anyInWindow = false
            for row in page {
                guard let finished = Timestamps.parseMs(row.finishedAt.isEmpty ? row.startedAt : row.finishedAt) else { continue }
                guard finished >= sinceMs && finished <= nowMs + 60_000 else { continue }
                anyInWindow = true
                if rows.count == maxRuns { truncated = true; break paging }
                rows.append(row)
            }
            if !anyInWindow { break }
            offset += page.count
        }

        var byStatus: [String: Int] = [:]
        var planDurations: [String: (runs: Int, ok: Int, ms: [Double])] = [:]
        var toolDurations: [String: (errors: Int, ms: [Double])] = [:]
        var denials: [String: (count: Int, tools: Set<String>, runs: [String])] = [:]
        var errors: [String: (count: Int, runs: [String])] = [:]
        var budgets: [String: (calls: Int, tokens: Int, cost: Int, remaining: JSONValue, at: String)] = [:]
        var allDurations: [Double] = []
        let bucketMs = max(1, span / Int64(max(1, buckets)))
        var timeline = Array(repeating: (runs: 0, unsuccessful: 0), count: max(1, buckets))

        for row in rows {
            byStatus[row.status, default: 0] += 1
            allDurations.append(row.durationMs)
            if let at = Timestamps.parseMs(row.finishedAt.isEmpty ? row.startedAt : row.finishedAt) {
                let i = min(timeline.count - 1, max(0, Int((at - sinceMs) / bucketMs)))
                timeline[i].runs += 1
                if row.status != "succeeded" { timeline[i].unsuccessful += 1 }
            }
            var b = budgets[row.principal] ?? (calls: 0, tokens: 0, cost: 0, remaining: Self.emptyObject, at: "")
            b.calls += row.totals.calls; b.tokens += row.totals.tokens; b.cost += row.totals.costMicros
            budgets[row.principal] = b

            let doc = try? await log.show(runId: row.runId).document
            // Per plan, or per template (`template:name@version`) when the plan was rendered from one.
            var plan = row.planName.isEmpty ? "(unnamed)" : row.planName
            if let t = doc?["template"], let name = t["name"]?.stringValue, let version = t["version"]?.stringValue {
                plan = "template:\(name)@\(version)"
            }
            planDurations[plan, default: (0, 0, [])].runs += 1
            planDurations[plan, default: (0, 0, [])].ms.append(row.durationMs)
            if row.status == "succeeded" { planDurations[plan, default: (0, 0, [])].ok += 1 }
            guard let doc else { continue }
            if row.status != "succeeded", let e = doc["error"]?.stringValue, !e.isEmpty {
                var entry = errors[e] ?? (0, [])
                entry.count += 1
                if entry.runs.count < 3 { entry.runs.append(row.runId) }
                errors[e] = entry
            }
            // Every attempt, foreach elements and template sub-runs included.
            for recorded in EpisodeAttempts.all(in: doc) {
                let tool = recorded.tool, attempt = recorded.attempt
                guard let d = attempt["decision"], let outcome = d["decision"]?.stringValue else { continue }
                if outcome != "allow" {
                    let rule = d["rule"]?.stringValue ?? "?"
                    var entry = denials[rule] ?? (0, [], [])
                    entry.count += 1
                    entry.tools.insert(tool)
                    if entry.runs.count < 3 && !entry.runs.contains(row.runId) { entry.runs.append(row.runId) }
                    denials[rule] = entry
                    continue
                }
                var t = toolDurations[tool] ?? (0, [])
                t.ms.append(attempt["duration_ms"]?.doubleValue ?? 0)
                if attempt["error"] != nil { t.errors += 1 }
                toolDurations[tool] = t
                let started = attempt["started_at"]?.stringValue ?? ""
                if let remaining = d["remaining"], started >= budgets[row.principal]!.at {
                    budgets[row.principal]!.remaining = remaining
                    budgets[row.principal]!.at = started
                }
            }
        }

        var jobs: [String: Int]?
        if let queue = log.store.jobQueue { jobs = try await queue.countsByState() }
        let bucketStarts = (0..<timeline.count).map { Timestamps.format(nanosSinceEpoch: (sinceMs + Int64($0) * bucketMs) * 1_000_000) }
        return StatusReport(
            since: Timestamps.format(nanosSinceEpoch: sinceMs * 1_000_000), until: Timestamps.format(nanosSinceEpoch: nowMs * 1_000_000),
            window: window, agent: agent, principal: principalFilter, truncated: truncated, runsByStatus: byStatus,
            plans: planDurations.map { PlanKPI(plan: $0.key, runs: $0.value.runs, succeeded: $0.value.ok, duration: DurationStats($0.value.ms)) }
                .sorted { ($0.runs, $1.plan) > ($1.runs, $0.plan) },
            tools: toolDurations.map { ToolKPI(tool: $0.key, calls: $0.value.ms.count, errors: $0.value.errors, duration: DurationStats($0.value.ms)) }
                .sorted { ($0.calls, $1.tool) > ($1.calls, $0.tool) },
            denials: denials.map { DenialKPI(rule: $0.key, count: $0.value.count, tools: $0.value.tools.sorted(), exampleRuns: $0.value.runs) }
                .sorted { ($0.count, $1.rule) > ($1.count, $0.rule) },
            errors: Array(errors.map { ErrorKPI(message: $0.key, count: $0.value.count, exampleRuns: $0.value.runs) }
                .sorted { ($0.count, $1.message) > ($1.count, $0.message) }.prefix(10)),
            budgets: budgets.map { BudgetKPI(principal: $0.key, calls: $0.value.calls, tokens: $0.value.tokens, costMicros: $0.value.cost, remaining: $0.value.remaining) }
                .sorted { $0.principal < $1.principal },
            agents: agents.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }, jobsByState: jobs,
            timeline: zip(bucketStarts, timeline).map { (start: $0, runs: $1.runs, unsuccessful: $1.unsuccessful) },
            durations: DurationStats(allDurations))
    }
}
