import Foundation
import Host
import HostServer
import Hummingbird
import HummingbirdTesting
import JSON
import PostgresTestSupport
import Synchronization
import TestSupport
import Testing

/// The message bus over a real socket: topics with schemas, publish, long-poll receive, ack,
/// nack, the dead-letter queue, agents' inboxes, server-sent events, triggers, policy, metrics,
/// on the SQLite and the PostgreSQL store.
@Suite struct BusRouteTests {
    typealias F = ServerFixtures

    /// Users may publish to and subscribe to `orders.*`, consume any subscription, message the
    /// agent `restocker`; admins anything.
    static let policy = """
    {
      "roles": { "admin": {}, "user": {}, "service": {} },
      "principals": { "admin": "admin", "alice": "user", "bob": "user" },
      "rules": [
        { "id": "admins-everything", "effect": "allow", "roles": ["admin"], "tools": ["*"] },
        { "id": "no-fail-for-users", "effect": "deny", "roles": ["user"], "tools": ["echo.fail"], "reason": "echo.fail is for admins" },
        { "id": "users-echo", "effect": "allow", "roles": ["user"], "tools": ["echo.*"] },
        { "id": "orders", "effect": "allow", "roles": ["user"], "tools": ["bus.publish", "bus.subscribe"], "conditions": { "topics": ["orders.*"] } },
        { "id": "consume", "effect": "allow", "roles": ["user"], "tools": ["bus.receive", "bus.ack", "bus.nack"], "conditions": { "subscriptions": ["*"] } },
        { "id": "message-restocker", "effect": "allow", "roles": ["user"], "tools": ["bus.send"], "conditions": { "agents": ["restocker"] } }
      ]
    }
    """

    enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
        func server(_ stores: PostgresTestDatabase.Stores, worker: Bool = true) async throws -> NovaServer {
            let store: (any HostStore)? = self == .postgres ? try await stores.connect(try await PostgresTestDatabase.fresh()) : nil
            return try await F.server(config: { if !worker { $0.worker = nil } }, policy: BusRouteTests.policy, store: store)
        }
    }

    static let orderSchema: JSONValue = ["type": "object", "required": ["sku"],
                                         "properties": ["sku": ["type": "string"], "qty": ["type": "integer", "minimum": 1]]]

    static func topic(_ client: any TestClientProtocol, _ name: String, schema: JSONValue? = nil) async throws {
        var body: [String: JSONValue] = ["name": .string(name)]
        if let schema { body["schema"] = schema }
        let r = try await client.post("/v1/topics", F.adminKey, .object(body))
        #expect(r.status == .created, "\(r.json)")
    }

    static func subscribe(_ client: any TestClientProtocol, _ id: String, _ topic: String, _ extra: [String: JSONValue] = [:]) async throws {
        var body: [String: JSONValue] = ["id": .string(id), "topic": .string(topic)]
        for (k, v) in extra { body[k] = v }
        let r = try await client.post("/v1/subscriptions", F.aliceKey, .object(body))
        #expect(r.status == .created, "\(r.json)")
    }

    static func receive(_ client: any TestClientProtocol, _ sub: String, _ query: String = "") async throws -> [JSONValue] {
        let r = try await client.get("/v1/subscriptions/\(sub)/messages?\(query)", F.aliceKey)
        #expect(r.status == .ok, "\(r.json)")
        return r.json["messages"]?.arrayValue ?? []
    }

    /// Publish, receive, ack and nack through HTTP; the sender is the caller; a schema refuses
    /// what does not match, naming the field; bad input gets the documented status.
    @Test(arguments: Backend.allCases) func publishReceiveAckNack(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        defer { withExtendedLifetime(stores) {} }
        try await backend.server(stores, worker: false).withClient(.live) { client in
            try await Self.topic(client, "orders.created", schema: Self.orderSchema)
            try await Self.subscribe(client, "restock", "orders.created", ["max_deliveries": 2])
            let pub = try await client.post("/v1/topics/orders.created/messages", F.aliceKey,
                                            ["payload": ["sku": "A-1", "qty": 3], "headers": ["trace": "t1"], "ordering_key": "A-1", "sender": "mallory"])
            #expect(pub.status == .unprocessableContent && pub.json["error"]?["field"] == "sender", "the sender is never taken from the body")
            let ok = try await client.post("/v1/topics/orders.created/messages", F.aliceKey, ["payload": ["sku": "A-1", "qty": 3], "headers": ["trace": "t1"]])
            #expect(ok.status == .created && ok.json["sender"] == "alice", "\(ok.json)")

            let bad = try await client.post("/v1/topics/orders.created/messages", F.aliceKey, ["payload": ["sku": "A-2", "qty": 0]])
            #expect(bad.status == .unprocessableContent && bad.json["error"]?["field"] == "payload.qty", "\(bad.json)")
            let missing = try await client.post("/v1/topics/orders.created/messages", F.aliceKey, ["payload": ["qty": 1]])
            #expect(missing.status == .unprocessableContent, "\(missing.json)")
            #expect(try await client.post("/v1/topics/orders.nope/messages", F.aliceKey, ["payload": 1]).status == .notFound)
            let malformed = try await client.execute(uri: "/v1/topics/orders.created/messages", method: .post, headers: Req.jsonHeaders(F.aliceKey),
                                                     body: ByteBuffer(string: "{\"payload\": "))
            #expect(malformed.status == .badRequest)
            let huge = String(repeating: "x", count: 70 * 1024)
            #expect(try await client.post("/v1/topics/orders.created/messages", F.aliceKey, ["payload": ["sku": .string(huge)]]).status == .contentTooLarge)

            let got = try await Self.receive(client, "restock", "wait=5s&max=10")
            try #require(got.count == 1)
            #expect(got[0]["message"]?["payload"]?["sku"] == "A-1" && got[0]["message"]?["headers"]?["trace"] == "t1")
            let receipt = try #require(got[0]["receipt"]?.stringValue)
            #expect(try await client.post("/v1/subscriptions/restock/ack", F.aliceKey, ["receipt": .string(receipt)]).status == .ok)
            let again = try await client.post("/v1/subscriptions/restock/ack", F.aliceKey, ["receipt": .string(receipt)])
            #expect(again.status == .conflict && again.errorCode == "not_leased", "\(again.json)")
            #expect(try await client.post("/v1/subscriptions/restock/ack", F.aliceKey, ["receipt": "1.forged"]).status == .conflict)
            #expect(try await client.post("/v1/subscriptions/restock/ack", F.aliceKey, ["receipts": []]).status == .unprocessableContent)
            #expect(try await client.get("/v1/subscriptions/nope/messages", F.aliceKey).status == .notFound)
            #expect(try await client.get("/v1/subscriptions/restock/messages?wait=2h", F.aliceKey).status == .badRequest)

            // Nack twice: the second is the last delivery, so the message is dead-lettered.
            _ = try await client.post("/v1/topics/orders.created/messages", F.aliceKey, ["payload": ["sku": "P-1"]])
            for expected in ["redelivered", "dead_lettered"] {
                let m = try await Self.receive(client, "restock", "wait=5s")
                try #require(m.count == 1)
                let r = try await client.post("/v1/subscriptions/restock/nack", F.aliceKey, ["receipt": m[0]["receipt"] ?? .null, "error": "cannot restock"])
                #expect(r.json["outcome"] == .string(expected), "\(r.json)")
            }
            let dlq = try await client.get("/v1/subscriptions/restock/dlq", F.aliceKey).json
            #expect(dlq["total"] == 1 && dlq["items"]?[0]?["last_error"] == "cannot restock" && dlq["items"]?[0]?["delivery_count"] == 2, "\(dlq)")
            let deadId = try #require(dlq["items"]?[0]?["message"]?["id"]?.stringValue)
            #expect(try await client.get("/v1/subscriptions/restock/dlq/\(deadId)", F.aliceKey).json["message"]?["payload"]?["sku"] == "P-1")
            #expect(try await client.get("/v1/subscriptions/restock/dlq/nope", F.aliceKey).status == .notFound)
            #expect(try await client.post("/v1/subscriptions/restock/dlq/replay", F.aliceKey, ["message_ids": [.string(deadId)]]).json["replayed"] == 1)
            let replayed = try await Self.receive(client, "restock", "wait=5s")
            #expect(replayed.first?["message"]?["id"] == .string(deadId) && replayed.first?["delivery_count"] == 1)
            #expect(try await client.get("/v1/subscriptions/restock", F.aliceKey).json["stats"]?["leased"] == 1)

            let metrics = try await client.get("/metrics", F.adminKey).text
            #expect(metrics.contains("nova_bus_published_total 2") && metrics.contains("nova_bus_subscription_lag{subscription=\"restock\"} 1"), "\(metrics)")
        }
    }

    /// A principal without the right is denied (403 naming the rule) and the denial is
    /// recorded as a run of the tool, as any denied call is.
    @Test func aDeniedPublishIsRecorded() async throws {
        let stores = PostgresTestDatabase.Stores()
        defer { withExtendedLifetime(stores) {} }
        try await Backend.sqlite.server(stores, worker: false).withClient(.live) { client in
            try await Self.topic(client, "payroll")
            let r = try await client.post("/v1/topics/payroll/messages", F.aliceKey, ["payload": ["raise": 100]])
            #expect(r.status == .forbidden && r.errorCode == "denied" && r.json["error"]?["rule"] == "default-deny", "\(r.json)")
            let run = try #require(r.json["error"]?["run_id"]?.stringValue)
            let episode = try await client.get("/v1/episodes/\(run)", F.adminKey).json["document"]
            #expect(episode?["status"] == "denied" && episode?["steps"]?[0]?["call"] == "bus.publish", "\(episode ?? .null)")
            #expect(try await client.post("/v1/subscriptions", F.aliceKey, ["id": "spy", "topic": "payroll"]).status == .forbidden)
            #expect(try await client.post("/v1/topics", F.aliceKey, ["name": "mine"]).status == .forbidden)
            #expect(try await client.get("/metrics", F.adminKey).text.contains("nova_bus_denied_total 2"))
        }
    }

    /// A long poll returns with the message published while it waits; an SSE client sees a
    /// publish without polling.
    @Test(arguments: Backend.allCases) func waitingReceiversAreWoken(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        defer { withExtendedLifetime(stores) {} }
        let server = try await backend.server(stores, worker: false)
        let (p, serving) = try await server.listening()
        defer { serving.cancel() }
        _ = try await HTTP1.request(port: p, "POST", "/v1/topics", F.adminKey, ["name": "orders.live"])
        _ = try await HTTP1.request(port: p, "POST", "/v1/subscriptions", F.aliceKey, ["id": "poll", "topic": "orders.live"])
        _ = try await HTTP1.request(port: p, "POST", "/v1/subscriptions", F.aliceKey, ["id": "sse", "topic": "orders.live"])

        async let polled = HTTP1.request(port: p, "GET", "/v1/subscriptions/poll/messages?wait=60s", F.aliceKey)
        let stream = try SSEStream(port: p, path: "/v1/subscriptions/sse/stream", token: F.aliceKey)
        defer { stream.close() }
        try await Task.sleep(for: .milliseconds(200))
        _ = try await HTTP1.request(port: p, "POST", "/v1/topics/orders.live/messages", F.aliceKey, ["payload": "hello"])
        let got = try await polled
        #expect(got["messages"]?[0]?["message"]?["payload"] == "hello", "\(got)")
        let events = try await stream.events(1)
        #expect(events.first?.event == "message" && events.first?.data["message"]?["payload"] == "hello")
        let receipt = try #require(events.first?.data["receipt"]?.stringValue)
        #expect(try await HTTP1.request(port: p, "POST", "/v1/subscriptions/sse/ack", F.aliceKey, ["receipt": .string(receipt)])["acked"] == [true])
    }

    /// A message to an agent lands in its inbox, sender the caller; the policy decides which
    /// agents a caller may message.
    @Test func agentsHaveInboxes() async throws {
        let stores = PostgresTestDatabase.Stores()
        defer { withExtendedLifetime(stores) {} }
        try await Backend.sqlite.server(stores, worker: false).withClient(.live) { client in
            let restocker = try #require(try await client.post("/v1/agents", F.aliceKey, ["name": "restocker"]).json["id"]?.stringValue)
            _ = try await client.post("/v1/agents", F.aliceKey, ["name": "auditor"])
            let sent = try await client.post("/v1/agents/restocker/messages", F.aliceKey, ["payload": ["sku": "A-1"], "encoding": "json"])
            #expect(sent.status == .created && sent.json["inbox"] == .string("_inbox.\(restocker)"), "\(sent.json)")
            #expect(try await client.post("/v1/agents/auditor/messages", F.aliceKey, ["payload": "hi"]).status == .forbidden)
            #expect(try await client.post("/v1/agents/nobody/messages", F.aliceKey, ["payload": "hi"]).status == .notFound)
            #expect(try await client.post("/v1/agents/restocker/messages", F.aliceKey, ["payload": 5, "encoding": "text"]).status == .unprocessableContent)
            let inbox = try await Self.receive(client, "_inbox.\(restocker)", "wait=5s")
            #expect(inbox.first?["message"]?["sender"] == "alice" && inbox.first?["message"]?["payload"]?["sku"] == "A-1")
        }
    }

    /// A trigger starts a goal per message with the message as input; the message is acked
    /// when the goal completes and nacked (then dead-lettered) when it fails; the goal's
    /// provenance names the message.
    @Test(arguments: Backend.allCases) func triggersStartGoals(_ backend: Backend) async throws {
        let stores = PostgresTestDatabase.Stores()
        defer { withExtendedLifetime(stores) {} }
        try await backend.server(stores).withClient(.live) { client in
            let plan: JSONValue = ["name": "restock", "inputs": ["message": ["type": "object"]],
                                   "steps": [["id": "a", "call": "echo.echo", "input": ["sku": "${inputs.message.payload.sku}"]]]]
            let failing: JSONValue = ["name": "fails", "inputs": ["message": ["type": "object"]], "steps": [["id": "a", "call": "echo.fail", "input": [:]]]]
            let good = try #require(try await client.post("/v1/agents", F.aliceKey, ["name": "restocker", "plan": plan]).json["id"]?.stringValue)
            _ = try await client.post("/v1/agents", F.aliceKey, ["name": "broken", "plan": failing])
            try await Self.topic(client, "orders.created")
            try await Self.subscribe(client, "auto-restock", "orders.created", ["trigger": ["agent": "restocker", "goal": "restock the order"]])
            try await Self.subscribe(client, "auto-broken", "orders.created", ["trigger": ["agent": "broken"], "max_deliveries": 2])
            let bad = try await client.post("/v1/subscriptions", F.aliceKey, ["id": "t3", "topic": "orders.created", "trigger": ["agent": "ghost"]])
            #expect(bad.status == .notFound, "\(bad.json)")
            let msg = try #require(try await client.post("/v1/topics/orders.created/messages", F.aliceKey, ["payload": ["sku": "Z-9"]]).json["id"]?.stringValue)

            try await Wait.until("the goal completes and acks the message") {
                try await client.get("/v1/subscriptions/auto-restock", F.aliceKey).json["stats"]?["lag"] == 0
            }
            let goals = try await client.get("/v1/agents/\(good)/runs", F.aliceKey).json["items"]?.arrayValue ?? []
            #expect(goals.count == 1 && goals.first?["status"] == "completed" && goals.first?["trigger"]?["message_id"] == .string(msg), "\(goals)")
            let goalId = try #require(goals.first?["id"]?.stringValue)
            let prov = try await client.get("/v1/agents/\(good)/provenance/\(goalId)", F.aliceKey).json
            #expect(prov["trigger"]?["message_id"] == .string(msg) && prov["trigger"]?["subscription"] == "auto-restock", "\(prov)")
            let out = try await client.get("/v1/episodes/\(goalId)", F.aliceKey).json["document"]?["steps"]?[0]?["output"]
            #expect(out?["sku"] == "Z-9", "\(out ?? .null)")

            // The broken agent's goals fail: nacked, redelivered once, then dead-lettered.
            try await Wait.until("the message is dead-lettered after two failed goals") {
                try await client.get("/v1/subscriptions/auto-broken/dlq", F.aliceKey).json["total"] == 1
            }
            let dead = try await client.get("/v1/subscriptions/auto-broken/dlq", F.aliceKey).json["items"]?[0]
            #expect(dead?["last_error"]?.stringValue?.contains("ended denied") == true, "\(dead ?? .null)")
        }
    }
}
