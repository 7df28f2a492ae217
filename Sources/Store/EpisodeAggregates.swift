import Episodes
import JSON

/// What `EpisodeAggregating.aggregateEpisodes` counts: runs that ended in `[sinceMs, untilMs)`,
/// optionally one principal's, split into `bucketCount` buckets of `bucketMs` from `sinceMs`.
public struct EpisodeAggregateQuery: Sendable, Hashable {
    public var sinceMs: Int64
    public var untilMs: Int64
    /// Only this principal's runs (nil: everyone's).
    public var principal: String?
    public var bucketMs: Int64
    public var bucketCount: Int
    /// At most this many denial rules, most frequent first.
    public var maxRules: Int

    public init(sinceMs: Int64, untilMs: Int64, principal: String? = nil, bucketMs: Int64, bucketCount: Int, maxRules: Int = 20) {
        self.sinceMs = sinceMs
        self.untilMs = untilMs
        self.principal = principal
        self.bucketMs = max(1, bucketMs)
        self.bucketCount = max(1, bucketCount)
        self.maxRules = max(1, maxRules)
    }

    /// The bucket a run that ended at `ms` falls in, clamped to the buckets.
    public func bucket(of ms: Int64) -> Int {
        Int(min(Int64(bucketCount - 1), max(0, (ms - sinceMs) / bucketMs)))
    }
}

/// Runs that ended in one time bucket.
public struct EpisodeBucket: Sendable, Hashable {
    public var runs: Int
    public var succeeded: Int
    public init(runs: Int = 0, succeeded: Int = 0) {
        self.runs = runs
        self.succeeded = succeeded
    }
}

/// Denials by one rule.
public struct EpisodeDenialCount: Sendable, Hashable {
    public var rule: String
    public var count: Int
    /// The tools it refused, sorted.
    public var tools: [String]
    /// Up to three runs it refused a call of, newest first.
    public var exampleRuns: [String]
    public init(rule: String, count: Int, tools: [String], exampleRuns: [String]) {
        self.rule = rule
        self.count = count
        self.tools = tools
        self.exampleRuns = exampleRuns
    }
}

/// What one principal's runs in the window consumed.
public struct EpisodeConsumption: Sendable, Hashable {
    public var principal: String
    public var runs: Int
    public var totals: EpisodeTotals
    public init(principal: String, runs: Int, totals: EpisodeTotals) {
        self.principal = principal
        self.runs = runs
        self.totals = totals
    }
}

/// The answer to an `EpisodeAggregateQuery`, computed by the store in SQL from the index.
public struct EpisodeAggregates: Sendable, Hashable {
    public var byStatus: [String: Int]
    /// `bucketCount` buckets, oldest first.
    public var buckets: [EpisodeBucket]
    public var denials: [EpisodeDenialCount]
    /// Per principal, sorted by principal.
    public var consumption: [EpisodeConsumption]

    public init(byStatus: [String: Int], buckets: [EpisodeBucket], denials: [EpisodeDenialCount], consumption: [EpisodeConsumption]) {
        self.byStatus = byStatus
        self.buckets = buckets
        self.denials = denials
        self.consumption = consumption
    }

    /// Runs in the window.
    public var runs: Int { byStatus.values.reduce(0, +) }
}

/// A store that answers aggregate questions about indexed episodes in its own query language,
/// so that a dashboard need not read episodes (both stores implement it).
///
/// Index entries written before the index kept denials and end times are brought up to date by
/// `EpisodeLog.backfillIndexFacts()` (at open), which reads their episodes once.
public protocol EpisodeAggregating: Sendable {
    /// Counts runs, buckets, denials and consumption for `query`.
    func aggregateEpisodes(_ query: EpisodeAggregateQuery) async throws -> EpisodeAggregates
    /// Up to `limit` indexed run ids whose entry predates the denial and end-time columns.
    func runIdsLackingIndexFacts(limit: Int) async throws -> [String]
    /// Stored policy-state entries whose key starts with `prefix` (budget windows, rate buckets).
    func policyStateEntries(prefix: String) async throws -> [String: JSONValue]
}

extension HostStore {
    /// The store's aggregate queries, when it has them.
    public var episodeAggregating: (any EpisodeAggregating)? { self as? any EpisodeAggregating }
}

extension EpisodeLog {
    /// Brings index entries written before the index kept denials and end times up to date by
    /// reading their episodes, 500 at a time; returns how many were updated. Runs at open; a
    /// failure leaves the rest for the next open (the overview then undercounts old denials).
    @discardableResult
    public func backfillIndexFacts() async throws -> Int {
        guard let aggregating = store.episodeAggregating else { return 0 }
        var done = 0
        var unreadable = Set<String>()
        while true {
            let ids = try await aggregating.runIdsLackingIndexFacts(limit: 500 + unreadable.count).filter { !unreadable.contains($0) }
            if ids.isEmpty { return done }
            var summaries: [EpisodeSummary] = []
            for id in ids {
                // An episode that cannot be read keeps its entry as it is (verify reports it).
                guard let episode = try? await show(runId: id), episode.problem == nil else { unreadable.insert(id); continue }
                summaries.append(EpisodeSummary(episode))
            }
            try await store.indexEpisodes(summaries)
            done += summaries.count
        }
    }
}
