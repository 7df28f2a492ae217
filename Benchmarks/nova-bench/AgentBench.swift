import CHostSupport
import CSQLite
import Foundation
import Host
import JSON

/// Agents and memory (issue 13), on the embedded SQLite store:
///
/// - 10,000 agents in one host: create them (p50/p99), then a mixed load — get, list a page,
///   update, submit a goal with a one-step plan — p50/p99 per operation, and resident memory
///   per agent (RSS growth over the 10,000 / 10,000). Goal: p99 < 5 ms for get and update,
///   ≤ 50 KB per idle agent (an idle agent is rows, not tasks or threads); the seed's figures
///   were 1,000 agents, < 200 ms coordination latency, < 500 MB per 100 agents.
/// - recall over 100,000 memory items: p50/p99 of `AgentService.recall` (20 best), beside the
///   same FTS5 query issued directly to SQLite on the same file (ratio; goal ≤ 1.5×).
///
/// NOVA_AGENT_BENCH_AGENTS and NOVA_AGENT_BENCH_MEMORY change the sizes.
enum AgentBench {
    static func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
    static func progress(_ s: String) { FileHandle.standardError.write(Data("  … \(s)\n".utf8)) }

    static func rssKB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    static func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[min(s.count - 1, Int(Double(s.count - 1) * p))]
    }

    static func line(_ name: String, _ ns: [Double]) -> String {
        "    \(name.padding(toLength: 16, withPad: " ", startingAt: 0)) p50 \(Measure.fmt(percentile(ns, 0.5)).padding(toLength: 10, withPad: " ", startingAt: 0)) p99 \(Measure.fmt(percentile(ns, 0.99)))"
    }

    static func timed(_ body: () async throws -> Void) async rethrows -> Double {
        let t0 = nova_monotonic_ns()
        try await body()
        return Double(nova_monotonic_ns() - t0)
    }

    static func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let agentCount = Int(env["NOVA_AGENT_BENCH_AGENTS"] ?? "") ?? 10_000
        let memoryCount = Int(env["NOVA_AGENT_BENCH_MEMORY"] ?? "") ?? 100_000
        let dir = FileManager.default.currentDirectoryPath + "/.nova-bench-agents"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let policy = dir + "/policy.json"
        try #"{"roles": {"bench": {}}, "principals": {"bench": "bench"}, "rules": [{"id": "all", "effect": "allow", "roles": ["bench"], "tools": ["*"]}]}"#
            .write(toFile: policy, atomically: true, encoding: .utf8)
        let drivers = env["NOVA_BIN_DIR"] ?? FileManager.default.currentDirectoryPath + "/drivers"
        let log = try await EpisodeLog.open(dataDirectory: dir + "/data")
        let host = try NovaHost(paths: HostPaths.resolve(drivers: drivers, data: dir + "/data", policy: policy, environment: [:]), episodes: log)
        guard let store = log.store.agentStore, let queue = log.store.jobQueue else { say("  the store has no agents"); return }
        let service = AgentService(store: store, queue: queue, host: host)

        progress("creating \(agentCount) agents")
        let rss0 = rssKB()
        var create: [Double] = []
        var ids: [String] = []
        for i in 0..<agentCount {
            var id = ""
            create.append(try await timed {
                id = try await service.create(["name": .string("agent-\(i)"), "principal": "bench", "labels": ["shard": .string("s\(i % 16)")]]).id
            })
            ids.append(id)
        }
        let rss1 = rssKB()
        say("  \(agentCount) agents in one host (SQLite store):")
        say(line("create", create))
        say("    resident memory: \(rss1 - rss0) KB more after creating them = \(String(format: "%.2f", Double(rss1 - rss0) / Double(agentCount))) KB per agent (goal ≤ 50 KB per idle agent)")

        progress("mixed load")
        let plan: JSONValue = ["steps": [["id": "a", "call": "text.upper", "input": ["text": "x"]]]]
        var times: [String: [Double]] = [:]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<2_000 {
            let id = ids[Int.random(in: 0..<ids.count, using: &rng)]
            switch i % 4 {
            case 0: times["get", default: []].append(try await timed { _ = try await service.agent(id) })
            case 1: times["list page", default: []].append(try await timed {
                _ = try await service.list(AgentFilter(limit: 50, offset: Int.random(in: 0..<max(1, ids.count - 50), using: &rng)))
            })
            case 2: times["update", default: []].append(try await timed {
                _ = try await service.update(id, patch: ["description": .string("v\(i)")], ifVersion: nil)
            })
            default: times["submit goal", default: []].append(try await timed {
                _ = try await service.submit(id, GoalRequest(goal: "shout", plan: plan))
            })
            }
        }
        say("  mixed load, 2,000 operations at random agents (one caller):")
        for name in ["get", "list page", "update", "submit goal"] { say(line(name, times[name] ?? [])) }

        try await recall(service: service, store: store, agentId: ids[0], items: memoryCount, dbPath: dir + "/data/" + SQLiteStore.defaultFileName)
    }

    /// A synthetic corpus: 20–40 words per item from a 2,000-word vocabulary, Zipf-like.
    static func corpus(_ n: Int, owner: String) -> [MemoryItem] {
        var rng = SplitMix(seed: 42)
        let vocabulary = (0..<2_000).map { "w\($0)" }
        return (0..<n).map { i in
            let words = (0..<(20 + Int(rng.next() % 21))).map { _ -> String in
                let r = Double(rng.next() % 1_000_000) / 1_000_000
                return vocabulary[min(vocabulary.count - 1, Int(pow(r, 3) * Double(vocabulary.count)))]
            }
            return MemoryItem(owner: owner, type: "observation", text: words.joined(separator: " "), createdAtMs: 1_700_000_000_000 + Int64(i))
        }
    }

    static func recall(service: AgentService, store: any AgentStore & MemoryStore, agentId: String, items: Int, dbPath: String) async throws {
        progress("storing \(items) memory items")
        let all = corpus(items, owner: agentId)
        var i = 0
        while i < all.count {
            try await store.putMemories(Array(all[i..<min(all.count, i + 1_000)]))
            i += 1_000
        }
        var rng = SplitMix(seed: 7)
        let queries = (0..<300).map { k in k % 3 == 0 ? "w\(rng.next() % 400) w\(rng.next() % 400)" : "w\(rng.next() % 1_500)" }

        var db: OpaquePointer?
        guard sqlite3_open_v2(dbPath, &db, SQLITE_OPEN_READONLY, nil) == SQLITE_OK, let db else { say("    cannot open \(dbPath)"); return }
        defer { sqlite3_close(db) }
        let sql = "SELECT m.id, m.text, -bm25(memory_fts) FROM memory_fts JOIN memory m ON m.rowid = memory_fts.rowid "
            + "WHERE memory_fts MATCH ?1 AND m.owner = ?2 AND (m.expires_at_ms IS NULL OR m.expires_at_ms > ?3) ORDER BY bm25(memory_fts) LIMIT 20"
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else { say("    cannot prepare the peer query"); return }
        defer { sqlite3_finalize(stmt) }
        let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
        // Each query through the host and then directly, one after the other, so that load on
        // the machine falls on both alike.
        progress("recall through the host and directly, query by query")
        var ours: [Double] = []
        var peer: [Double] = []
        var found = 0
        var peerFound = 0
        for q in queries {
            ours.append(try await timed { found += try await service.recall(agentId, query: RecallQuery(owner: agentId, text: q, limit: 20)).count })
            peer.append(await timed {
                sqlite3_reset(stmt)
                sqlite3_bind_text(stmt, 1, q, -1, transient)
                sqlite3_bind_text(stmt, 2, agentId, -1, transient)
                sqlite3_bind_int64(stmt, 3, Timestamps.wallNanos() / 1_000_000)
                while sqlite3_step(stmt) == SQLITE_ROW {
                    _ = sqlite3_column_text(stmt, 0)
                    _ = sqlite3_column_text(stmt, 1)
                    peerFound += 1
                }
            })
        }
        say("  recall over \(items) memory items of one agent, 20 best, \(queries.count) queries (\(found) items returned; SQLite directly: \(peerFound)):")
        say(line("nova recall", ours))
        say(line("SQLite FTS5", peer))
        say("    ratio nova/SQLite: p50 \(String(format: "%.2f", percentile(ours, 0.5) / percentile(peer, 0.5)))×  p99 \(String(format: "%.2f", percentile(ours, 0.99) / percentile(peer, 0.99)))× (goal ≤ 1.5×)")
    }
}

/// A small deterministic generator, so every run recalls over the same corpus.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
