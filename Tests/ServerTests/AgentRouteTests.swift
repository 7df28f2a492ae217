import Foundation
import Host
import HostServer
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JSON
import PostgresStore
import PostgresTestSupport
import NIOCore
import Synchronization
import Testing

/// `/v1/agents…` over a real socket: lifecycle, versions, goals as queued runs of the agent's
/// principal, pause/stop, memory and recall (SQLite store; the PostgreSQL store runs the same
/// contract in AgentStoreTests).
@Suite struct AgentRouteTests {
    typealias F = ServerFixtures

    /// The store behind the server: the embedded SQLite of the data directory, or a fresh
    /// PostgreSQL database (the behaviours below hold on both).
    enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
        func server(_ stores: PostgresTestDatabase.Stores, worker: Bool = true) async throws -> NovaServer {
            let store: (any HostStore)? = self == .postgres ? try await stores.connect(try await PostgresTestDatabase.fresh()) : nil
            return try await F.server(config: { if !worker { $0.worker = nil } }, store: store)
        }
    }

    static let echoPlan: JSONValue = ["name": "hi", "steps": [["id": "a", "call": "echo.echo", "input": ["x": 1]]]]
    static let sleepPlan: JSONValue = ["name": "nap", "steps": [["id": "nap", "call": "echo.sleep", "input": ["ms": 30_000]]]]

    static func create(_ client: any TestClientProtocol, _ name: String, _ extra: [String: JSONValue] = [:], key: String = F.aliceKey) async throws -> JSONValue {
        var body: [String: JSONValue] = ["name": .string(name)]
        for (k, v) in extra { body[k] = v }
        let r = try await client.post("/v1/agents", key, .object(body))
        #expect(r.status == .created, "\(r.json)")
        return r.json
    }

    static func goalStatus(_ client: any TestClientProtocol, _ agent: String, _ goal: String) async throws -> JSONValue {
        try await client.get("/v1/agents/\(agent)/runs/\(goal)", F.aliceKey).json
    }

    /// Every action from every status: the legal ones move the agent, the others are 409 naming
    /// the status and the allowed actions.
    @Test(arguments: Backend.allCases) func lifecycleMatrix(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        let legal: [AgentStatus: [AgentAction: AgentStatus]] = [
            .active: [.pause: .paused, .stop: .stopped, .delete: .deleted],
            .paused: [.resume: .active, .stop: .stopped, .delete: .deleted],
            .stopped: [.resume: .active, .delete: .deleted],
            .deleted: [:],
        ]
        // How to bring a fresh (active) agent to each status.
        let path: [AgentStatus: [AgentAction]] = [.active: [], .paused: [.pause], .stopped: [.stop], .deleted: [.delete]]
        try await backend.server(stores, worker: false).withClient(.live) { client in
            var n = 0
            for (from, allowed) in legal {
                for action in AgentAction.allCases {
                    n += 1
                    let id = try #require(try await Self.create(client, "m\(n)")["id"]?.stringValue)
                    for step in path[from]! { _ = try await Self.act(client, id, step) }
                    let r = try await Self.act(client, id, action)
                    if let to = allowed[action] {
                        #expect(r.status == .ok && r.json["status"] == .string(to.rawValue), "\(from) \(action): \(r.json)")
                    } else {
                        #expect(r.status == .conflict && r.errorCode == "illegal_transition", "\(from) \(action): \(r.status)")
                        #expect(r.json["error"]?["status"] == .string(from.rawValue))
                        #expect(r.json["error"]?["allowed"] == .array(AgentAction.allowed(from: from).map { .string($0.rawValue) }))
                    }
                }
            }
            // A deleted agent is a tombstone: still readable, gone from listings, its name free.
            let list = try await client.get("/v1/agents?limit=500", F.aliceKey).json
            #expect(list["items"]?.arrayValue?.allSatisfy { $0["status"] != "deleted" } == true)
            // Deleted: the three deletes, and the four agents that were deleted before their action.
            #expect(try await client.get("/v1/agents?status=deleted", F.aliceKey).json["total"] == 7)
        }
    }

    static func act(_ client: any TestClientProtocol, _ id: String, _ action: AgentAction, ifMatch: String? = nil) async throws -> TestResponse {
        let more = ifMatch.map { [("If-Match", $0)] } ?? []
        if action == .delete { return try await client.execute(uri: "/v1/agents/\(id)", method: .delete, headers: Req.bearer(F.aliceKey, more)) }
        return try await client.post("/v1/agents/\(id)/\(action.rawValue)", F.aliceKey, nil, more)
    }

    @Test(arguments: Backend.allCases) func optimisticConcurrencyAndVersions(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        try await backend.server(stores, worker: false).withClient(.live) { client in
            let a = try await Self.create(client, "writer", ["labels": ["team": "blue"]])
            let id = try #require(a["id"]?.stringValue)
            #expect(a["version"] == 1 && a["principal"] == "alice")
            func patch(_ body: JSONValue, _ version: String) async throws -> TestResponse {
                try await client.execute(uri: "/v1/agents/\(id)", method: .patch, headers: Req.jsonHeaders(F.aliceKey, [("If-Match", version)]),
                                         body: Req.body(body))
            }
            let first = try await patch(["description": "first"], "\"1\"")
            #expect(first.status == .ok && first.json["version"] == 2 && first.headers[.eTag] == "\"2\"")
            let second = try await patch(["description": "second"], "\"1\"")
            #expect(second.status == .preconditionFailed && second.errorCode == "version_mismatch" && second.json["error"]?["version"] == 2)
            #expect(try await client.get("/v1/agents/\(id)", F.aliceKey).json["description"] == "first")
            // Lifecycle actions honour If-Match too.
            #expect(try await Self.act(client, id, .pause, ifMatch: "\"1\"").status == .preconditionFailed)
            #expect(try await Self.act(client, id, .pause, ifMatch: "\"2\"").status == .ok)
            let versions = try await client.get("/v1/agents/\(id)/versions", F.aliceKey).json
            #expect(versions["items"]?.arrayValue?.map { $0["version"] } == [1, 2, 3])
            #expect(versions["items"]?[1]?["description"] == "first" && versions["items"]?[2]?["status"] == "paused")
            // Filters, visibility by principal, names.
            #expect(try await client.get("/v1/agents?label=team:blue", F.aliceKey).json["total"] == 1)
            #expect(try await client.get("/v1/agents?label=team:red", F.aliceKey).json["total"] == 0)
            #expect(try await client.get("/v1/agents/writer", F.aliceKey).json["id"] == .string(id))
            #expect(try await client.get("/v1/agents/\(id)", F.bobKey).status == .notFound)
            #expect(try await client.get("/v1/agents", F.bobKey).json["total"] == 0)
            #expect(try await client.get("/v1/agents", F.adminKey).json["total"] == 1)
            let taken = try await client.post("/v1/agents", F.aliceKey, ["name": "writer"])
            #expect(taken.status == .conflict && taken.errorCode == "name_taken")
            let forOther = try await client.post("/v1/agents", F.aliceKey, ["name": "x", "principal": "bob"])
            #expect(forOther.status == .forbidden)
        }
    }

    @Test func badInputIsRefusedWithTheField() async throws {
        try await F.server(config: { $0.worker = nil }).withClient(.live) { client in
            #expect(try await client.get("/v1/agents/nope", F.aliceKey).status == .notFound)
            // `namespace/name` in a path is percent-encoded; the route decodes it.
            let scoped = try #require(try await Self.create(client, "scout", ["namespace": "team"])["id"]?.stringValue)
            let byRef = try await client.get("/v1/agents/team%2Fscout", F.aliceKey)
            #expect(byRef.status == .ok && byRef.json["id"] == .string(scoped), "\(byRef.status) \(byRef.json)")
            #expect(try await client.get("/v1/agents/team%2Fscout/versions", F.aliceKey).status == .ok)
            #expect(try await client.get("/v1/agents/other%2Fscout", F.aliceKey).status == .notFound)
            let badConfig = try await client.post("/v1/agents", F.aliceKey, ["name": "c", "config": [1, 2]])
            #expect(badConfig.status == .unprocessableContent && badConfig.json["error"]?["field"] == "config")
            // A config that does not satisfy the agent's config_schema is refused, naming the field.
            let schema: JSONValue = ["type": "object", "properties": ["retries": ["type": "integer", "minimum": 0]], "required": ["retries"]]
            let badValue = try await client.post("/v1/agents", F.aliceKey, ["name": "s1", "config_schema": schema, "config": ["retries": "many"]])
            #expect(badValue.status == .unprocessableContent && badValue.json["error"]?["field"] == "config.retries", "\(badValue.json)")
            let missing = try await client.post("/v1/agents", F.aliceKey, ["name": "s2", "config_schema": schema])
            #expect(missing.status == .unprocessableContent && missing.json["error"]?["field"] == "config", "\(missing.json)")
            let good = try await client.post("/v1/agents", F.aliceKey, ["name": "s3", "config_schema": schema, "config": ["retries": 2]])
            #expect(good.status == .created)
            let s3 = try #require(good.json["id"]?.stringValue)
            let breaks = try await client.execute(uri: "/v1/agents/\(s3)", method: .patch, headers: Req.jsonHeaders(F.aliceKey),
                                                  body: Req.body(["config": ["retries": -1]]))
            #expect(breaks.status == .unprocessableContent && breaks.json["error"]?["field"] == "config.retries")
            let badSchema = try await client.post("/v1/agents", F.aliceKey, ["name": "s4", "config_schema": ["type": 12]])
            #expect(badSchema.status == .unprocessableContent && badSchema.json["error"]?["field"] == "config_schema")
            let badName = try await client.post("/v1/agents", F.aliceKey, ["name": "no spaces"])
            #expect(badName.status == .unprocessableContent && badName.json["error"]?["field"] == "name")
            let badTools = try await client.post("/v1/agents", F.aliceKey, ["name": "t", "tools": ["notatool"]])
            #expect(badTools.status == .unprocessableContent && badTools.json["error"]?["field"] == "tools")
            let id = try #require(try await Self.create(client, "m")["id"]?.stringValue)
            let noPlan = try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "do it"])
            #expect(noPlan.status == .unprocessableContent && noPlan.json["error"]?["field"] == "plan")
            let unknownTool = try await client.post("/v1/agents/\(id)/goals", F.aliceKey,
                                                    ["goal": "x", "plan": ["steps": [["id": "a", "call": "nope.nothing"]]]])
            #expect(unknownTool.status == .unprocessableContent)
            let big = String(repeating: "x", count: MemoryItem.maxTextBytes + 1)
            let tooLarge = try await client.post("/v1/agents/\(id)/memory", F.aliceKey, ["text": .string(big)])
            #expect(tooLarge.status == .contentTooLarge || tooLarge.status == .unprocessableContent, "\(tooLarge.status)")
            let badType = try await client.post("/v1/agents/\(id)/memory", F.aliceKey, ["text": "t", "memory_type": "gossip"])
            #expect(badType.status == .unprocessableContent && badType.json["error"]?["field"] == "memory_type")
            _ = try await client.post("/v1/agents/\(id)/memory", F.aliceKey, ["text": "hello world"])
            // Web-search syntax: an unbalanced quote and brackets are text, not a 422.
            let looseQuery = try await client.get("/v1/agents/\(id)/recall?q=%22hello%20(world", F.aliceKey)
            #expect(looseQuery.status == .ok && looseQuery.json["items"]?.arrayValue?.count == 1, "\(looseQuery.status) \(looseQuery.json)")
        }
    }

    /// A goal runs as the agent's principal, limited to the agent's tools: a tool the policy
    /// allows but the agent may not use is denied (rule agent-tools) and recorded.
    @Test(arguments: Backend.allCases) func goalsRunAsTheAgentWithinItsTools(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        try await backend.server(stores).withClient(.live) { client in
            let id = try #require(try await Self.create(client, "runner", ["tools": ["echo.echo"]])["id"]?.stringValue)
            let ok = try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "say hi", "plan": Self.echoPlan])
            #expect(ok.status == .accepted && ok.headers[.location] == "/v1/agents/\(id)/runs/\(ok.json["id"]?.stringValue ?? "")")
            let okId = try #require(ok.json["id"]?.stringValue)
            let plan: JSONValue = ["name": "two", "steps": [["id": "a", "call": "echo.echo", "input": ["x": 1]],
                                                            ["id": "b", "call": "echo.version", "input": [:]]]]
            let denied = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "try more", "plan": plan]).json["id"]?.stringValue)
            try await Wait.until("both goals end") {
                let a = try await Self.goalStatus(client, id, okId)["status"], b = try await Self.goalStatus(client, id, denied)["status"]
                return a != "pending" && a != "running" && b != "pending" && b != "running"
            }
            #expect(try await Self.goalStatus(client, id, okId)["status"] == "completed")
            #expect(try await Self.goalStatus(client, id, denied)["status"] == "failed")
            let episode = try await client.get("/v1/episodes/\(denied)", F.aliceKey).json["document"]
            #expect(episode?["principal"] == "alice" && episode?["status"] == "denied")
            #expect(episode?["steps"]?[1]?["attempts"]?[0]?["decision"]?["rule"] == "agent-tools")
            let list = try await client.get("/v1/agents/\(id)/runs", F.aliceKey).json
            #expect(list["items"]?.arrayValue?.map { $0["id"] } == [.string(denied), .string(okId)])
            #expect(list["next_offset"] == .null)
            let page = try await client.get("/v1/agents/\(id)/runs?limit=1", F.aliceKey).json
            #expect(page["items"]?.arrayValue?.map { $0["id"] } == [.string(denied)] && page["next_offset"] == 1, "\(page)")
            // Idempotent submission.
            let k1 = try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "once", "plan": Self.echoPlan], [("Idempotency-Key", "k1")])
            let k2 = try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "once", "plan": Self.echoPlan], [("Idempotency-Key", "k1")])
            #expect(k1.json["id"] == k2.json["id"] && k2.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
        }
    }

    /// `GET /v1/runs?before_seq=` pages through recorded runs by their episode's seq: runs
    /// recorded between two pages shift `offset` pages (the same run twice) but not the cursor,
    /// which lists every run once, newest first; it combines with the filters; bad values and
    /// `offset` with it are 400.
    @Test(arguments: Backend.allCases) func runsPageByCursorWhileRunsAreRecorded(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        try await backend.server(stores).withClient(.live) { client in
            func record(_ n: Int) async throws -> [String] {
                var ids: [String] = []
                for _ in 0..<n {
                    let id = try #require(try await client.post("/v1/runs", F.aliceKey, ["plan": Self.echoPlan]).json["run_id"]?.stringValue)
                    _ = try await client.waitForRun(id, F.aliceKey)
                    ids.append(id)
                }
                return ids
            }
            let first = try await record(5)
            // By offset: a run recorded between the pages pushes the second page's first run
            // back onto it (the client sees it twice).
            let byOffset1 = try await client.get("/v1/runs?limit=2", F.aliceKey).json
            #expect(byOffset1["runs"]?.arrayValue?.compactMap { $0["run_id"]?.stringValue } == [first[4], first[3]])
            let cursor = try #require(byOffset1["next_before_seq"]?.intValue, "\(byOffset1)")
            let newer = try await record(2)
            let byOffset2 = try await client.get("/v1/runs?limit=2&offset=2", F.aliceKey).json
            #expect(byOffset2["runs"]?.arrayValue?.compactMap { $0["run_id"]?.stringValue } == [first[4], first[3]], "offsets shift")
            // By cursor: the rest of the first five, once each, whatever is recorded meanwhile.
            var seen = [first[4], first[3]]
            var made = first.count + newer.count
            var next: Int? = cursor
            while let before = next {
                let page = try await client.get("/v1/runs?limit=2&before_seq=\(before)", F.aliceKey)
                #expect(page.status == .ok, "\(page.text)")
                seen += (page.json["runs"]?.arrayValue ?? []).compactMap { $0["run_id"]?.stringValue }
                next = page.json["next_before_seq"]?.intValue
                made += try await record(1).count
            }
            #expect(seen == first.reversed(), "\(seen)")
            // With filters: every run so far is a succeeded run of plan "hi" of alice's; bob sees none.
            let top = try await client.get("/v1/runs?limit=1&status=succeeded", F.aliceKey).json
            #expect(top["runs"]?[0]?["run_id"]?.stringValue != nil && top["next_before_seq"]?.intValue != nil)
            let mine = try await client.get("/v1/runs?before_seq=\(cursor + 1000)&plan=hi&status=succeeded&limit=500", F.aliceKey).json
            #expect(mine["total"]?.intValue == made && mine["runs"]?.arrayValue?.count == made && mine["next_before_seq"] == .null, "\(mine)")
            #expect(try await client.get("/v1/runs?before_seq=\(cursor + 1000)", F.bobKey).json["total"] == 0)
            #expect(try await client.get("/v1/runs?before_seq=1", F.aliceKey).json["runs"] == [], "nothing before the first episode")
            for bad in ["before_seq=0", "before_seq=x", "before_seq=3&offset=0"] {
                let r = try await client.get("/v1/runs?\(bad)", F.aliceKey)
                #expect(r.status == .badRequest && r.json["error"]?["code"] == "invalid_parameter", "\(bad): \(r.text)")
            }
        }
    }

    /// `GET /v1/runs?agent=&plan=` keeps an agent's goals and a plan's runs (recorded ones
    /// through the store's query), each caller's own; `GET /v1/agents?q=` searches the agents
    /// the caller may see.
    @Test(arguments: Backend.allCases) func runsFilteredByAgentAndPlanAndAgentsSearched(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        try await backend.server(stores).withClient(.live) { client in
            let id = try #require(try await Self.create(client, "filtered", ["labels": ["team": "ops"]])["id"]?.stringValue)
            _ = try await Self.create(client, "bobs", key: F.bobKey)
            let other: JSONValue = ["name": "other", "steps": [["id": "a", "call": "echo.echo", "input": ["y": 2]]]]
            let goal = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "g", "plan": Self.echoPlan]).json["id"]?.stringValue)
            let plain = try #require(try await client.post("/v1/runs", F.aliceKey, ["plan": Self.echoPlan]).json["run_id"]?.stringValue)
            let otherRun = try #require(try await client.post("/v1/runs", F.aliceKey, ["plan": other]).json["run_id"]?.stringValue)
            for run in [goal, plain, otherRun] { _ = try await client.waitForRun(run, F.aliceKey) }
            func ids(_ query: String, _ key: String = F.aliceKey) async throws -> [String] {
                let r = try await client.get("/v1/runs?\(query)", key)
                #expect(r.status == .ok, "\(query): \(r.text)")
                #expect(r.json["total"]?.intValue == r.json["runs"]?.arrayValue?.count, "\(query): one page holds them all")
                return (r.json["runs"]?.arrayValue ?? []).compactMap { $0["run_id"]?.stringValue }
            }
            #expect(try await ids("agent=\(id)") == [goal])
            #expect(try await ids("agent=filtered") == [goal], "by name")
            let byPlan = try await ids("plan=hi")
            #expect(byPlan.count == 2 && Set(byPlan) == [plain, goal], "\(byPlan)")
            #expect(try await ids("plan=hi&agent=filtered&status=succeeded") == [goal])
            #expect(try await ids("plan=other") == [otherRun])
            #expect(try await ids("plan=none").isEmpty)
            #expect(try await ids("plan=hi", F.bobKey).isEmpty, "bob sees none of alice's runs")
            #expect(try await ids("agent=filtered", F.adminKey) == [goal], "an admin filters by anyone's agent")
            #expect(try await client.get("/v1/runs?agent=bobs", F.aliceKey).status == .notFound, "another principal's agent is 404")
            #expect(try await client.get("/v1/runs?agent=nope", F.aliceKey).status == .notFound)
            #expect(try await client.get("/v1/runs?plan=", F.aliceKey).status == .badRequest)
            #expect(try await client.get("/v1/runs?agent=", F.aliceKey).status == .badRequest)

            func names(_ query: String, _ key: String) async throws -> [String] {
                let r = try await client.get("/v1/agents?\(query)", key)
                #expect(r.status == .ok && r.json["total"]?.intValue == r.json["items"]?.arrayValue?.count, "\(query): \(r.text)")
                return (r.json["items"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            }
            #expect(try await names("q=FILTER", F.aliceKey) == ["filtered"])
            #expect(try await names("q=team%3Dops", F.aliceKey) == ["filtered"])
            #expect(try await names("q=bobs", F.aliceKey).isEmpty, "alice's search never finds bob's agent")
            #expect(try await names("q=bob", F.adminKey) == ["bobs"], "an admin searches every agent")
            #expect(try await names("", F.aliceKey) == ["filtered"], "a user's list is its own principal's")
            #expect(try await client.get("/v1/agents?q=" + String(repeating: "x", count: 201), F.aliceKey).status == .badRequest)
        }
    }

    /// Paused: a new goal waits (the worker defers it); resume releases it. Stop cancels the
    /// running goal, recorded cancelled.
    @Test(arguments: Backend.allCases) func pauseHoldsGoalsAndStopCancelsTheRunningOne(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        try await backend.server(stores).withClient(.live) { client in
            let id = try #require(try await Self.create(client, "holder")["id"]?.stringValue)
            #expect(try await Self.act(client, id, .pause).status == .ok)
            let held = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "later", "plan": Self.echoPlan]).json["id"]?.stringValue)
            // The worker took it and put it back: the agent is paused.
            try await Wait.until("the worker defers the held goal") {
                try await client.get("/v1/jobs/\(held)", F.aliceKey).json["last_error"]?.stringValue?.contains("paused") == true
            }
            #expect(try await Self.goalStatus(client, id, held)["status"] == "pending")
            #expect(try await Self.act(client, id, .resume).status == .ok)
            try await Wait.until("the released goal completes") { try await Self.goalStatus(client, id, held)["status"] == "completed" }

            let sleeper = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "nap", "plan": Self.sleepPlan]).json["id"]?.stringValue)
            try await Wait.until("the goal runs") { try await Self.goalStatus(client, id, sleeper)["status"] == "running" }
            #expect(try await Self.act(client, id, .stop).status == .ok)
            try await Wait.until("stop cancels the running goal") { try await Self.goalStatus(client, id, sleeper)["status"] == "cancelled" }
            let episode = try await client.get("/v1/episodes/\(sleeper)", F.aliceKey).json["document"]
            #expect(episode?["status"] == "cancelled")
            // Stopped: a new goal is accepted but does not start.
            let queued = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "x", "plan": Self.echoPlan]).json["id"]?.stringValue)
            try await Wait.until("the worker defers it") {
                try await client.get("/v1/jobs/\(queued)", F.aliceKey).json["last_error"]?.stringValue?.contains("stopped") == true
            }
            #expect(try await Self.goalStatus(client, id, queued)["status"] == "pending")
            // Deleting keeps the episodes.
            #expect(try await Self.act(client, id, .delete).status == .ok)
            #expect(try await client.get("/v1/episodes/\(held)", F.aliceKey).status == .ok)
        }
    }

    @Test(arguments: Backend.allCases) func memoryPutRecallForget(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        try await backend.server(stores, worker: false).withClient(.live) { client in
            let id = try #require(try await Self.create(client, "rememberer", ["config": ["memory_types": ["lesson"]]])["id"]?.stringValue)
            for (text, type, tags) in [("the deploy failed on the database migration", "observation", ["deploy"]),
                                       ("database tuning: database indexes and database vacuum", "lesson", ["db"]),
                                       ("lunch was good", "context", [])] {
                let r = try await client.post("/v1/agents/\(id)/memory", F.aliceKey,
                                              ["text": .string(text), "memory_type": .string(type), "tags": .array(tags.map(JSONValue.string))])
                #expect(r.status == .created && r.json["source"] == .null)
            }
            let hits = try await client.get("/v1/agents/\(id)/recall?q=database", F.aliceKey).json["items"]?.arrayValue ?? []
            #expect(hits.map { $0["memory_type"] } == ["lesson", "observation"])
            #expect((hits.first?["score"]?.doubleValue ?? 0) > (hits.last?["score"]?.doubleValue ?? 0))
            // Pages: next_offset until the last page, then null.
            let first = try await client.get("/v1/agents/\(id)/recall?q=database&limit=1", F.aliceKey).json
            #expect(first["items"]?.arrayValue?.map { $0["memory_type"] } == ["lesson"] && first["next_offset"] == 1, "\(first)")
            let last = try await client.get("/v1/agents/\(id)/recall?q=database&limit=1&offset=1", F.aliceKey).json
            #expect(last["items"]?.arrayValue?.map { $0["memory_type"] } == ["observation"] && last["next_offset"] == .null, "\(last)")
            #expect(try await client.get("/v1/agents/\(id)/recall?tag=deploy", F.aliceKey).json["items"]?.arrayValue?.count == 1)
            #expect(try await client.get("/v1/agents/\(id)/recall?type=context", F.aliceKey).json["items"]?[0]?["text"] == "lunch was good")
            let memId = try #require(hits.first?["id"]?.stringValue)
            #expect(try await client.execute(uri: "/v1/agents/\(id)/memory/\(memId)", method: .delete, headers: Req.bearer(F.aliceKey)).status == .noContent)
            #expect(try await client.execute(uri: "/v1/agents/\(id)/memory/\(memId)", method: .delete, headers: Req.bearer(F.aliceKey)).status == .notFound)
            #expect(try await client.get("/v1/agents/\(id)/recall?q=database", F.aliceKey).json["items"]?.arrayValue?.count == 1)
            #expect(try await client.get("/v1/agents/\(id)/recall?q=database", F.bobKey).status == .notFound)
        }
    }

    /// A goal's plan remembers through memory.put and recalls through memory.recall (tools of
    /// the built-in driver, under the policy like any tool); the item's source is the goal's run
    /// and step, and provenance links that run to its episode and its tool calls.
    @Test func goalsRememberThroughMemoryToolsAndProvenanceLinksThem() async throws {
        try await F.server().withClient(.live) { client in
            let created = try await client.post("/v1/agents", F.adminKey, ["name": "keeper", "principal": "admin"])
            let id = try #require(created.json["id"]?.stringValue)
            let plan: JSONValue = ["name": "learn", "steps": [
                ["id": "note", "call": "memory.put", "input": ["text": "the friday deploy failed on the ledger migration", "tags": ["deploy"]]],
                ["id": "look", "call": "memory.recall", "input": ["query": "ledger deploy"], "depends_on": "note"],
            ], "output": ["found": "${steps.look.output.items}"]]
            let goal = try #require(try await client.post("/v1/agents/\(id)/goals", F.adminKey, ["goal": "learn", "plan": plan]).json["id"]?.stringValue)
            try await Wait.until("the goal completes") {
                let s = try await client.get("/v1/agents/\(id)/runs/\(goal)", F.adminKey).json["status"]
                return s == "completed" || s == "failed"
            }
            #expect(try await client.get("/v1/agents/\(id)/runs/\(goal)", F.adminKey).json["status"] == "completed")
            let episode = try await client.get("/v1/episodes/\(goal)", F.adminKey).json["document"]
            #expect(episode?["output"]?["found"]?[0]?["text"] == "the friday deploy failed on the ledger migration")
            // Over REST the item carries its source and a link to its provenance.
            let item = try #require(try await client.get("/v1/agents/\(id)/recall?q=ledger", F.adminKey).json["items"]?[0])
            #expect(item["source"]?["run_id"] == .string(goal) && item["source"]?["step_id"] == "note")
            let link = try #require(item["source"]?["provenance"]?.stringValue)
            #expect(link == "/v1/agents/\(id)/provenance/\(goal)")
            let prov = try await client.get(link, F.adminKey).json
            #expect(prov["goal"] == "learn" && prov["status"] == "completed" && prov["principal"] == "admin")
            #expect(prov["episode"]?["hash"]?.stringValue?.count == 64 && prov["episode"]?["intact"] == true)
            #expect(prov["calls"]?.arrayValue?.map { $0["tool"] } == ["memory.put", "memory.recall"])
            #expect(prov["calls"]?[0]?["decision"]?["rule"] == "admins-everything")
            let list = try await client.get("/v1/agents/\(id)/provenance", F.adminKey).json
            #expect(list["items"]?[0]?["episode"]?["hash"] == prov["episode"]?["hash"])
            // Outside an agent's goal the memory tools refuse.
            let direct = try await client.post("/tools/memory.recall", F.adminKey, ["query": "x"])
            #expect(direct.status != .ok)
        }
    }

    /// A goal given as text: the rule planner picks the plan by intent (and says why); a goal
    /// no intent matches fails without running.
    @Test func theRulePlannerMapsAGoalToAPlan() async throws {
        try await F.server().withClient(.live) { client in
            let planner: JSONValue = ["kind": "rules", "rules": [["intent": "greet", "words": ["hello"], "plan": Self.echoPlan]]]
            let id = try #require(try await Self.create(client, "greeter", ["config": ["planner": planner]])["id"]?.stringValue)
            let planned = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "Say HELLO to the team"]).json["id"]?.stringValue)
            let unmatched = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "deploy the app"]).json["id"]?.stringValue)
            try await Wait.until("both goals end") {
                let a = try await Self.goalStatus(client, id, planned)["status"], b = try await Self.goalStatus(client, id, unmatched)["status"]
                return [a, b].allSatisfy { $0 != "pending" && $0 != "running" }
            }
            let done = try await Self.goalStatus(client, id, planned)
            #expect(done["status"] == "completed" && done["planned_by"]?.stringValue?.contains("intent 'greet'") == true, "\(done)")
            let failed = try await Self.goalStatus(client, id, unmatched)
            #expect(failed["status"] == "failed" && failed["last_error"]?.stringValue?.contains("no intent matches") == true, "\(failed)")
            #expect(try await client.get("/v1/episodes/\(unmatched)", F.aliceKey).status == .notFound, "nothing ran")
            // An agent without plan or planner cannot take a goal as text.
            let bare = try #require(try await Self.create(client, "bare")["id"]?.stringValue)
            #expect(try await client.post("/v1/agents/\(bare)/goals", F.aliceKey, ["goal": "hello"]).status == .unprocessableContent)
        }
    }

    /// The chat-completions planner against a small OpenAI-compatible server on a real port:
    /// while it answers 503 the goal stays pending and is retried; its plan runs once valid; a
    /// plan with a tool the agent may not use fails the goal with the reason, and never runs.
    @Test func theChatCompletionsPlannerIsCheckedBeforeAnythingRuns() async throws {
        let llm = try await FakeChatCompletions.start()
        defer { llm.stop() }
        try await F.server().withClient(.live) { client in
            let planner: JSONValue = ["kind": "openai", "endpoint": .string("http://127.0.0.1:\(llm.port)/v1"), "model": "test-model"]
            let id = try #require(try await Self.create(client, "thinker", ["tools": ["echo.echo"], "config": ["planner": planner]])["id"]?.stringValue)
            llm.answer(.unavailable)
            let goal = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "echo one"]).json["id"]?.stringValue)
            try await Wait.until("the planner was tried") { llm.requests > 0 }
            try await Wait.until("the attempt is recorded") {
                try await client.get("/v1/jobs/\(goal)", F.aliceKey).json["last_error"]?.stringValue?.contains("unavailable") == true
            }
            // Not failed: waiting for its retry, or (on a slow machine) already in it.
            let retrying = try await Self.goalStatus(client, id, goal)["status"]?.stringValue
            #expect(retrying == "pending" || retrying == "running", "status \(retrying ?? "none")")
            llm.answer(.plan(["name": "llm", "steps": [["id": "a", "call": "echo.echo", "input": ["from": "llm"]]]]))
            try await Wait.until("the retried goal completes") { try await Self.goalStatus(client, id, goal)["status"] == "completed" }
            #expect(llm.lastModel == "test-model" && llm.lastPrompt.contains("echo.echo"))

            llm.answer(.plan(["name": "bad", "steps": [["id": "a", "call": "echo.version", "input": [:]]]]))
            let bad = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey, ["goal": "version please"]).json["id"]?.stringValue)
            try await Wait.until("the goal fails") { try await Self.goalStatus(client, id, bad)["status"] == "failed" }
            #expect(try await Self.goalStatus(client, id, bad)["last_error"]?.stringValue?.contains("may not use echo.version") == true)
            #expect(try await client.get("/v1/episodes/\(bad)", F.aliceKey).status == .notFound, "nothing ran")
        }
    }

    /// A goal still running when its deadline passes is cancelled, and recorded cancelled.
    @Test func aRunningGoalIsCancelledAtItsDeadline() async throws {
        try await F.server().withClient(.live) { client in
            let id = try #require(try await Self.create(client, "timed")["id"]?.stringValue)
            // 8 s: time enough for the worker to start it, well before its 30 s sleep ends.
            let deadline = Timestamps.format(nanosSinceEpoch: Timestamps.wallNanos() + 8_000_000_000)
            let goal = try #require(try await client.post("/v1/agents/\(id)/goals", F.aliceKey,
                                                          ["goal": "nap", "plan": Self.sleepPlan, "deadline": .string(deadline)]).json["id"]?.stringValue)
            try await Wait.until("the goal runs") { try await Self.goalStatus(client, id, goal)["status"] != "pending" }
            #expect(try await Self.goalStatus(client, id, goal)["status"] == "running", "it started before its deadline")
            try await Wait.until("the goal is cancelled at its deadline") { try await Self.goalStatus(client, id, goal)["status"] == "cancelled" }
            #expect(try await client.get("/v1/episodes/\(goal)", F.aliceKey).json["document"]?["status"] == "cancelled")
        }
    }
}

