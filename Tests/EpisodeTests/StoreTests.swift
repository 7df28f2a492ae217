import Foundation
import Testing
import Host
@testable import Store
@testable import Runs
import JSON

/// The contract of `HostStore`, written against the protocol: every backend (the embedded
/// SQLite store here, the PostgreSQL store next) runs these same checks. A `Database` hands
/// out connections to one fresh, empty database (as several processes would hold).
enum StoreConformance {
    typealias Database = @Sendable () async throws -> any HostStore

    static func summary(_ i: Int) -> EpisodeSummary {
        EpisodeSummary(runId: "run-\(i)", seq: i, hash: String(repeating: "a", count: 64), planName: "plan-\(i % 4)",
                       principal: i % 3 == 0 ? "svc" : "alice", status: i % 5 == 0 ? "failed" : "succeeded",
                       startedAt: "2025-01-01T00:00:\(i % 60).000Z", finishedAt: "2025-01-01T00:01:00.000Z",
                       durationMs: Double(i) + 0.5, totals: EpisodeTotals(calls: i, tokens: 10 * i, costMicros: 100 * i))
    }

    /// Index entries: list newest first with filters and pages, count, look up, replace,
    /// remove, replace the whole index.
    static func episodeIndex(_ connect: Database) async throws {
        let store = try await connect()
        try await store.indexEpisodes((1...30).map(summary))
        // Newest first, pages without overlap or loss.
        var seen: [Int] = []
        for page in 0..<4 {
            let rows = try await store.listEpisodes(status: nil, principal: nil, limit: 8, offset: page * 8)
            #expect(rows.count == (page < 3 ? 8 : 6))
            seen += rows.map(\.seq)
        }
        #expect(seen == Array((1...30).reversed()))
        #expect(try await store.countEpisodes(status: nil, principal: nil) == 30)

        #expect(try await store.listEpisodes(status: "failed", principal: nil, limit: 100, offset: 0).map(\.seq) == [30, 25, 20, 15, 10, 5])
        #expect(try await store.listEpisodes(status: "failed", principal: "svc", limit: 100, offset: 0).map(\.seq) == [30, 15])
        #expect(try await store.countEpisodes(status: nil, principal: "svc") == 10)
        #expect(try await store.countEpisodes(status: "failed", principal: "svc") == 2)
        #expect(try await store.listEpisodes(status: "failed", principal: "svc", limit: 1, offset: 1).map(\.seq) == [15])
        #expect(try await store.listEpisodes(status: "nope", principal: nil, limit: 10, offset: 0).isEmpty)
        // By plan, and by agent (the runs whose id is one of its goals), combined with the others.
        #expect(try await store.listEpisodes(EpisodeFilter(planName: "plan-2"), limit: 100, offset: 0).map(\.seq) == [30, 26, 22, 18, 14, 10, 6, 2])
        #expect(try await store.countEpisodes(EpisodeFilter(status: "failed", planName: "plan-2")) == 2)
        if let agents = store.agentStore {
            for i in [3, 6, 9] { try await agents.insertGoal(Goal(id: "run-\(i)", agentId: "agent-a", text: "goal \(i)")) }
            try await agents.insertGoal(Goal(id: "run-4", agentId: "agent-b", text: "goal 4"))
            #expect(try await store.listEpisodes(EpisodeFilter(agentId: "agent-a"), limit: 100, offset: 0).map(\.seq) == [9, 6, 3])
            #expect(try await store.listEpisodes(EpisodeFilter(agentId: "agent-a"), limit: 1, offset: 1).map(\.seq) == [6])
            #expect(try await store.countEpisodes(EpisodeFilter(principal: "svc", planName: "plan-1", agentId: "agent-a")) == 1)
            #expect(try await store.countEpisodes(EpisodeFilter(agentId: "agent-none")) == 0)
        }

        // Every field round-trips, also through another connection.
        #expect(try await store.episode(runId: "run-7") == summary(7))
        #expect(try await connect().episode(runId: "run-7") == summary(7))
        #expect(try await store.episode(runId: "missing") == nil)

        // Replacing by run id; removing; full replace.
        var s = summary(7)
        s.status = "cancelled"
        try await store.indexEpisode(s)
        #expect(try await store.episode(runId: "run-7")?.status == "cancelled")
        try await store.removeEpisodes(runIds: ["run-7", "run-8"])
        #expect(try await store.countEpisodes(status: nil, principal: nil) == 28)
        #expect(try await store.indexedRunIds().count == 28)
        try await store.replaceEpisodeIndex(with: [summary(1)])
        #expect(try await store.indexedRunIds() == ["run-1": 1])
        try await store.indexEpisodes([])
        try await store.removeEpisodes(runIds: [])
        #expect(try await store.countEpisodes(status: nil, principal: nil) == 1)
    }

