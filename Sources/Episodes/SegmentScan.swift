import JSON
import HostSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Verification, recovery and index loading of the episode log.
extension EpisodeSegmentLog {
    /// Walks every frame of both copies without changing anything and reports every broken
    /// link, the first one first: a damaged frame (CRC, hash or canonical bytes), a gap, a
    /// `prev_hash` that does not match, duplicate seqs; mirror problems and torn tails apart.
    public func verify() throws -> VerifyReport {
        try exclusive { try self.scanLocked(repair: false, deep: true).report }
    }

    /// The start-up repair, explicitly: restores damaged or missing primary frames from the
    /// mirror (the damaged segment is kept in `_quarantine/`), rewrites the mirror where it
    /// lacks or differs from an intact primary, truncates a torn tail, fsyncs what it changed,
    /// checks the chain and resets the head.
    @discardableResult
    public func recover() throws -> RecoveryReport {
        try exclusive {
            self.closeHandles()
            return try self.recoverLocked(deep: true)
        }
    }

    // MARK: Index loading

    /// Builds the run-id index from the frame headers. With a trusted `head` the frames up to
    /// its tip are taken as they are (the last writer finished cleanly) and anything else means
    /// the full recovery; without one (`.noRecovery`) it stops at the first damaged frame of a
    /// segment and repairs nothing.
    func loadIndexLocked(trusting head: LogHead?) throws -> RecoveryReport {
        var index: [String: RecordLocation] = [:]
        var tip = LogTip.empty
        var issues: [ChainIssue] = []
        var expected = 1
        for n in try segmentNumbers() {
            if let head, n > head.tip.segment { break }
            let path = fs.fileExists(primaryPath(n)) ? primaryPath(n) : mirrorPath(n)
            let bytes: [UInt8]
            do { bytes = try fs.readFile(path) } catch { throw EpisodeError.io(Self.fsError(error, "read", path)) }
            var off = SegmentFormat.segmentHeaderBytes
            let limit = head.map { n == $0.tip.segment ? $0.tip.offset : bytes.count } ?? bytes.count
            while off < limit {
                let frame: (seq: Int, runId: String, size: Int)?
                if head != nil, let h = SegmentFormat.header(bytes, at: off), off + h.frameBytes <= bytes.count {
                    let idStart = off + SegmentFormat.frameHeaderBytes
                    frame = (h.seq, String(decoding: bytes[idStart..<idStart + h.runIdLength], as: UTF8.self), h.frameBytes)
                } else if head == nil, let f = SegmentFormat.frame(in: bytes, at: off) {
                    frame = (f.header.seq, f.runId, f.header.frameBytes)
                } else {
                    frame = nil
                }
                guard let frame else {
                    // Inside the head's tip segment the head promised more than is there.
                    if let head, n == head.tip.segment { return try recoverLocked() }
                    break
                }
                if frame.seq != expected {
                    issues.append(ChainIssue(kind: .missing, seq: expected, runId: nil, detail: "the frame after seq \(expected - 1) holds seq \(frame.seq)"))
                }
                expected = frame.seq + 1
                index[frame.runId] = RecordLocation(segment: n, offset: off, seq: frame.seq)
                tip = LogTip(segment: n, offset: off + frame.size, seq: frame.seq, hash: "", runId: frame.runId)
                off += frame.size
            }
        }
        if let head {
            if tip.seq != head.tip.seq || tip.runId != head.tip.runId && head.tip.seq > 0 { return try recoverLocked() }
            tip = head.tip
        } else if let last = index[tip.runId], tip.seq > 0 {
            tip.hash = (try? read(last, runId: tip.runId).ref.hash) ?? ""
        }
        let count = index.count
        let finalTip = tip
        state.withLock {
            state.index = index
            state.tip = finalTip
        }
        let ref = tip.seq > 0 ? EpisodeRef(runId: tip.runId, seq: tip.seq, hash: tip.hash, path: location(tip.segment, tip.offset)) : nil
        return RecoveryReport(chain: VerifyReport(checked: count, tip: ref, issues: issues))
    }

