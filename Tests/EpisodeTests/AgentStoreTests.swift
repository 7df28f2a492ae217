import Foundation
import Host
import JSON
import PostgresStore
import Testing

/// The contract of `AgentStore` and `MemoryStore`, run on SQLite and PostgreSQL.
enum AgentStoreConformance {
    typealias Store = AgentStore & MemoryStore & StateStore
    typealias Database = @Sendable () async throws -> any Store

    /// Names are unique among live agents of a namespace; a deleted agent frees its name; every
    /// version is kept; listing filters by status and label and pages.
    static func agentsAndVersions(_ connect: Database) async throws {
        let s = try await connect()
        let a = Agent(name: "scout", description: "finds things", principal: "alice", tools: ["echo.echo"], labels: ["team": "blue"])
        try await s.insertAgent(a)
        #expect(try await s.agent(id: a.id) == a)
        #expect(try await s.agent(namespace: "default", name: "scout") == a)
        await #expect(throws: AgentStoreError.nameTaken(namespace: "default", name: "scout")) {
            try await s.insertAgent(Agent(name: "scout", principal: "bob"))
        }
        try await s.insertAgent(Agent(namespace: "other", name: "scout", principal: "bob"))
        for i in 0..<5 { try await s.insertAgent(Agent(name: "worker-\(i)", principal: "svc", labels: ["team": i % 2 == 0 ? "red" : "blue"])) }

        // Compare-and-set on the version: the second writer with the same base loses.
        var renamed = a
        renamed.description = "finds more"
        renamed.version = 2
        #expect(try await s.replaceAgent(renamed, ifVersion: 1))
        var stale = a
        stale.description = "stale"
        stale.version = 2
        #expect(try await s.replaceAgent(stale, ifVersion: 1) == false)
        #expect(try await s.agent(id: a.id)?.description == "finds more")
        let paused = try #require(renamed.applying(.pause))
        #expect(try await s.replaceAgent(paused, ifVersion: 2))
        #expect(try await s.agentVersions(id: a.id).map(\.version) == [1, 2, 3])
        #expect(try await s.agentVersions(id: a.id).map(\.description) == ["finds things", "finds more", "finds more"])

        #expect(try await s.listAgents(AgentFilter(namespace: "default")).map(\.name) == ["scout", "worker-0", "worker-1", "worker-2", "worker-3", "worker-4"])
        #expect(try await s.listAgents(AgentFilter(status: .paused)).map(\.name) == ["scout"])
        #expect(try await s.listAgents(AgentFilter(label: ("team", "blue"))).map(\.name) == ["scout", "worker-1", "worker-3"])
        #expect(try await s.listAgents(AgentFilter(namespace: "default", limit: 2, offset: 2)).map(\.name) == ["worker-1", "worker-2"])
        #expect(try await s.countAgents(AgentFilter(namespace: "default")) == 6)
        // Search: a case-insensitive substring of namespace/name, id, or a label key=value; by principal.
        #expect(try await s.listAgents(AgentFilter(search: "WORKER-")).map(\.name) == ["worker-0", "worker-1", "worker-2", "worker-3", "worker-4"])
        #expect(try await s.listAgents(AgentFilter(search: "other/")).map(\.namespace) == ["other"])
        #expect(try await s.listAgents(AgentFilter(search: "team=red")).map(\.name) == ["worker-0", "worker-2", "worker-4"])
        #expect(try await s.listAgents(AgentFilter(search: a.id.uppercased())).map(\.id) == [a.id])
        #expect(try await s.listAgents(AgentFilter(principal: "bob")).map(\.namespace) == ["other"])
        #expect(try await s.countAgents(AgentFilter(principal: "svc", search: "team=blue")) == 2)
        #expect(try await s.listAgents(AgentFilter(principal: "svc", search: "worker", limit: 2, offset: 1)).map(\.name) == ["worker-1", "worker-2"])
        #expect(try await s.listAgents(AgentFilter(search: "no such agent")).isEmpty)
        #expect(try await s.listAgents(AgentFilter(search: "%")).isEmpty, "no pattern characters: % is a plain character")