    /// Policy state: values round-trip exactly, missing keys are absent, a failed update
    /// writes nothing, keys an update does not return stay.
    static func policyState(_ connect: Database) async throws {
        struct Refused: Error {}
        let store = try await connect()
        #expect(try await store.policyState(keys: ["a"]).isEmpty)
        let value = try JSONValue.parse(#"{"tokens": 1.5, "n": 2, "big": 18446744073709551617, "e\u0301": 1, "\u00e9": 2}"#)
        try await store.updatePolicyState(keys: ["k"]) { _ in ["k": value] }
        let back = try #require(try await connect().policyState(keys: ["k", "absent"])["k"])
        #expect(back == value && back.serialized(sortedKeys: true) == value.serialized(sortedKeys: true))
        try await store.updatePolicyState(keys: ["a"]) { _ in ["a": 1] }
        await #expect(throws: Refused.self) {
            try await store.updatePolicyState(keys: ["a"]) { _ in throw Refused() }
        }
        #expect(try await store.policyState(keys: ["a"]) == ["a": 1])
        try await store.updatePolicyState(keys: ["a", "b"]) { current in
            #expect(current == ["a": 1])
            return ["b": "x"]
        }
        #expect(try await store.policyState(keys: ["a", "b"]) == ["a": 1, "b": "x"])
    }