    /// Takes in the frames other processes appended, up to `target` (the head's tip). Falls
    /// back to the full recovery if the frames do not lead there.
    func catchUpLocked(to target: LogTip?) throws {
        guard let target else { return }
        var tip = state.tip
        if target == tip { return }
        if target.seq < tip.seq { closeHandles(); _ = try recoverLocked(); return }
        var added: [String: RecordLocation] = [:]
        var segment = max(tip.segment, 1)
        var off = tip.segment == 0 ? SegmentFormat.segmentHeaderBytes : tip.offset
        while (segment, off) < (target.segment, target.offset) {
            guard let f = readFrame(path: primaryPath(segment), offset: off) ?? readFrame(path: mirrorPath(segment), offset: off) else {
                if segment < target.segment {
                    segment += 1
                    off = SegmentFormat.segmentHeaderBytes
                    continue
                }
                closeHandles()
                _ = try recoverLocked()
                return
            }
            added[f.runId] = RecordLocation(segment: segment, offset: off, seq: f.header.seq)
            tip = LogTip(segment: segment, offset: off + f.header.frameBytes, seq: f.header.seq, hash: "", runId: f.runId)
            off += f.header.frameBytes
        }
        if tip.seq != target.seq || (tip.segment, tip.offset) != (target.segment, target.offset) {
            closeHandles()
            _ = try recoverLocked()
            return
        }
        if target.segment != state.tip.segment { closeHandles() }
        state.withLock {
            state.index.merge(added) { $1 }
            state.tip = target
        }
    }

    /// The segment numbers present in either copy, ascending.
    func segmentNumbers() throws -> [Int] {
        var numbers = Set<Int>()
        for dir in [logDirectory, mirrorDirectory] {
            let names: [String]
            do { names = try fs.listDirectory(dir) } catch { throw EpisodeError.io(Self.fsError(error, "list", dir)) }
            for name in names { if let n = SegmentFormat.number(ofFile: name) { numbers.insert(n) } }
        }
        return numbers.sorted()
    }

    // MARK: Recovery

    /// Full recovery; the caller holds the flock and no segment file is open. `deep` checks
    /// every episode's hash and link too (explicit `recover`); the start-up repair after a crash
    /// relies on the frames' CRCs, which is what a crash can break, and leaves deliberate
    /// changes to `verify`.
    func recoverLocked(deep: Bool = false) throws -> RecoveryReport {
        var scan = try scanLocked(repair: true, deep: deep)
        do {
            try apply(scan)
        } catch {
            throw EpisodeError.io(Self.fsError(error, "repair", logDirectory))
        }
        // The report describes the log as recovery left it.
        if !scan.fixes.isEmpty { scan.report = try scanLocked(repair: false, deep: deep).report }
        var index: [String: RecordLocation] = [:]
        var tip = LogTip.empty
        for r in scan.records {
            guard let seq = r.seq, let runId = r.runId else { continue }
            index[runId] = RecordLocation(segment: r.segment, offset: r.offset, seq: seq)
            if seq >= tip.seq {
                tip = LogTip(segment: r.segment, offset: r.offset + r.frameBytes, seq: seq, hash: r.hash ?? "", runId: runId)
            }
        }
        if tip.seq > 0 && tip.hash.isEmpty, let loc = index[tip.runId] {
            tip.hash = try read(loc, runId: tip.runId).ref.hash
        }
        // New appends continue after the highest position known: the log's tip, or the old head
        // if it is further (records at the end were lost: the gap must stay visible).
        if let old = readHead(), old.tip.seq > tip.seq {
            tip = LogTip(segment: tip.segment, offset: tip.offset, seq: old.tip.seq, hash: old.tip.hash, runId: old.tip.runId)
        }
        let finalTip = tip
        state.withLock {
            state.index = index
            state.tip = finalTip
        }
        do { try writeHead(clean: true, tip: finalTip) } catch { throw EpisodeError.io(Self.fsError(error, "write head", lockFile.path)) }
        return RecoveryReport(removedTempFiles: scan.tornTails, restoredMissing: scan.restoredMissing, restoredCorrupt: scan.restoredCorrupt,
                              rewrittenBackups: scan.rewrittenMirror, unrepairable: scan.unrepairable, chain: scan.report)
    }

    /// Writes the repaired segment images: changed 4 KiB blocks in place (a damaged segment is
    /// first copied to `_quarantine/`), missing files whole; fsyncs.
    private func apply(_ scan: LogScan) throws {
        var touched = false
        for fix in scan.fixes {
            touched = true
            if fix.quarantine, let old = fix.old {
                try fs.createDirectory(quarantineDirectory)
                let q = quarantineDirectory + "/\(SegmentFormat.fileName(fix.segment)).primary.\(Timestamps.wallNanos())"
                let h = try fs.createFile(q, contents: old)
                defer { fs.close(h) }
                try fs.fsync(h)
            }
            let h = try fs.openFile(fix.path)
            defer { fs.close(h) }
            let old = fix.old ?? []
            var at = 0
            while at < fix.new.count {
                let end = min(at + 4096, fix.new.count)
                if end > old.count || fix.new[at..<end] != old[at..<end] { try fs.write(h, Array(fix.new[at..<end]), at: at) }
                at = end
            }
            try fs.fsync(h)
        }
        if touched {
            try fs.fsyncDirectory(logDirectory)
            try fs.fsyncDirectory(mirrorDirectory)
        }
    }

