import JSON
import Synchronization
import Episodes
import HostSupport

/// The result of `EpisodeLog.write`: the durable episode, and whether the index took it.
public struct LoggedEpisode: Sendable {
    /// The durable episode.
    public let ref: EpisodeRef
    /// Why indexing failed (`nil` if indexed, or, after `EpisodeLog.indexAfterAnswers()` with
    /// the SQLite store, handed to the index: written before any later read of the store,
    /// failures reported on standard error and in `SQLiteStore.deferredIndexFailures`). The
    /// episode stands regardless; the index is repaired on the next open or by `repairIndex()`.
    public let indexError: String?
}

/// Episodes plus their index. With a store that keeps episodes itself (`HostStore.episodeChain`,
/// the PostgreSQL store) every host appends to that one chain, and the index entry is written in
/// the same transaction. Otherwise episodes are the segment log under the data directory
/// (`EpisodeSegmentLog`, the source of truth) indexed afterwards in the store — in a server or
/// worker, by the SQLite store after the writer is answered, before any later read
/// (`indexAfterAnswers()`, `SQLiteStore.indexDeferred`): if
/// indexing fails the episode still stands and the index is rebuilt from the log on the next
/// open (episodes missing from the index are added, entries the log lacks removed).
public final class EpisodeLog: Sendable {
    /// The episode log (not used for episodes when `chain` is set).
    public let episodes: EpisodeSegmentLog
    /// The store's own episode chain, when it keeps episodes (nil: the files are the episodes).
    public var chain: (any EpisodeChainStore)? { store.episodeChain }
    /// The index and policy state.
    public let store: any HostStore
    /// Episodes the open-time index repair added (or why it failed).
    public let openIndexRepair: Result<Int, StoreRepairError>
    /// Index entries of concurrent runs, written together before their writers are answered.
    private let indexBatch: IndexBatcher
    /// The SQLite store, which can write index entries after their runs are answered.
    private let sqlite: SQLiteStore?
    /// Whether it does (`indexAfterAnswers()`).
    private let answerFirst = Mutex(false)

    /// Why an index repair failed.
    public struct StoreRepairError: Error, Sendable, CustomStringConvertible {
        /// What went wrong.
        public let message: String
        public var description: String { message }
    }

    /// Opens the episode store under `dataDirectory` (recovering it as `openMode` says) and the
    /// index `store` (by default `SQLiteStore` at `<data>/nova.sqlite`), then repairs the index.
    public static func open(dataDirectory: String, store: (any HostStore)? = nil,
                            fileSystem: any EpisodeFileSystem = PosixEpisodeFileSystem(),
                            openMode: EpisodeSegmentLog.OpenMode = .recover) async throws -> EpisodeLog
    {
        let episodes = try EpisodeSegmentLog(dataDirectory: dataDirectory, fileSystem: fileSystem, openMode: openMode)
        let store = try store ?? SQLiteStore(path: episodes.dataDirectory + "/" + SQLiteStore.defaultFileName)
        let repair: Result<Int, StoreRepairError>
        do {
            // A chain kept in the store is indexed in the same transaction: nothing to repair.
            repair = .success(store.episodeChain == nil ? try await Self.repair(episodes: episodes, store: store) : 0)
        } catch {
            repair = .failure(StoreRepairError(message: "index repair failed: \(error)"))
        }
        let log = EpisodeLog(episodes: episodes, store: store, openIndexRepair: repair)
        do {
            // Entries from before the index kept denials and end times (once, after an upgrade).
            try await log.backfillIndexFacts()
        } catch {
            if case .success = repair { return EpisodeLog(episodes: episodes, store: store, openIndexRepair: .failure(StoreRepairError(message: "index backfill failed: \(error)"))) }
        }
        return log
    }

    private init(episodes: EpisodeSegmentLog, store: any HostStore, openIndexRepair: Result<Int, StoreRepairError>) {
        self.episodes = episodes
        self.store = store
        self.openIndexRepair = openIndexRepair
        indexBatch = IndexBatcher(store: store)
        sqlite = store as? SQLiteStore
    }

