import CHostSupport
import CSQLite
import DriverABI
import Foundation
import Host
import JSON

/// Durable episodes per second vs SQLite WAL `synchronous=FULL` single-row inserts (one
/// transaction per row) of the same bytes, on the same disk, in the same run (goal: ratio ≥ 1).
///
/// Rounds alternate between the peer and the episode store so that disk noise from other
/// processes hits both alike; the median of the rounds is printed. Environment:
/// `NOVA_BENCH_DIR` (default `./.nova-bench-episodes`, removed afterwards),
/// `NOVA_BENCH_SECONDS` per measurement (default 2), `NOVA_BENCH_ROUNDS` (default 3).
enum EpisodeBench {
    static func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let base = env["NOVA_BENCH_DIR"] ?? FileManager.default.currentDirectoryPath + "/.nova-bench-episodes"
        let seconds = Double(env["NOVA_BENCH_SECONDS"] ?? "") ?? 2
        let rounds = Int(env["NOVA_BENCH_ROUNDS"] ?? "") ?? 3
        try? FileManager.default.removeItem(atPath: base)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }

        let body = typicalBody(runId: "bench-0")
        let sample = try EpisodeFormat.encodedBytes(body: body, runId: "bench-0").count
        print("  episode document \(sample) bytes (one frame appended to the segment log and its mirror); directory \(base)")

        // CPU only: encode + SHA-256 (the write path) and the open-time check.
        let cpu = Measure.nsPerOp(rounds: 5, iterations: 300) { _ = try? EpisodeFormat.encodedBytes(body: body, runId: "bench-0") }
        let bytes = try EpisodeFormat.encodedBytes(body: body, runId: "bench-0")
        let sha = Measure.nsPerOp(rounds: 5, iterations: 300) { _ = SHA256.digest(bytes) }
        let json = Measure.nsPerOp(rounds: 5, iterations: 300) { _ = body.canonicalBytes() }
        print("  CPU per episode: encode + SHA-256 \(Measure.fmt(cpu)) (of which SHA-256 of \(bytes.count) bytes \(Measure.fmt(sha)); canonical JSON of the body alone \(Measure.fmt(json)))")
        // NOVA_BENCH_CPU_ONLY=1: only the line above (to profile the encoding).
        if env["NOVA_BENCH_CPU_ONLY"] == "1" {
            if let n = Int(env["NOVA_BENCH_CPU_LOOP"] ?? "") { for _ in 0..<n { _ = body.canonicalBytes() } }
            return
        }

        var sqlite1: [Double] = [], sqliteN: [Double] = []
        var ep1: [Double] = [], ep1Async: [Double] = [], ep1Alone: [Double] = [], ep4: [Double] = [], ep16: [Double] = [], ep64: [Double] = []
        let peerWriters = 4
        for round in 0..<rounds {
            let dir = base + "/r\(round)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            sqlite1.append(try sqliteInserts(path: dir + "/peer1.sqlite", body: body, connections: 1, seconds: seconds))
            ep1.append(try episodes(data: dir + "/e1", writers: 1, seconds: seconds))
            ep1Async.append(try await asyncEpisodes(data: dir + "/e1a", alone: false, seconds: seconds))
            ep1Alone.append(try await asyncEpisodes(data: dir + "/e1l", alone: true, seconds: seconds))
            ep4.append(try episodes(data: dir + "/e4", writers: 4, seconds: seconds))
            ep16.append(try episodes(data: dir + "/e16", writers: 16, seconds: seconds))
            ep64.append(try episodes(data: dir + "/e64", writers: 64, seconds: seconds))
            sqliteN.append(try sqliteInserts(path: dir + "/peerN.sqlite", body: body, connections: peerWriters, seconds: seconds))
            try? FileManager.default.removeItem(atPath: dir)
        }
        func line(_ label: String, _ xs: [Double], against peer: [Double]? = nil) {
            let m = Measure.median(xs)
            let r = peer.map { String(format: "   ratio %.2f", m / Measure.median($0)) } ?? ""
            print("    \(label.padding(toLength: 58, withPad: " ", startingAt: 0)) \(String(format: "%8.0f/s", m))\(r)   (rounds: \(xs.map { String(Int($0)) }.joined(separator: ", ")))")
        }
        print("  median of \(rounds) rounds × \(seconds) s, same disk, same run:")
        line("peer: SQLite WAL synchronous=FULL, 1 row/txn, 1 connection", sqlite1)
        line("peer: same, \(peerWriters) connections in parallel", sqliteN)
        line("durable episodes, 1 writer (vs 1 connection)", ep1, against: sqlite1)
        line("same, 1 async writer, a lone run (the pipeline's path)", ep1Alone, against: sqlite1)
        line("same, 1 async writer among other runs (it queues)", ep1Async, against: sqlite1)
        line("durable episodes, 4 concurrent writers (vs \(peerWriters) connections)", ep4, against: sqliteN)
        line("durable episodes, 16 concurrent writers (vs \(peerWriters) connections)", ep16, against: sqliteN)
        line("durable episodes, 64 concurrent writers (vs \(peerWriters) connections)", ep64, against: sqliteN)
        print("  (goal: ratio ≥ 1.0; a group of episodes = one pwrite + one fdatasync of the primary segment,")
        print("   plus a pwrite to the mirror segment, which is fdatasynced within 50 ms; SQLite keeps one copy)")
    }

    /// A run record of a three-step plan, about 2 KB encoded.
    static func typicalBody(runId: String) -> JSONValue {
        func step(_ id: String, _ call: String, _ input: JSONValue, _ output: JSONValue) -> JSONValue {
            ["id": .string(id), "call": .string(call), "status": "succeeded",
             "attempts": [["attempt": 1, "started_at": "2025-06-01T12:00:00.125Z", "duration_ms": 41.5, "input": input, "output": output,
                           "usage": ["tokens": 120, "cost_micros": 300],
                           "decision": ["allowed": true, "rule_id": "allow-http-allowlist", "role": "user",
                                        "reason": "http host api.example.com is on the allowlist",
                                        "remaining": ["calls": 97, "tokens": 48_800]]]]]
        }
        return [
            "run_id": .string(runId), "plan_name": "fetch-and-summarize", "principal": "alice", "status": "succeeded",
            "started_at": "2025-06-01T12:00:00.100Z", "finished_at": "2025-06-01T12:00:00.412Z", "duration_ms": 312.25,
            "inputs": ["url": "https://api.example.com/v1/items?limit=10", "who": "nova"],
            "plan": ["name": "fetch-and-summarize", "steps": [
                ["id": "fetch", "call": "http.request", "input": ["url": "${inputs.url}", "method": "GET"]],
                ["id": "count", "call": "text.length", "input": ["text": "${steps.fetch.output.body}"]],
                ["id": "say", "call": "text.echo", "input": ["text": "${steps.count.output.length}"]],
            ]],
            "steps": [
                step("fetch", "http.request", ["url": "https://api.example.com/v1/items?limit=10", "method": "GET", "headers": ["authorization": "[REDACTED]"]],
                     ["status": 200, "headers": ["content-type": "application/json"],
                      "body": .string(String(repeating: "{\"id\":1,\"name\":\"item\"},", count: 12))]),
                step("count", "text.length", ["text": "…"], ["length": 312]),
                step("say", "text.echo", ["text": "312"], ["text": "312"]),
            ],
            "output": ["length": 312], "totals": ["calls": 3, "tokens": 360, "cost_micros": 900],
        ]
    }

    /// The run record every benchmark write stores (under its own run id, which the store adds):
    /// built once, as the peer's bytes are encoded once, so that both sides measure the store
    /// and not the caller building its record. The store still validates, encodes and hashes
    /// it for every write.
    static let body: JSONValue = {
        guard case .object(var o) = typicalBody(runId: "bench-0") else { return typicalBody(runId: "bench-0") }
        o["run_id"] = nil
        return .object(o)
    }()

    /// Durable episode writes per second with `writers` threads writing as fast as they can.
    static func episodes(data: String, writers: Int, seconds: Double) throws -> Double {
        let store = try EpisodeSegmentLog(dataDirectory: data)
        let counter = Tally()
        let deadline = nova_monotonic_ns() + Int64(seconds * 1e9)
        let t0 = nova_monotonic_ns()
        let done = DispatchGroup()
        for w in 0..<writers {
            done.enter()
            Thread {
                defer { done.leave() }
                var i = 0
                while nova_monotonic_ns() < deadline {
                    i += 1
                    let id = "w\(w)-\(i)"
                    do { try store.write(body: body, runId: id); counter.add() } catch { print("  write failed: \(error)"); return }
                }
            }.start()
        }
        done.wait()
        let elapsed = Double(nova_monotonic_ns() - t0) / 1e9
        let verify = try store.verify()
        if !verify.isIntact { print("  chain broken after the benchmark: \(verify)") }
        return Double(counter.value) / elapsed
    }

    /// Durable episode writes per second from one task awaiting each `async` write. `alone`: as
    /// the pipeline writes a run's episode when no other run is in flight (it commits on its own
    /// thread when the log is idle); otherwise as while other runs are in flight (the committer
    /// thread writes, then resumes the task on the cooperative pool).
    static func asyncEpisodes(data: String, alone: Bool, seconds: Double) async throws -> Double {
        let store = try EpisodeSegmentLog(dataDirectory: data)
        let deadline = nova_monotonic_ns() + Int64(seconds * 1e9)
        let t0 = nova_monotonic_ns()
        var i = 0
        while nova_monotonic_ns() < deadline {
            i += 1
            let id = "a-\(i)"
            try await store.write(body: body, runId: id, alone: alone)
        }
        return Double(i) / (Double(nova_monotonic_ns() - t0) / 1e9)
    }

    /// SQLite WAL synchronous=FULL: one INSERT of the same document bytes per transaction
    /// (encoded once up front, so the peer pays no encoding or hashing).
    static func sqliteInserts(path: String, body: JSONValue, connections: Int, seconds: Double) throws -> Double {
        let bytes = try EpisodeFormat.encodedBytes(body: body, runId: "bench-0")
        let counter = Tally()
        let deadline = nova_monotonic_ns() + Int64(seconds * 1e9)
        try withDB(path) { db in
            try exec(db, "CREATE TABLE IF NOT EXISTS episodes (run_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, doc BLOB NOT NULL)")
        }
        let t0 = nova_monotonic_ns()
        let done = DispatchGroup()
        for c in 0..<connections {
            done.enter()
            Thread {
                defer { done.leave() }
                do {
                    try withDB(path) { db in
                        var stmt: OpaquePointer?
                        guard sqlite3_prepare_v2(db, "INSERT INTO episodes (run_id, seq, doc) VALUES (?, ?, ?)", -1, &stmt, nil) == SQLITE_OK else {
                            throw BenchError(message: String(cString: sqlite3_errmsg(db)))
                        }
                        defer { sqlite3_finalize(stmt) }
                        var i = 0
                        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
                        while nova_monotonic_ns() < deadline {
                            i += 1
                            let id = "c\(c)-\(i)"
                            try exec(db, "BEGIN IMMEDIATE")
                            sqlite3_bind_text(stmt, 1, id, -1, transient)
                            sqlite3_bind_int64(stmt, 2, Int64(i))
                            _ = bytes.withUnsafeBytes { sqlite3_bind_blob(stmt, 3, $0.baseAddress, Int32($0.count), transient) }
                            guard sqlite3_step(stmt) == SQLITE_DONE else { throw BenchError(message: String(cString: sqlite3_errmsg(db))) }
                            sqlite3_reset(stmt)
                            try exec(db, "COMMIT")
                            counter.add()
                        }
                    }
                } catch {
                    print("  sqlite failed: \(error)")
                }
            }.start()
        }
        done.wait()
        return Double(counter.value) / (Double(nova_monotonic_ns() - t0) / 1e9)
    }

    struct BenchError: Error { let message: String }

    static func withDB(_ path: String, _ body: (OpaquePointer) throws -> Void) throws {
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK, let db else { throw BenchError(message: "open \(path)") }
        defer { sqlite3_close(db) }
        sqlite3_busy_timeout(db, 30_000)
        try exec(db, "PRAGMA journal_mode=WAL")
        try exec(db, "PRAGMA synchronous=FULL")
        try body(db)
    }

    static func exec(_ db: OpaquePointer, _ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw BenchError(message: "\(sql): \(String(cString: sqlite3_errmsg(db)))") }
    }
}

/// A thread-safe count.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
