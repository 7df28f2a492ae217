import JSON
import HostSupport
import Threads
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The embedded episode store: an append-only log of segment files under
/// `<data>/episodes/log/`, with a mirror of every segment in `<data>/episodes/log/mirror/`.
///
/// Each episode is one frame (`SegmentFormat`) holding its stored bytes — the canonical JSON
/// with `seq`, `prev_hash` and `hash` that a legacy `<run_id>.json` file held — behind a CRC-32C.
/// Segments are preallocated (written with zeros and fsynced when created), so an append changes
/// no file size and one `fdatasync` makes a whole group of episodes durable.
///
/// Writes go through one committer thread (a blocking writer that finds the log idle commits on
/// its own thread instead, as the leader): concurrent writers queue, and the committer appends
/// everything queued (up to `maxBatch`) as one group — one `pwrite` and one `fdatasync` of the
/// primary segment — before it acknowledges any of them (group commit). A `write` returns only
/// once its frame is durable. Several processes may share a data directory: the committer holds
/// an `flock` on `log/.lock` while it appends and catches up with what others appended.
///
/// **The mirror** is written in the same group but made durable lazily (when the committer is
/// idle for 2 ms, or at least every 50 ms under load, and at rotation): it is the repair copy
/// for a primary frame damaged after the fact (a changed byte, a deleted segment), not part of
/// the acknowledgement. What a crash can leave — a torn frame at the tail of either copy — the
/// CRC detects, and recovery truncates it (or rolls forward a complete frame found in one copy:
/// a complete but unacknowledged episode, which is allowed).
///
/// Opening with `.recover` trusts the head record if the last writer finished cleanly in this
/// boot (it then only reads the frame headers to build the run-id index); otherwise it runs the
/// full recovery (`recover()`). `verify()` checks every frame's CRC, hash and chain link.
public final class EpisodeSegmentLog: @unchecked Sendable {
    /// How `init` treats what it finds.
    public typealias OpenMode = EpisodeFileChain.OpenMode

    /// The data directory.
    public let dataDirectory: String
    /// `<data>/episodes`.
    public let directory: String
    /// `<data>/episodes/log`: the primary segments.
    public let logDirectory: String
    /// `<data>/episodes/log/mirror`: the mirror segments.
    public let mirrorDirectory: String
    /// `<data>/episodes/_quarantine`: damaged segments replaced by recovery.
    public let quarantineDirectory: String
    /// The size of a new segment (a larger episode gets a segment of its own size).
    public let segmentBytes: Int
    /// What opening did: the recovery (or the cheap check of a trusted head) and any migration.
    public var openRecovery: RecoveryReport? { state.withLock { state.openReport } }

    /// Most episodes appended as one group.
    static let maxBatch = 256
    /// The mirror is synced once the committer has been idle this long…
    static let mirrorIdleSyncNs = 2_000_000
    /// …and at least this often under continuous load.
    static let mirrorMaxLagNs: Int64 = 50_000_000
    /// The committer thread exits after this long without work.
    static let committerIdleExitNs: Int64 = 500_000_000
    /// Whether an `async` writer that says it is the only run in flight (`alone`) may commit
    /// on its own cooperative thread when the log is idle, as a blocking writer does. It saves
    /// the two hand-offs (to the committer thread and back to the pool) at the price of one
    /// pool thread held through one `fdatasync`. Only the caller can know that no other run is
    /// in flight: letting every lone-looking async writer lead (session 16), or one after a
    /// group of one (session 18), cost ~9 % of the server's throughput under 32 connections,
    /// where group commit cycles are short and hold one or two runs while many others run.
    /// With one processor the pool has one thread, which must not wait for a disk: never.
    public static let asyncWritersMayLead = sysconf(Int32(_SC_NPROCESSORS_ONLN)) > 1

    /// The default segment size.
    public static let defaultSegmentBytes = 4 << 20

    package let fs: any EpisodeFileSystem
    let lockFile: EpisodeLockFile
    let state = LogState()