    /// Makes a run's writer be answered once its episode is durable, its index entry written
    /// afterwards (with the SQLite store; see `SQLiteDeferredIndex.swift`): for a long-running
    /// process — a server, a worker — which calls `settleIndex()` before it exits. Reads of the
    /// store in this process still find every answered run. Off by default: a one-shot command's
    /// index entries are written before it is answered, so the index is complete when it exits.
    public func indexAfterAnswers() { answerFirst.withLock { $0 = true } }

    /// The SQLite store if it takes index entries after the answer.
    private var deferredIndex: SQLiteStore? { answerFirst.withLock { $0 } ? sqlite : nil }


    /// Writes `body` as the episode of `runId` (see `EpisodeSegmentLog.write`), then indexes it.
    @discardableResult
    public func write(body: JSONValue, runId: String) async throws -> LoggedEpisode {
        try await write(body: body, runId: runId) { EpisodeSummary(ref: $0, document: body) }
    }

    /// Appends to the store's chain (indexed in the same transaction), or writes the file and
    /// then indexes it with `summary`.
    package func write(body: JSONValue, runId: String,
                       summary: @escaping @Sendable (EpisodeRef) -> EpisodeSummary) async throws -> LoggedEpisode {
        if let chain {
            return LoggedEpisode(ref: try await chain.appendEpisode(body: body, runId: runId, summary: summary), indexError: nil)
        }
        let ref = try await episodes.write(body: body, runId: runId)
        let indexError = await withCheckedContinuation { (c: CheckedContinuation<String?, Never>) in
            index(summary(ref)) { c.resume(returning: $0) }
        }
        return LoggedEpisode(ref: ref, indexError: indexError)
    }

    /// Hands `summary` to the index and calls `done` with why indexing failed (nil: indexed).
    /// After `indexAfterAnswers()`, `done(nil)` comes at once: the entry is written later.
    private func index(_ summary: EpisodeSummary, then done: @escaping @Sendable (String?) -> Void) {
        if let deferredIndex {
            deferredIndex.indexDeferred(summary)
            done(nil)
        } else {
            indexBatch.index(summary, then: done)
        }
    }

