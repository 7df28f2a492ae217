import Foundation
import Testing
import Host
@testable import Store
import JSON
import PostgresStore

/// The contract of `EpisodeAggregating` (the overview's figures), run on SQLite and PostgreSQL.
enum EpisodeAggregateConformance {
    typealias Database = @Sendable () async throws -> any HostStore

    /// 12:00:00 UTC on 2026-12-06, in milliseconds.
    static let noon: Int64 = 1_796_558_400_000

    static func at(_ ms: Int64) -> String { Timestamps.format(nanosSinceEpoch: ms * 1_000_000) }

    static func summary(_ id: String, seq: Int, principal: String, status: String, endMs: Int64, calls: Int = 1,
                        denials: [EpisodeDenial] = []) -> EpisodeSummary {
        EpisodeSummary(runId: id, seq: seq, hash: String(repeating: "b", count: 64), planName: "p", principal: principal, status: status,
                       startedAt: at(endMs - 500), finishedAt: at(endMs), durationMs: 500,
                       totals: EpisodeTotals(calls: calls, tokens: 10 * calls, costMicros: 7 * calls), denials: denials)
    }

    /// Runs and denials inside the window are counted by status, bucket, rule and principal;
    /// runs outside it are not; a principal filter limits everything; re-indexing a run replaces
    /// its denials and removing it removes them.
    static func aggregates(_ connect: Database) async throws {
        let store = try await connect()
        let agg = try #require(store.episodeAggregating)
        let since = noon - 3_600_000
        let deny = EpisodeDenial(rule: "no-rm", tool: "shell.exec"), limit = EpisodeDenial(rule: "rate", tool: "http.request")
        try await store.indexEpisodes([
            summary("before", seq: 1, principal: "ada", status: "succeeded", endMs: since - 1, denials: [deny]),
            summary("r1", seq: 2, principal: "ada", status: "succeeded", endMs: since, calls: 3),
            summary("r2", seq: 3, principal: "ada", status: "denied", endMs: since + 61_000, denials: [deny, deny]),
            summary("r3", seq: 4, principal: "bob", status: "failed", endMs: since + 61_500, denials: [limit]),
            summary("r4", seq: 5, principal: "bob", status: "succeeded", endMs: noon - 1, denials: [deny]),
            summary("after", seq: 6, principal: "bob", status: "succeeded", endMs: noon, denials: [deny]),
        ])
        let q = EpisodeAggregateQuery(sinceMs: since, untilMs: noon, bucketMs: 60_000, bucketCount: 60)
        let all = try await agg.aggregateEpisodes(q)
        #expect(all.byStatus == ["succeeded": 2, "denied": 1, "failed": 1])
        #expect(all.buckets.count == 60 && all.buckets[0] == EpisodeBucket(runs: 1, succeeded: 1))
        #expect(all.buckets[1] == EpisodeBucket(runs: 2, succeeded: 0) && all.buckets[59] == EpisodeBucket(runs: 1, succeeded: 1))
        #expect(all.buckets.map(\.runs).reduce(0, +) == 4)
        #expect(all.denials == [
            EpisodeDenialCount(rule: "no-rm", count: 3, tools: ["shell.exec"], exampleRuns: ["r4", "r2"]),
            EpisodeDenialCount(rule: "rate", count: 1, tools: ["http.request"], exampleRuns: ["r3"]),
        ])
        #expect(all.consumption == [
            EpisodeConsumption(principal: "ada", runs: 2, totals: EpisodeTotals(calls: 4, tokens: 40, costMicros: 28)),
            EpisodeConsumption(principal: "bob", runs: 2, totals: EpisodeTotals(calls: 2, tokens: 20, costMicros: 14)),
        ])
        var bobOnly = q
        bobOnly.principal = "bob"
        let bob = try await agg.aggregateEpisodes(bobOnly)
        #expect(bob.byStatus == ["failed": 1, "succeeded": 1] && bob.denials.map(\.rule) == ["no-rm", "rate"])
        #expect(bob.consumption.map(\.principal) == ["bob"])

        // Re-indexed without denials: its denials go; removed: its denials go.
        try await store.indexEpisode(summary("r2", seq: 3, principal: "ada", status: "denied", endMs: since + 61_000))
        try await store.removeEpisodes(runIds: ["r3"])
        let after = try await agg.aggregateEpisodes(q)
        #expect(after.denials == [EpisodeDenialCount(rule: "no-rm", count: 1, tools: ["shell.exec"], exampleRuns: ["r4"])])
        #expect(after.byStatus == ["succeeded": 2, "denied": 1])
        #expect(try await agg.runIdsLackingIndexFacts(limit: 10).isEmpty)

        // Stored policy state by key prefix (the overview's budget windows).
        try await store.updatePolicyState(keys: ["budget/day/ada/5", "budget/day/bob/5", "budget/dayx/ada/5", "rate/r/tool/t"]) { _ in
            ["budget/day/ada/5": ["calls": 3, "tokens": 0], "budget/day/bob/5": ["calls": 1, "tokens": 2],
             "budget/dayx/ada/5": ["calls": 9], "rate/r/tool/t": ["tokens": 1.5]]
        }
        let entries = try await agg.policyStateEntries(prefix: "budget/day/")
        #expect(entries.keys.sorted() == ["budget/day/ada/5", "budget/day/bob/5"] && entries["budget/day/ada/5"]?["calls"] == 3)
    }
}