    /// Opens (creating if needed) the episode log under `dataDirectory`, migrating a legacy
    /// directory of episode files on first open (`.recover` mode only).
    public init(dataDirectory: String, fileSystem: any EpisodeFileSystem = PosixEpisodeFileSystem(),
                openMode: OpenMode = .recover, segmentBytes: Int = EpisodeSegmentLog.defaultSegmentBytes) throws
    {
        var data = dataDirectory
        while data.count > 1 && data.hasSuffix("/") { data.removeLast() }
        self.dataDirectory = data
        directory = data + "/episodes"
        logDirectory = directory + "/log"
        mirrorDirectory = logDirectory + "/mirror"
        quarantineDirectory = directory + "/_quarantine"
        self.segmentBytes = max(segmentBytes, 4096)
        fs = fileSystem
        do {
            try fileSystem.createDirectory(mirrorDirectory)
        } catch let e as EpisodeFileSystemError {
            throw EpisodeError.io(e)
        }
        lockFile = try EpisodeLockFile(path: logDirectory + "/.lock")
        try lockFile.lockExclusive()
        defer { lockFile.unlock() }
        var report: RecoveryReport
        if openMode == .recover {
            let migrated = try migrateLegacyFilesLocked()
            if let head = readHead(), head.trustworthy, migrated == nil {
                report = try loadIndexLocked(trusting: head)
            } else {
                report = try recoverLocked()
            }
            if let migrated { report = report.adding(migrated: migrated) }
        } else {
            report = try loadIndexLocked(trusting: nil)
        }
        state.openReport = openMode == .recover ? report : nil
    }

    // MARK: Paths

    func primaryPath(_ segment: Int) -> String { logDirectory + "/" + SegmentFormat.fileName(segment) }
    func mirrorPath(_ segment: Int) -> String { mirrorDirectory + "/" + SegmentFormat.fileName(segment) }
    func location(_ segment: Int, _ offset: Int) -> String { primaryPath(segment) + "#\(offset)" }

    // MARK: Writing

    /// Appends the episode of `runId` with `body` (a JSON object; the log adds `run_id`, `seq`,
    /// `prev_hash`, `hash`, `episode_version`) and returns once it is durable. Blocks the calling
    /// thread; async callers use the `async` overload.
    @discardableResult
    public func write(body: JSONValue, runId: String) throws -> EpisodeRef {
        let members = try EpisodeFormat.checkedMembers(body: body, runId: runId)
        let box = WaitBox<Result<EpisodeRef, EpisodeError>>()
        let pending = PendingEpisode(runId: runId, body: members) { box.set($0) }
        if !commitAsLeader(pending) { submit(.write(pending)) }
        return try box.wait().get()
    }

    /// Commits `pending` on the calling thread if nothing else is committing or queued (a lone
    /// writer then pays no hand-off to the committer thread and back); returns `false` (and does
    /// nothing) otherwise, and the caller queues it. Blocking writers, and `async` writers only
    /// when they are `alone` (see `asyncWritersMayLead`).
    private func commitAsLeader(_ pending: PendingEpisode) -> Bool {
        state.lock.lock()
        guard state.queue.isEmpty, !state.committing else {
            state.lock.unlock()
            return false
        }
        state.committing = true
        state.lock.unlock()
        commitGroup([pending])
        state.lock.lock()
        state.committing = false
        state.leaderCommits += 1
        state.lastActivityNs = Timestamps.monotonicNanos()
        // Queued meanwhile: the committer waits for `committing` to clear. A dirty mirror needs
        // a running committer for its idle sync (a waiting one wakes by itself for that).
        let start = (!state.queue.isEmpty || state.mirrorDirtySince != nil) && !state.committerRunning
        if start { state.committerRunning = true }
        if !start && !state.queue.isEmpty { state.lock.broadcast() }
        state.lock.unlock()
        if start { PosixThread.detach { self.commitLoop() } }
        return true
    }

