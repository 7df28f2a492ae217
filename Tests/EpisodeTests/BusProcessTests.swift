import Foundation
import Host
import JSON
import PostgresStore
import PostgresTestSupport
import Synchronization
import TestSupport
import Testing

/// Consumers in other processes (`nova-host bus receive`) on one store: a consumer killed
/// between receive and ack, and two consumers of one group sharing a stream, on SQLite (one
/// data directory) and PostgreSQL.
@Suite(.serialized) struct BusProcessTests {
    static let policy = """
    { "roles": { "user": {} }, "principals": { "local": "user", "worker": "user" },
      "rules": [ { "id": "bus", "effect": "allow", "roles": ["user"], "tools": ["bus.*"] } ] }
    """

    enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    /// A store and the arguments that make `nova-host` use the same one.
    struct Setup {
        let store: any MessageBusStore
        let args: [String]
    }

    static func setup(_ backend: Backend, _ stores: PostgresStoreTests.Stores) async throws -> Setup {
        let data = EpisodeFixtures.tempDir("bus-proc")
        let policyPath = data + "/policy.json"
        _ = FileManager.default.createFile(atPath: policyPath, contents: Data(policy.utf8))
        var args = ["--data", data, "--policy", policyPath, "--drivers", data]
        switch backend {
        case .sqlite:
            _ = try await EpisodeLog.open(dataDirectory: data)
            return Setup(store: try SQLiteStore(path: data + "/" + SQLiteStore.defaultFileName), args: args)
        case .postgres:
            let url = try await PostgresStoreTests.freshDatabase()
            args += ["--store", url]
            return Setup(store: try await stores.connect(url), args: args)
        }
    }

    /// A `nova-host` process whose standard output goes to a file.
    final class Consumer: @unchecked Sendable {
        let process = Process()
        let outPath: String

        init(_ args: [String]) throws {
            let dir = EpisodeFixtures.tempDir("bus-consumer")
            outPath = dir + "/out.jsonl"
            errPath = dir + "/err.txt"
            _ = FileManager.default.createFile(atPath: outPath, contents: nil)
            _ = FileManager.default.createFile(atPath: errPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: TestPaths.novaHost)
            process.arguments = args
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
            try process.run()
        }

        let errPath: String