@Suite struct SQLiteEpisodeAggregateTests {
    @Test func aggregates() async throws {
        let path = EpisodeFixtures.tempDir("aggregates") + "/nova.sqlite"
        try await EpisodeAggregateConformance.aggregates { try SQLiteStore(path: path) }
    }

    /// An entry is inserted as new unless it replaces one: by run id (a re-index) or by seq (a
    /// seq taken again after recovery cut a torn tail), and then the replaced entries' denials go
    /// with them.
    @Test func anEntryAtAnIndexedSeqReplacesItAndItsDenials() async throws {
        let store = try SQLiteStore(path: EpisodeFixtures.tempDir("index-replace") + "/nova.sqlite")
        let agg = try #require(store.episodeAggregating)
        let noon = EpisodeAggregateConformance.noon
        let deny = EpisodeDenial(rule: "no-rm", tool: "shell.exec")
        try await store.indexEpisodes([
            EpisodeAggregateConformance.summary("torn", seq: 1, principal: "ada", status: "denied", endMs: noon - 10, denials: [deny]),
            EpisodeAggregateConformance.summary("kept", seq: 2, principal: "ada", status: "denied", endMs: noon - 5, denials: [deny]),
        ])
        try await store.indexEpisodes([EpisodeAggregateConformance.summary("again", seq: 1, principal: "bob", status: "succeeded", endMs: noon - 1)])
        let listed = try await store.listEpisodes(status: nil, principal: nil, limit: 10, offset: 0)
        #expect(listed.map(\.runId) == ["kept", "again"])
        let q = EpisodeAggregateQuery(sinceMs: noon - 60_000, untilMs: noon, bucketMs: 60_000, bucketCount: 1)
        #expect(try await agg.aggregateEpisodes(q).denials == [EpisodeDenialCount(rule: "no-rm", count: 1, tools: ["shell.exec"], exampleRuns: ["kept"])])
    }

    /// A data directory from before schema 8 (index entries without end times or denials) is
    /// migrated on open and its entries filled in from the episodes, so the overview counts them.
    @Test func upgradeBackfillsDenialsFromTheEpisodes() async throws {
        let data = EpisodeFixtures.tempDir("aggregates-upgrade")
        let endMs = EpisodeAggregateConformance.noon
        func body(_ id: String, denied: Bool) -> JSONValue {
            let decision: JSONValue = denied ? ["decision": "deny", "rule": "no-rm", "reason": "r"] : ["decision": "allow", "rule": "ok", "reason": "r"]
            return ["run_id": .string(id), "plan_name": "p", "principal": "ada", "status": denied ? "denied" : "succeeded",
                    "started_at": .string(EpisodeAggregateConformance.at(endMs - 10)), "finished_at": .string(EpisodeAggregateConformance.at(endMs)),
                    "duration_ms": 10, "totals": ["calls": 1, "tokens": 0, "cost_micros": 0],
                    "steps": [["id": "a", "call": "shell.exec", "status": denied ? "denied" : "succeeded",
                               "attempts": [["attempt": 1, "started_at": .string(EpisodeAggregateConformance.at(endMs - 5)), "decision": decision]],
                               "items": [["id": "a", "call": "echo.echo", "attempts": [["attempt": 1, "decision": decision]]]]]]]
        }
        do {
            let log = try await EpisodeLog.open(dataDirectory: data)
            try await log.write(body: body("old1", denied: true), runId: "old1")
            try await log.write(body: body("old2", denied: false), runId: "old2")
        }
        // Replace the index with one as schema 7 wrote it.
        let db = data + "/" + SQLiteStore.defaultFileName
        let entries = try await SQLiteStore(path: db).listEpisodes(status: nil, principal: nil, limit: 10, offset: 0)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) }
        do {
            let old = try SQLiteConnection(path: db)
            for step in 0..<7 { try old.exec(SQLiteStore.migrations[step]) }
            try old.exec("PRAGMA user_version=7")
            for e in entries {
                _ = try old.query("INSERT INTO episodes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                    .text(e.runId), .int(Int64(e.seq)), .text(e.hash), .text(e.planName), .text(e.principal), .text(e.status),
                    .text(e.startedAt), .text(e.finishedAt), .double(e.durationMs), .int(1), .int(0), .int(0)])
            }
        }
        let log = try await EpisodeLog.open(dataDirectory: data)
        #expect(try log.openIndexRepair.get() == 0, "the entries were all there: only their facts were missing")
        let agg = try #require(log.store.episodeAggregating)
        #expect(try await agg.runIdsLackingIndexFacts(limit: 10).isEmpty)
        let figures = try await agg.aggregateEpisodes(EpisodeAggregateQuery(sinceMs: endMs - 60_000, untilMs: endMs + 1, bucketMs: 60_000, bucketCount: 2))
        #expect(figures.byStatus == ["denied": 1, "succeeded": 1])
        #expect(figures.denials == [EpisodeDenialCount(rule: "no-rm", count: 2, tools: ["echo.echo", "shell.exec"], exampleRuns: ["old1"])])
    }
}

@Suite struct PostgresEpisodeAggregateTests {
    @Test func aggregates() async throws {
        let stores = PostgresStoreTests.Stores()
        let url = try await PostgresStoreTests.freshDatabase()
        try await EpisodeAggregateConformance.aggregates { try await stores.connect(url) }
    }
}
