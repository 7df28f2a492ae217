import JSON

/// A store that keeps the episodes themselves, as one hash chain shared by every host that
/// uses it (the PostgreSQL store). `EpisodeLog` writes through it instead of the files under
/// the data directory when `HostStore.episodeChain` is not nil.
public protocol EpisodeChainStore: Sendable {
    /// Appends `body` as the next episode of the chain (sealed with `EpisodeFormat.seal`) and
    /// writes its index entry, `summary(ref)`, in the same transaction; durable on return.
    /// Concurrent appends from any number of hosts never fork the chain. Throws
    /// `EpisodeError.duplicateRunId` when `runId` is already in the chain.
    func appendEpisode(body: JSONValue, runId: String, summary: @escaping @Sendable (EpisodeRef) -> EpisodeSummary) async throws -> EpisodeRef
    /// The stored episode of `runId` (with its `problem` when the stored bytes do not check
    /// out); throws `EpisodeError.notFound`.
    func episode(runId: String) async throws -> Episode
    /// Walks the whole chain in seq order and reports every broken link, the first one first.
    func verifyEpisodes() async throws -> VerifyReport
}

extension EpisodeFormat {
    /// Seals `body` as the episode of `runId` at `seq` after `prevHash`: its hash and the exact
    /// bytes to store. Throws what `EpisodeFileChain.write` would for an
    /// invalid run id or body.
    public static func seal(body: JSONValue, runId: String, seq: Int, prevHash: String) throws -> (hash: String, bytes: [UInt8]) {
        encode(members: try checkedMembers(body: body, runId: runId), runId: runId, seq: seq, prevHash: prevHash)
    }

    /// Reads stored bytes that claim to be the episode of `runId`: the episode, with `problem`
    /// set (and the kind of problem) when they are not intact. `location` names where they are.
    public static func read(bytes: [UInt8], runId: String, location: String) -> (episode: Episode, issue: ChainIssue.Kind?) {
        switch check(bytes: bytes, expectedRunId: runId, path: location) {
        case .valid(let e):
            return (e, nil)
        case let .invalid(kind, reason, seq, hash, doc):
            let ref = EpisodeRef(runId: runId, seq: seq ?? 0, hash: hash ?? "", path: location)
            return (Episode(document: doc ?? .string(String(decoding: bytes, as: UTF8.self)), ref: ref,
                            prevHash: doc?["prev_hash"]?.stringValue ?? "", problem: "\(kind.rawValue): \(reason)"), kind)
        }
    }
}

extension VerifyReport {
    /// The report of a chain kept in a database (no backups, no temp files).
    public init(checked: Int, tip: EpisodeRef?, issues: [ChainIssue]) {
        self.init(checked: checked, tip: tip, issues: issues, backupProblems: [], staleTempFiles: [])
    }
}
