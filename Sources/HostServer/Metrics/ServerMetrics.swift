import CoreMetrics
import Host
import Metrics
import Prometheus
import Synchronization

/// The server's Prometheus metrics, recorded through swift-metrics with a factory of its own
/// (no global bootstrap, so several servers can live in one process, as in the tests).
///
/// - `nova_http_requests_total{route,method,status}`, `nova_http_request_duration_seconds{route,method}`
/// - `nova_tool_calls_total{driver,tool,outcome}`, `nova_tool_call_duration_seconds{driver,tool}` (per attempt)
/// - `nova_step_duration_seconds{driver,tool,status}`
/// - `nova_policy_decisions_total{outcome,rule}`
/// - `nova_episode_write_duration_seconds`, `nova_episode_write_failures_total`
/// - `nova_runs_total{origin,status}`, `nova_runs_in_flight`
/// - `nova_drivers_loaded`, `nova_mcp_sessions`
/// - `nova_policy_reloads_total{outcome}` (`reloaded`, `unchanged`, `failed`)
/// - `nova_driver_log_records_total{driver,level}` (records drivers wrote through `host->log`)
/// - read from the store at each scrape (every host on the store sees the same figures):
///   `nova_recorded_runs{status}` (episodes by run status), `nova_jobs{state}`,
///   `nova_jobs_dead_letter` (the dead-letter queue depth), `nova_agents{status}`
public final class ServerMetrics: RunObserver, Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let runsInFlight: CoreMetrics.Gauge
    private let driversLoaded: CoreMetrics.Gauge
    private let mcpSessions: CoreMetrics.Gauge
    /// Handles by label and dimensions: making one through the factory validates the names and
    /// takes the registry's lock, several times per call.
    private let counters = Mutex<[MetricKey: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[MetricKey: CoreMetrics.Timer]>([:])
    /// Bus calls over REST the policy denied.
    let busDenied = Atomic<Int>(0)

    /// A fresh registry with histogram buckets suited to tool calls (100 µs to 30 s).
    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
        ]
        factory = f
        runsInFlight = CoreMetrics.Gauge(label: "nova_runs_in_flight", factory: f)
        driversLoaded = CoreMetrics.Gauge(label: "nova_drivers_loaded", factory: f)
        mcpSessions = CoreMetrics.Gauge(label: "nova_mcp_sessions", factory: f)
        // Exported from the start (as 0): an alert on "failures > 0" needs the series to exist.
        Counter(label: "nova_episode_write_failures_total", factory: f).increment(by: 0)
    }

    /// A dimension: its name and value.
    private typealias Dimension = (name: String, value: String)

    /// A handle's label and its dimensions' values. Every call site of a label names the same
    /// dimensions in the same order, so the values tell its handles apart; kept inline (at most
    /// three, passed as optionals rather than an array), a lookup allocates nothing: several
    /// run per tool call.
    private struct MetricKey: Hashable {
        let label: String
        let v0: String, v1: String, v2: String
        init(_ label: String, _ d0: Dimension?, _ d1: Dimension?, _ d2: Dimension?) {
            self.label = label
            v0 = d0?.value ?? ""
            v1 = d1?.value ?? ""
            v2 = d2?.value ?? ""
        }
    }

    private func counter(_ label: String, _ d0: Dimension? = nil, _ d1: Dimension? = nil, _ d2: Dimension? = nil) -> CoreMetrics.Counter {
        Self.cached(in: counters, MetricKey(label, d0, d1, d2)) {
            Counter(label: label, dimensions: Self.dimensions(d0, d1, d2), factory: factory)
        }
    }

    private func timer(_ label: String, _ d0: Dimension? = nil, _ d1: Dimension? = nil, _ d2: Dimension? = nil) -> CoreMetrics.Timer {
        Self.cached(in: timers, MetricKey(label, d0, d1, d2)) {
            CoreMetrics.Timer(label: label, dimensions: Self.dimensions(d0, d1, d2), factory: factory)
        }
    }

    /// The dimensions swift-metrics takes, made only when a handle is.
    private static func dimensions(_ d: Dimension?...) -> [(String, String)] { d.compactMap { $0.map { ($0.name, $0.value) } } }

    /// The handle of `key` in `cache`, made (outside the lock) on first use.
    private static func cached<Handle: Sendable>(in cache: borrowing Mutex<[MetricKey: Handle]>, _ key: MetricKey, make: () -> Handle) -> Handle {
        if let h = cache.withLock({ $0[key] }) { return h }
        let h = make()
        cache.withLock { $0[key] = h }
        return h
    }

    /// Counts one record a driver logged.
    public func driverLogged(_ record: DriverLogRecord) {
        counter("nova_driver_log_records_total", ("driver", record.driver), ("level", record.levelName)).increment()
    }

    /// Counts one policy reload by its outcome.
    public func policyReloaded(_ report: PolicyReloadReport) {
        counter("nova_policy_reloads_total", ("outcome", report.outcome.rawValue)).increment()
    }

    /// Counts one HTTP request by its route template (never the raw path) and status.
    public func request(route: String, method: String, status: Int, nanoseconds: Int64) {
        counter("nova_http_requests_total", ("route", route), ("method", method), ("status", String(status))).increment()
        timer("nova_http_request_duration_seconds", ("route", route), ("method", method)).recordNanoseconds(nanoseconds)
    }

    /// Records a finished run: tool calls, step and call durations, policy decisions, the
    /// episode write.
    public func runFinished(_ record: RunRecord, origin: String, episode: EpisodeRef?, episodeError: String?, finishSeconds: Double) {
        counter("nova_runs_total", ("origin", origin), ("status", record.status.rawValue)).increment()
        timer("nova_episode_write_duration_seconds").recordNanoseconds(Int64(finishSeconds * 1e9))
        if episode == nil { counter("nova_episode_write_failures_total").increment() }
        for step in record.steps {
            let (driver, tool) = ToolId.split(step.call) ?? (step.call, "")
            var stepNanos: Int64 = 0
            for attempt in step.attempts {
                // An attempt without a decision never reached policy (its input was invalid): no call.
                guard let d = attempt.decision else { continue }
                counter("nova_policy_decisions_total", ("outcome", d.allowed ? "allow" : "deny"), ("rule", d.ruleId)).increment()
                guard d.allowed else { continue }
                let nanos = Int64(attempt.durationMs * 1e6)
                stepNanos += nanos
                let outcome = attempt.error.map { $0.kind.rawValue } ?? "ok"
                counter("nova_tool_calls_total", ("driver", driver), ("tool", tool), ("outcome", outcome)).increment()
                timer("nova_tool_call_duration_seconds", ("driver", driver), ("tool", tool)).recordNanoseconds(nanos)
            }
            if !step.attempts.isEmpty {
                timer("nova_step_duration_seconds", ("driver", driver), ("tool", tool), ("status", step.status.rawValue)).recordNanoseconds(stepNanos)
            }
        }
    }

    /// The store's gauges in the Prometheus text format: recorded runs by status, jobs by state
    /// and the dead-letter queue depth, agents by status (each family only when the store has it).
    func renderStore(runs: [String: Int], jobs: [String: Int]?, agents: [String: Int]?) -> [UInt8] {
        var text = ""
        func family(_ name: String, _ help: String, _ label: String, _ values: [String: Int]) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for (k, v) in values.sorted(by: { $0.key < $1.key }) { text += "\(name){\(label)=\"\(k)\"} \(v)\n" }
        }
        family("nova_recorded_runs", "Runs recorded as episodes in the store, by status.", "status", runs)
        if let jobs {
            family("nova_jobs", "Jobs in the store's queue, by state.", "state", jobs)
            text += "# HELP nova_jobs_dead_letter Jobs in the dead-letter queue (state dead).\n# TYPE nova_jobs_dead_letter gauge\nnova_jobs_dead_letter \(jobs["dead", default: 0])\n"
        }
        if let agents { family("nova_agents", "Agents in the store, by status.", "status", agents) }
        return Array(text.utf8)
    }

    /// The bus's series in the Prometheus text format: this process's counters and, per
    /// subscription, its lag (messages not yet acked), dead letters and the age of its oldest
    /// pending message, read from the store now.
    func renderBus(_ counters: BusCounters, _ stats: [(String, SubscriptionStats)]) -> [UInt8] {
        var text = ""
        func counter(_ name: String, _ help: String, _ value: Int) {
            text += "# HELP \(name) \(help)\n# TYPE \(name) counter\n\(name) \(value)\n"
        }
        counter("nova_bus_published_total", "Messages published through this process.", counters.published.load(ordering: .relaxed))
        counter("nova_bus_delivered_total", "Deliveries (leases) made by this process.", counters.delivered.load(ordering: .relaxed))
        counter("nova_bus_acked_total", "Deliveries acked through this process.", counters.acked.load(ordering: .relaxed))
        counter("nova_bus_redelivered_total", "Deliveries after the first of a message (nack or expired lease).", counters.redelivered.load(ordering: .relaxed))
        counter("nova_bus_dead_lettered_total", "Messages this process moved to a dead-letter queue by nack.", counters.deadLettered.load(ordering: .relaxed))
        counter("nova_bus_denied_total", "Bus calls over REST the policy denied.", busDenied.load(ordering: .relaxed))
        func escape(_ s: String) -> String { s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        let now = BusLimits.nowMs()
        for (name, help, value) in [("nova_bus_subscription_lag", "Messages of the subscription not yet acked (ready or leased).", { (s: SubscriptionStats) in Double(s.ready + s.leased) }),
                                    ("nova_bus_subscription_dead_letters", "Messages in the subscription's dead-letter queue.", { (s: SubscriptionStats) in Double(s.dead) }),
                                    ("nova_bus_subscription_oldest_pending_seconds", "Age of the subscription's oldest message not yet acked.",
                                     { (s: SubscriptionStats) in s.oldestPendingAtMs.map { Double(max(0, now - $0)) / 1000 } ?? 0 })] {
            text += "# HELP \(name) \(help)\n# TYPE \(name) gauge\n"
            for (sub, s) in stats { text += "\(name){subscription=\"\(escape(sub))\"} \(value(s))\n" }
        }
        return Array(text.utf8)
    }

    /// The Prometheus text exposition, with the gauges sampled now.
    public func render(runsInFlight: Int, driversLoaded: Int, mcpSessions: Int) -> [UInt8] {
        self.runsInFlight.record(runsInFlight)
        self.driversLoaded.record(driversLoaded)
        self.mcpSessions.record(mcpSessions)
        var out: [UInt8] = []
        out.reserveCapacity(16_384)
        registry.emit(into: &out)
        return out
    }
}
