import Foundation
import Testing
@testable import Host
import JSON

@Suite struct SQLiteStoreTests {
    typealias F = EpisodeFixtures

    static func summary(_ i: Int) -> EpisodeSummary {
        EpisodeSummary(runId: "run-\(i)", seq: i, hash: String(repeating: "a", count: 64), planName: "plan-\(i % 4)",
                       principal: i % 3 == 0 ? "svc" : "alice", status: i % 5 == 0 ? "failed" : "succeeded",
                       startedAt: "2025-01-01T00:00:\(i % 60).000Z", finishedAt: "2025-01-01T00:01:00.000Z",
                       durationMs: Double(i) + 0.5, totals: EpisodeTotals(calls: i, tokens: 10 * i, costMicros: 100 * i))
    }

    @Test func listFilterAndPaginate() throws {
        let dir = F.tempDir("sqlite")
        defer { F.remove(dir) }
        let store = try SQLiteStore(path: dir + "/nova.sqlite")
        try store.indexEpisodes((1...30).map(Self.summary))
        // Newest first, pages without overlap or loss.
        var seen: [Int] = []
        for page in 0..<4 {
            let rows = try store.listEpisodes(status: nil, principal: nil, limit: 8, offset: page * 8)
            #expect(rows.count == (page < 3 ? 8 : 6))
            seen += rows.map(\.seq)
        }
        #expect(seen == Array((1...30).reversed()))
        #expect(try store.countEpisodes(status: nil, principal: nil) == 30)

        let failed = try store.listEpisodes(status: "failed", principal: nil, limit: 100, offset: 0)
        #expect(failed.map(\.seq) == [30, 25, 20, 15, 10, 5])
        let svcFailed = try store.listEpisodes(status: "failed", principal: "svc", limit: 100, offset: 0)
        #expect(svcFailed.map(\.seq) == [30, 15])
        #expect(try store.countEpisodes(status: nil, principal: "svc") == 10)
        #expect(try store.listEpisodes(status: "failed", principal: "svc", limit: 1, offset: 1).map(\.seq) == [15])
        #expect(try store.listEpisodes(status: "nope", principal: nil, limit: 10, offset: 0).isEmpty)

        // Every field round-trips.
        #expect(try store.episode(runId: "run-7") == Self.summary(7))
        #expect(try store.episode(runId: "missing") == nil)

        // Replacing by run id; removing; full replace.
        var s = Self.summary(7)
        s.status = "cancelled"
        try store.indexEpisode(s)
        #expect(try store.episode(runId: "run-7")?.status == "cancelled")
        try store.removeEpisodes(runIds: ["run-7", "run-8"])
        #expect(try store.countEpisodes(status: nil, principal: nil) == 28)
        #expect(try store.indexedRunIds().count == 28)
        try store.replaceEpisodeIndex(with: [Self.summary(1)])
        #expect(try store.indexedRunIds() == ["run-1": 1])
    }

    @Test func schemaIsMigratedOnceAndPersists() throws {
        let dir = F.tempDir("sqlite")
        defer { F.remove(dir) }
        let path = dir + "/nova.sqlite"
        do {
            let store = try SQLiteStore(path: path)
            try store.indexEpisode(Self.summary(1))
            try store.updatePolicyState(keys: ["k"]) { _ in ["k": ["tokens": 1.5, "n": 2]] }
        }
        let reopened = try SQLiteStore(path: path)
        #expect(try reopened.episode(runId: "run-1") == Self.summary(1))
        #expect(try reopened.policyState(keys: ["k", "absent"]) == ["k": ["tokens": 1.5, "n": 2]])
        // A database from a newer host is refused with a clear error.
        let conn = try SQLiteConnection(path: path)
        try conn.exec("PRAGMA user_version=99")
        #expect(throws: SQLiteError.self) { _ = try SQLiteStore(path: path) }
    }

