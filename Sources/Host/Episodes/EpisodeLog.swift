import JSON

/// The result of `EpisodeLog.write`: the durable episode, and whether the index took it.
public struct LoggedEpisode: Sendable {
    /// The durable episode.
    public let ref: EpisodeRef
    /// Why indexing failed (`nil` if indexed). The episode stands regardless; the index is
    /// repaired on the next open or by `repairIndex()`.
    public let indexError: String?
}

/// Episodes plus their index: writes the episode file (the source of truth), then indexes it
/// in the `HostStore`. If indexing fails the episode still stands and the index is repaired on
/// the next open (episodes missing from the index are added, entries without a file removed).
public final class EpisodeLog: Sendable {
    /// The episode files.
    public let episodes: EpisodeStore
    /// The index and policy state.
    public let store: any HostStore
    /// Episodes the open-time index repair added (or why it failed).
    public let openIndexRepair: Result<Int, StoreRepairError>

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
                            openMode: EpisodeStore.OpenMode = .recover) async throws -> EpisodeLog
    {
        let episodes = try EpisodeStore(dataDirectory: dataDirectory, fileSystem: fileSystem, openMode: openMode)
        let store = try store ?? SQLiteStore(path: episodes.dataDirectory + "/" + SQLiteStore.defaultFileName)
        let repair: Result<Int, StoreRepairError>
        do {
            repair = .success(try await Self.repair(episodes: episodes, store: store))
        } catch {
            repair = .failure(StoreRepairError(message: "index repair failed: \(error)"))
        }
        return EpisodeLog(episodes: episodes, store: store, openIndexRepair: repair)
    }

    private init(episodes: EpisodeStore, store: any HostStore, openIndexRepair: Result<Int, StoreRepairError>) {
        self.episodes = episodes
        self.store = store
        self.openIndexRepair = openIndexRepair
    }

    /// Writes the episode of `record` (its `json`, which the run engine has already redacted)
    /// and indexes it from the typed record. The blocking file work runs on its own thread.
    @discardableResult
    public func write(_ record: RunRecord) async throws -> LoggedEpisode {
        let ref = try await episodes.write(body: record.json, runId: record.runId)
        return await index(ref, EpisodeSummary(ref: ref, record: record))
    }

    /// Writes `body` as the episode of `runId` (see `EpisodeStore.write`), then indexes it.
    @discardableResult
    public func write(body: JSONValue, runId: String) async throws -> LoggedEpisode {
        let ref = try await episodes.write(body: body, runId: runId)
        return await index(ref, EpisodeSummary(ref: ref, document: body))
    }

    private func index(_ ref: EpisodeRef, _ summary: EpisodeSummary) async -> LoggedEpisode {
        do {
            try await store.indexEpisode(summary)
            return LoggedEpisode(ref: ref, indexError: nil)
        } catch {
            return LoggedEpisode(ref: ref, indexError: "\(error)")
        }
    }

    /// Adds to the index every intact episode it lacks (or holds at another seq) and removes
    /// entries whose file is gone. Returns how many entries were added.
    @discardableResult
    public func repairIndex() async throws -> Int {
        try await Self.repair(episodes: episodes, store: store)
    }

    private static func repair(episodes: EpisodeStore, store: any HostStore) async throws -> Int {
        let indexed = try await store.indexedRunIds()
        let fs = episodes.fs
        var onDisk = Set<String>()
        var add: [EpisodeSummary] = []
        for name in try fs.listDirectory(episodes.directory) where name.hasSuffix(".json") && !name.hasPrefix(EpisodeStore.tempPrefix) {
            let id = String(name.dropLast(5))
            guard EpisodeFormat.isValidRunId(id) else { continue }
            onDisk.insert(id)
            if indexed[id] != nil { continue }
            if let e = try? episodes.show(runId: id), e.problem == nil { add.append(EpisodeSummary(e)) }
        }
        // An indexed seq that moved (the entry is re-added above) is replaced by INSERT OR REPLACE.
        try await store.indexEpisodes(add)
        let gone = indexed.keys.filter { !onDisk.contains($0) }
        try await store.removeEpisodes(runIds: Array(gone))
        return add.count
    }

    /// Rebuilds the whole index from the episode files; returns the number indexed.
    @discardableResult
    public func reindex() async throws -> Int {
        let all = try episodes.intactEpisodes().map(EpisodeSummary.init)
        try await store.replaceEpisodeIndex(with: all)
        return all.count
    }

    /// Indexed episodes, newest first.
    public func list(status: String? = nil, principal: String? = nil, limit: Int = 50, offset: Int = 0) async throws -> [EpisodeSummary] {
        try await store.listEpisodes(status: status, principal: principal, limit: limit, offset: offset)
    }

    /// The stored episode of `runId` (from its file).
    public func show(runId: String) throws -> Episode { try episodes.show(runId: runId) }

    /// See `EpisodeStore.verify()`.
    public func verify() throws -> VerifyReport { try episodes.verify() }

    /// `EpisodeStore.recover()`, then an index repair.
    @discardableResult
    public func recover() async throws -> RecoveryReport {
        let report = try episodes.recover()
        try await repairIndex()
        return report
    }
}