    /// Appends the episode of `runId` and returns once it is durable, without holding a
    /// cooperative thread: the committer thread resumes the caller. A writer that is `alone`
    /// (the caller knows no other run is in flight) commits on its own thread if the log is
    /// idle and `asyncWritersMayLead`.
    @discardableResult
    public func write(body: JSONValue, runId: String, alone: Bool = false) async throws -> EpisodeRef {
        try await enqueue(try EpisodeFormat.checkedMembers(body: body, runId: runId), runId: runId, alone: alone)
    }

    /// Appends the episode of `runId` whose body is already encoded (`members`, e.g. written
    /// from a typed record with `CanonicalObjectWriter`); otherwise as `write(body:runId:)`. The
    /// body is encoded by the caller, so the committer thread only adds the chain members.
    @discardableResult
    public func write(members: CanonicalMembers, runId: String, alone: Bool = false) async throws -> EpisodeRef {
        try await enqueue(try EpisodeFormat.checkedMembers(members, runId: runId), runId: runId, alone: alone)
    }

    /// `write(members:runId:alone:)` that reports to `completion` instead of resuming a task:
    /// called on the thread that made the episode durable (the committer's, or this one when
    /// it commits as the leader), or with the failure. For a caller whose next step must follow
    /// durability (the index of the episode) and can start it from there, without first
    /// passing through the cooperative pool. `completion` runs on the committer's thread
    /// between its groups: it must be short, must not block, and must not write to this log.
    /// Throws (without calling `completion`) if `members` is not a valid episode body.
    public func write(members: CanonicalMembers, runId: String, alone: Bool = false,
                      completion: @escaping @Sendable (Result<EpisodeRef, EpisodeError>) -> Void) throws {
        let pending = PendingEpisode(runId: runId, body: try EpisodeFormat.checkedMembers(members, runId: runId), completion: completion)
        if alone && Self.asyncWritersMayLead && commitAsLeader(pending) { return }
        submit(.write(pending))
    }

    /// Commits a checked body as the leader when `alone` allows it and the log is idle;
    /// otherwise queues it for the committer and waits, off the cooperative pool, until the
    /// committer resumes the caller with the episode durable.
    private func enqueue(_ body: CanonicalMembers, runId: String, alone: Bool) async throws -> EpisodeRef {
        if alone && Self.asyncWritersMayLead {
            // The leader completes the episode before `commitAsLeader` returns: `wait` does not wait.
            let box = WaitBox<Result<EpisodeRef, EpisodeError>>()
            if commitAsLeader(PendingEpisode(runId: runId, body: body) { box.set($0) }) { return try box.wait().get() }
        }
        return try await withCheckedThrowingContinuation { (c: CheckedContinuation<EpisodeRef, any Error>) in
            submit(.write(PendingEpisode(runId: runId, body: body) { c.resume(with: $0.mapError { $0 as any Error }) }))
        }
    }