    /// `write(body:runId:summary:)` for a body its writer has already encoded (`members`); a
    /// store that keeps the chain itself takes the `JSONValue` form, `body()`.
    /// `alone`: the caller knows no other run is in flight (`EpisodeSegmentLog.write`).
    package func write(members: () -> CanonicalMembers, body: () -> JSONValue, runId: String, alone: Bool = false,
                       summary: @escaping @Sendable (EpisodeRef) -> EpisodeSummary) async throws -> LoggedEpisode {
        if let chain {
            return LoggedEpisode(ref: try await chain.appendEpisode(body: body(), runId: runId, summary: summary), indexError: nil)
        }
        // Indexed from the thread that made the episode durable: the index entry is handed on
        // before this task runs again, and the task resumes once.
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<LoggedEpisode, any Error>) in
            do {
                try episodes.write(members: members(), runId: runId, alone: alone) { written in
                    switch written {
                    case .failure(let error): c.resume(throwing: error)
                    case .success(let ref): self.index(summary(ref)) { c.resume(returning: LoggedEpisode(ref: ref, indexError: $0)) }
                    }
                }
            } catch {
                c.resume(throwing: error)
            }
        }
    }

    /// Returns once the index holds every episode written so far (the SQLite store writes an
    /// entry after its run is answered): before a clean exit.
    public func settleIndex() async {
        if let sqlite { _ = try? await sqlite.onConnection {} }
    }

    /// Adds to the index every intact episode it lacks (or holds at another seq) and removes
    /// entries whose file is gone. Returns how many entries were added.
    @discardableResult
    public func repairIndex() async throws -> Int {
        if chain != nil { return 0 }
        return try await Self.repair(episodes: episodes, store: store)
    }

    private static func repair(episodes: EpisodeSegmentLog, store: any HostStore) async throws -> Int {
        let indexed = try await store.indexedRunIds()
        let inLog = episodes.runIds()
        var add: [EpisodeSummary] = []
        for (id, seq) in inLog.sorted(by: { $0.value < $1.value }) where indexed[id] != seq {
            if let e = try? episodes.show(runId: id), e.problem == nil { add.append(EpisodeSummary(e)) }
        }
        // An indexed seq that moved (the entry is re-added above) is replaced by INSERT OR REPLACE.
        try await store.indexEpisodes(add)
        let gone = indexed.keys.filter { inLog[$0] == nil }
        try await store.removeEpisodes(runIds: Array(gone))
        return add.count
    }

    /// Rebuilds the whole index from the episode log; returns the number indexed.
    @discardableResult
    public func reindex() async throws -> Int {
        if chain != nil { throw EpisodeLogError("the index of a chain kept in the store is written with each episode: there is nothing to rebuild") }
        let all = try episodes.intactEpisodes().map(EpisodeSummary.init)
        try await store.replaceEpisodeIndex(with: all)
        return all.count
    }

    /// Indexed episodes, newest first.
    public func list(status: String? = nil, principal: String? = nil, limit: Int = 50, offset: Int = 0) async throws -> [EpisodeSummary] {
        try await store.listEpisodes(status: status, principal: principal, limit: limit, offset: offset)
    }

    /// Indexed episodes matching `filter`, newest first.
    public func list(_ filter: EpisodeFilter, limit: Int = 50, offset: Int = 0) async throws -> [EpisodeSummary] {
        try await store.listEpisodes(filter, limit: limit, offset: offset)
    }

    /// The stored episode of `runId` (from the store's chain or the log).
    public func show(runId: String) async throws -> Episode {
        if let chain { return try await chain.episode(runId: runId) }
        return try episodes.show(runId: runId)
    }

    /// Walks the chain (see `EpisodeSegmentLog.verify()` and `EpisodeChainStore.verifyEpisodes()`).
    public func verify() async throws -> VerifyReport {
        if let chain { return try await chain.verifyEpisodes() }
        return try episodes.verify()
    }

    /// `EpisodeSegmentLog.recover()`, then an index repair.
    @discardableResult
    public func recover() async throws -> RecoveryReport {
        if let chain {
            // Rows commit atomically: there are no temp files or backups to repair, only a
            // chain to check.
            return RecoveryReport(removedTempFiles: [], restoredMissing: [], restoredCorrupt: [], rewrittenBackups: [],
                                  unrepairable: [], chain: try await chain.verifyEpisodes())
        }
        let report = try episodes.recover()
        try await repairIndex()
        return report
    }
}

/// An operation the episode log cannot do in its configuration.
public struct EpisodeLogError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Writes the index entries of concurrent runs in one transaction (the runs' episodes were
/// made durable together by the log's group commit; one transaction per run would cost as much
/// CPU again). Each caller learns the outcome of the transaction that holds its entry, so a run
/// is listed by the time its caller has the answer. (After `EpisodeLog.indexAfterAnswers()`
/// the SQLite store takes entries after the answer instead: `SQLiteStore.indexDeferred`.)
final class IndexBatcher: @unchecked Sendable {
    private let store: any HostStore
    private let lock = ConditionLock()
    private var pending: [(EpisodeSummary, @Sendable (String?) -> Void)] = []
    private var draining = false

    init(store: any HostStore) { self.store = store }

    /// Indexes `summary` and calls `done` with why that failed (nil: indexed), on the task
    /// that ran the transaction. Does not wait: callable from any thread.
    func index(_ summary: EpisodeSummary, then done: @escaping @Sendable (String?) -> Void) {
        let start = lock.withLock { () -> Bool in
            pending.append((summary, done))
            if draining { return false }
            draining = true
            return true
        }
        if start { Task { await self.drain() } }
    }

    /// Writes batches until nothing is pending.
    private func drain() async {
        while true {
            let batch = lock.withLock {
                let b = pending
                pending = []
                if b.isEmpty { draining = false }
                return b
            }
            if batch.isEmpty { return }
            var failure: String?
            do { try await store.indexEpisodes(batch.map(\.0)) } catch { failure = "\(error)" }
            for (_, done) in batch { done(failure) }
        }
    }
}
