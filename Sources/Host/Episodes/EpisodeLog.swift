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
    public init(dataDirectory: String, store: (any HostStore)? = nil,
                fileSystem: any EpisodeFileSystem = PosixEpisodeFileSystem(),
                openMode: EpisodeStore.OpenMode = .recover) throws
    {
        episodes = try EpisodeStore(dataDirectory: dataDirectory, fileSystem: fileSystem, openMode: openMode)
        self.store = try store ?? SQLiteStore(path: episodes.dataDirectory + "/" + SQLiteStore.defaultFileName)
        do {
            openIndexRepair = .success(try Self.repair(episodes: episodes, store: self.store))
        } catch {
            openIndexRepair = .failure(StoreRepairError(message: "index repair failed: \(error)"))
        }
    }

    /// Writes the episode of `record` (its `json`, which the run engine has already redacted).
    @discardableResult
    public func write(_ record: RunRecord) throws -> LoggedEpisode {
        try write(body: record.json, runId: record.runId)
    }

    /// Writes `body` as the episode of `runId` (see `EpisodeStore.write`), then indexes it.
    @discardableResult
    public func write(body: JSONValue, runId: String) throws -> LoggedEpisode {
        let ref = try episodes.write(body: body, runId: runId)
        do {
            try store.indexEpisode(EpisodeSummary(ref: ref, document: body))
            return LoggedEpisode(ref: ref, indexError: nil)
        } catch {
            return LoggedEpisode(ref: ref, indexError: "\(error)")
        }
    }

    /// `write(_:)` for async callers (the blocking file work runs on its own thread).
    @discardableResult
    public func write(_ record: RunRecord) async throws -> LoggedEpisode {
        try await write(body: record.json, runId: record.runId)
    }

    /// `write(body:runId:)` for async callers (the blocking file work runs on its own thread).
    @discardableResult
    public func write(body: JSONValue, runId: String) async throws -> LoggedEpisode {
        let ref = try await episodes.write(body: body, runId: runId)
        do {
            try store.indexEpisode(EpisodeSummary(ref: ref, document: body))
            return LoggedEpisode(ref: ref, indexError: nil)
        } catch {
            return LoggedEpisode(ref: ref, indexError: "\(error)")
        }
    }

    /// Adds to the index every intact episode it lacks (or holds at another seq) and removes
    /// entries whose file is gone. Returns how many entries were added.
    @discardableResult
    public func repairIndex() throws -> Int {
        try Self.repair(episodes: episodes, store: store)
    }

    private static func repair(episodes: EpisodeStore, store: any HostStore) throws -> Int {
        let indexed = try store.indexedRunIds()
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
        try store.indexEpisodes(add)
        let gone = indexed.keys.filter { !onDisk.contains($0) }
        try store.removeEpisodes(runIds: Array(gone))
        return add.count
    }

    /// Rebuilds the whole index from the episode files; returns the number indexed.
    @discardableResult
    public func reindex() throws -> Int {
        let all = try episodes.intactEpisodes().map(EpisodeSummary.init)
        try store.replaceEpisodeIndex(with: all)
        return all.count
    }

    /// Indexed episodes, newest first.
    public func list(status: String? = nil, principal: String? = nil, limit: Int = 50, offset: Int = 0) throws -> [EpisodeSummary] {
        try store.listEpisodes(status: status, principal: principal, limit: limit, offset: offset)
    }

    /// The stored episode of `runId` (from its file).
    public func show(runId: String) throws -> Episode { try episodes.show(runId: runId) }

    /// See `EpisodeStore.verify()`.
    public func verify() throws -> VerifyReport { try episodes.verify() }

    /// `EpisodeStore.recover()`, then an index repair.
    @discardableResult
    public func recover() throws -> RecoveryReport {
        let report = try episodes.recover()
        try repairIndex()
        return report
    }
}
