import Episodes
import HostSupport
import Store

/// The overview's time windows: the last hour by minute, the last day by quarter hour.
public enum ActivityWindow: String, CaseIterable, Sendable {
    case hour = "1h"
    case day = "24h"

    /// The window's length in milliseconds.
    public var spanMs: Int64 { self == .hour ? 3_600_000 : 86_400_000 }
    /// One bar of the chart.
    public var bucketMs: Int64 { self == .hour ? 60_000 : 900_000 }
    public var bucketCount: Int { Int(spanMs / bucketMs) }
    /// For people: "last hour", "last 24 hours".
    public var label: String { self == .hour ? "last hour" : "last 24 hours" }
    /// What one bucket is: "per minute", "per 15 minutes".
    public var bucketLabel: String { self == .hour ? "per minute" : "per 15 minutes" }
}

/// Runs, success rate, denials and consumption over an `ActivityWindow`, counted by the store
/// from its index (`EpisodeAggregating`: no episode is read), and the job queue by state.
public struct ActivityReport: Sendable {
    public var window: ActivityWindow
    public var sinceMs: Int64
    public var untilMs: Int64
    /// The principal the figures are limited to (a non-admin caller's), if any.
    public var principal: String?
    public var aggregates: EpisodeAggregates
    /// Jobs by state (nil: the store has no job queue); `dead` is the dead-letter queue.
    public var jobsByState: [String: Int]?

    /// Succeeded over finished runs in the window, nil when none finished.
    public var successRate: Double? {
        let finished = aggregates.byStatus.filter { $0.key != "running" }.values.reduce(0, +)
        return finished == 0 ? nil : Double(aggregates.byStatus["succeeded", default: 0]) / Double(finished)
    }

    /// The start of bucket `i` in milliseconds since the epoch.
    public func bucketStartMs(_ i: Int) -> Int64 { sinceMs + Int64(i) * window.bucketMs }

    /// Jobs waiting for a worker (available and retryable, every queue).
    public var queueDepth: Int? { jobsByState.map { $0["available", default: 0] + $0["retryable", default: 0] } }
    public var deadJobs: Int? { jobsByState.map { $0["dead", default: 0] } }
}

/// Builds `ActivityReport`s from a store that aggregates (SQLite or PostgreSQL).
public struct ActivityReportBuilder: Sendable {
    let store: any HostStore

    public init(store: any HostStore) { self.store = store }

    /// The report for `window` ending at `nowMs` (aligned up to the next bucket boundary, so
    /// bars keep their place between reloads), for `principal`'s runs (nil: everyone's).
    public func build(window: ActivityWindow, principal: String?, nowMs: Int64 = Timestamps.wallNanos() / 1_000_000) async throws -> ActivityReport {
        guard let aggregating = store.episodeAggregating else { throw ReportError("this store cannot aggregate episodes") }
        let until = (nowMs / window.bucketMs + 1) * window.bucketMs
        let since = until - window.spanMs
        let aggregates = try await aggregating.aggregateEpisodes(EpisodeAggregateQuery(
            sinceMs: since, untilMs: until, principal: principal, bucketMs: window.bucketMs, bucketCount: window.bucketCount))
        var jobs: [String: Int]?
        if let queue = store.jobQueue { jobs = try await queue.countsByState() }
        return ActivityReport(window: window, sinceMs: since, untilMs: until, principal: principal, aggregates: aggregates, jobsByState: jobs)
    }
}