        /// Whether it has opened the store and started receiving (it says so on stderr).
        var receiving: Bool { ((try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "").contains("receiving from") }

        /// The deliveries printed so far.
        var deliveries: [JSONValue] {
            let text = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        }

        func kill() {
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// `policy check` explains bus decisions from the tools' declared inputs; the CLI is
    /// decided by the policy like REST (exit 3 when denied) and says what is wrong with input.
    @Test func theCLIAndPolicyCheckUseTheBusConditions() async throws {
        let data = EpisodeFixtures.tempDir("bus-cli")
        let policyPath = data + "/policy.json"
        _ = FileManager.default.createFile(atPath: policyPath, contents: Data("""
            { "roles": { "user": {} }, "principals": { "alice": "user" },
              "rules": [ { "id": "orders", "effect": "allow", "roles": ["user"], "tools": ["bus.publish", "bus.subscribe", "bus.receive", "bus.ack"],
                           "conditions": { "topics": ["orders.*"] } } ] }
            """.utf8))
        let args = ["--data", data, "--policy", policyPath, "--drivers", data]
        func nova(_ a: [String]) async throws -> ProcessResult { try await ProcessRunner.run(TestPaths.novaHost, a + args) }
        let denied = try await nova(["policy", "check", "--principal", "alice", "--tool", "bus.publish", "--input", #"{"topic": "payroll"}"#])
        #expect(denied.status == 3 && denied.stdout.contains("topic 'payroll' is not in topics"), "\(denied)")
        #expect(try await nova(["policy", "check", "--principal", "alice", "--tool", "bus.publish", "--input", #"{"topic": "orders.new"}"#]).status == 0)

        #expect(try await nova(["bus", "topics", "create", "orders.new"]).status == 0)
        #expect(try await nova(["bus", "topics", "create", "payroll"]).status == 0)
        let published = try await nova(["bus", "publish", "orders.new", #"{"sku": "A"}"#, "--principal", "alice", "--json"])
        let sent = try JSONValue.parse(published.stdout)
        #expect(published.status == 0 && sent["sender"] == "alice", "\(published)")
        let refused = try await nova(["bus", "publish", "payroll", "{}", "--principal", "alice"])
        #expect(refused.status == 3 && refused.stderr.contains("denied by rule default-deny"), "\(refused)")
        let notJSON = try await nova(["bus", "publish", "orders.new", "{nope", "--principal", "alice"])
        #expect(notJSON.status == 2 && notJSON.stderr.contains("not JSON"), "\(notJSON)")
        let unknown = try await nova(["bus", "publish", "orders.gone", "1", "--principal", "alice"])
        #expect(unknown.status == 1 && unknown.stderr.contains("no topic 'orders.gone'"), "\(unknown)")
        let bad = try await nova(["bus", "receive", "nope", "--principal", "alice"])
        #expect(bad.status == 3, "receive is decided by bus.receive, which no rule allows without topics input: \(bad)")
    }

    /// A consumer killed after receiving and before acking: the message comes back after the
    /// visibility timeout, counted as a second delivery, and is processed once more.
    @Test(arguments: Backend.allCases) func aKilledConsumersMessageIsRedelivered(_ backend: Backend) async throws {
        let stores = PostgresStoreTests.Stores()
        defer { withExtendedLifetime(stores) {} }
        let s = try await Self.setup(backend, stores)
        _ = try await s.store.createTopic(Topic(name: "jobs", createdBy: "test"))
        _ = try await s.store.createSubscription(Subscription(id: "workers", topic: "jobs", createdBy: "test"), start: .now)
        let sent = try await s.store.publish([BusMessage(topic: "jobs", sender: "test", payload: ["n": 1])])

        let doomed = try Consumer(["bus", "receive", "workers", "--follow", "--visibility-timeout-ms", "1000", "--consumer", "doomed"] + s.args)
        try await Wait.until("the first consumer receives") { !doomed.deliveries.isEmpty }
        doomed.kill()
        #expect(doomed.deliveries.map { $0["message"]?["id"] } == [.string(sent[0].id)])
        #expect(try await s.store.subscriptionStats("workers").leased == 1)

        let r = try await ProcessRunner.run(TestPaths.novaHost, ["bus", "receive", "workers", "--wait-ms", "30000", "--ack", "--consumer", "second"] + s.args)
        let line = try JSONValue.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(r.status == 0 && line["message"]?["id"] == .string(sent[0].id) && line["delivery_count"] == 2, "\(r)")
        let stats = try await s.store.subscriptionStats("workers")
        #expect(stats.ready == 0 && stats.leased == 0 && stats.dead == 0)
    }

    /// Two consumers of one subscription in two processes share 1,000 messages: none is lost,
    /// and none is delivered twice (no lease expires here, so a second delivery would be a bug).
    @Test(arguments: Backend.allCases) func twoProcessesShareAStream(_ backend: Backend) async throws {
        let stores = PostgresStoreTests.Stores()
        defer { withExtendedLifetime(stores) {} }
        let s = try await Self.setup(backend, stores)
        _ = try await s.store.createTopic(Topic(name: "stream", createdBy: "test"))
        _ = try await s.store.createSubscription(Subscription(id: "group", topic: "stream", createdBy: "test"), start: .now)
        let consumers = try (0..<2).map { i in
            try Consumer(["bus", "receive", "group", "--follow", "--ack", "--max", "20", "--consumer", "c\(i)"] + s.args)
        }
        defer { for c in consumers { c.kill() } }
        // Both ready before the stream starts, so that neither drains it alone while the other starts.
        try await Wait.until("both consumers are receiving") { consumers.allSatisfy(\.receiving) }
        var ids: [String] = []
        for batch in 0..<20 {
            let sent = try await s.store.publish((0..<50).map { i in
                BusMessage(topic: "stream", sender: "test", payload: .int(batch * 50 + i), orderingKey: i % 5 == 0 ? "k\(i % 3)" : nil)
            })
            ids += sent.map(\.id)
        }
        try await Wait.until("both consumers together have every message") {
            Set(consumers.flatMap { $0.deliveries }.compactMap { $0["message"]?["id"]?.stringValue }).count == 1_000
        }
        try await Wait.until("every delivery is acked") { try await s.store.subscriptionStats("group").leased == 0 }
        let all = consumers.flatMap { $0.deliveries }
        let received = all.compactMap { $0["message"]?["id"]?.stringValue }
        #expect(Set(received) == Set(ids))
        #expect(received.count == 1_000, "deliveries: \(received.count) for 1000 messages (duplicates: \(received.count - Set(received).count))")
        #expect(all.allSatisfy { $0["delivery_count"] == 1 })
        #expect(consumers.allSatisfy { !$0.deliveries.isEmpty }, "each consumer took part: \(consumers.map { $0.deliveries.count })")
    }
}