    /// Runs `body` on the committer thread, between groups, holding the `flock`.
    func exclusive<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        let box = WaitBox<Result<T, any Error>>()
        submit(.exclusive {
            do {
                try self.lockFile.lockExclusive()
                defer { self.lockFile.unlock() }
                box.set(.success(try body()))
            } catch {
                box.set(.failure(error))
            }
        })
        return try box.wait().get()
    }

    /// Makes the mirror durable now (the committer otherwise does it within `mirrorMaxLagNs`).
    public func syncMirror() throws {
        try exclusive { try self.syncMirrorIfDirty() }
    }

    /// How many groups the committer has taken up (counted before their writes are acknowledged).
    public var groupCommits: Int { state.withLock { state.groupCommits } }
    /// How many of them a blocking writer committed itself, as the leader (for tests).
    public var leaderCommits: Int { state.withLock { state.leaderCommits } }
    /// Whether the mirror has appends not yet made durable (for tests).
    public var mirrorIsDirty: Bool { state.withLock { state.mirrorDirtySince != nil } }

    private func submit(_ work: LogWork) {
        state.lock.lock()
        state.queue.append(work)
        if state.committerRunning {
            state.lock.broadcast()
            state.lock.unlock()
            return
        }
        state.committerRunning = true
        state.lock.unlock()
        PosixThread.detach { self.commitLoop() }
    }

    /// The committer: takes everything queued, appends it as one group, acknowledges, repeats;
    /// syncs the mirror once nothing was committed for `mirrorIdleSyncNs` (or it lags
    /// `mirrorMaxLagNs`); exits after half a second without work (the next `submit` starts it
    /// again), so an idle log holds no thread. Waits while a leader (`commitAsLeader`) commits.
    private func commitLoop() {
        while true {
            state.lock.lock()
            while state.queue.isEmpty || state.committing {
                let now = Timestamps.monotonicNanos()
                let quietNs = now - state.lastActivityNs
                if !state.committing, let dirtySince = state.mirrorDirtySince,
                   quietNs >= Int64(Self.mirrorIdleSyncNs) || now - dirtySince >= Self.mirrorMaxLagNs
                {
                    state.committing = true
                    state.lock.unlock()
                    _ = try? lockedMirrorSync()
                    state.lock.lock()
                    state.committing = false
                    state.lastActivityNs = Timestamps.monotonicNanos()
                    continue
                }
                if !state.committing && state.mirrorDirtySince == nil && quietNs >= Self.committerIdleExitNs {
                    state.committerRunning = false
                    state.lock.unlock()
                    return
                }
                let step = state.mirrorDirtySince != nil ? Self.mirrorIdleSyncNs : Int(Self.committerIdleExitNs)
                state.lock.wait(timeoutNs: step)
            }
            var writes: [PendingEpisode] = []
            var task: (@Sendable () -> Void)?
            if case .exclusive(let t) = state.queue[0] {
                task = t
                state.queue.removeFirst()
            } else {
                while writes.count < Self.maxBatch, case .write(let w)? = state.queue.first {
                    writes.append(w)
                    state.queue.removeFirst()
                }
            }
            state.committing = true
            let lagging = state.mirrorDirtySince.map { Timestamps.monotonicNanos() - $0 > Self.mirrorMaxLagNs } ?? false
            state.lock.unlock()
            if lagging { _ = try? lockedMirrorSync() }
            if let task { task() } else { commitGroup(writes) }
            state.withLock {
                state.committing = false
                state.lastActivityNs = Timestamps.monotonicNanos()
            }
        }
    }

    private func lockedMirrorSync() throws {
        try lockFile.lockExclusive()
        defer { lockFile.unlock() }
        try syncMirrorIfDirty()
    }

    /// fdatasync of the current mirror segment, if it has unsynced appends. Committer only.
    func syncMirrorIfDirty() throws {
        guard state.withLock({ state.mirrorDirtySince }) != nil, let mirror = state.mirror else { return }
        try fs.syncData(mirror)
        state.withLock { state.mirrorDirtySince = nil }
    }

    /// One group: frames encoded at their chain positions, appended to the primary and the
    /// mirror with one `pwrite` each, the primary fdatasynced, then acknowledged. A group that
    /// does not fit in the current segment is split at the rotation.
    private func commitGroup(_ batch: [PendingEpisode]) {
        // Counted before any write is acknowledged, so a writer that resumes sees its group.
        state.withLock { state.groupCommits += 1 }
        do {
            try lockFile.lockExclusive()
        } catch {
            let cause = (error as? EpisodeError).flatMap { if case .io(let c) = $0 { c } else { nil } }
                ?? EpisodeFileSystemError(operation: "flock", path: lockFile.path, errno: EIO)
            for r in batch { r.complete(.failure(.writeFailed(runId: r.runId, step: .prepare, outcome: .notWritten, cause: cause))) }
            return
        }
        defer { lockFile.unlock() }
        do {
            try prepareLocked()
        } catch {
            let cause = Self.fsError(error, "recover", directory)
            for r in batch { r.complete(.failure(.writeFailed(runId: r.runId, step: .prepare, outcome: .notWritten, cause: cause))) }
            return
        }
        var group = GroupBuffer(tip: state.tip)
        var seen = Set<String>()
        var remaining = batch[...]
        var failure: (EpisodeWriteStep, EpisodeFileSystemError)?
        while let r = remaining.first, failure == nil {
            if seen.contains(r.runId) || state.withLock({ state.index[r.runId] }) != nil {
                r.complete(.failure(.duplicateRunId(r.runId)))
                remaining.removeFirst()
                continue
            }
            let tip = group.tip
            let enc = EpisodeFormat.encode(members: r.body, runId: r.runId, seq: tip.seq + 1, prevHash: tip.hash)
            let frameBytes = SegmentFormat.frameBytes(runId: r.runId, episodeBytes: enc.bytes.count)
            if tip.segment == 0 || tip.offset + frameBytes > currentCapacity() {
                if !group.pending.isEmpty {
                    failure = flush(&group)
                    continue
                }
                do {
                    try rotate(to: tip.segment + 1, fitting: frameBytes)
                } catch {
                    failure = (.rotate, Self.fsError(error, "create segment", primaryPath(tip.segment + 1)))
                    continue
                }
                group = GroupBuffer(tip: state.tip)
                continue
            }
            seen.insert(r.runId)
            let ref = EpisodeRef(runId: r.runId, seq: tip.seq + 1, hash: enc.hash, path: location(tip.segment, tip.offset))
            group.append(r, ref: ref, at: RecordLocation(segment: tip.segment, offset: tip.offset, seq: ref.seq), episode: enc.bytes)
            remaining.removeFirst()
        }
        if failure == nil && !group.pending.isEmpty { failure = flush(&group) }
        // The rest of the batch was never written.
        if let (step, cause) = failure {
            for r in remaining { r.complete(.failure(.writeFailed(runId: r.runId, step: step, outcome: .notWritten, cause: cause))) }
        }
    }

    /// Appends `group` to the current segment and makes it durable; acknowledges or fails its
    /// writes. Returns the failure (the rest of the batch fails with it).
    private func flush(_ group: inout GroupBuffer) -> (EpisodeWriteStep, EpisodeFileSystemError)? {
        defer { group = GroupBuffer(tip: state.tip) }
        let start = state.tip
        let primary: EpisodeFileHandle, mirror: EpisodeFileHandle
        do {
            (primary, mirror) = try openHandles()
        } catch {
            let cause = Self.fsError(error, "open", primaryPath(start.segment))
            group.fail(step: .write, outcome: .notWritten, cause: cause)
            return (.write, cause)
        }
        var failed: (EpisodeWriteStep, EpisodeFileSystemError)?
        do {
            try markDirty()
            try fs.write(primary, group.bytes, at: start.offset)
        } catch {
            failed = (.write, Self.fsError(error, "write", primary.path))
        }
        var mirrorFailed = false
        if failed == nil {
            do {
                try fs.write(mirror, group.bytes, at: start.offset)
            } catch {
                mirrorFailed = true  // the primary stands alone until recovery rewrites the mirror
            }
            do {
                try fs.syncData(primary)
            } catch {
                failed = (.fsync, Self.fsError(error, "fdatasync", primary.path))
            }
        }
        if let (step, cause) = failed {
            // Erase what may have reached the page cache so the failed group never surfaces;
            // if even that fails, recovery may roll it forward: "written, not confirmed".
            let zeros = [UInt8](repeating: 0, count: group.bytes.count)
            let erased = (try? fs.write(primary, zeros, at: start.offset)) != nil
                && (try? fs.write(mirror, zeros, at: start.offset)) != nil
                && (try? fs.syncData(primary)) != nil
            let outcome: EpisodeWriteOutcome = erased ? .notWritten : .writtenUnconfirmed
            if erased { try? writeHead(clean: true, tip: start) }
            group.fail(step: step, outcome: outcome, cause: cause)
            return (step, cause)
        }
        let end = group.tip
        state.withLock {
            state.tip = end
            for p in group.pending { state.index[p.request.runId] = p.location }
            if state.mirrorDirtySince == nil { state.mirrorDirtySince = Timestamps.monotonicNanos() }
        }
        // A failed mirror write leaves the head dirty: the next group runs the recovery, which
        // rewrites the mirror from the primary.
        try? writeHead(clean: !mirrorFailed, tip: end)
        for p in group.pending { p.request.complete(.success(p.ref)) }
        return nil
    }

    /// The size of the current segment (its file's size).
    func currentCapacity() -> Int {
        if state.withLock({ state.primary }) == nil { _ = try? openHandles() }
        return state.withLock { state.capacity }
    }

    /// Opens the current segment's files if needed.
    func openHandles() throws -> (EpisodeFileHandle, EpisodeFileHandle) {
        if let p = state.primary, let m = state.mirror { return (p, m) }
        let tip = state.tip
        let p = try fs.openFile(primaryPath(tip.segment))
        let m = try fs.openFile(mirrorPath(tip.segment))
        let size = try fs.size(p)
        state.withLock {
            state.primary = p
            state.mirror = m
            state.capacity = size
        }
        return (p, m)
    }

    /// Closes the current segment's files (after syncing the mirror).
    func closeHandles() {
        try? syncMirrorIfDirty()
        let (p, m) = state.withLock { () -> (EpisodeFileHandle?, EpisodeFileHandle?) in
            defer { state.primary = nil; state.mirror = nil; state.capacity = 0; state.mirrorDirtySince = nil }
            return (state.primary, state.mirror)
        }
        if let p { fs.close(p) }
        if let m { fs.close(m) }
    }

    /// Starts segment `number` in both copies: header, zeros up to its size, fsync, directory
    /// fsyncs; then it is the current segment.
    func rotate(to number: Int, fitting frameBytes: Int) throws {
        let size = max(segmentBytes, SegmentFormat.pad(SegmentFormat.segmentHeaderBytes + frameBytes))
        closeHandles()
        for path in [primaryPath(number), mirrorPath(number)] {
            let h = try fs.openFile(path)
            defer { fs.close(h) }
            try preallocate(h, size: size, number: number)
        }
        try fs.fsyncDirectory(logDirectory)
        try fs.fsyncDirectory(mirrorDirectory)
        let tip = state.tip
        state.withLock { state.tip = LogTip(segment: number, offset: SegmentFormat.segmentHeaderBytes, seq: tip.seq, hash: tip.hash, runId: tip.runId) }
        try writeHead(clean: false, tip: state.tip)
    }

    /// Writes the header and zeros up to `size` and fsyncs. A file already preallocated by an
    /// interrupted rotation (header intact, size enough, nothing after the header) is reused:
    /// only the fsync is repeated.
    func preallocate(_ h: EpisodeFileHandle, size: Int, number: Int) throws {
        let header = SegmentFormat.segmentHeader(number: number)
        if try fs.size(h) >= size, try fs.read(h, count: header.count + SegmentFormat.frameHeaderBytes, at: 0) == header + [UInt8](repeating: 0, count: SegmentFormat.frameHeaderBytes) {
            try fs.fsync(h)
            return
        }
        try fs.write(h, header, at: 0)
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var at = SegmentFormat.segmentHeaderBytes
        while at < size {
            let n = min(chunk.count, size - at)
            try fs.write(h, n == chunk.count ? chunk : Array(chunk.prefix(n)), at: at)
            at += n
        }
        try fs.fsync(h)
    }

    /// Brings this process's view up to the head: catches up with groups appended by other
    /// processes, or runs the full recovery if the head cannot be trusted. Holds the flock.
    private func prepareLocked() throws {
        let mine = state.tip
        let record = lockFile.readRecord()
        // The head this process wrote last, unchanged: no other writer came between (a writer
        // that appended would have changed the tip in it), so there is nothing to parse.
        if let record, let last = state.lastCleanHead, last.tip == mine, record == last.bytes { return }
        if let head = record.flatMap(LogHead.decode), head.trustworthy {
            if head.tip != mine { try catchUpLocked(to: head.tip) }
        } else {
            closeHandles()
            _ = try recoverLocked()
        }
    }

    // MARK: The head record

    func readHead() -> LogHead? { lockFile.readRecord().flatMap(LogHead.decode) }

    func writeHead(clean: Bool, tip: LogTip) throws {
        let bytes = LogHead(clean: clean, bootId: EpisodeHead.currentBootId, tip: tip).encoded
        state.lastCleanHead = nil
        try lockFile.writeRecord(bytes, fixedLength: true)
        if clean { state.lastCleanHead = (bytes, tip) }
    }

    private func markDirty() throws { try writeHead(clean: false, tip: state.tip) }

    static func fsError(_ error: any Error, _ op: String, _ path: String) -> EpisodeFileSystemError {
        if let e = error as? EpisodeFileSystemError { return e }
        if case EpisodeError.io(let e)? = error as? EpisodeError { return e }
        return EpisodeFileSystemError(operation: op + " (\(error))", path: path, errno: EIO)
    }

    // MARK: Reading

    /// The episode of `runId`. If its primary frame is damaged and the mirror's is intact, the
    /// mirror's is returned with that noted; if both are damaged the episode carries the
    /// problem. Throws `.notFound` if the log has no episode `runId`.
    public func show(runId: String) throws -> Episode {
        guard EpisodeFormat.isValidRunId(runId) else { throw EpisodeError.invalidRunId(runId) }
        var loc = state.withLock { state.index[runId] }
        if loc == nil {
            // Perhaps another process appended it since this one last looked.
            try exclusive { try self.catchUpLocked(to: self.readHead()?.tip) }
            loc = state.withLock { state.index[runId] }
        }
        guard let loc else { throw EpisodeError.notFound(runId: runId) }
        return try read(loc, runId: runId)
    }

    func read(_ loc: RecordLocation, runId: String) throws -> Episode {
        let where_ = location(loc.segment, loc.offset)
        var firstProblem: Episode?
        for (path, note) in [(primaryPath(loc.segment), nil), (mirrorPath(loc.segment), "primary segment damaged; shown from the mirror")] as [(String, String?)] {
            guard let frame = readFrame(path: path, offset: loc.offset) else { continue }
            let e = EpisodeFormat.read(bytes: frame.episode, runId: runId, location: where_).episode
            if e.problem == nil && frame.runId == runId {
                return note == nil ? e : Episode(document: e.document, ref: e.ref, prevHash: e.prevHash, problem: note)
            }
            if firstProblem == nil { firstProblem = e }
        }
        if let firstProblem { return firstProblem }
        let ref = EpisodeRef(runId: runId, seq: loc.seq, hash: "", path: where_)
        return Episode(document: .null, ref: ref, prevHash: "", problem: "corrupt: the frame at \(where_) is damaged in both copies")
    }

    /// The intact frame at `offset` of the segment file at `path`.
    func readFrame(path: String, offset: Int) -> SegmentFormat.Frame? {
        guard fs.fileExists(path), let h = try? fs.openFile(path) else { return nil }
        defer { fs.close(h) }
        guard let head = try? fs.read(h, count: SegmentFormat.frameHeaderBytes, at: offset),
              let header = SegmentFormat.header(head, at: 0), header.length < 1 << 30,
              let bytes = try? fs.read(h, count: header.frameBytes, at: offset) else { return nil }
        return SegmentFormat.frame(in: bytes, at: 0)
    }

    /// Whether the log holds an episode `runId`.
    public func contains(runId: String) -> Bool {
        (try? show(runId: runId)) != nil
    }

    /// Every run id in the log with its seq.
    public func runIds() -> [String: Int] {
        state.withLock { state.index.mapValues(\.seq) }
    }

    /// Every intact episode, in seq order.
    public func intactEpisodes() throws -> [Episode] {
        let all = state.withLock { state.index.sorted { $0.value.seq < $1.value.seq } }
        return try all.map { try read($0.value, runId: $0.key) }.filter { $0.problem == nil }
    }

    /// The intact episodes' references, in seq order.
    public func list() throws -> [EpisodeRef] { try intactEpisodes().map(\.ref) }
}