        // A tombstone keeps the row (and its versions) but frees the name and leaves listings.
        let deleted = try #require(paused.applying(.delete))
        #expect(try await s.replaceAgent(deleted, ifVersion: 3))
        #expect(try await s.agent(id: a.id)?.status == .deleted)
        #expect(try await s.agent(namespace: "default", name: "scout") == nil)
        #expect(try await s.listAgents(AgentFilter(namespace: "default")).count == 5)
        #expect(try await s.listAgents(AgentFilter(status: .deleted)).map(\.id) == [a.id])
        try await s.insertAgent(Agent(name: "scout", principal: "carol"))
        // A rename onto a live name is refused.
        var clash = try #require(try await s.agent(namespace: "default", name: "worker-0"))
        let base = clash.version
        clash.name = "scout"
        clash.version += 1
        await #expect(throws: AgentStoreError.nameTaken(namespace: "default", name: "scout")) {
            _ = try await s.replaceAgent(clash, ifVersion: base)
        }
    }

    /// Goals are kept per agent, newest first.
    static func goals(_ connect: Database) async throws {
        let s = try await connect()
        for i in 0..<3 { try await s.insertGoal(Goal(id: "g\(i)", agentId: "A", text: "goal \(i)", deadlineMs: i == 1 ? 42 : nil)) }
        try await s.insertGoal(Goal(id: "other", agentId: "B", text: "x"))
        #expect(try await s.goals(agentId: "A", limit: 10, offset: 0).map(\.id) == ["g2", "g1", "g0"])
        #expect(try await s.goals(agentId: "A", limit: 1, offset: 1).map(\.id) == ["g1"])
        #expect(try await s.goal(id: "g1")?.deadlineMs == 42)
        #expect(try await s.goal(id: "nope") == nil)
    }

    /// A fixed corpus: the expected ranking, filters, TTL, forget, and the owner boundary.
    static func memoryRecall(_ connect: Database) async throws {
        let s = try await connect()
        let t0: Int64 = 1_700_000_000_000
        let corpus: [(String, String, [String])] = [
            ("m1", "The deploy of the payment service failed because the database migration timed out", ["deploy", "incident"]),
            ("m2", "Deploy checklist: run migrations, warm caches, flip traffic", ["deploy"]),
            ("m3", "Lunch menu for Friday: soup and bread", []),
            ("m4", "Database migration guide for the payment database and the ledger database", ["database"]),
            ("m5", "Notes about caching strategies", ["cache"]),
        ]
        for (i, (id, text, tags)) in corpus.enumerated() {
            try await s.putMemory(MemoryItem(id: id, owner: "agent-1", type: i == 2 ? "observation" : "skill_result", text: text,
                                             meta: ["i": .int(i)], tags: tags, sourceRunId: "run-\(i)", sourceStepId: "s",
                                             createdAtMs: t0 + Int64(i) * 1000))
        }
        try await s.putMemory(MemoryItem(id: "x1", owner: "agent-2", type: "skill_result", text: "database database database", createdAtMs: t0))
        try await s.putMemory(MemoryItem(id: "gone", owner: "agent-1", type: "context", text: "database expired", createdAtMs: t0, expiresAtMs: t0 + 10))
        let now = t0 + 60_000

        // "database": m4 names it three times, m1 once; nothing of agent-2 or the expired item.
        let db = try await s.recall(RecallQuery(owner: "agent-1", text: "database", nowMs: now))
        #expect(db.map(\.item.id) == ["m4", "m1"])
        #expect(db[0].score > db[1].score && db[1].score > 0)
        #expect(db[0].item.sourceRunId == "run-3" && db[0].item.meta == ["i": 3])
        // Both words must match.
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "deploy payment", nowMs: now)).map(\.item.id) == ["m1"])
        // Web-search syntax, read alike by both stores (PostgreSQL's websearch_to_tsquery, SQLite
        // through FTS5WebSearch): punctuation is text, "phrases", OR, -word; no term, no match.
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "deploy? (payment)", nowMs: now)).map(\.item.id) == ["m1"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "\"payment service\"", nowMs: now)).map(\.item.id) == ["m1"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "\"payment service", nowMs: now)).map(\.item.id) == ["m1"])
        #expect(Set(try await s.recall(RecallQuery(owner: "agent-1", text: "lunch OR strategies", nowMs: now)).map(\.item.id)) == ["m3", "m5"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "deploy -payment", nowMs: now)).map(\.item.id) == ["m2"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "?! --", nowMs: now)).isEmpty)
        // Filters: tags (all of them), type, time range; no text → newest first.
        #expect(try await s.recall(RecallQuery(owner: "agent-1", tags: ["deploy"], nowMs: now)).map(\.item.id) == ["m2", "m1"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", tags: ["deploy", "incident"], nowMs: now)).map(\.item.id) == ["m1"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", types: ["observation"], nowMs: now)).map(\.item.id) == ["m3"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", sinceMs: t0 + 1000, untilMs: t0 + 3000, nowMs: now)).map(\.item.id) == ["m3", "m2"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", limit: 2, offset: 1, nowMs: now)).map(\.item.id) == ["m4", "m3"])
        // The expired item is recalled before it expires, never after, and purged.
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "expired", nowMs: t0 + 5)).map(\.item.id) == ["gone"])
        #expect(try await s.recall(RecallQuery(owner: "agent-1", text: "expired", nowMs: now)).isEmpty)
        #expect(try await s.purgeExpiredMemory(nowMs: now) == 1)
        #expect(try await s.memory(id: "gone") == nil)
        // Forget is scoped to the owner.
        #expect(try await s.forgetMemory(id: "m3", owner: "agent-2") == false)
        #expect(try await s.forgetMemory(id: "m3", owner: "agent-1"))
        #expect(try await s.memory(id: "m3") == nil)
    }
}

