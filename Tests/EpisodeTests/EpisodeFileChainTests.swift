import Foundation
import Testing
import Host
@testable import Episodes
import JSON

@Suite struct EpisodeFileChainTests {
    typealias F = EpisodeFixtures

    @Test func writesChainedCanonicalEpisodes() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        var refs: [EpisodeRef] = []
        for i in 1...5 { refs.append(try store.write(body: F.body("r\(i)"), runId: "r\(i)")) }
        #expect(refs.map(\.seq) == [1, 2, 3, 4, 5])
        var prev = EpisodeFormat.genesisHash
        for ref in refs {
            let e = try store.show(runId: ref.runId)
            #expect(e.problem == nil)
            #expect(e.prevHash == prev)
            #expect(e.document["seq"] == .int(ref.seq))
            #expect(e.document["hash"]?.stringValue == ref.hash)
            // hash = SHA-256 over the canonical encoding without `hash`
            guard case .object(var o) = e.document else { Issue.record("not an object"); return }
            o.removeValue(forKey: "hash")
            #expect(SHA256.hex(JSONValue.object(o).canonicalBytes()) == ref.hash)
            // the file is exactly the canonical encoding plus a newline, and the backup is identical
            let bytes = F.read(ref.path)
            #expect(bytes == e.document.canonicalBytes() + [0x0A])
            #expect(F.read(store.backupPath(of: ref.runId)) == bytes)
            #expect(e.body["plan_name"] == "demo")
            #expect(e.body["seq"] == nil)
            prev = ref.hash
        }
        #expect(try store.list().map(\.runId) == ["r1", "r2", "r3", "r4", "r5"])
        let report = try store.verify()
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == 5)
        #expect(report.tip?.runId == "r5")
        #expect(report.backupProblems.isEmpty)
        // No temp files left behind.
        #expect(!F.files(in: store.directory).contains { $0.hasPrefix(".tmp-") })
    }

    @Test func memberEncodingEqualsCanonicalEncoding() {
        let keys = ["h", "has", "hash0", "hasha", "Hash", "HASH", "a", "z", "é", "😀", "\u{7f}", "hash ", "ha\"sh",
                    "\u{E000}", "\u{FFFD}", "𝄞", "\u{E000}x", "😀a"]
        for n in 0...keys.count {
            var o: JSONObject = [:]
            for (i, k) in keys.prefix(n).enumerated() { o[k] = i % 2 == 0 ? .int(i) : ["x": .double(Double(i) / 3)] }
            let unhashed = EpisodeFormat.UnhashedEncoding(merging: CanonicalMembers(o), .empty)
            #expect(unhashed.bytes == JSONValue.object(o).canonicalBytes())
            var withHash = o
            withHash["hash"] = .string(EpisodeFormat.genesisHash)
            #expect(unhashed.stored(hash: EpisodeFormat.genesisHash) == JSONValue.object(withHash).canonicalBytes() + [0x0A])
        }
    }

    /// `encode` writes the document with its chain members in one pass; the result must be the
    /// canonical encoding of that whole document, whose hash is the one returned.
    @Test func encodeEqualsCanonicalEncodingOfTheDocument() {
        let bodies: [JSONObject] = [
            [:], ["run_id": "r9"], ["a": 1, "zz": ["nested": [1.5, "x"]], "hash0": true, "é": .null],
            ["plan_name": "p", "steps": [["id": "s", "output": ["q\"uote": "\u{1F600}"]]], "run_id": "r9"],
        ]
        for body in bodies {
            let enc = EpisodeFormat.encode(body: body, runId: "r9", seq: 7, prevHash: EpisodeFormat.genesisHash)
            var doc = body
            doc["run_id"] = "r9"
            doc["seq"] = 7
            doc["prev_hash"] = .string(EpisodeFormat.genesisHash)
            doc["episode_version"] = .int(EpisodeFormat.version)
            #expect(enc.hash == SHA256.hex(JSONValue.object(doc).canonicalBytes()))
            doc["hash"] = .string(enc.hash)
            #expect(enc.bytes == JSONValue.object(doc).canonicalBytes() + [0x0A])
        }
    }

    @Test func refusesBadInput() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        #expect(throws: EpisodeError.self) { try store.write(body: F.body("x"), runId: "../etc") }
        #expect(throws: EpisodeError.self) { try store.write(body: F.body("x"), runId: ".hidden") }
        #expect(throws: EpisodeError.self) { try store.write(body: [1, 2], runId: "arr") }
        #expect(throws: EpisodeError.self) { try store.write(body: ["seq": 9], runId: "seq") }
        #expect(throws: EpisodeError.self) { try store.write(body: ["run_id": "other"], runId: "mismatch") }
        try store.write(body: F.body("dup"), runId: "dup")
        do {
            try store.write(body: F.body("dup"), runId: "dup")
            Issue.record("duplicate accepted")
        } catch EpisodeError.duplicateRunId(let id) {
            #expect(id == "dup")
        }
        #expect(try store.verify().isIntact)
        #expect(try store.list().count == 1)
    }

    /// The expected step and outcome of a failure at each write point.
    static let expectations: [(FaultPoint, EpisodeWriteStep, EpisodeWriteOutcome)] = [
        (.write, .write, .notWritten),
        (.fsync, .fsync, .notWritten),
        (.rename, .rename, .notWritten),
        (.fsyncDirectory, .fsyncDirectory, .writtenUnconfirmed),
        (.backupWrite, .backup, .notWritten),
        (.backupFsync, .backup, .notWritten),
        (.backupRename, .backup, .writtenUnconfirmed),
        (.backupFsyncDirectory, .backup, .writtenUnconfirmed),
    ]

    @Test(arguments: FaultPoint.allCases)
    func failureAtEachWritePoint(_ point: FaultPoint) throws {
        let (_, wantStep, wantOutcome) = Self.expectations.first { $0.0 == point }!
        let data = F.tempDir()
        defer { F.remove(data) }
        let fs = FaultyFileSystem()
        let store = try EpisodeFileChain(dataDirectory: data, fileSystem: fs)
        try store.write(body: F.body("a1"), runId: "a1")
        try store.write(body: F.body("a2"), runId: "a2")

        fs.arm(point, errno: EIO)
        do {
            try store.write(body: F.body("bad"), runId: "bad")
            Issue.record("write succeeded despite a failing \(point)")
        } catch let EpisodeError.writeFailed(runId, step, outcome, cause) {
            #expect(runId == "bad")
            #expect(step == wantStep)
            #expect(outcome == wantOutcome)
            #expect(cause.errno == EIO)
            let text = "\(EpisodeError.writeFailed(runId: runId, step: step, outcome: outcome, cause: cause))"
            #expect(text.contains(step.rawValue) && text.contains("errno 5") && text.contains("bad"), "\(text)")
        }
        #expect(fs.fired == 1)

        // Never a partial episode: no temp file, and the primary is absent or complete and valid.
        let visible = F.files(in: store.directory) + F.files(in: store.backupDirectory)
        #expect(!visible.contains { $0.hasPrefix(".tmp-") }, "\(visible)")
        let primary = store.path(of: "bad")
        if wantOutcome == .notWritten {
            #expect(!FileManager.default.fileExists(atPath: primary))
            #expect(!FileManager.default.fileExists(atPath: store.backupPath(of: "bad")))
        } else {
            #expect(try store.show(runId: "bad").problem == nil)
        }
        #expect(try store.verify().isIntact)

        // The next write works (it recovers first if the store was left dirty)…
        let next = try store.write(body: F.body("a3"), runId: "a3")
        #expect(next.seq == (wantOutcome == .notWritten ? 3 : 4))
        // …a failed-and-not-written run id can be written again…
        if wantOutcome == .notWritten { try store.write(body: F.body("bad"), runId: "bad") }
        // …and explicit recovery leaves an intact chain with every backup in place.
        let report = try store.recover()
        #expect(report.chain.isIntact, "\(report)")
        let verify = try store.verify()
        #expect(verify.isIntact, "\(verify)")
        #expect(verify.backupProblems.isEmpty, "\(verify.backupProblems)")
        #expect(verify.checked == 4)
        // A fresh open (start-up recovery) agrees.
        let reopened = try EpisodeFileChain(dataDirectory: data)
        #expect(reopened.openRecovery?.chain.isIntact == true)
        #expect(reopened.openRecovery?.changedAnything == false)
    }

    @Test func failureInsideAConcurrentBatchRequeuesTheOthers() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let fs = FaultyFileSystem()
        let store = try EpisodeFileChain(dataDirectory: data, fileSystem: fs)
        fs.arm(.fsync, runId: "c-7")
        let results = ResultsBox()
        runThreads(16) { i in
            do {
                let ref = try store.write(body: F.body("c-\(i)"), runId: "c-\(i)")
                results.add("c-\(i)", ref.seq)
            } catch {
                results.fail("c-\(i)", "\(error)")
            }
        }
        #expect(results.failed.keys.sorted() == ["c-7"], "\(results.failed)")
        #expect(results.seqs.values.sorted() == Array(1...15))
        let report = try store.verify()
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == 15)
    }

    @Test func tamperedByteIsNamedByVerify() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        for i in 1...5 { try store.write(body: F.body("t\(i)"), runId: "t\(i)") }
        let path = store.path(of: "t3")
        let original = F.read(path)
        // Every kind of position: inside a string, a key, a number, a structural character,
        // the hash itself, the final newline.
        var positions = Set([0, original.count - 1, original.count - 2])
        let text = String(decoding: original, as: UTF8.self)
        for needle in ["demo", "\"seq\"", "1000.5", "prev_hash", "\"hash\":\"", "totals", "\"t3\""] {
            let r = try #require(text.range(of: needle), "\(needle)")
            positions.insert(text.utf8.distance(from: text.startIndex, to: r.lowerBound) + 1)
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 { positions.insert(Int.random(in: 0..<original.count, using: &rng)) }
        for pos in positions.sorted() {
            var bytes = original
            bytes[pos] = bytes[pos] == UInt8(ascii: "7") ? UInt8(ascii: "8") : (bytes[pos] == 0x0A ? 0x20 : UInt8(ascii: "7"))
            F.write(bytes, to: path)
            let report = try store.verify()
            #expect(!report.isIntact, "byte \(pos) edit not detected")
            #expect(report.firstBroken?.runId == "t3", "byte \(pos): \(report)")
            #expect(report.firstBroken?.seq == 3, "byte \(pos): \(report)")
        }
        // Recovery restores it from the backup and keeps the tampered copy in quarantine.
        var bytes = original
        bytes[original.count / 2] ^= 0x01
        F.write(bytes, to: path)
        let report = try store.recover()
        #expect(report.restoredCorrupt == ["t3"])
        #expect(report.chain.isIntact)
        #expect(F.read(path) == original)
        #expect(F.files(in: store.quarantineDirectory).contains { $0.hasPrefix("t3.primary.") })
        #expect(try store.verify().isIntact)
    }

    @Test func forgedEpisodeBreaksTheNextLink() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        for i in 1...4 { try store.write(body: F.body("f\(i)"), runId: "f\(i)") }
        // Rewrite f2 (and its backup) with different content and a correct hash of its own.
        let e2 = try store.show(runId: "f2")
        guard case .object(var body) = F.body("f2", status: "failed") else { return }
        body.removeValue(forKey: "run_id")
        let forged = EpisodeFormat.encode(body: body, runId: "f2", seq: 2, prevHash: e2.prevHash)
        F.write(forged.bytes, to: store.path(of: "f2"))
        F.write(forged.bytes, to: store.backupPath(of: "f2"))
        let report = try store.verify()
        #expect(report.firstBroken?.kind == .prevHashMismatch)
        #expect(report.firstBroken?.seq == 3)
        #expect(report.firstBroken?.runId == "f3")
        #expect(report.firstBroken?.detail.contains("f2") == true, "\(report)")
    }

    @Test func missingEpisodeIsReportedAsAGap() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        for i in 1...6 { try store.write(body: F.body("m\(i)"), runId: "m\(i)") }

        // Primary gone, backup present: verify names it; recover restores it.
        try FileManager.default.removeItem(atPath: store.path(of: "m2"))
        var report = try store.verify()
        #expect(report.firstBroken?.kind == .missing)
        #expect(report.firstBroken?.seq == 2)
        #expect(report.firstBroken?.runId == "m2")
        let rec = try store.recover()
        #expect(rec.restoredMissing == ["m2"])
        #expect(try store.verify().isIntact)

        // Primary and backup gone: a gap, named by seq and its neighbours.
        try FileManager.default.removeItem(atPath: store.path(of: "m4"))
        try FileManager.default.removeItem(atPath: store.backupPath(of: "m4"))
        report = try store.verify()
        #expect(report.firstBroken?.kind == .missing)
        #expect(report.firstBroken?.seq == 4)
        #expect(report.firstBroken?.detail.contains("m3") == true && report.firstBroken?.detail.contains("m5") == true, "\(report)")
        #expect(report.issues.count == 1, "\(report.issues)")

        // The last episode gone entirely: the head record still knows it.
        try FileManager.default.removeItem(atPath: store.path(of: "m6"))
        try FileManager.default.removeItem(atPath: store.backupPath(of: "m6"))
        report = try store.verify()
        #expect(report.issues.count == 2)
        #expect(report.issues.last?.seq == 6)
        #expect(report.issues.last?.runId == "m6", "\(report.issues)")
        // Writing continues after the known tip, so the deletion stays visible.
        let ref = try store.write(body: F.body("m7"), runId: "m7")
        #expect(ref.seq == 7)
        #expect(try store.verify().issues.map(\.seq) == [4, 6])
    }

    @Test func corruptPrimaryRestoredFromBackupOnOpen() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        do {
            let store = try EpisodeFileChain(dataDirectory: data)
            for i in 1...3 { try store.write(body: F.body("c\(i)"), runId: "c\(i)") }
        }
        let primary = data + "/episodes/c2.json"
        let good = F.read(primary)
        F.write(Array("{\"truncated\": ".utf8), to: primary)
        F.write([], to: data + "/episodes/c3.json")
        let store = try EpisodeFileChain(dataDirectory: data)
        let report = try #require(store.openRecovery)
        #expect(report.restoredCorrupt.sorted() == ["c2", "c3"])
        #expect(report.chain.isIntact, "\(report)")
        #expect(F.read(primary) == good)
        #expect(try store.verify().isIntact)
    }

    @Test func staleTempFilesAreRemovedOnOpen() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        do {
            let store = try EpisodeFileChain(dataDirectory: data)
            try store.write(body: F.body("s1"), runId: "s1")
        }
        F.write(Array("{\"half".utf8), to: data + "/episodes/.tmp-s2.json")
        F.write(Array("{\"half".utf8), to: data + "/episodes/_backup/.tmp-s2.json")
        let verify = try EpisodeFileChain(dataDirectory: data, openMode: .noRecovery).verify()
        #expect(verify.isIntact)
        #expect(verify.staleTempFiles.count == 2)
        let store = try EpisodeFileChain(dataDirectory: data)
        #expect(store.openRecovery?.removedTempFiles.count == 2)
        #expect(!F.files(in: store.directory).contains { $0.hasPrefix(".tmp-") })
        #expect(!F.files(in: store.backupDirectory).contains { $0.hasPrefix(".tmp-") })
        #expect(try store.write(body: F.body("s2"), runId: "s2").seq == 2)
    }

    @Test func missingBackupIsRewritten() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        try store.write(body: F.body("b1"), runId: "b1")
        try FileManager.default.removeItem(atPath: store.backupPath(of: "b1"))
        #expect(try store.verify().backupProblems.count == 1)
        #expect(try store.recover().rewrittenBackups == ["b1"])
        #expect(try store.verify().backupProblems.isEmpty)
    }

    @Test func twoStoresOnOneDirectoryChainCorrectly() throws {
        // Two instances have separate flock descriptions, as two processes would.
        let data = F.tempDir()
        defer { F.remove(data) }
        let a = try EpisodeFileChain(dataDirectory: data)
        let b = try EpisodeFileChain(dataDirectory: data)
        runThreads(40) { i in
            _ = try? (i % 2 == 0 ? a : b).write(body: F.body("x\(i)"), runId: "x\(i)")
        }
        let report = try a.verify()
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == 40)
        #expect(try b.list().map(\.seq) == Array(1...40))
    }

    @Test func asyncWritersFromManyTasks() async throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        let seqs = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<32 {
                group.addTask { try await store.write(body: F.body("as\(i)"), runId: "as\(i)").seq }
            }
            var all: [Int] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(seqs.sorted() == Array(1...32))
        #expect(try store.verify().isIntact)
    }

    @Test func concurrentWritersShareCommits() throws {
        let data = F.tempDir()
        defer { F.remove(data) }
        let store = try EpisodeFileChain(dataDirectory: data)
        let threads = 8, each = 10
        runThreads(threads) { t in
            for i in 0..<each { _ = try? store.write(body: F.body("g\(t)-\(i)"), runId: "g\(t)-\(i)") }
        }
        let report = try store.verify()
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == threads * each)
    }
}

/// Collects results from concurrent writers.
final class ResultsBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var seqs: [String: Int] = [:]
    private(set) var failed: [String: String] = [:]
    func add(_ id: String, _ seq: Int) { lock.withLock { seqs[id] = seq } }
    func fail(_ id: String, _ e: String) { lock.withLock { failed[id] = e } }
}

/// Runs `body(0..<n)` on `n` real threads at once and waits for all.
func runThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let threads = (0..<n).map { i in PosixThread { body(i) } }
    for t in threads { t.join() }
}