/// Where a record is in the log.
struct RecordLocation: Sendable, Equatable {
    let segment: Int
    let offset: Int
    let seq: Int
}

/// A write waiting for the committer.
final class PendingEpisode: @unchecked Sendable {
    let runId: String
    /// The body's members, encoded by the writer (no chain member).
    let body: CanonicalMembers
    private let completion: @Sendable (Result<EpisodeRef, EpisodeError>) -> Void

    init(runId: String, body: CanonicalMembers, completion: @escaping @Sendable (Result<EpisodeRef, EpisodeError>) -> Void) {
        self.runId = runId
        self.body = body
        self.completion = completion
    }

    func complete(_ r: Result<EpisodeRef, EpisodeError>) { completion(r) }
}

/// What the committer does next.
enum LogWork: Sendable {
    case write(PendingEpisode)
    case exclusive(@Sendable () -> Void)
}

/// The frames of one group, in order, and the tip after them.
struct GroupBuffer {
    var tip: LogTip
    var bytes: [UInt8] = []
    var pending: [(request: PendingEpisode, ref: EpisodeRef, location: RecordLocation)] = []

    init(tip: LogTip) { self.tip = tip }

    /// Appends the frame of `episode` (stored bytes) for `r`, which becomes the group's tip.
    mutating func append(_ r: PendingEpisode, ref: EpisodeRef, at location: RecordLocation, episode: [UInt8]) {
        let before = bytes.count
        SegmentFormat.appendFrame(runId: ref.runId, seq: ref.seq, episode: episode, to: &bytes)
        pending.append((r, ref, location))
        tip = LogTip(segment: tip.segment, offset: tip.offset + bytes.count - before, seq: ref.seq, hash: ref.hash, runId: ref.runId)
    }