extension AgentStoreConformance {
    /// Versioned keys with compare-and-set, prefixes, and a change log a watch replays in order
    /// (compaction is reported, never silent); concurrent CAS writers: exactly one wins.
    static func state(_ connect: Database) async throws {
        let s = try await connect()
        let a = "agent-a"
        let v1 = try await s.statePut(scope: a, key: "plan/step", value: ["n": 1], ifVersion: 0)
        #expect(v1.version == 1)
        await #expect(throws: StateError.versionConflict(key: "plan/step", current: 1)) {
            _ = try await s.statePut(scope: a, key: "plan/step", value: ["n": 9], ifVersion: 0)
        }
        #expect(try await s.statePut(scope: a, key: "plan/step", value: ["n": 2], ifVersion: 1).version == 2)
        await #expect(throws: StateError.versionConflict(key: "plan/step", current: 2)) {
            _ = try await s.statePut(scope: a, key: "plan/step", value: ["n": 9], ifVersion: 1)
        }
        #expect(try await s.statePut(scope: a, key: "plan/step", value: ["n": 3], ifVersion: nil).version == 3)
        _ = try await s.statePut(scope: a, key: "plan/other", value: "x", ifVersion: nil)
        _ = try await s.statePut(scope: a, key: "zeta", value: true, ifVersion: nil)
        _ = try await s.statePut(scope: "agent-b", key: "plan/step", value: 1, ifVersion: nil)
        #expect(try await s.stateGet(scope: a, key: "plan/step")?.value == ["n": 3])
        #expect(try await s.stateList(scope: a, prefix: "plan/", limit: 10).map(\.key) == ["plan/other", "plan/step"])
        await #expect(throws: StateError.versionConflict(key: "plan/step", current: 3)) { _ = try await s.stateDelete(scope: a, key: "plan/step", ifVersion: 2) }
        #expect(try await s.stateDelete(scope: a, key: "plan/step", ifVersion: 3))
        #expect(try await s.stateDelete(scope: a, key: "plan/step", ifVersion: nil) == false)
        #expect(try await s.stateGet(scope: a, key: "plan/step") == nil)

        let all = try await s.stateChanges(scope: a, after: 0, limit: 100)
        #expect(!all.compacted)
        #expect(all.changes.map { "\($0.op) \($0.key) v\($0.version)" } == ["put plan/step v1", "put plan/step v2", "put plan/step v3",
                                                                          "put plan/other v1", "put zeta v1", "delete plan/step v3"])
        #expect(all.changes.map(\.revision) == all.changes.map(\.revision).sorted())
        let after = try await s.stateChanges(scope: a, after: all.changes[2].revision, limit: 100)
        #expect(after.changes.map(\.key) == ["plan/other", "zeta", "plan/step"])

        // Two writers with the same base version: exactly one wins, every time.
        for round in 0..<5 {
            let key = "race-\(round)"
            let base = try await s.statePut(scope: a, key: key, value: 0, ifVersion: 0)
            async let one: Bool = { do { _ = try await s.statePut(scope: a, key: key, value: 1, ifVersion: base.version); return true } catch { return false } }()
            async let two: Bool = { do { _ = try await s.statePut(scope: a, key: key, value: 2, ifVersion: base.version); return true } catch { return false } }()
            let wins = [await one, await two].filter { $0 }.count
            #expect(wins == 1, "round \(round): \(wins) writers won")
        }

        // Compaction: a watch from before it is told so; one from after it is not.
        let head = try await s.stateChanges(scope: a, after: 0, limit: 1000).changes.last?.revision ?? 0
        #expect(try await s.compactStateChanges(keepLast: 2) > 0)
        #expect(try await s.stateChanges(scope: a, after: 0, limit: 100).compacted)
        let recent = try await s.stateChanges(scope: a, after: head - 1, limit: 100)
        #expect(!recent.compacted && recent.head >= head)
    }
}