    /// One segment file's repaired image.
    struct SegmentFix {
        let segment: Int
        let path: String
        let old: [UInt8]?
        let new: [UInt8]
        let quarantine: Bool
    }

    /// A record as found by the scan, in log order.
    struct ScannedRecord {
        var seq: Int?
        var runId: String?
        var hash: String?
        var prevHash: String?
        let segment: Int
        let offset: Int
        let frameBytes: Int
        /// Set when this record breaks the chain as it stands (after repair, in recover mode).
        var issue: ChainIssue?
    }

    /// What a scan found (and, when repairing, what to write).
    struct LogScan {
        var records: [ScannedRecord] = []
        var mirrorProblems: [String] = []
        var tornTails: [String] = []
        var restoredMissing: [String] = []
        var restoredCorrupt: [String] = []
        var rewrittenMirror: [String] = []
        var unrepairable: [String] = []
        var fixes: [SegmentFix] = []
        var report = VerifyReport(checked: 0, tip: nil, issues: [])
    }

    /// An intact frame whose episode checks out, or what is wrong with it.
    private enum FrameState {
        /// Intact; the episode when it was checked (deep scans).
        case good(SegmentFormat.Frame, Episode?)
        case bad(SegmentFormat.Frame, ChainIssue.Kind, String)
        case none
    }

    private func examine(_ bytes: [UInt8]?, at off: Int, segment: Int, deep: Bool) -> FrameState {
        guard let bytes, let f = SegmentFormat.frame(in: bytes, at: off) else { return .none }
        guard deep else { return .good(f, nil) }
        switch EpisodeFormat.check(bytes: f.episode, expectedRunId: f.runId, path: location(segment, off)) {
        case .valid(let e):
            if e.ref.seq != f.header.seq { return .bad(f, .corrupt, "the frame says seq \(f.header.seq) but its episode says \(e.ref.seq)") }
            return .good(f, e)
        case let .invalid(kind, reason, _, _, _):
            return .bad(f, kind, reason)
        }
    }

    /// Reads both copies of every segment and reconciles them frame by frame.
    func scanLocked(repair: Bool, deep: Bool) throws -> LogScan {
        var scan = LogScan()
        let numbers = try segmentNumbers()
        var images: [(n: Int, p: [UInt8]?, m: [UInt8]?)] = []
        for n in numbers {
            func load(_ path: String) throws -> [UInt8]? {
                guard fs.fileExists(path) else { return nil }
                do { return try fs.readFile(path) } catch { throw EpisodeError.io(Self.fsError(error, "read", path)) }
            }
            images.append((n, try load(primaryPath(n)), try load(mirrorPath(n))))
        }
        // Segments after the last one holding a frame were preallocated by a rotation that no
        // episode reached (the next rotation reuses them): nothing to check.
        let lastWithFrames = images.last { img in
            [img.p, img.m].contains { $0.map { SegmentFormat.frame(in: $0, at: SegmentFormat.segmentHeaderBytes) != nil } ?? false }
        }?.n ?? 0
        for img in images where img.n <= lastWithFrames {
            scanSegment(img.n, primary: img.p, mirror: img.m, repair: repair, deep: deep, into: &scan)
        }
        scan.report = analyze(scan)
        return scan
    }

