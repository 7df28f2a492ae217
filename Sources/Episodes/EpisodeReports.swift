import JSON

/// The step of an episode write that failed.
public enum EpisodeWriteStep: String, Sendable, CaseIterable {
    /// Creating or writing the temp file next to the primary.
    case write
    /// `fsync` of the temp file.
    case fsync
    /// Renaming the temp file to `<run_id>.json`.
    case rename
    /// `fsync` of the episodes directory after the rename.
    case fsyncDirectory = "fsync directory"
    /// Writing the copy in `episodes/_backup/` (its write, fsync, rename or directory fsync).
    case backup
    /// Taking the lock or bringing the store into a consistent state before writing.
    case prepare
    /// Starting a new segment of the episode log (create, preallocate, fsync).
    case rotate
}

/// What a failed write left behind.
public enum EpisodeWriteOutcome: String, Sendable {
    /// Nothing is visible: no `<run_id>.json`, no backup, the chain is as before. The same run
    /// id can be written again.
    case notWritten = "not written"
    /// The complete episode is in place and part of the chain, but its durability or its
    /// backup was not confirmed. Do not write the run id again; `recover()` (or the next
    /// write, which recovers first) re-syncs and re-creates the backup.
    case writtenUnconfirmed = "written, not confirmed durable"
}

/// Errors of the episode store.
public enum EpisodeError: Error, Sendable, CustomStringConvertible {
    /// A write failed at `step`; `cause` names the operation, path and errno.
    case writeFailed(runId: String, step: EpisodeWriteStep, outcome: EpisodeWriteOutcome, cause: EpisodeFileSystemError)
    /// The run id cannot name a file (see `EpisodeFormat.isValidRunId`).
    case invalidRunId(String)
    /// The body was refused before anything was written.
    case invalidBody(runId: String, reason: String)
    /// An episode with this run id already exists.
    case duplicateRunId(String)
    /// No episode with this run id.
    case notFound(runId: String)
    /// A file-system operation failed outside a write (open, recover, verify, list).
    case io(EpisodeFileSystemError)

    public var description: String {
        switch self {
        case let .writeFailed(runId, step, outcome, cause):
            let tail = outcome == .notWritten
                ? "nothing was written"
                : "the episode is in place but not confirmed durable; run `nova-host episodes recover`"
            return "episode \(runId): \(step.rawValue) failed: \(cause) — \(tail)"
        case .invalidRunId(let id):
            return "invalid run id \"\(id)\": use 1–128 characters of A–Z a–z 0–9 - _ . not starting with . or _"
        case let .invalidBody(runId, reason): return "episode \(runId): invalid body: \(reason)"
        case .duplicateRunId(let id): return "episode \(id) already exists"
        case .notFound(let id): return "no episode \(id)"
        case .io(let e): return "episode store: \(e)"
        }
    }
}

/// One broken link found while walking the chain.
public struct ChainIssue: Sendable, Equatable, CustomStringConvertible {
    /// What is wrong.
    public enum Kind: String, Sendable {
        /// The content no longer matches its hash (or its bytes were altered).
        case changed
        /// The file is not JSON or lacks the chain fields.
        case corrupt
        /// No episode holds this seq (a gap, or the tail is gone).
        case missing
        /// The episode's `prev_hash` is not the previous episode's `hash`.
        case prevHashMismatch = "prev_hash mismatch"
        /// Two episodes claim the same seq.
        case duplicateSeq = "duplicate seq"
        /// The file name and the `run_id` inside differ.
        case misnamed
    }

    /// What is wrong.
    public let kind: Kind
    /// The chain position concerned, when known.
    public let seq: Int?
    /// The run id concerned, when known (for `missing`, from a backup or the head record).
    public let runId: String?
    /// A precise explanation.
    public let detail: String

    /// An issue of `kind` at `seq` for `runId`.
    public init(kind: Kind, seq: Int?, runId: String?, detail: String) {
        self.kind = kind
        self.seq = seq
        self.runId = runId
        self.detail = detail
    }

    public var description: String {
        var where_ = seq.map { "seq \($0)" } ?? "seq ?"
        if let runId { where_ += " (run \(runId))" }
        return "\(where_): \(kind.rawValue): \(detail)"
    }

    /// JSON form for `--json` output.
    public var json: JSONValue {
        var o: [String: JSONValue] = ["kind": .string(kind.rawValue), "detail": .string(detail)]
        o["seq"] = seq.map { .int($0) } ?? .null
        o["run_id"] = runId.map { .string($0) } ?? .null
        return .object(o)
    }
}

