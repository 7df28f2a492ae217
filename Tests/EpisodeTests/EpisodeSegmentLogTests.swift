import Foundation
import Testing
import Host
@testable import Episodes
import JSON

#if canImport(Glibc)
import Glibc
#endif

/// The episode log: frames, group commit, rotation, recovery, verify, migration.
@Suite struct EpisodeSegmentLogTests {
    typealias F = EpisodeFixtures

    /// Every intact frame of a segment file, in order.
    static func frames(_ path: String) -> [SegmentFormat.Frame] {
        let bytes = F.read(path)
        var out: [SegmentFormat.Frame] = []
        var off = SegmentFormat.segmentHeaderBytes
        while let f = SegmentFormat.frame(in: bytes, at: off) {
            out.append(f)
            off += f.header.frameBytes
        }
        return out
    }

    static func overwrite(_ path: String, at offset: Int, with bytes: [UInt8]) {
        let fd = open(path, O_WRONLY)
        precondition(fd >= 0, "open \(path)")
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        close(fd)
    }

    @Test func crc32cMatchesTheStandardCheckValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        // Split input gives the same value as whole input (the frame CRC is computed in parts).
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let whole = CRC32C.checksum(bytes)
        let parts = CRC32C.update(CRC32C.update(CRC32C.initial, bytes[0..<13]), bytes[13...]) ^ 0xFFFF_FFFF
        #expect(parts == whole)
    }

    /// The head record is built as bytes; it must stay the text format earlier versions wrote
    /// and read (a data dir outlives an upgrade), and parse back to what was encoded.
    @Test func theHeadRecordKeepsItsFormat() throws {
        let tips = [LogTip.empty,
                    LogTip(segment: 7, offset: 1_048_576, seq: 123_456_789, hash: String(repeating: "ab", count: 32), runId: "run-42"),
                    LogTip(segment: Int.max, offset: 9, seq: 10, hash: String(repeating: "0f", count: 32), runId: "r")]
        for tip in tips {
            for clean in [true, false] {
                let head = LogHead(clean: clean, bootId: "0123abcd", tip: tip)
                let text = "nova-episode-log-head 1 0123abcd \(clean ? "clean" : "dirty") \(tip.seq) \(tip.hash) \(tip.runId) \(tip.segment) \(tip.offset)"
                let line = Array("\(text) \(SHA256.hex(Array(text.utf8)).prefix(16))\n".utf8)
                let expected = line + [UInt8](repeating: 0x20, count: LogHead.recordBytes - line.count)
                #expect(head.encoded == expected)
                #expect(LogHead.decode(head.encoded) == head)
            }
        }
    }

    @Test func writesChainedCanonicalFramesAndAMirror() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data)
        var refs: [EpisodeRef] = []
        for i in 1...5 { refs.append(try log.write(body: F.body("r\(i)"), runId: "r\(i)")) }
        #expect(refs.map(\.seq) == [1, 2, 3, 4, 5])
        var prev = EpisodeFormat.genesisHash
        let frames = Self.frames(log.primaryPath(1))
        #expect(frames.map(\.runId) == ["r1", "r2", "r3", "r4", "r5"])
        for (ref, frame) in zip(refs, frames) {
            let e = try log.show(runId: ref.runId)
            #expect(e.problem == nil)
            #expect(e.prevHash == prev)
            #expect(e.document["hash"]?.stringValue == ref.hash)
            guard case .object(var o) = e.document else { Issue.record("not an object"); return }
            o.removeValue(forKey: "hash")
            #expect(SHA256.hex(JSONValue.object(o).canonicalBytes()) == ref.hash)
            // The frame holds exactly the canonical encoding plus a newline.
            #expect(frame.episode == e.document.canonicalBytes() + [0x0A])
            #expect(frame.header.seq == ref.seq)
            prev = ref.hash
        }
        // The mirror is the same bytes once synced (the committer syncs it lazily).
        try log.syncMirror()
        #expect(F.read(log.mirrorPath(1)) == F.read(log.primaryPath(1)))
        // The segment was preallocated: appends do not change its size.
        #expect(F.read(log.primaryPath(1)).count == EpisodeSegmentLog.defaultSegmentBytes)
        #expect(try log.list().map(\.runId) == ["r1", "r2", "r3", "r4", "r5"])
        let report = try log.verify()
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == 5)
        #expect(report.tip?.runId == "r5")
        #expect(report.backupProblems.isEmpty, "\(report.backupProblems)")
        // A new instance (trusted clean head) sees the same log and continues the chain.
        let reopened = try EpisodeSegmentLog(dataDirectory: data)
        #expect(reopened.openRecovery?.chain.checked == 5)
        #expect(try reopened.write(body: F.body("r6"), runId: "r6").seq == 6)
        #expect(try reopened.show(runId: "r6").prevHash == refs[4].hash)
    }

    @Test func refusesBadInputAndDuplicates() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data)
        #expect(throws: EpisodeError.self) { try log.write(body: F.body("x"), runId: "../etc") }
        #expect(throws: EpisodeError.self) { try log.write(body: [1, 2], runId: "arr") }
        #expect(throws: EpisodeError.self) { try log.write(body: ["seq": 9], runId: "seq") }
        #expect(throws: EpisodeError.self) { try log.write(body: ["run_id": "other"], runId: "mismatch") }
        try log.write(body: F.body("dup"), runId: "dup")
        do {
            try log.write(body: F.body("dup"), runId: "dup")
            Issue.record("duplicate accepted")
        } catch EpisodeError.duplicateRunId(let id) {
            #expect(id == "dup")
        }
        // Also across instances (the other one appended it).
        let other = try EpisodeSegmentLog(dataDirectory: data)
        #expect(throws: EpisodeError.self) { try other.write(body: F.body("dup"), runId: "dup") }
        #expect(throws: EpisodeError.self) { try log.show(runId: "nope") }
        #expect(try log.verify().isIntact)
        #expect(try log.list().count == 1)
    }

    @Test func rotatesIntoNewSegments() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 4096)
        for i in 1...30 { try log.write(body: F.body("s\(i)"), runId: "s\(i)") }
        let segments = F.files(in: log.logDirectory).filter { $0.hasSuffix(".seg") }
        #expect(segments.count >= 5, "\(segments)")
        #expect(segments.allSatisfy { F.read(log.logDirectory + "/" + $0).count == 4096 })
        let reopened = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 4096)
        #expect(try reopened.list().map(\.seq) == Array(1...30))
        #expect(try reopened.verify().isIntact)
        // An episode larger than a segment gets a segment of its own size.
        let big = try reopened.write(body: F.body("big", size: 10_000), runId: "big")
        #expect(try reopened.show(runId: "big").problem == nil)
        #expect(big.seq == 31)
        #expect(try reopened.verify().isIntact)
    }

    @Test func twoInstancesOnOneDirectoryChainCorrectly() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let a = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 4096)
        let b = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 4096)
        for i in 1...12 {
            let (writer, reader) = i % 2 == 0 ? (a, b) : (b, a)
            let ref = try writer.write(body: F.body("x\(i)"), runId: "x\(i)")
            #expect(ref.seq == i)
            // The other instance finds it (it catches up with the head).
            #expect(try reader.show(runId: "x\(i)").ref.seq == i)
        }
        let report = try a.verify()
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == 12)
    }

    /// A lone blocking writer commits on its own thread (no hand-off), and the mirror of what it
    /// wrote is still made durable by the committer's idle sync, with nobody asking for it.
    @Test func aLoneWriterLeadsAndItsMirrorIsStillSynced() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 64 << 10)
        for i in 1...5 { #expect(try log.write(body: F.body("l\(i)"), runId: "l\(i)").seq == i) }
        #expect(log.leaderCommits == 5)
        #expect(log.groupCommits == 5)
        // The idle sync comes 2 ms after the last commit; the bound only stops a hang.
        var waited = 0
        while log.mirrorIsDirty && waited < 30_000 {
            usleep(10_000)
            waited += 10
        }
        #expect(!log.mirrorIsDirty, "the mirror was never synced after the leader's commits")
        #expect(try log.verify().isIntact)
    }

    @Test func concurrentWritersShareGroupCommits() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 64 << 10)
        let results = ResultsBox()
        runThreads(32) { t in
            for j in 0..<10 {
                let id = "c\(t)-\(j)"
                do { results.add(id, try log.write(body: F.body(id), runId: id).seq) } catch { results.fail(id, "\(error)") }
            }
        }
        #expect(results.failed.isEmpty, "\(results.failed)")
        #expect(results.seqs.values.sorted() == Array(1...320))
        #expect(log.groupCommits < 320, "every write had a commit of its own: no group commit")
        let report = try log.verify()
        #expect(report.isIntact, "\(report)")
    }

    /// An `async` writer that does not say it is `alone` never leads (it would hold a
    /// cooperative thread through an `fdatasync` while other runs need it), and async writers
    /// arriving while the log is busy are appended as one group.
    @Test func asyncWritersQueueAndAreGrouped() async throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 64 << 10)
        for i in 1...5 { #expect(try await log.write(body: F.body("a\(i)"), runId: "a\(i)").seq == i) }
        #expect(log.leaderCommits == 0)
        #expect(log.groupCommits == 5)
        // While the log is busy (an exclusive task holds the committer), async writers queue
        // rather than lead, and the committer appends them as one group afterwards. The task
        // is waited for by a flag it sets, not by `committing` (the idle mirror sync sets that
        // too), and by sleeping the task, not a thread of the pool.
        let gate = WaitBox<Bool>(), started = Flag()
        let busy = Thread { _ = try? log.exclusive { started.set(); _ = gate.wait() } }
        busy.start()
        while !started.isSet { try await Task.sleep(for: .milliseconds(1)) }
        let writers = Task {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<64 { group.addTask { try await log.write(body: F.body("o\(i)"), runId: "o\(i)").seq } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        while log.state.withLock({ log.state.queue.count }) < 64 { try await Task.sleep(for: .milliseconds(1)) }
        gate.set(true)
        let seqs = try await writers.value
        #expect(seqs.sorted() == Array(6...69))
        #expect(log.leaderCommits == 0, "an async writer led")
        #expect(log.groupCommits == 6, "the 64 queued writes were not appended as one group")
        #expect(try log.verify().isIntact)
    }

    /// An `async` writer that is `alone` (the only run in flight) leads when the log is idle
    /// (with more than one processor), and queues when the log is busy.
    @Test func anAloneAsyncWriterLeadsWhenTheLogIsIdle() async throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 64 << 10)
        let leads = EpisodeSegmentLog.asyncWritersMayLead ? 1 : 0
        for i in 1...5 { #expect(try await log.write(body: F.body("l\(i)"), runId: "l\(i)", alone: true).seq == i) }
        #expect(log.leaderCommits == 5 * leads)
        #expect(log.groupCommits == 5)
        // Busy with an exclusive task that has started (not merely queued, and not the
        // committer's idle mirror sync, which also sets `committing`): the writer must queue.
        // Waits sleep the task, not the thread: the writer needs a thread of the pool to queue.
        let gate = WaitBox<Bool>(), started = Flag()
        let busy = Thread { _ = try? log.exclusive { started.set(); _ = gate.wait() } }
        busy.start()
        while !started.isSet { try await Task.sleep(for: .milliseconds(1)) }
        let writer = Task { try await log.write(body: F.body("busy"), runId: "busy", alone: true).seq }
        while log.state.withLock({ log.state.queue.count }) < 1 { try await Task.sleep(for: .milliseconds(1)) }
        gate.set(true)
        #expect(try await writer.value == 6)
        #expect(log.leaderCommits == 5 * leads, "an alone writer led while the log was busy")
        #expect(try log.verify().isIntact)
    }

    @Test func asyncWritersFromManyTasks() async throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data)
        let seqs = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<100 { group.addTask { try await log.write(body: F.body("t\(i)"), runId: "t\(i)").seq } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(seqs.sorted() == Array(1...100))
        #expect(try log.verify().isIntact)
    }

    /// The expected step and outcome of a failure at each write point (nil: the write succeeds).
    static let expectations: [(LogFaultPoint, EpisodeWriteStep?, EpisodeWriteOutcome?)] = [
        (.append, .write, .notWritten),
        (.sync, .fsync, .notWritten),
        (.mirrorAppend, nil, nil),
        (.rotate, .rotate, .notWritten),
    ]

    @Test(arguments: LogFaultPoint.allCases)
    func failureAtEachWritePoint(_ point: LogFaultPoint) throws {
        let (_, wantStep, wantOutcome) = Self.expectations.first { $0.0 == point }!
        let data = F.tempDir()
        defer { F.remove(data) }
        let fs = FaultyFileSystem()
        // Small segments: for `.rotate`, the first episode nearly fills one, so the next write
        // starts a new segment.
        let log = try EpisodeSegmentLog(dataDirectory: data, fileSystem: fs, segmentBytes: 4096)
        if point == .rotate {
            try log.write(body: F.body("a1", size: 3600), runId: "a1")
        } else {
            try log.write(body: F.body("a1"), runId: "a1")
            try log.write(body: F.body("a2"), runId: "a2")
        }
        let before = try log.list().count
        // The mirror synced now, so that no idle mirror sync meets the armed fault.
        try log.syncMirror()
        fs.arm(point)
        do {
            let ref = try log.write(body: F.body("bad", size: 200), runId: "bad")
            #expect(wantStep == nil, "write succeeded despite a failing \(point)")
            #expect(try log.show(runId: "bad").ref == ref)
        } catch let EpisodeError.writeFailed(runId, step, outcome, cause) {
            #expect(runId == "bad")
            #expect(step == wantStep)
            #expect(outcome == wantOutcome)
            #expect(cause.errno == EIO)
        }
        #expect(fs.fired == 1)
        if wantOutcome == .notWritten {
            #expect(throws: EpisodeError.self) { try log.show(runId: "bad") }
            #expect(try log.list().count == before)
            // The failed run id can be written again.
            try log.write(body: F.body("bad", size: 200), runId: "bad")
        }
        if point == .mirrorAppend {
            // The primary stands; the mirror lacks the frame until the next group's recovery.
            try log.syncMirror()
            #expect(!(try log.verify().backupProblems.isEmpty))
        }
        try log.write(body: F.body("a3", size: 200), runId: "a3")
        try log.syncMirror()
        let verify = try log.verify()
        #expect(verify.isIntact, "\(verify)")
        #expect(verify.backupProblems.isEmpty, "\(verify.backupProblems)")
        #expect(verify.checked == before + 2)
        // A fresh open agrees.
        let reopened = try EpisodeSegmentLog(dataDirectory: data)
        #expect(reopened.openRecovery?.chain.isIntact == true)
        #expect(try reopened.list().count == before + 2)
    }

    @Test func tornTailIsTruncatedAndTheChainContinues() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        var tail = 0, hash3 = ""
        do {
            let log = try EpisodeSegmentLog(dataDirectory: data)
            for i in 1...3 { hash3 = try log.write(body: F.body("t\(i)"), runId: "t\(i)").hash }
            try log.syncMirror()
            tail = log.state.withLock { log.state.tip.offset }
            // A crash in the middle of the next append: half a frame in the primary, the head dirty.
            let enc = EpisodeFormat.encode(body: ["plan_name": "lost"], runId: "t4", seq: 4, prevHash: hash3)
            let frame = SegmentFormat.frame(runId: "t4", seq: 4, episode: enc.bytes)
            Self.overwrite(log.primaryPath(1), at: tail, with: Array(frame.prefix(frame.count / 2)))
            try log.writeHead(clean: false, tip: log.state.withLock { log.state.tip })
        }
        // `.noRecovery` (verify) reports the torn tail and changes nothing.
        let look = try EpisodeSegmentLog(dataDirectory: data, openMode: .noRecovery)
        let seen = try look.verify()
        #expect(seen.isIntact, "\(seen)")
        #expect(seen.staleTempFiles.count == 1, "\(seen.staleTempFiles)")
        // The start-up recovery truncates it.
        let log = try EpisodeSegmentLog(dataDirectory: data)
        #expect(log.openRecovery?.removedTempFiles.count == 1, "\(String(describing: log.openRecovery))")
        #expect(F.read(log.primaryPath(1))[tail..<tail + 64].allSatisfy { $0 == 0 })
        let ref = try log.write(body: F.body("t4"), runId: "t4")
        #expect(ref.seq == 4)
        #expect(try log.show(runId: "t4").prevHash == hash3)
        #expect(try log.verify().isIntact)
    }

    @Test func aCompleteUnacknowledgedFrameInOneCopyRollsForward() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        do {
            let log = try EpisodeSegmentLog(dataDirectory: data)
            var hash = ""
            for i in 1...3 { hash = try log.write(body: F.body("u\(i)"), runId: "u\(i)").hash }
            try log.syncMirror()
            let tip = log.state.withLock { log.state.tip }
            // Killed after the mirror got the next group and before the primary did.
            let enc = EpisodeFormat.encode(body: ["plan_name": "late"], runId: "u4", seq: 4, prevHash: hash)
            Self.overwrite(log.mirrorPath(1), at: tip.offset, with: SegmentFormat.frame(runId: "u4", seq: 4, episode: enc.bytes))
            try log.writeHead(clean: false, tip: tip)
        }
        let log = try EpisodeSegmentLog(dataDirectory: data)
        #expect(log.openRecovery?.restoredCorrupt == ["u4"], "\(String(describing: log.openRecovery))")
        #expect(try log.show(runId: "u4").problem == nil)
        #expect(try log.write(body: F.body("u5"), runId: "u5").seq == 5)
        #expect(try log.verify().isIntact)
    }

    @Test func changedByteIsNamedByVerifyAndRestoredFromTheMirror() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data)
        for i in 1...5 { try log.write(body: F.body("t\(i)"), runId: "t\(i)") }
        try log.syncMirror()
        let path = log.primaryPath(1)
        let original = F.read(path)
        let frame = try #require(Self.frames(path).first { $0.runId == "t3" })
        // Every part of the frame: its header (magic, length, seq, CRC), the run id, the
        // episode's keys, values and hash, the newline; plus random positions.
        var positions = Set([0, 4, 8, 16, 20, 24])
        let text = String(decoding: frame.episode, as: UTF8.self)
        for needle in ["demo", "\"seq\"", "1000.5", "prev_hash", "\"hash\":\"", "totals"] {
            let r = try #require(text.range(of: needle), "\(needle)")
            positions.insert(24 + 2 + text.utf8.distance(from: text.startIndex, to: r.lowerBound) + 1)
        }
        positions.insert(24 + 2 + frame.episode.count - 1)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<12 { positions.insert(Int.random(in: 0..<(24 + 2 + frame.episode.count), using: &rng)) }
        for pos in positions.sorted() {
            var bytes = original
            bytes[frame.offset + pos] ^= 0x01
            F.write(bytes, to: path)
            let report = try log.verify()
            #expect(!report.isIntact, "byte \(pos) edit not detected")
            #expect(report.firstBroken?.runId == "t3", "byte \(pos): \(report)")
            #expect(report.firstBroken?.seq == 3, "byte \(pos): \(report)")
            // `show` falls back to the mirror and says so.
            #expect(try log.show(runId: "t3").problem?.contains("mirror") == true)
        }
        // Recovery restores the frame from the mirror and keeps the damaged segment.
        var bytes = original
        bytes[frame.offset + 40] ^= 0x01
        F.write(bytes, to: path)
        let report = try log.recover()
        #expect(report.restoredCorrupt == ["t3"])
        #expect(report.chain.isIntact, "\(report)")
        #expect(F.read(path) == original)
        #expect(F.files(in: log.quarantineDirectory).contains { $0.hasPrefix("00000001.seg.primary.") })
        #expect(try log.verify().isIntact)
    }

    @Test func forgedEpisodeBreaksTheNextLink() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data)
        for i in 1...4 { try log.write(body: F.body("f\(i)"), runId: "f\(i)") }
        try log.syncMirror()
        // Rewrite f2 in both copies with other content (same length), correctly hashed and framed.
        let e2 = try log.show(runId: "f2")
        guard case .object(var body) = F.body("f2", status: "SUCCEEDED") else { return }
        body.removeValue(forKey: "run_id")
        let forged = EpisodeFormat.encode(body: body, runId: "f2", seq: 2, prevHash: e2.prevHash)
        let at = try #require(Self.frames(log.primaryPath(1)).first { $0.runId == "f2" }).offset
        for path in [log.primaryPath(1), log.mirrorPath(1)] {
            Self.overwrite(path, at: at, with: SegmentFormat.frame(runId: "f2", seq: 2, episode: forged.bytes))
        }
        let report = try log.verify()
        #expect(report.firstBroken?.kind == .prevHashMismatch, "\(report)")
        #expect(report.firstBroken?.seq == 3)
        #expect(report.firstBroken?.runId == "f3")
    }

    @Test func deletedSegmentIsAGapAndTheMirrorRestoresIt() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let log = try EpisodeSegmentLog(dataDirectory: data, segmentBytes: 4096)
        for i in 1...20 { try log.write(body: F.body("d\(i)"), runId: "d\(i)") }
        try log.syncMirror()
        let second = Self.frames(log.primaryPath(2))
        let firstOfSecond = try #require(second.first)
        try FileManager.default.removeItem(atPath: log.primaryPath(2))
        let report = try log.verify()
        #expect(report.firstBroken?.kind == .missing, "\(report)")
        #expect(report.firstBroken?.runId == firstOfSecond.runId)
        #expect(report.firstBroken?.seq == firstOfSecond.header.seq)
        let repaired = try log.recover()
        #expect(repaired.restoredMissing == second.map(\.runId))
        #expect(try log.verify().isIntact)
        // Both copies gone: a gap that names the missing seqs.
        let third = Self.frames(log.primaryPath(3))
        try FileManager.default.removeItem(atPath: log.primaryPath(3))
        try FileManager.default.removeItem(atPath: log.mirrorPath(3))
        let gap = try log.verify()
        #expect(gap.firstBroken?.kind == .missing, "\(gap)")
        #expect(gap.firstBroken?.seq == third.first?.header.seq)
    }

    @Test func migratesALegacyDirectoryOfEpisodeFiles() async throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        var legacyDocs: [String: JSONValue] = [:]
        do {
            let legacy = try EpisodeFileChain(dataDirectory: data)
            for i in 1...6 { try await legacy.write(body: F.body("m\(i)"), runId: "m\(i)") }
            for i in 1...6 { legacyDocs["m\(i)"] = try legacy.show(runId: "m\(i)").document }
            // A damaged primary: the legacy repair restores it from its backup first.
            F.write(Array("{broken".utf8), to: legacy.path(of: "m2"))
        }
        let log = try await EpisodeLog.open(dataDirectory: data)
        #expect(log.episodes.openRecovery?.migratedLegacyFiles == 6, "\(String(describing: log.episodes.openRecovery))")
        for (id, doc) in legacyDocs {
            let e = try await log.show(runId: id)
            #expect(e.problem == nil)
            #expect(e.document == doc)
        }
        #expect(try await log.verify().isIntact)
        #expect(try await log.list().map(\.runId) == ["m6", "m5", "m4", "m3", "m2", "m1"])
        // The files are kept aside, not deleted, and not migrated twice.
        #expect(F.files(in: data + "/episodes/_legacy").filter { $0.hasSuffix(".json") }.count == 6)
        #expect(!F.files(in: data + "/episodes").contains { $0.hasSuffix(".json") })
        let again = try await EpisodeLog.open(dataDirectory: data)
        #expect(again.episodes.openRecovery?.migratedLegacyFiles == 0)
        let next = try await again.write(body: F.body("m7"), runId: "m7")
        #expect(next.ref.seq == 7)
        #expect(try await again.show(runId: "m7").prevHash == legacyDocs["m6"]?["hash"]?.stringValue)
    }
}

/// A flag one thread sets and a test task polls.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}