    private func scanSegment(_ n: Int, primary p: [UInt8]?, mirror m: [UInt8]?, repair: Bool, deep: Bool, into scan: inout LogScan) {
        let size = max(p?.count ?? 0, m?.count ?? 0, SegmentFormat.segmentHeaderBytes)
        func image(_ b: [UInt8]?) -> [UInt8] {
            var out = b ?? []
            if out.count < size { out += [UInt8](repeating: 0, count: size - out.count) }
            return out
        }
        var newP = image(p), newM = image(m)
        let header = SegmentFormat.segmentHeader(number: n)
        var primaryDamaged = false
        if p == nil {
            scan.mirrorProblems.append("\(primaryPath(n)) is missing")
        } else if !SegmentFormat.isSegmentHeader(p![...], number: n) {
            scan.mirrorProblems.append("\(primaryPath(n)): segment header damaged")
        }
        if m == nil {
            scan.mirrorProblems.append("\(mirrorPath(n)) is missing")
        } else if !SegmentFormat.isSegmentHeader(m![...], number: n) {
            scan.mirrorProblems.append("\(mirrorPath(n)): segment header damaged")
        }
        newP.replaceSubrange(0..<header.count, with: header)
        newM.replaceSubrange(0..<header.count, with: header)
        var off = SegmentFormat.segmentHeaderBytes
        while off + SegmentFormat.frameHeaderBytes <= size {
            let where_ = location(n, off)
            let ps = examine(p, at: off, segment: n, deep: deep)
            // A mirror frame identical to an intact primary one needs no second check.
            let ms: FrameState
            if case .good(let fp, let ep) = ps, let m, off + fp.raw.count <= m.count, m[off..<off + fp.raw.count] == fp.raw {
                ms = .good(fp, ep)
            } else {
                ms = examine(m, at: off, segment: n, deep: deep)
            }
            switch (ps, ms) {
            case let (.good(fp, ep), .good(fm, _)):
                scan.records.append(record(n, off, fp, ep))
                if fp.raw != fm.raw {
                    scan.unrepairable.append("\(where_): primary and mirror hold different intact episodes (\(fp.runId), \(fm.runId)); left as they are")
                }
                off += fp.header.frameBytes
            case let (.good(fp, ep), _):
                scan.records.append(record(n, off, fp, ep))
                scan.mirrorProblems.append("\(fp.runId) (seq \(fp.header.seq)): mirror copy missing or damaged")
                newM.replaceSubrange(off..<off + fp.raw.count, with: fp.raw)
                scan.rewrittenMirror.append(fp.runId)
                off += fp.header.frameBytes
            case let (primaryState, .good(fm, em)):
                var r = record(n, off, fm, em)
                if repair {
                    newP.replaceSubrange(off..<off + fm.raw.count, with: fm.raw)
                    if p == nil { scan.restoredMissing.append(fm.runId) } else { scan.restoredCorrupt.append(fm.runId) }
                    primaryDamaged = p != nil
                } else {
                    let (kind, what): (ChainIssue.Kind, String)
                    switch primaryState {
                    case .bad(_, let k, let reason): (kind, what) = (k, reason)
                    default: (kind, what) = p == nil ? (.missing, "its segment file is missing") : (.corrupt, "the frame is damaged (CRC)")
                    }
                    r.issue = ChainIssue(kind: kind, seq: fm.header.seq, runId: fm.runId,
                                         detail: "\(where_): \(what); its mirror copy is intact (`recover` restores it)")
                }
                scan.records.append(r)
                off += fm.header.frameBytes
            case let (.bad(f, kind, reason), _), let (.none, .bad(f, kind, reason)):
                let claimed = SegmentFormat.header(p ?? m ?? [], at: off)
                var r = ScannedRecord(seq: claimed?.seq ?? f.header.seq, runId: f.runId, hash: nil, prevHash: nil,
                                      segment: n, offset: off, frameBytes: f.header.frameBytes)
                r.issue = ChainIssue(kind: kind, seq: r.seq, runId: f.runId, detail: "\(where_): \(reason); no intact copy")
                scan.records.append(r)
                scan.unrepairable.append("\(f.runId): damaged in both copies (\(reason))")
                off += f.header.frameBytes
            case (.none, .none):
                // The tail: zeros, or the torn remains of an interrupted append.
                let lastP = lastNonZero(p, from: off), lastM = lastNonZero(m, from: off)
                if let last = [lastP, lastM].compactMap({ $0 }).max() {
                    if let next = nextFrame(p, m, after: off, size: min(size, last + SegmentFormat.frameHeaderBytes + 8)) {
                        let claimed = SegmentFormat.header(p ?? [], at: off) ?? SegmentFormat.header(m ?? [], at: off)
                        var r = ScannedRecord(seq: claimed?.seq, runId: nil, hash: nil, prevHash: nil, segment: n, offset: off, frameBytes: next - off)
                        r.issue = ChainIssue(kind: .corrupt, seq: claimed?.seq, runId: nil,
                                             detail: "\(where_): \(next - off) bytes damaged in both copies, before the frame at offset \(next)")
                        scan.records.append(r)
                        scan.unrepairable.append("\(where_): \(next - off) bytes damaged in both copies")
                        off = next
                        continue
                    }
                    let end = last + 1
                    scan.tornTails.append("\(where_): \(end - off) bytes of an interrupted append (torn tail)")
                    for i in off..<min(end, newP.count) { newP[i] = 0 }
                    for i in off..<min(end, newM.count) { newM[i] = 0 }
                }
                off = size
            }
        }
        guard repair else { return }
        if newP != (p ?? []) { scan.fixes.append(SegmentFix(segment: n, path: primaryPath(n), old: p, new: newP, quarantine: primaryDamaged)) }
        if newM != (m ?? []) { scan.fixes.append(SegmentFix(segment: n, path: mirrorPath(n), old: m, new: newM, quarantine: false)) }
    }