    /// Read-modify-write transactions from several connections and tasks lose no increment.
    static func policyStateTransactionsLoseNoIncrement(_ connect: Database) async throws {
        var stores: [any HostStore] = []
        for _ in 0..<3 { stores.append(try await connect()) }
        let tasks = 12, increments = 25
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<tasks {
                let store = stores[t % stores.count]
                group.addTask {
                    for _ in 0..<increments {
                        try await store.updatePolicyState(keys: ["counter", "other"]) { current in
                            let n = current["counter"]?.intValue ?? 0
                            let o = current["other"]?["calls"]?.intValue ?? 0
                            return ["counter": .int(n + 1), "other": ["calls": .int(o + 2)]]
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let state = try await stores[0].policyState(keys: ["counter", "other"])
        #expect(state["counter"] == .int(tasks * increments))
        #expect(state["other"]?["calls"] == .int(2 * tasks * increments))
    }
}

@Suite struct SQLiteStoreTests {
    typealias F = EpisodeFixtures

    /// Connections to a fresh SQLite database.
    static func database() -> (StoreConformance.Database, dir: String) {
        let dir = F.tempDir("sqlite")
        let path = dir + "/nova.sqlite"
        return ({ try SQLiteStore(path: path) }, dir)
    }

    @Test func conformanceEpisodeIndex() async throws {
        let (db, dir) = Self.database()
        defer { F.remove(dir) }
        try await StoreConformance.episodeIndex(db)
    }

    @Test func conformancePolicyState() async throws {
        let (db, dir) = Self.database()
        defer { F.remove(dir) }
        try await StoreConformance.policyState(db)
    }

    @Test func conformanceTransactions() async throws {
        let (db, dir) = Self.database()
        defer { F.remove(dir) }
        try await StoreConformance.policyStateTransactionsLoseNoIncrement(db)
    }

    @Test func schemaIsMigratedOnceAndPersists() async throws {
        let dir = F.tempDir("sqlite")
        defer { F.remove(dir) }
        let path = dir + "/nova.sqlite"
        do {
            let store = try SQLiteStore(path: path)
            try await store.indexEpisode(StoreConformance.summary(1))
        }
        #expect(try await SQLiteStore(path: path).episode(runId: "run-1") == StoreConformance.summary(1))
        // A database from a newer host is refused with a clear error.
        let conn = try SQLiteConnection(path: path)
        try conn.exec("PRAGMA user_version=99")
        #expect(throws: SQLiteError.self) { _ = try SQLiteStore(path: path) }
    }
}

/// A store whose episode indexing fails, to show the episode still stands.
final class BrokenIndexStore: HostStore, @unchecked Sendable {
    let inner: SQLiteStore
    init(_ inner: SQLiteStore) { self.inner = inner }
    struct Broken: Error {}
    func indexEpisode(_ summary: EpisodeSummary) async throws { throw Broken() }
    func indexEpisodes(_ summaries: [EpisodeSummary]) async throws { if !summaries.isEmpty { throw Broken() } }
    func listEpisodes(_ filter: EpisodeFilter, limit: Int, offset: Int) async throws -> [EpisodeSummary] {
        try await inner.listEpisodes(filter, limit: limit, offset: offset)
    }
    func countEpisodes(_ filter: EpisodeFilter) async throws -> Int { try await inner.countEpisodes(filter) }
    func episode(runId: String) async throws -> EpisodeSummary? { try await inner.episode(runId: runId) }
    func indexedRunIds() async throws -> [String: Int] { try await inner.indexedRunIds() }
    func removeEpisodes(runIds: [String]) async throws { try await inner.removeEpisodes(runIds: runIds) }
    func replaceEpisodeIndex(with summaries: [EpisodeSummary]) async throws { throw Broken() }
    func policyState(keys: [String]) async throws -> [String: JSONValue] { try await inner.policyState(keys: keys) }
    func updatePolicyState(keys: [String], _ update: @escaping @Sendable ([String: JSONValue]) throws -> [String: JSONValue]) async throws {
        try await inner.updatePolicyState(keys: keys, update)
    }
}

@Suite struct EpisodeLogTests {
    typealias F = EpisodeFixtures

    @Test func writesThenIndexes() async throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let log = try await EpisodeLog.open(dataDirectory: data)
        for i in 1...6 {
            let r = try await log.write(body: F.body("l\(i)", status: i % 2 == 0 ? "failed" : "succeeded", principal: i > 3 ? "bob" : "alice"), runId: "l\(i)")
            #expect(r.indexError == nil)
            #expect(r.ref.seq == i)
        }
        #expect(try await log.list().map(\.runId) == ["l6", "l5", "l4", "l3", "l2", "l1"])
        #expect(try await log.list(status: "failed", principal: "bob").map(\.runId) == ["l6", "l4"])
        let s = try #require(try await log.store.episode(runId: "l3"))
        #expect(s.planName == "demo" && s.principal == "alice" && s.durationMs == 1000.5)
        #expect(s.totals == EpisodeTotals(calls: 1, tokens: 12, costMicros: 34))
        #expect(s.hash == (try await log.show(runId: "l3")).ref.hash)
        #expect(try await log.reindex() == 6)
        #expect(try await log.list(limit: 2, offset: 4).map(\.runId) == ["l2", "l1"])
    }

    /// Concurrent runs: one caller writes the index transaction for those queued behind it, a
    /// drain task for those queued after; every run is indexed and every caller answered, also
    /// when the index fails (each caller then gets the failure, none waits forever).
    @Test func concurrentRunsAreAllIndexed() async throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let log = try await EpisodeLog.open(dataDirectory: data)
        let errors = try await withThrowingTaskGroup(of: String?.self) { group in
            for i in 1...200 { group.addTask { try await log.write(body: F.body("c\(i)"), runId: "c\(i)").indexError } }
            return try await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(errors.count == 200 && errors.allSatisfy { $0 == nil })
        #expect(try await log.store.countEpisodes(status: nil, principal: nil) == 200)
        #expect(Set(try await log.list(limit: 500).map(\.runId)) == Set((1...200).map { "c\($0)" }))

        let brokenData = F.tempDir("log")
        defer { F.remove(brokenData) }
        try FileManager.default.createDirectory(atPath: brokenData, withIntermediateDirectories: true)
        let broken = BrokenIndexStore(try SQLiteStore(path: brokenData + "/" + SQLiteStore.defaultFileName))
        let brokenLog = try await EpisodeLog.open(dataDirectory: brokenData, store: broken)
        let failures = try await withThrowingTaskGroup(of: String?.self) { group in
            for i in 1...100 { group.addTask { try await brokenLog.write(body: F.body("b\(i)"), runId: "b\(i)").indexError } }
            return try await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(failures.count == 100 && failures.allSatisfy { $0 != nil })
    }

    /// With `indexAfterAnswers()` the SQLite store writes a run's index entry after its writer
    /// is answered, before any later statement of the store: a read issued the moment a writer
    /// is answered finds the run, for every one of many concurrent writers. A one-shot process
    /// (the default) finds its entries written when it is answered, without a read.
    @Test func aRunIsListedTheMomentItsWriterIsAnswered() async throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let log = try await EpisodeLog.open(dataDirectory: data)
        log.indexAfterAnswers()
        let missing = try await withThrowingTaskGroup(of: String?.self) { group in
            for i in 1...300 {
                group.addTask {
                    let logged = try await log.write(body: F.body("d\(i)"), runId: "d\(i)")
                    let listed = try await log.store.episode(runId: "d\(i)")
                    return listed?.seq == logged.ref.seq ? nil : "d\(i)"
                }
            }
            return try await group.reduce(into: [String]()) { if let m = $1 { $0.append(m) } }
        }
        #expect(missing == [])
        #expect(try await log.store.countEpisodes(status: nil, principal: nil) == 300)

        // Without it, the entry is written before the answer: a second connection, which
        // does not pass through this store's queue, sees it at once.
        let oneShot = try await EpisodeLog.open(dataDirectory: data)
        let other = try SQLiteStore(path: data + "/" + SQLiteStore.defaultFileName)
        for i in 1...20 {
            try await oneShot.write(body: F.body("s\(i)"), runId: "s\(i)")
            #expect(try await other.episode(runId: "s\(i)") != nil)
        }
    }

    /// A deferred index write that fails (here a trigger refuses every entry) leaves the runs
    /// answered and their episodes intact, is counted, and is repaired by the next open.
    @Test func aDeferredIndexFailureIsCountedAndRepairedOnOpen() async throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        do {
            let log = try await EpisodeLog.open(dataDirectory: data)
            log.indexAfterAnswers()
            let sqlite = try #require(log.store as? SQLiteStore)
            try await sqlite.onConnection {
                try sqlite.conn.exec("CREATE TRIGGER refuse BEFORE INSERT ON episodes BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
            }
            for i in 1...3 {
                let r = try await log.write(body: F.body("f\(i)"), runId: "f\(i)")
                #expect(r.indexError == nil && r.ref.seq == i)
            }
            #expect(try await log.list().isEmpty)
            let failures = sqlite.deferredIndexFailures
            #expect(failures.count == 3)
            #expect(failures.last?.contains("refused by the test") == true)
            #expect(try await log.verify().isIntact)
            try await sqlite.onConnection { try sqlite.conn.exec("DROP TRIGGER refuse") }
        }
        let log = try await EpisodeLog.open(dataDirectory: data)
        #expect(try log.openIndexRepair.get() == 3)
        #expect(try await log.list().map(\.runId) == ["f3", "f2", "f1"])
    }

    @Test func runRecordIsTheBody() async throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let log = try await EpisodeLog.open(dataDirectory: data)
        var record = RunRecord(runId: "rr-1", planName: "hello", plan: ["steps": []], principal: "alice", inputs: ["who": "nova"],
                               startedAt: Timestamps.now())
        record.status = .succeeded
        record.finishedAt = Timestamps.now()
        let logged = try await log.write(record)
        #expect(logged.indexError == nil)
        let e = try await log.show(runId: "rr-1")
        #expect(e.document["plan_name"] == "hello")
        #expect(try await log.store.episode(runId: "rr-1")?.status == "succeeded")
    }

    /// A record with every optional member set (a sub-run, `foreach` items, a restored step,
    /// a failed attempt, a decision with remaining figures, an approval, a template, a job):
    /// the episode written from the record directly holds the same bytes as the one encoded
    /// from its `json`, and reads back as that `json`.
    @Test func theRecordEncodedDirectlyIsItsJSON() async throws {
        func attempt(_ n: Int, ok: Bool) -> AttemptRecord {
            var d = GateDecision(allowed: ok, ruleId: "r\(n)", reason: "because \"quoted\" é", role: "user",
                                 remaining: ["calls": ["calls": 3, "wall_ms": 10], "😀": ["tokens": 1.5]], profileHash: String(repeating: "a", count: 64))
            d.retryAfterMs = ok ? nil : 250
            return AttemptRecord(attempt: n, startedAt: "2026-12-07T00:00:0\(n)Z", durationMs: 1.25 * Double(n), decision: d,
                                 input: ["z": 1, "a": ["\u{E000}": true, "b": .null]], output: ok ? ["text": "hi\n"] : nil,
                                 error: ok ? nil : ToolCallError(kind: .tool, code: "E1", message: "no", source: "driver"),
                                 usage: ToolUsage(tokens: 7, costMicros: 9), approval: ok ? ["by": "ann", "at": "now"] : nil)
        }
        var inner = RunRecord(runId: "sub-1", planName: "sub", plan: ["steps": [["id": "x"]]], principal: "alice", inputs: [:], startedAt: "t0")
        inner.steps = [StepRecord(id: "x", call: "echo.echo", status: .succeeded, attempts: [attempt(1, ok: true)], output: 1)]
        var record = RunRecord(runId: "rr-all", planName: "all", plan: ["name": "all", "steps": [["id": "a", "call": "echo.echo"]]],
                               principal: "alice", inputs: ["who": "nova", "n": 2.5], startedAt: "t1")
        var each = StepRecord(id: "each", call: "echo.echo", status: .failed, attempts: [])
        each.items = [StepRecord(id: "each[0]", call: "echo.echo", status: .succeeded, attempts: [attempt(1, ok: true)]),
                      StepRecord(id: "each[1]", call: "echo.echo", status: .failed, attempts: [attempt(1, ok: false), attempt(2, ok: false)])]
        each.reason = "an element failed"
        var sub = StepRecord(id: "sub", call: "template:sub", status: .succeeded, attempts: [])
        sub.subrun = SubRunRecord(inner)
        var restored = StepRecord(id: "old", call: "echo.echo", status: .succeeded, attempts: [], output: 3)
        restored.restored = ["id": "old", "call": "echo.echo", "status": "succeeded", "output": 3, "attempts": []]
        record.steps = [StepRecord(id: "a", call: "echo.echo", status: .succeeded, attempts: [attempt(1, ok: false), attempt(2, ok: true)], output: ["text": "hi"]),
                        each, sub, restored]
        record.status = .failed
        record.finishedAt = "t2"
        record.durationMs = 12.5
        record.output = ["out": [1, 2]]
        record.error = "each: an element failed"
        record.template = TemplateProvenance(name: "tpl", version: "1.0.0", hash: "h", params: ["p": 1], phases: [])
        record.replayOf = "rr-0"
        record.job = RunJobAttempt(jobId: "job-1", attempt: 2, worker: "w1")

        let viaJSON = try EpisodeFormat.encodedBytes(body: record.json, runId: record.runId, seq: 3, prevHash: String(repeating: "b", count: 64))
        let direct = try EpisodeFormat.encodedBytes(members: record.episodeMembers, runId: record.runId, seq: 3, prevHash: String(repeating: "b", count: 64))
        #expect(direct == viaJSON)
        #expect(record.json["steps"]?[3]?["resumed"] == true)
        #expect(record.json["steps"]?[1]?["items"]?[1]?["attempts"]?[0]?["error"]?["code"] == "E1")
        // Through the log: the stored document is the record's json plus the chain members.
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let log = try await EpisodeLog.open(dataDirectory: data)
        try await log.write(record)
        let stored = try await log.show(runId: "rr-all")
        #expect(stored.problem == nil)
        #expect(stored.body == record.json)
        // A record whose body names another run is refused, as a JSON body is.
        #expect(throws: EpisodeError.self) {
            _ = try EpisodeFormat.encodedBytes(members: record.episodeMembers, runId: "rr-other")
        }
    }

    @Test func indexFailureLeavesTheEpisodeAndIsRepairedOnOpen() async throws {
        let data = F.tempDir("log")
        defer { F.remove(data) }
        let dbPath = data + "/" + SQLiteStore.defaultFileName
        do {
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let broken = BrokenIndexStore(try SQLiteStore(path: dbPath))
            let log = try await EpisodeLog.open(dataDirectory: data, store: broken)
            for i in 1...3 {
                let r = try await log.write(body: F.body("i\(i)"), runId: "i\(i)")
                #expect(r.indexError != nil)
            }
            #expect(try await log.verify().isIntact)
            #expect(try await broken.countEpisodes(status: nil, principal: nil) == 0)
        }
        let log = try await EpisodeLog.open(dataDirectory: data)
        #expect(try log.openIndexRepair.get() == 3)
        #expect(try await log.list().map(\.runId) == ["i3", "i2", "i1"])
        // An entry the log does not hold is dropped by the next repair.
        try await log.store.indexEpisode(EpisodeSummary(ref: EpisodeRef(runId: "ghost", seq: 9, hash: EpisodeFormat.genesisHash, path: "-"),
                                                        document: F.body("ghost")))
        #expect(try await log.list().map(\.runId) == ["ghost", "i3", "i2", "i1"])
        try await log.repairIndex()
        #expect(try await log.list().map(\.runId) == ["i3", "i2", "i1"])
    }
}