    func fail(step: EpisodeWriteStep, outcome: EpisodeWriteOutcome, cause: EpisodeFileSystemError) {
        for p in pending { p.request.complete(.failure(.writeFailed(runId: p.request.runId, step: step, outcome: outcome, cause: cause))) }
    }
}

/// The log's mutable state. `lock` guards `queue`, `committerRunning`, `committing`, `index`
/// and the counters; the tip and the open segment files are changed only by whoever holds
/// `committing` (with the lock, so that readers see them consistently).
final class LogState: @unchecked Sendable {
    let lock = ConditionLock()
    var queue: [LogWork] = []
    var committerRunning = false
    var index: [String: RecordLocation] = [:]
    var tip = LogTip.empty
    var primary: EpisodeFileHandle?
    var mirror: EpisodeFileHandle?
    var capacity = 0
    var mirrorDirtySince: Int64?
    /// Set while the committer thread or a leader appends, syncs or runs an exclusive task:
    /// at most one of them works on the files at a time.
    var committing = false
    /// When the last group or mirror sync finished (the committer's idle clock).
    var lastActivityNs = Timestamps.monotonicNanos()
    var groupCommits = 0
    var leaderCommits = 0
    var openReport: RecoveryReport?
    /// The clean head record this process wrote last and its tip, while it is the last head
    /// this process wrote: the next group compares bytes instead of parsing the record.
    /// Touched only by whoever holds `committing` (or opens the log).
    var lastCleanHead: (bytes: [UInt8], tip: LogTip)?

    func withLock<T>(_ body: () throws -> T) rethrows -> T { try lock.withLock(body) }
}

/// A result one thread hands to another that waits for it (a blocking write, an exclusive task).
final class WaitBox<T: Sendable>: @unchecked Sendable {
    private let lock = ConditionLock()
    private var result: T?

    func set(_ r: T) { lock.withLock { result = r; lock.broadcast() } }

    func wait() -> T {
        lock.lock()
        defer { lock.unlock() }
        while result == nil { lock.wait() }
        return result!
    }
}