    private func record(_ n: Int, _ off: Int, _ f: SegmentFormat.Frame, _ e: Episode?) -> ScannedRecord {
        ScannedRecord(seq: f.header.seq, runId: f.runId, hash: e?.ref.hash, prevHash: e?.prevHash, segment: n, offset: off, frameBytes: f.header.frameBytes)
    }

    /// The next offset (8-byte aligned, after `off`) where either copy holds an intact frame.
    private func nextFrame(_ p: [UInt8]?, _ m: [UInt8]?, after off: Int, size: Int) -> Int? {
        var at = off + 8
        while at + SegmentFormat.frameHeaderBytes <= size {
            if let p, SegmentFormat.frame(in: p, at: at) != nil { return at }
            if let m, SegmentFormat.frame(in: m, at: at) != nil { return at }
            at += 8
        }
        return nil
    }

    private func lastNonZero(_ b: [UInt8]?, from off: Int) -> Int? {
        guard let b, off < b.count else { return nil }
        return b.withUnsafeBufferPointer { buf -> Int? in
            var i = buf.count - 1
            while i >= off {
                if buf[i] != 0 { return i }
                i -= 1
            }
            return nil
        }
    }

    /// The chain check over the scanned records.
    private func analyze(_ scan: LogScan) -> VerifyReport {
        var issues: [ChainIssue] = []
        var expected = 1
        var expectedPrev: String? = EpisodeFormat.genesisHash
        var previous: ScannedRecord?
        var tip: EpisodeRef?
        var checked = 0
        var seen = Set<String>()
        for r in scan.records {
            checked += 1
            if let issue = r.issue {
                issues.append(issue)
                if let s = r.seq { expected = s + 1 }
                expectedPrev = nil
                continue
            }
            guard let s = r.seq, let runId = r.runId else { continue }
            if s > expected {
                let after = previous.flatMap { p in p.seq.map { " after seq \($0) (run \(p.runId ?? "?"))" } } ?? ""
                let range = s - expected == 1 ? "seq \(expected) is missing" : "seqs \(expected)–\(s - 1) are missing (\(s - expected) episodes)"
                issues.append(ChainIssue(kind: .missing, seq: expected, runId: nil, detail: "\(range)\(after), before seq \(s) (run \(runId))"))
                expectedPrev = nil
            } else if s < expected {
                issues.append(ChainIssue(kind: .duplicateSeq, seq: s, runId: runId, detail: "run \(runId) claims seq \(s), already taken"))
            }
            if !seen.insert(runId).inserted {
                issues.append(ChainIssue(kind: .duplicateSeq, seq: s, runId: runId, detail: "run \(runId) appears twice in the log"))
            }
            if let want = expectedPrev, let have = r.prevHash, want != have {
                let prevName = previous.flatMap { p in p.seq.map { "seq \($0) (run \(p.runId ?? "?")) has hash \(want.prefix(16))…" } }
                    ?? "the chain starts with 64 zeros"
                issues.append(ChainIssue(kind: .prevHashMismatch, seq: s, runId: runId, detail: "prev_hash is \(have.prefix(16))… but \(prevName)"))
            }
            expectedPrev = r.hash
            expected = s + 1
            previous = r
            tip = EpisodeRef(runId: runId, seq: s, hash: r.hash ?? "", path: location(r.segment, r.offset))
        }
        if let head = readHead(), head.tip.seq >= expected {
            let range = head.tip.seq == expected ? "seq \(expected) is missing" : "seqs \(expected)–\(head.tip.seq) are missing"
            issues.append(ChainIssue(kind: .missing, seq: expected, runId: head.tip.seq == expected ? head.tip.runId : nil,
                                     detail: "\(range) at the end of the chain: the head record names seq \(head.tip.seq) (run \(head.tip.runId)) as the tip"))
        }
        return VerifyReport(checked: checked, tip: tip, issues: issues, backupProblems: scan.mirrorProblems, staleTempFiles: scan.tornTails)
    }
}

extension RecoveryReport {
    /// This report with `migrated` legacy episode files noted.
    func adding(migrated: Int) -> RecoveryReport {
        RecoveryReport(removedTempFiles: removedTempFiles, restoredMissing: restoredMissing, restoredCorrupt: restoredCorrupt,
                       rewrittenBackups: rewrittenBackups, unrepairable: unrepairable, chain: chain, migratedLegacyFiles: migrated)
    }
}