    @Test func policyStateTransactionsLoseNoIncrement() async throws {
        let dir = F.tempDir("sqlite")
        defer { F.remove(dir) }
        let path = dir + "/nova.sqlite"
        // Several connections (as several processes would have) and several tasks on each.
        let stores = try (0..<3).map { _ in try SQLiteStore(path: path) }
        let tasks = 12, increments = 25
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                let store = stores[t % stores.count]
                group.addTask {
                    for _ in 0..<increments {
                        try store.updatePolicyState(keys: ["counter", "other"]) { current in
                            let n = current["counter"]?.intValue ?? 0
                            let o = current["other"]?["calls"]?.intValue ?? 0
                            return ["counter": .int(n + 1), "other": ["calls": .int(o + 2)]]
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let state = try stores[0].policyState(keys: ["counter", "other"])
        #expect(state["counter"] == .int(tasks * increments))
        #expect(state["other"]?["calls"] == .int(2 * tasks * increments))
    }

    @Test func multiThreadedPolicyUpdatesAcrossConnections() throws {
        let dir = F.tempDir("sqlite")
        defer { F.remove(dir) }
        let path = dir + "/nova.sqlite"
        let stores = try (0..<4).map { _ in try SQLiteStore(path: path) }
        runThreads(8) { t in
            for _ in 0..<20 {
                try! stores[t % 4].updatePolicyState(keys: ["c"]) { ["c": .int(($0["c"]?.intValue ?? 0) + 1)] }
            }
        }
        #expect(try stores[1].policyState(keys: ["c"])["c"] == .int(160))
    }

    struct Refused: Error {}

    @Test func failedUpdateWritesNothing() throws {
        let dir = F.tempDir("sqlite")
        defer { F.remove(dir) }
        let store = try SQLiteStore(path: dir + "/nova.sqlite")
        try store.updatePolicyState(keys: ["a"]) { _ in ["a": 1] }
        #expect(throws: Refused.self) {
            try store.updatePolicyState(keys: ["a"]) { _ in throw Refused() }
        }
        #expect(try store.policyState(keys: ["a"]) == ["a": 1])
        // Keys not returned by the update stay as they are.
        try store.updatePolicyState(keys: ["a", "b"]) { _ in ["b": "x"] }
        #expect(try store.policyState(keys: ["a", "b"]) == ["a": 1, "b": "x"])
    }
}

/// A store whose episode indexing fails, to show the episode still stands.
final class BrokenIndexStore: HostStore, @unchecked Sendable {
    let inner: SQLiteStore
    init(_ inner: SQLiteStore) { self.inner = inner }
    struct Broken: Error {}
    func indexEpisode(_ summary: EpisodeSummary) throws { throw Broken() }
    func indexEpisodes(_ summaries: [EpisodeSummary]) throws { if !summaries.isEmpty { throw Broken() } }
    func listEpisodes(status: String?, principal: String?, limit: Int, offset: Int) throws -> [EpisodeSummary] {
        try inner.listEpisodes(status: status, principal: principal, limit: limit, offset: offset)
    }
    func countEpisodes(status: String?, principal: String?) throws -> Int { try inner.countEpisodes(status: status, principal: principal) }
    func episode(runId: String) throws -> EpisodeSummary? { try inner.episode(runId: runId) }
    func indexedRunIds() throws -> [String: Int] { try inner.indexedRunIds() }
    func removeEpisodes(runIds: [String]) throws { try inner.removeEpisodes(runIds: runIds) }
    func replaceEpisodeIndex(with summaries: [EpisodeSummary]) throws { throw Broken() }
    func policyState(keys: [String]) throws -> [String: JSONValue] { try inner.policyState(keys: keys) }
    func updatePolicyState(keys: [String], _ update: @Sendable ([String: JSONValue]) throws -> [String: JSONValue]) throws {
        try inner.updatePolicyState(keys: keys, update)
    }
}

@Suite struct EpisodeLogTests {
    typealias F = EpisodeFixtures

    @Test func writesThenIndexes() throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let log = try EpisodeLog(dataDirectory: data)
        for i in 1...6 {
            let r = try log.write(body: F.body("l\(i)", status: i % 2 == 0 ? "failed" : "succeeded", principal: i > 3 ? "bob" : "alice"), runId: "l\(i)")
            #expect(r.indexError == nil)
            #expect(r.ref.seq == i)
        }
        #expect(try log.list().map(\.runId) == ["l6", "l5", "l4", "l3", "l2", "l1"])
        #expect(try log.list(status: "failed", principal: "bob").map(\.runId) == ["l6", "l4"])
        let s = try #require(try log.store.episode(runId: "l3"))
        #expect(s.planName == "demo" && s.principal == "alice" && s.durationMs == 1000.5)
        #expect(s.totals == EpisodeTotals(calls: 1, tokens: 12, costMicros: 34))
        #expect(s.hash == (try log.show(runId: "l3")).ref.hash)
        #expect(try log.reindex() == 6)
        #expect(try log.list(limit: 2, offset: 4).map(\.runId) == ["l2", "l1"])
    }

    @Test func runRecordIsTheBody() throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let log = try EpisodeLog(dataDirectory: data)
        var record = RunRecord(runId: "rr-1", planName: "hello", plan: ["steps": []], principal: "alice", inputs: ["who": "nova"],
                               startedAt: Timestamps.now())
        record.status = .succeeded
        record.finishedAt = Timestamps.now()
        let logged = try log.write(record)
        #expect(logged.indexError == nil)
        let e = try log.show(runId: "rr-1")
        #expect(e.document["plan_name"] == "hello")
        #expect(try log.store.episode(runId: "rr-1")?.status == "succeeded")
    }

    @Test func indexFailureLeavesTheEpisodeAndIsRepairedOnOpen() throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let dbPath = data + "/" + SQLiteStore.defaultFileName
        do {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let broken = BrokenIndexStore(try SQLiteStore(path: dbPath))
            let log = try EpisodeLog(dataDirectory: data, store: broken)
            for i in 1...3 {
                let r = try log.write(body: F.body("i\(i)"), runId: "i\(i)")
                #expect(r.indexError != nil)
            }
            #expect(try log.verify().isIntact)
            #expect(try broken.countEpisodes(status: nil, principal: nil) == 0)
        }
        let log = try EpisodeLog(dataDirectory: data)
        #expect(try log.openIndexRepair.get() == 3)
        #expect(try log.list().map(\.runId) == ["i3", "i2", "i1"])
        // An entry whose file is gone is dropped by the next repair.
        try FileManager.default.removeItem(atPath: log.episodes.path(of: "i2"))
        try FileManager.default.removeItem(atPath: log.episodes.backupPath(of: "i2"))
        try log.repairIndex()
        #expect(try log.list().map(\.runId) == ["i3", "i1"])
    }
}
