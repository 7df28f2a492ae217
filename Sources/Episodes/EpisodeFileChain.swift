import JSON
import HostSupport
import Threads

/// The episode chain kept as files: one JSON document per run under `<data>/episodes/<run_id>.json`, each
/// carrying `seq`, `prev_hash` and `hash` so the chain detects a changed or missing record,
/// with a copy in `<data>/episodes/_backup/`.
///
/// A write goes: temp file in the same directory → fsync → rename → fsync the directory, and
/// the same for the backup copy; `write` returns only when all of it is durable. Writers are
/// serialized by an in-process queue and an `flock` on `<data>/episodes/.lock`, so several
/// processes sharing one data directory chain correctly. Concurrent writers in one process
/// share the fsyncs (group commit): the leader writes a batch of episodes, fsyncs their files
/// in parallel and the two directories once for the whole batch.
///
/// Opening recovers (unless `openMode` is `.noRecovery`): stale temp files are removed, a
/// missing or corrupt primary is restored from its backup (the bad file is kept in
/// `_quarantine/`), a missing or wrong backup is rewritten, and the chain is checked; the
/// result is `openRecovery`.
public final class EpisodeFileChain: Sendable {
    /// How `init` treats the files it finds.
    public enum OpenMode: Sendable {
        /// Run `recover()` on open (the start-up repair).
        case recover
        /// Touch nothing (for `verify`, which must report what is on disk).
        case noRecovery
    }

    /// The data directory (`./.nova` by default in the CLI).
    public let dataDirectory: String
    /// `<data>/episodes`.
    public let directory: String
    /// `<data>/episodes/_backup`.
    public let backupDirectory: String
    /// `<data>/episodes/_quarantine`: corrupt files that recovery replaced.
    public let quarantineDirectory: String
    /// What the recovery on open did (`nil` with `.noRecovery`).
    public var openRecovery: RecoveryReport? { openReport.value }

    /// Most episodes one leader commits together.
    static let maxBatch = 64
    package static let tempPrefix = ".tmp-"

    package let fs: any EpisodeFileSystem
    private let lockFile: EpisodeLockFile
    private let queue = WriteQueue()
    private let openReport = OpenReportBox()

    /// Opens (creating if needed) the episode store under `dataDirectory`.
    public init(dataDirectory: String, fileSystem: any EpisodeFileSystem = PosixEpisodeFileSystem(),
                openMode: OpenMode = .recover) throws
    {
        var data = dataDirectory
        while data.count > 1 && data.hasSuffix("/") { data.removeLast() }
        self.dataDirectory = data
        directory = data + "/episodes"
        backupDirectory = directory + "/_backup"
        quarantineDirectory = directory + "/_quarantine"
        fs = fileSystem
        do {
            try fileSystem.createDirectory(backupDirectory)
        } catch let e as EpisodeFileSystemError {
            throw EpisodeError.io(e)
        }
        lockFile = try EpisodeLockFile(path: directory + "/.lock")
        if openMode == .recover {
            openReport.value = try exclusive { try recoverLocked() }
        }
    }

    // MARK: Paths

    /// The primary file of `runId`.
    public func path(of runId: String) -> String { directory + "/" + runId + ".json" }
    /// The backup file of `runId`.
    public func backupPath(of runId: String) -> String { backupDirectory + "/" + runId + ".json" }
    func tempPath(of runId: String) -> String { directory + "/" + Self.tempPrefix + runId + ".json" }
    func backupTempPath(of runId: String) -> String { backupDirectory + "/" + Self.tempPrefix + runId + ".json" }

    // MARK: Writing