@Suite struct SQLiteAgentStoreTests {
    @Test func state() async throws { try await AgentStoreConformance.state(Self.database()) }
    static func database() -> AgentStoreConformance.Database {
        let path = EpisodeFixtures.tempDir("agents") + "/nova.sqlite"
        return { try SQLiteStore(path: path) }
    }

    @Test func agentsAndVersions() async throws { try await AgentStoreConformance.agentsAndVersions(Self.database()) }
    @Test func goals() async throws { try await AgentStoreConformance.goals(Self.database()) }
    @Test func memoryRecall() async throws { try await AgentStoreConformance.memoryRecall(Self.database()) }

    /// FTS5's own operators and brackets are text in a recall query (it used to refuse them),
    /// and a word ending in `*` is a prefix search.
    @Test func ftsSyntaxInARecallQueryIsText() async throws {
        let s = try await Self.database()()
        try await s.putMemory(MemoryItem(id: "h", owner: "a", type: "context", text: "hello world, NEAR the end"))
        for q in ["hello AND (", "hello)", "NEAR( hello world )", "world: hello", "hello^", "\"hello\" \"world"] {
            #expect(try await s.recall(RecallQuery(owner: "a", text: q)).map(\.item.id) == ["h"], "\(q)")
        }
        #expect(try await s.recall(RecallQuery(owner: "a", text: "wor*")).map(\.item.id) == ["h"])
        #expect(try await s.recall(RecallQuery(owner: "a", text: "wor")).isEmpty)
        #expect(try await s.recall(RecallQuery(owner: "a", text: "-hello")).isEmpty)
    }
}

@Suite struct PostgresAgentStoreTests {
    static func database(_ stores: PostgresStoreTests.Stores) async throws -> AgentStoreConformance.Database {
        let url = try await PostgresStoreTests.freshDatabase()
        return { try await stores.connect(url) }
    }

    @Test func agentsAndVersions() async throws { try await AgentStoreConformance.agentsAndVersions(try await Self.database(.init())) }
    @Test func goals() async throws { try await AgentStoreConformance.goals(try await Self.database(.init())) }
    @Test func memoryRecall() async throws { try await AgentStoreConformance.memoryRecall(try await Self.database(.init())) }
    @Test func state() async throws {
        do { try await AgentStoreConformance.state(try await Self.database(.init())) } catch { Issue.record("\(String(reflecting: error))") }
    }
}