/// The result of `EpisodeFileChain.verify()`.
public struct VerifyReport: Sendable, CustomStringConvertible {
    /// Episode files examined.
    public let checked: Int
    /// The last chain position found, if any.
    public let tip: EpisodeRef?
    /// Every broken link, in seq order (issues whose seq is unknown come first).
    public let issues: [ChainIssue]
    /// Problems with the `_backup` copies (missing, different, corrupt); they do not break the
    /// chain, `recover()` repairs them.
    public let backupProblems: [String]
    /// Temp files of interrupted writes (harmless; `recover()` removes them).
    public let staleTempFiles: [String]

    /// The first broken link, if any.
    public var firstBroken: ChainIssue? { issues.first }
    /// Whether the chain is intact.
    public var isIntact: Bool { issues.isEmpty }

    public var description: String {
        if let first = firstBroken {
            return "chain BROKEN after checking \(checked) episode(s); first broken link: \(first)"
                + (issues.count > 1 ? " (\(issues.count - 1) more issue(s))" : "")
        }
        let tipText = tip.map { ", tip \($0)" } ?? ""
        return "chain intact: \(checked) episode(s)\(tipText)"
            + (backupProblems.isEmpty ? "" : "; \(backupProblems.count) backup problem(s)")
    }

    /// JSON form for `--json` output.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "ok": .bool(isIntact), "checked": .int(checked),
            "issues": .array(issues.map(\.json)),
            "backup_problems": .array(backupProblems.map { .string($0) }),
            "stale_temp_files": .array(staleTempFiles.map { .string($0) }),
        ]
        o["first_broken"] = firstBroken?.json ?? .null
        if let tip { o["tip"] = ["run_id": .string(tip.runId), "seq": .int(tip.seq), "hash": .string(tip.hash)] } else { o["tip"] = .null }
        return .object(o)
    }
}

/// What `EpisodeFileChain.recover()` (and the recovery done on open) did.
public struct RecoveryReport: Sendable, CustomStringConvertible {
    /// Temp files of interrupted writes that were removed.
    public let removedTempFiles: [String]
    /// Run ids whose missing primary was restored from its backup.
    public let restoredMissing: [String]
    /// Run ids whose corrupt or changed primary was moved to `_quarantine/` and restored
    /// from its backup.
    public let restoredCorrupt: [String]
    /// Run ids whose backup was missing or wrong and was written again from the primary.
    public let rewrittenBackups: [String]
    /// Problems recovery could not repair (both copies bad, conflicting copies).
    public let unrepairable: [String]
    /// The chain as it stands after the repair.
    public let chain: VerifyReport
    /// Episodes moved from the legacy layout (one file per run) into the log on this open.
    public let migratedLegacyFiles: Int

    /// A report of what recovery did (a database chain has no temp files or backups: all empty).
    public init(removedTempFiles: [String] = [], restoredMissing: [String] = [], restoredCorrupt: [String] = [],
                rewrittenBackups: [String] = [], unrepairable: [String] = [], chain: VerifyReport, migratedLegacyFiles: Int = 0)
    {
        self.migratedLegacyFiles = migratedLegacyFiles
        self.removedTempFiles = removedTempFiles
        self.restoredMissing = restoredMissing
        self.restoredCorrupt = restoredCorrupt
        self.rewrittenBackups = rewrittenBackups
        self.unrepairable = unrepairable
        self.chain = chain
    }

    /// Whether recovery changed anything on disk.
    public var changedAnything: Bool {
        !(removedTempFiles.isEmpty && restoredMissing.isEmpty && restoredCorrupt.isEmpty && rewrittenBackups.isEmpty)
    }

    public var description: String {
        var parts: [String] = []
        if !removedTempFiles.isEmpty { parts.append("removed \(removedTempFiles.count) stale temp file(s)") }
        if !restoredMissing.isEmpty { parts.append("restored missing: \(restoredMissing.joined(separator: ", "))") }
        if !restoredCorrupt.isEmpty { parts.append("restored corrupt from backup: \(restoredCorrupt.joined(separator: ", "))") }
        if !rewrittenBackups.isEmpty { parts.append("rewrote \(rewrittenBackups.count) backup(s)") }
        if !unrepairable.isEmpty { parts.append("could not repair: \(unrepairable.joined(separator: "; "))") }
        if migratedLegacyFiles > 0 { parts.append("migrated \(migratedLegacyFiles) episode file(s) into the log") }
        if parts.isEmpty { parts.append("nothing to repair") }
        return parts.joined(separator: "; ") + "; " + chain.description
    }

    /// JSON form for `--json` output.
    public var json: JSONValue {
        [
            "removed_temp_files": .array(removedTempFiles.map { .string($0) }),
            "restored_missing": .array(restoredMissing.map { .string($0) }),
            "restored_corrupt": .array(restoredCorrupt.map { .string($0) }),
            "rewritten_backups": .array(rewrittenBackups.map { .string($0) }),
            "unrepairable": .array(unrepairable.map { .string($0) }),
            "migrated_legacy_files": .int(migratedLegacyFiles),
            "chain": chain.json,
        ]
    }
}