    /// Writes the episode of `runId` with `body` (a JSON object; the store adds `run_id`, `seq`,
    /// `prev_hash`, `hash`, `episode_version`) and returns once the primary, its directory entry
    /// and the backup are durable. Throws `EpisodeError`; on `.writeFailed` the error's
    /// outcome says whether anything is visible.
    @discardableResult
    public func write(body: JSONValue, runId: String) throws -> EpisodeRef {
        guard EpisodeFormat.isValidRunId(runId) else { throw EpisodeError.invalidRunId(runId) }
        let members = try EpisodeFormat.validateBody(body, runId: runId).get()
        let request = PendingWrite(runId: runId, body: members)
        let q = queue
        q.lock.lock()
        q.pending.append(request)
        while request.result == nil {
            if q.busy { q.lock.wait(); continue }
            q.busy = true
            let n = min(q.pending.count, Self.maxBatch)
            let batch = Array(q.pending.prefix(n))
            q.pending.removeFirst(n)
            q.lock.unlock()
            let outcome = commitBatch(batch)
            q.lock.lock()
            for (r, result) in outcome.results { r.result = result }
            q.pending.insert(contentsOf: outcome.requeue, at: 0)
            q.busy = false
            q.lock.broadcast()
        }
        let result = request.result!
        q.lock.unlock()
        return try result.get()
    }

