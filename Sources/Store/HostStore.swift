import JSON
import Episodes

/// Where rate-limit and budget state persists between runs (the host store implements it).
public protocol PolicyStatePersistence: Sendable {
    /// Reads the values stored under `keys` (missing keys are absent from the result).
    func policyState(keys: [String]) async throws -> [String: JSONValue]
    /// In one transaction that excludes other writers (SQLite `BEGIN IMMEDIATE`, PostgreSQL
    /// row locks): reads `keys`, calls `update` with the values found (missing keys absent) and
    /// writes every key `update` returns. Keys it does not return are left as they are. If
    /// `update` throws, nothing is written and the error is rethrown.
    func updatePolicyState(keys: [String], _ update: @escaping @Sendable ([String: JSONValue]) throws -> [String: JSONValue]) async throws
}

/// The host's persistent state besides the episode files: the episode index and the policy
/// state (rate-limit buckets, budget windows). Asynchronous and SQL-agnostic, so that the
/// embedded SQLite store and a PostgreSQL store shared by several hosts (reached through an
/// async driver) both implement it; `StoreConformance` in the tests is the contract both pass.
///
/// Every method may be called concurrently from several tasks and processes.
public protocol HostStore: PolicyStatePersistence {
    /// Adds or replaces the index entry of `summary.runId` (one with the same seq is replaced).
    func indexEpisode(_ summary: EpisodeSummary) async throws
    /// Adds or replaces several entries in one transaction.
    func indexEpisodes(_ summaries: [EpisodeSummary]) async throws
    /// Indexed episodes matching `filter`, newest (highest seq) first.
    func listEpisodes(_ filter: EpisodeFilter, limit: Int, offset: Int) async throws -> [EpisodeSummary]
    /// How many indexed episodes match `filter`.
    func countEpisodes(_ filter: EpisodeFilter) async throws -> Int
    /// The index entry of `runId`, if any.
    func episode(runId: String) async throws -> EpisodeSummary?
    /// Every indexed run id with its seq (to find what the index lacks).
    func indexedRunIds() async throws -> [String: Int]
    /// Removes the index entries of `runIds`.
    func removeEpisodes(runIds: [String]) async throws
    /// Replaces the whole index with `summaries` in one transaction (reindex).
    func replaceEpisodeIndex(with summaries: [EpisodeSummary]) async throws
}

/// What listing the episode index filters on (every field given must match; nil matches all).
/// The index is queried in SQL with an index per field, so a filtered page stays fast with
/// many runs.
public struct EpisodeFilter: Sendable, Equatable {
    /// A `RunStatus` raw value (`succeeded`, `failed`, …).
    public var status: String?
    /// Who ran it.
    public var principal: String?
    /// The plan's name, exactly.
    public var planName: String?
    /// Only goals of this agent (by agent id): runs whose id is one of the agent's goals.
    public var agentId: String?
    /// Only episodes recorded before this chain position (`seq` below it): a cursor through
    /// the history that episodes recorded meanwhile do not shift.
    public var beforeSeq: Int?

    public init(status: String? = nil, principal: String? = nil, planName: String? = nil, agentId: String? = nil, beforeSeq: Int? = nil) {
        (self.status, self.principal, self.planName, self.agentId, self.beforeSeq) = (status, principal, planName, agentId, beforeSeq)
    }
}

extension HostStore {
    /// `listEpisodes` with no filter.
    public func listEpisodes(limit: Int = 50, offset: Int = 0) async throws -> [EpisodeSummary] {
        try await listEpisodes(EpisodeFilter(), limit: limit, offset: offset)
    }

    /// Indexed episodes, newest first, filtered by status and principal.
    public func listEpisodes(status: String?, principal: String?, limit: Int, offset: Int) async throws -> [EpisodeSummary] {
        try await listEpisodes(EpisodeFilter(status: status, principal: principal), limit: limit, offset: offset)
    }

    /// How many indexed episodes have `status` and `principal` (nil: any).
    public func countEpisodes(status: String?, principal: String?) async throws -> Int {
        try await countEpisodes(EpisodeFilter(status: status, principal: principal))
    }
}

extension HostStore {
    /// The store's own episode chain; nil (the default) when episodes are files under the data
    /// directory.
    public var episodeChain: (any EpisodeChainStore)? { self as? any EpisodeChainStore }
}