/// A minimal OpenAI-compatible `POST /v1/chat/completions` on a real loopback port, answering
/// what the test sets.
final class FakeChatCompletions: Sendable {
    enum Answer: Sendable { case unavailable, plan(JSONValue) }
    private struct State { var answer: Answer = .unavailable; var requests = 0; var model = ""; var prompt = "" }
    private let state = Mutex(State())
    private let task: Task<Void, any Error>
    let port: Int

    private init(port: Int, task: Task<Void, any Error>) { (self.port, self.task) = (port, task) }

    func answer(_ a: Answer) { state.withLock { $0.answer = a } }
    var requests: Int { state.withLock { $0.requests } }
    var lastModel: String { state.withLock { $0.model } }
    var lastPrompt: String { state.withLock { $0.prompt } }
    func stop() { task.cancel() }

    static func start() async throws -> FakeChatCompletions {
        let box = Mutex<FakeChatCompletions?>(nil)
        let portBox = Mutex(0)
        let router = Router()
        router.post("/v1/chat/completions") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let json = (try? JSONValue.parse(Array(buffer: body))) ?? .null
            guard let me = box.withLock({ $0 }) else { return Response(status: .serviceUnavailable) }
            let answer = me.state.withLock { s -> Answer in
                s.requests += 1
                s.model = json["model"]?.stringValue ?? ""
                s.prompt = json["messages"]?[0]?["content"]?.stringValue ?? ""
                return s.answer
            }
            switch answer {
            case .unavailable: return Response(status: .serviceUnavailable)
            case .plan(let plan):
                let reply: JSONValue = ["id": "x", "object": "chat.completion", "model": "test-model",
                                        "choices": [["index": 0, "message": ["role": "assistant", "content": .string("```json\n" + plan.serialized() + "\n```")],
                                                     "finish_reason": "stop"]]]
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: reply.serializedBytes())))
            }
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in portBox.withLock { $0 = channel.localAddress?.port ?? 0 } })
        let task = Task { try await app.runService() }
        try await Wait.until("the fake LLM listens") { portBox.withLock { $0 } != 0 }
        let fake = FakeChatCompletions(port: portBox.withLock { $0 }, task: task)
        box.withLock { $0 = fake }
        return fake
    }
}