    /// `write(body:runId:)` for async callers: the blocking write runs on its own thread, so
    /// no cooperative thread is held for the fsyncs, and concurrent runs share them (group
    /// commit) instead of queueing behind the few cooperative threads.
    @discardableResult
    public func write(body: JSONValue, runId: String) async throws -> EpisodeRef {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<EpisodeRef, any Error>) in
            PosixThread.detach {
                do {
                    let ref: EpisodeRef = try self.write(body: body, runId: runId)
                    continuation.resume(returning: ref)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Runs `body` with this store's writers excluded: in this process (the write queue) and
    /// in others (the `flock`).
    private static func exclusive<T>(_ q: WriteQueue, _ lockFile: EpisodeLockFile, _ body: () throws -> T) throws -> T {
        q.lock.lock()
        while q.busy { q.lock.wait() }
        q.busy = true
        q.lock.unlock()
        defer {
            q.lock.lock()
            q.busy = false
            q.lock.broadcast()
            q.lock.unlock()
        }
        try lockFile.lockExclusive()
        defer { lockFile.unlock() }
        return try body()
    }

    private func exclusive<T>(_ body: () throws -> T) throws -> T {
        try Self.exclusive(queue, lockFile, body)
    }

    /// One write being committed.
    private struct Staged {
        let request: PendingWrite
        let ref: EpisodeRef
        let tempPath: String
        let backupTempPath: String
        var temp: EpisodeFileHandle?
        var backupTemp: EpisodeFileHandle?
    }

    private struct BatchOutcome {
        var results: [(PendingWrite, Result<EpisodeRef, EpisodeError>)] = []
        var requeue: [PendingWrite] = []
        mutating func fail(_ r: PendingWrite, _ e: EpisodeError) { results.append((r, .failure(e))) }
    }

    private func removeQuietly(_ path: String) -> Bool {
        do { try fs.removeFile(path); return true } catch { return !fs.fileExists(path) }
    }

    /// Commits `batch` in order. Every request gets a result, or is returned for requeueing
    /// when an earlier one in the batch failed after its chain position was taken.
    private func commitBatch(_ batch: [PendingWrite]) -> BatchOutcome {
        var out = BatchOutcome()
        func failAll(_ cause: EpisodeFileSystemError) -> BatchOutcome {
            for r in batch { out.fail(r, .writeFailed(runId: r.runId, step: .prepare, outcome: .notWritten, cause: cause)) }
            return out
        }
        do {
            try lockFile.lockExclusive()
        } catch EpisodeError.io(let cause) {
            return failAll(cause)
        } catch {
            return failAll(EpisodeFileSystemError(operation: "flock", path: lockFile.path, errno: 5))
        }
        defer { lockFile.unlock() }

        // Where the chain stands: the head record, or a full recovery scan if it can't be trusted.
        let start: EpisodeHead
        do {
            if let head = lockFile.readHead(), head.trustworthy {
                start = head
            } else {
                _ = try recoverLocked()
                start = lockFile.readHead() ?? .empty
            }
            var dirty = start
            dirty.clean = false
            dirty.bootId = EpisodeHead.currentBootId
            try lockFile.writeHead(dirty)
        } catch let e as EpisodeFileSystemError {
            return failAll(e)
        } catch EpisodeError.io(let e) {
            return failAll(e)
        } catch {
            return failAll(EpisodeFileSystemError(operation: "recover", path: directory, errno: 5))
        }
        var needsRecovery = false
        var tip = start

        // 1. Encode each episode at its chain position and write its two temp files.
        var staged: [Staged] = []
        var seen = Set<String>()
        for r in batch {
            let primary = path(of: r.runId)
            if seen.contains(r.runId) || fs.fileExists(primary) || fs.fileExists(backupPath(of: r.runId)) {
                out.fail(r, .duplicateRunId(r.runId))
                continue
            }
            let seq = tip.seq + 1
            let enc = EpisodeFormat.encode(body: r.body, runId: r.runId, seq: seq, prevHash: tip.hash)
            var s = Staged(request: r, ref: EpisodeRef(runId: r.runId, seq: seq, hash: enc.hash, path: primary),
                           tempPath: tempPath(of: r.runId), backupTempPath: backupTempPath(of: r.runId))
            do {
                s.temp = try fs.createFile(s.tempPath, contents: enc.bytes)
            } catch {
                if !removeQuietly(s.tempPath) { needsRecovery = true }
                out.fail(r, .writeFailed(runId: r.runId, step: .write, outcome: .notWritten, cause: fsError(error, "write", s.tempPath)))
                continue
            }
            do {
                s.backupTemp = try fs.createFile(s.backupTempPath, contents: enc.bytes)
            } catch {
                fs.close(s.temp!)
                if !removeQuietly(s.tempPath) || !removeQuietly(s.backupTempPath) { needsRecovery = true }
                out.fail(r, .writeFailed(runId: r.runId, step: .backup, outcome: .notWritten, cause: fsError(error, "write", s.backupTempPath)))
                continue
            }
            seen.insert(r.runId)
            staged.append(s)
            tip = EpisodeHead(clean: false, seq: seq, hash: enc.hash, runId: r.runId, bootId: EpisodeHead.currentBootId)
        }

        // Drops staged[i...]: fails staged[i] with `error`, requeues the rest (their chain
        // positions depended on it), removes all their temp files.
        func abandon(from i: Int, failing error: EpisodeError) {
            for (j, s) in staged[i...].enumerated() {
                if let t = s.temp { fs.close(t) }
                if let t = s.backupTemp { fs.close(t) }
                if !removeQuietly(s.tempPath) || !removeQuietly(s.backupTempPath) { needsRecovery = true }
                if j == 0 { out.fail(s.request, error) } else { out.requeue.append(s.request) }
            }
            staged.removeSubrange(i...)
        }

        // 2. fsync every temp file, in parallel so the file system can merge the commits.
        if !staged.isEmpty {
            let errors = ErrorSlots(count: staged.count * 2)
            var jobs: [() -> Void] = []
            for (i, s) in staged.enumerated() {
                let fs = self.fs
                let a = s.temp!, b = s.backupTemp!
                jobs.append { do { try fs.fsync(a) } catch { errors.set(2 * i, error) } }
                jobs.append { do { try fs.fsync(b) } catch { errors.set(2 * i + 1, error) } }
            }
            BlockingJobPool.shared.runAll(jobs)
            for i in staged.indices {
                if let e = errors.get(2 * i) {
                    abandon(from: i, failing: .writeFailed(runId: staged[i].request.runId, step: .fsync, outcome: .notWritten,
                                                           cause: fsError(e, "fsync", staged[i].tempPath)))
                    break
                }
                if let e = errors.get(2 * i + 1) {
                    abandon(from: i, failing: .writeFailed(runId: staged[i].request.runId, step: .backup, outcome: .notWritten,
                                                           cause: fsError(e, "fsync", staged[i].backupTempPath)))
                    break
                }
            }
            for i in staged.indices {
                fs.close(staged[i].temp!); staged[i].temp = nil
                fs.close(staged[i].backupTemp!); staged[i].backupTemp = nil
            }
        }

        // 3. Rename the primaries into place, in chain order.
        for i in staged.indices {
            do {
                try fs.rename(staged[i].tempPath, to: staged[i].ref.path)
            } catch {
                abandon(from: i, failing: .writeFailed(runId: staged[i].request.runId, step: .rename, outcome: .notWritten,
                                                       cause: fsError(error, "rename", staged[i].tempPath)))
                break
            }
        }
        let finalTip: EpisodeHead
        if let last = staged.last {
            finalTip = EpisodeHead(clean: true, seq: last.ref.seq, hash: last.ref.hash, runId: last.ref.runId, bootId: EpisodeHead.currentBootId)
        } else {
            finalTip = EpisodeHead(clean: true, seq: start.seq, hash: start.hash, runId: start.runId, bootId: EpisodeHead.currentBootId)
        }

        if !staged.isEmpty {
            // 4. The backups: rename into `_backup/`. (A crash before step 5 may leave a backup
            // whose primary rename is lost; recovery restores the primary from it: a complete,
            // unacknowledged episode, which is allowed.)
            var backedUp: [Staged] = []
            for s in staged {
                do {
                    try fs.rename(s.backupTempPath, to: backupPath(of: s.request.runId))
                    backedUp.append(s)
                } catch {
                    needsRecovery = true
                    _ = removeQuietly(s.backupTempPath)
                    out.fail(s.request, .writeFailed(runId: s.request.runId, step: .backup, outcome: .writtenUnconfirmed,
                                                     cause: fsError(error, "rename", s.backupTempPath)))
                }
            }

            // 5. fsync both directories (in parallel): the renames become durable.
            let dirErrors = ErrorSlots(count: 2)
            let fs = self.fs, dir = directory, backupDir = backupDirectory
            BlockingJobPool.shared.runAll(backedUp.isEmpty
                ? [{ do { try fs.fsyncDirectory(dir) } catch { dirErrors.set(0, error) } }]
                : [{ do { try fs.fsyncDirectory(dir) } catch { dirErrors.set(0, error) } },
                   { do { try fs.fsyncDirectory(backupDir) } catch { dirErrors.set(1, error) } }])
            if let error = dirErrors.get(0) {
                // The renamed files are complete and chained; keep them (roll forward) but do not
                // acknowledge them. The head stays dirty at the old tip, so the next writer runs
                // the full recovery (which fsyncs the directories again) before continuing.
                let cause = fsError(error, "fsync directory", directory)
                for s in staged where backedUp.contains(where: { $0.request === s.request }) {
                    out.fail(s.request, .writeFailed(runId: s.request.runId, step: .fsyncDirectory, outcome: .writtenUnconfirmed, cause: cause))
                }
                return out
            }
            if let error = dirErrors.get(1) {
                needsRecovery = true
                let cause = fsError(error, "fsync directory", backupDirectory)
                for s in backedUp {
                    out.fail(s.request, .writeFailed(runId: s.request.runId, step: .backup, outcome: .writtenUnconfirmed, cause: cause))
                }
            } else {
                for s in backedUp { out.results.append((s.request, .success(s.ref))) }
            }
        }

        var head = finalTip
        head.clean = !needsRecovery
        try? lockFile.writeHead(head)
        return out
    }

    private func fsError(_ error: any Error, _ op: String, _ path: String) -> EpisodeFileSystemError {
        if let e = error as? EpisodeFileSystemError { return e }
        return EpisodeFileSystemError(operation: op + " (\(error))", path: path, errno: 5)
    }

    // MARK: Reading

    /// The intact episodes, in seq order (corrupt files are left out; `verify()` reports them).
    public func list() throws -> [EpisodeRef] {
        try intactEpisodes().map(\.ref)
    }

    /// Every intact primary episode, in seq order.
    public func intactEpisodes() throws -> [Episode] {
        var out: [Episode] = []
        for name in try names(in: directory).primaries {
            let p = path(of: name)
            guard let bytes = try? fs.readFile(p) else { continue }
            if case .valid(let e) = EpisodeFormat.check(bytes: bytes, expectedRunId: name, path: p) { out.append(e) }
        }
        return out.sorted { $0.ref.seq < $1.ref.seq }
    }

    /// The episode of `runId`. If the primary is corrupt, the returned episode carries the
    /// problem; if the primary is missing but a backup exists, the backup is returned with that
    /// noted. Throws `.notFound` if neither exists.
    public func show(runId: String) throws -> Episode {
        guard EpisodeFormat.isValidRunId(runId) else { throw EpisodeError.invalidRunId(runId) }
        for (p, note) in [(path(of: runId), nil), (backupPath(of: runId), "primary file missing; shown from _backup")] as [(String, String?)] {
            guard fs.fileExists(p) else { continue }
            let bytes: [UInt8]
            do { bytes = try fs.readFile(p) } catch { throw EpisodeError.io(fsError(error, "read", p)) }
            let e = EpisodeFormat.read(bytes: bytes, runId: runId, location: p).episode
            let problem = [e.problem, note].compactMap { $0 }.joined(separator: "; ")
            return Episode(document: e.document, ref: e.ref, prevHash: e.prevHash, problem: problem.isEmpty ? nil : problem)
        }
        throw EpisodeError.notFound(runId: runId)
    }

    /// Whether an episode (primary or backup) exists for `runId`.
    public func contains(runId: String) -> Bool {
        EpisodeFormat.isValidRunId(runId) && (fs.fileExists(path(of: runId)) || fs.fileExists(backupPath(of: runId)))
    }

    // MARK: Verify and recover

    /// Walks the chain in seq order without changing anything and reports every broken link,
    /// the first one first: a changed record (hash mismatch), a missing one (seq gap), a
    /// `prev_hash` that does not match the previous hash, duplicates and misnamed files.
    public func verify() throws -> VerifyReport {
        try exclusive {
            let scan = try scanLocked()
            return analyze(scan, head: lockFile.readHead())
        }
    }

    /// The start-up repair, explicitly: removes stale temp files, restores missing or corrupt
    /// primaries from their backups (moving corrupt files to `_quarantine/`), rewrites missing
    /// or wrong backups, fsyncs both directories, checks the chain and resets the head record.
    @discardableResult
    public func recover() throws -> RecoveryReport {
        try exclusive { try recoverLocked() }
    }

    // MARK: Scanning

    struct Names {
        var primaries: [String] = []
        var temps: [String] = []
    }

    private func names(in dir: String) throws -> Names {
        let all: [String]
        do { all = try fs.listDirectory(dir) } catch { throw EpisodeError.io(fsError(error, "list", dir)) }
        var n = Names()
        for name in all {
            if name.hasPrefix(Self.tempPrefix) { n.temps.append(name); continue }
            guard name.hasSuffix(".json") else { continue }
            let id = String(name.dropLast(5))
            if EpisodeFormat.isValidRunId(id) { n.primaries.append(id) }
        }
        return n
    }

    /// A stored file as found by a scan.
    enum FileState {
        case missing
        case valid(Episode, [UInt8])
        case invalid(kind: ChainIssue.Kind, reason: String, claimedSeq: Int?, claimedHash: String?)

        var episode: Episode? { if case .valid(let e, _) = self { return e } else { return nil } }
        var bytes: [UInt8]? { if case .valid(_, let b) = self { return b } else { return nil } }
    }

    struct ScanEntry {
        let runId: String
        var primary: FileState = .missing
        var backup: FileState = .missing
    }

    struct Scan {
        var entries: [String: ScanEntry] = [:]
        var primaryTemps: [String] = []
        var backupTemps: [String] = []
    }

    private func load(_ path: String, runId: String) -> FileState {
        let bytes: [UInt8]
        do { bytes = try fs.readFile(path) } catch {
            return .invalid(kind: .corrupt, reason: "unreadable: \(error)", claimedSeq: nil, claimedHash: nil)
        }
        switch EpisodeFormat.check(bytes: bytes, expectedRunId: runId, path: self.path(of: runId)) {
        case .valid(let e): return .valid(e, bytes)
        case let .invalid(kind, reason, seq, hash, _): return .invalid(kind: kind, reason: reason, claimedSeq: seq, claimedHash: hash)
        }
    }

    private func scanLocked() throws -> Scan {
        var scan = Scan()
        let p = try names(in: directory)
        let b = try names(in: backupDirectory)
        scan.primaryTemps = p.temps
        scan.backupTemps = b.temps
        for id in p.primaries {
            scan.entries[id, default: ScanEntry(runId: id)].primary = load(path(of: id), runId: id)
        }
        for id in b.primaries {
            // A backup identical to an intact primary needs no second parse and hash.
            if case .valid(let e, let pb)? = scan.entries[id]?.primary,
               let bb = try? fs.readFile(backupPath(of: id)), bb == pb
            {
                scan.entries[id]!.backup = .valid(e, bb)
                continue
            }
            scan.entries[id, default: ScanEntry(runId: id)].backup = load(backupPath(of: id), runId: id)
        }
        return scan
    }

    /// One chain position as claimed by the files.
    private struct Slot {
        let seq: Int?
        let runId: String
        /// Set when this position is broken.
        let issue: ChainIssue?
        /// The hash the next episode should name as `prev_hash` (nil if unknown).
        let linkHash: String?
        /// This episode's `prev_hash` (valid primaries only).
        let prevHash: String?
    }

    private func analyze(_ scan: Scan, head: EpisodeHead?) -> VerifyReport {
        var slots: [Slot] = []
        var backupProblems: [String] = []
        var checked = 0
        var tip: EpisodeRef?
        for id in scan.entries.keys.sorted() {
            let e = scan.entries[id]!
            if case .missing = e.primary {} else { checked += 1 }
            switch (e.primary, e.backup) {
            case (.valid(let ep, let pb), let backup):
                slots.append(Slot(seq: ep.ref.seq, runId: id, issue: nil, linkHash: ep.ref.hash, prevHash: ep.prevHash))
                if tip == nil || ep.ref.seq > tip!.seq { tip = ep.ref }
                switch backup {
                case .missing: backupProblems.append("\(id): backup missing")
                case .invalid(_, let reason, _, _): backupProblems.append("\(id): backup damaged: \(reason)")
                case .valid(_, let bb): if bb != pb { backupProblems.append("\(id): backup differs from the primary") }
                }
            case let (.invalid(kind, reason, claimedSeq, claimedHash), backup):
                let be = backup.episode
                let seq = be?.ref.seq ?? claimedSeq
                let hint = be != nil ? "; its backup is intact (`recover` restores it)" : "; no intact backup"
                let issue = ChainIssue(kind: kind, seq: seq, runId: id, detail: "\(id).json: \(reason)\(hint)")
                slots.append(Slot(seq: seq, runId: id, issue: issue, linkHash: be?.ref.hash ?? claimedHash, prevHash: nil))
            case (.missing, .valid(let be, _)):
                let issue = ChainIssue(kind: .missing, seq: be.ref.seq, runId: id,
                                       detail: "\(id).json is missing; its backup is intact (`recover` restores it)")
                slots.append(Slot(seq: be.ref.seq, runId: id, issue: issue, linkHash: be.ref.hash, prevHash: nil))
            case (.missing, .invalid(_, let reason, _, _)):
                backupProblems.append("\(id): backup without primary, damaged: \(reason)")
            case (.missing, .missing):
                break
            }
        }

        var issues = slots.filter { $0.seq == nil }.compactMap(\.issue)
        let placed = slots.filter { $0.seq != nil }.sorted { ($0.seq!, $0.runId) < ($1.seq!, $1.runId) }
        var expected = 1
        var expectedPrev: String? = EpisodeFormat.genesisHash
        var previous: Slot?
        var i = 0
        while i < placed.count {
            let s = placed[i].seq!
            var group = [placed[i]]
            while i + 1 < placed.count && placed[i + 1].seq == s { i += 1; group.append(placed[i]) }
            i += 1
            if s > expected {
                let after = previous.map { " after seq \($0.seq!) (run \($0.runId))" } ?? ""
                let range = s - expected == 1 ? "seq \(expected) is missing" : "seqs \(expected)–\(s - 1) are missing (\(s - expected) episodes)"
                issues.append(ChainIssue(kind: .missing, seq: expected, runId: nil,
                                         detail: "\(range)\(after), before seq \(s) (run \(group[0].runId)); no file or backup holds it"))
                expectedPrev = nil
            }
            if group.count > 1 {
                issues.append(ChainIssue(kind: .duplicateSeq, seq: s, runId: group[0].runId,
                                         detail: "runs \(group.map(\.runId).joined(separator: ", ")) all claim seq \(s)"))
            }
            let slot = group.first { $0.issue == nil } ?? group[0]
            for g in group { if let issue = g.issue { issues.append(issue) } }
            if slot.issue == nil, let want = expectedPrev, let have = slot.prevHash, want != have {
                let prevName = previous.map { "seq \($0.seq!) (run \($0.runId)) has hash \(want.prefix(16))…" } ?? "the chain starts with 64 zeros"
                issues.append(ChainIssue(kind: .prevHashMismatch, seq: s, runId: slot.runId,
                                         detail: "prev_hash is \(have.prefix(16))… but \(prevName)"))
            }
            expectedPrev = slot.linkHash
            expected = s + 1
            previous = slot
        }
        if let head, head.seq >= expected {
            let range = head.seq == expected ? "seq \(expected) is missing" : "seqs \(expected)–\(head.seq) are missing"
            issues.append(ChainIssue(kind: .missing, seq: expected, runId: head.seq == expected ? head.runId : nil,
                                     detail: "\(range) at the end of the chain: the head record names seq \(head.seq) (run \(head.runId)) as the tip"))
        }
        let temps = scan.primaryTemps.map { directory + "/" + $0 } + scan.backupTemps.map { backupDirectory + "/" + $0 }
        return VerifyReport(checked: checked, tip: tip, issues: issues, backupProblems: backupProblems, staleTempFiles: temps)
    }

    /// Writes `bytes` to `path` via a temp file in `dir` (temp → fsync → rename); the caller
    /// fsyncs `dir` afterwards.
    private func writeReplacing(_ path: String, bytes: [UInt8], temp: String) throws {
        let h = try fs.createFile(temp, contents: bytes)
        defer { fs.close(h) }
        try fs.fsync(h)
        try fs.rename(temp, to: path)
    }

    private func quarantine(_ path: String, runId: String, what: String) throws {
        try fs.createDirectory(quarantineDirectory)
        let dest = quarantineDirectory + "/\(runId).\(what).\(Timestamps.wallNanos()).json"
        try fs.rename(path, to: dest)
    }

    /// Full recovery; the caller holds the lock.
    private func recoverLocked() throws -> RecoveryReport {
        let scan = try scanLocked()
        var removed: [String] = []
        var restoredMissing: [String] = [], restoredCorrupt: [String] = [], rewrittenBackups: [String] = []
        var unrepairable: [String] = []
        do {
            for t in scan.primaryTemps { try fs.removeFile(directory + "/" + t); removed.append(directory + "/" + t) }
            for t in scan.backupTemps { try fs.removeFile(backupDirectory + "/" + t); removed.append(backupDirectory + "/" + t) }
            for id in scan.entries.keys.sorted() {
                let e = scan.entries[id]!
                switch (e.primary, e.backup) {
                case (.valid(_, let pb), .missing):
                    try writeReplacing(backupPath(of: id), bytes: pb, temp: backupTempPath(of: id))
                    rewrittenBackups.append(id)
                case (.valid(_, let pb), .invalid):
                    try quarantine(backupPath(of: id), runId: id, what: "backup")
                    try writeReplacing(backupPath(of: id), bytes: pb, temp: backupTempPath(of: id))
                    rewrittenBackups.append(id)
                case (.valid(let pe, let pb), .valid(let be, let bb)):
                    if pb != bb {
                        unrepairable.append("\(id): primary (hash \(pe.ref.hash.prefix(12))…) and backup (hash \(be.ref.hash.prefix(12))…) are both well-formed but differ; left as they are")
                    }
                case (.missing, .valid(_, let bb)):
                    try writeReplacing(path(of: id), bytes: bb, temp: tempPath(of: id))
                    restoredMissing.append(id)
                case (.invalid, .valid(_, let bb)):
                    try quarantine(path(of: id), runId: id, what: "primary")
                    try writeReplacing(path(of: id), bytes: bb, temp: tempPath(of: id))
                    restoredCorrupt.append(id)
                case (.invalid(_, let reason, _, _), .missing), (.invalid(_, let reason, _, _), .invalid):
                    unrepairable.append("\(id): primary damaged (\(reason)) and no intact backup")
                case (.missing, .invalid(_, let reason, _, _)):
                    unrepairable.append("\(id): only a damaged backup exists (\(reason))")
                case (.missing, .missing):
                    break
                }
            }
        } catch let e as EpisodeFileSystemError {
            throw EpisodeError.io(e)
        }
        let changed = !(removed.isEmpty && restoredMissing.isEmpty && restoredCorrupt.isEmpty && rewrittenBackups.isEmpty)
        let oldHead = lockFile.readHead()
        // Make the directories durable as they are now, before anyone chains onto them: a
        // writer that crashed may have renamed files without fsyncing the directory. Not
        // needed when nothing changed and the last writer finished cleanly in this boot.
        if changed || !(oldHead?.trustworthy ?? false) {
            do {
                try fs.fsyncDirectory(directory)
                try fs.fsyncDirectory(backupDirectory)
            } catch let e as EpisodeFileSystemError {
                throw EpisodeError.io(e)
            }
        }
        let chain = analyze(changed ? try scanLocked() : scan, head: oldHead)
        // New writes continue after the highest position known: the files' tip, or the old head
        // if it is further (files at the end were deleted: the gap must stay visible).
        var head = EpisodeHead.empty
        if let tip = chain.tip { head = EpisodeHead(clean: true, seq: tip.seq, hash: tip.hash, runId: tip.runId, bootId: EpisodeHead.currentBootId) }
        if let old = oldHead, old.seq > head.seq {
            head = EpisodeHead(clean: true, seq: old.seq, hash: old.hash, runId: old.runId, bootId: EpisodeHead.currentBootId)
        }
        do { try lockFile.writeHead(head) } catch let e as EpisodeFileSystemError { throw EpisodeError.io(e) }
        return RecoveryReport(removedTempFiles: removed, restoredMissing: restoredMissing, restoredCorrupt: restoredCorrupt,
                              rewrittenBackups: rewrittenBackups, unrepairable: unrepairable, chain: chain)
    }
}

/// A write waiting in the queue; `result` is set (under the queue lock) when it is done.
final class PendingWrite: @unchecked Sendable {
    let runId: String
    let body: JSONObject
    var result: Result<EpisodeRef, EpisodeError>?

    init(runId: String, body: JSONObject) {
        self.runId = runId
        self.body = body
    }
}

/// The in-process writer queue (leader/follower group commit).
final class WriteQueue: @unchecked Sendable {
    let lock = ConditionLock()
    var pending: [PendingWrite] = []
    /// A leader (or an exclusive operation such as `verify`) is running.
    var busy = false
}

/// Holds the recovery report of `init` (set once, before the store is shared).
final class OpenReportBox: @unchecked Sendable {
    var value: RecoveryReport?
}

/// Per-job error slots filled by parallel fsync jobs.
final class ErrorSlots: @unchecked Sendable {
    private let lock = ConditionLock()
    private var slots: [(any Error)?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ e: any Error) { lock.withLock { slots[i] = e } }
    func get(_ i: Int) -> (any Error)? { lock.withLock { slots[i] } }
}
