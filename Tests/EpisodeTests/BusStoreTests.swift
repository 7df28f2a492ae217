import Foundation
import Synchronization
import Host
import JSON
import PostgresStore
import TestSupport
import Testing

/// The contract of `MessageBusStore`, run on SQLite and PostgreSQL.
enum BusStoreConformance {
    typealias Database = @Sendable () async throws -> any MessageBusStore

    static func topic(_ s: any MessageBusStore, _ name: String, maxCount: Int? = nil) async throws {
        _ = try await s.createTopic(Topic(name: name, maxCount: maxCount, createdBy: "test"))
    }

    static func publish(_ s: any MessageBusStore, _ topic: String, _ payloads: [JSONValue], key: String? = nil) async throws -> [BusMessage] {
        try await s.publish(payloads.map { BusMessage(topic: topic, sender: "alice", payload: $0, orderingKey: key) })
    }

    /// Creating is idempotent for identical settings and refused for different ones; a
    /// subscription needs its topic; `now` skips what is retained, `earliest` gets it.
    static func topicsAndSubscriptions(_ connect: Database) async throws {
        let s = try await connect()
        #expect(try await s.createTopic(Topic(name: "orders", createdBy: "a")).created)
        #expect(try await s.createTopic(Topic(name: "orders", createdBy: "b")).created == false)
        await #expect(throws: BusError.exists("topic 'orders' exists with other settings")) {
            _ = try await s.createTopic(Topic(name: "orders", maxCount: 5, createdBy: "a"))
        }
        await #expect(throws: BusError.unknownTopic("nope")) {
            _ = try await s.createSubscription(Subscription(id: "x", topic: "nope", createdBy: "a"), start: .now)
        }
        await #expect(throws: BusError.unknownTopic("nope")) { _ = try await publish(s, "nope", [1]) }
        _ = try await publish(s, "orders", [1, 2])
        #expect(try await s.createSubscription(Subscription(id: "late", topic: "orders", createdBy: "a"), start: .now).created)
        #expect(try await s.createSubscription(Subscription(id: "replay", topic: "orders", createdBy: "a"), start: .earliest).created)
        #expect(try await s.createSubscription(Subscription(id: "late", topic: "orders", createdBy: "z"), start: .now).created == false)
        await #expect(throws: BusError.exists("subscription 'late' exists with other settings")) {
            _ = try await s.createSubscription(Subscription(id: "late", topic: "orders", maxDeliveries: 9, createdBy: "a"), start: .now)
        }
        _ = try await publish(s, "orders", [3])
        #expect(try await s.receive(subscription: "late", consumer: "c", max: 10, visibilityTimeoutMs: nil).map(\.message.payload) == [3])
        #expect(try await s.receive(subscription: "replay", consumer: "c", max: 10, visibilityTimeoutMs: nil).map(\.message.payload) == [1, 2, 3])
        #expect(try await s.listSubscriptions(topic: "orders").map(\.id) == ["late", "replay"])
        #expect(try await s.listTopics().map(\.name) == ["orders"])
        await #expect(throws: BusError.unknownSubscription("gone")) { _ = try await s.receive(subscription: "gone", consumer: "c", max: 1, visibilityTimeoutMs: nil) }
        #expect(try await s.deleteSubscription("late"))
        #expect(try await s.deleteSubscription("late") == false)
        #expect(try await s.deleteTopic("orders"))
        #expect(try await s.listSubscriptions(topic: nil).isEmpty)
    }

    /// A lease hides a message from other consumers; ack removes it only with its receipt;
    /// nack and an expired lease make it visible again with its delivery counted.
    static func leasesAckAndNack(_ connect: Database) async throws {
        let s = try await connect()
        try await topic(s, "jobs")
        _ = try await s.createSubscription(Subscription(id: "w", topic: "jobs", maxDeliveries: 10, createdBy: "a"), start: .now)
        let sent = try await publish(s, "jobs", ["a", "b", "c"])
        #expect(sent.map(\.seq).allSatisfy { $0 > 0 })
        let first = try await s.receive(subscription: "w", consumer: "one", max: 2, visibilityTimeoutMs: 60_000)
        #expect(first.map(\.message.payload) == ["a", "b"])
        #expect(first.allSatisfy { $0.deliveryCount == 1 && $0.consumer == "one" })
        let second = try await s.receive(subscription: "w", consumer: "two", max: 5, visibilityTimeoutMs: 200)
        #expect(second.map(\.message.payload) == ["c"])

        // Ack: the receipt, and only once; a forged or foreign receipt acks nothing.
        let forged = BusLimits.receipt(seq: first[0].message.seq, token: "0000000000000000")
        #expect(try await s.ack(subscription: "w", receipts: [first[0].receipt, forged, "junk"]) == [true, false, false])
        #expect(try await s.ack(subscription: "w", receipts: [first[0].receipt]) == [false])
        await #expect(throws: BusError.self) { _ = try await s.nack(subscription: "w", receipt: first[0].receipt, delayMs: 0, error: nil) }

        // Nack: visible again at once, counted.
        #expect(try await s.nack(subscription: "w", receipt: first[1].receipt, delayMs: 0, error: "busy") == .redelivered)
        let again = try await s.receive(subscription: "w", consumer: "one", max: 1, visibilityTimeoutMs: 60_000)
        #expect(again.map(\.message.payload) == ["b"] && again.first?.deliveryCount == 2)
        // A nack with a delay keeps it hidden until then.
        #expect(try await s.nack(subscription: "w", receipt: again[0].receipt, delayMs: 60_000, error: nil) == .redelivered)

        // The 200 ms lease of "c" expires: redelivered, and the old receipt is dead.
        var redelivered: [Delivery] = []
        try await Wait.until("the expired lease is redelivered") {
            redelivered = try await s.receive(subscription: "w", consumer: "three", max: 5, visibilityTimeoutMs: 60_000)
            return !redelivered.isEmpty
        }
        #expect(redelivered.map(\.message.payload) == ["c"] && redelivered[0].deliveryCount == 2)
        #expect(try await s.ack(subscription: "w", receipts: [second[0].receipt]) == [false])
        #expect(try await s.ack(subscription: "w", receipts: [redelivered[0].receipt]) == [true])
        let stats = try await s.subscriptionStats("w")
        #expect(stats.ready == 1 && stats.leased == 0 && stats.dead == 0 && stats.oldestPendingAtMs != nil)
        #expect(try await s.extendLease(subscription: "w", receipt: redelivered[0].receipt, visibilityTimeoutMs: 1000) == false)
    }

    /// After `maxDeliveries` a message is dead with its last error, by nack or by an expired
    /// lease; the dead-letter queue lists, shows, replays and purges.
    static func deadLetters(_ connect: Database) async throws {
        let s = try await connect()
        try await topic(s, "t")
        _ = try await s.createSubscription(Subscription(id: "d", topic: "t", maxDeliveries: 2, visibilityTimeoutMs: 100, createdBy: "a"), start: .now)
        var sent = try await publish(s, "t", ["poison", "slow"])
        for attempt in 1...2 {
            let got = try await s.receive(subscription: "d", consumer: "c", max: 1, visibilityTimeoutMs: 60_000)
            #expect(got.map(\.message.payload) == ["poison"])
            #expect(try await s.nack(subscription: "d", receipt: got[0].receipt, delayMs: 0, error: "bad input \(attempt)") == (attempt == 2 ? .deadLettered : .redelivered))
        }
        // "slow" times out twice.
        for _ in 1...2 {
            var got: [Delivery] = []
            try await Wait.until("slow is delivered") {
                got = try await s.receive(subscription: "d", consumer: "c", max: 1, visibilityTimeoutMs: 100)
                return !got.isEmpty
            }
            #expect(got.map(\.message.payload) == ["slow"])
        }
        sent += try await publish(s, "t", ["fine"])
        // The last lease of "slow" runs out: the next receive moves it to the dead-letter queue.
        var received: [JSONValue] = []
        try await Wait.until("slow is dead") {
            received += try await s.receive(subscription: "d", consumer: "c", max: 5, visibilityTimeoutMs: 60_000).map(\.message.payload)
            return try await s.subscriptionStats("d").dead == 2
        }
        #expect(received == ["fine"])
        let dead = try await s.deadLetters(subscription: "d", limit: 10, offset: 0)
        try #require(dead.map(\.message.payload) == ["poison", "slow"])
        #expect(dead[0].lastError == "bad input 2" && dead[0].deliveryCount == 2)
        #expect(dead[1].lastError?.contains("visibility timeout") == true)
        #expect(try await s.deadLetter(subscription: "d", messageId: sent[0].id)?.message.id == sent[0].id)
        #expect(try await s.deadLetter(subscription: "d", messageId: sent[2].id) == nil)
        #expect(try await s.subscriptionStats("d").dead == 2)

        #expect(try await s.replayDeadLetters(subscription: "d", messageIds: [sent[0].id]) == 1)
        let replayed = try await s.receive(subscription: "d", consumer: "c", max: 5, visibilityTimeoutMs: 60_000)
        #expect(replayed.map(\.message.payload) == ["poison"] && replayed[0].deliveryCount == 1)
        #expect(try await s.purgeDeadLetters(subscription: "d", messageIds: nil) == 1)
        #expect(try await s.deadLetters(subscription: "d", limit: 10, offset: 0).isEmpty)
    }

    /// Messages with one ordering key are leased one at a time, in order; other keys and
    /// unkeyed messages pass them.
    static func orderingKeys(_ connect: Database) async throws {
        let s = try await connect()
        try await topic(s, "o")
        _ = try await s.createSubscription(Subscription(id: "g", topic: "o", createdBy: "a"), start: .now)
        _ = try await publish(s, "o", ["a1", "a2", "a3"], key: "A")
        _ = try await publish(s, "o", ["b1", "b2"], key: "B")
        _ = try await publish(s, "o", ["x"])
        let first = try await s.receive(subscription: "g", consumer: "c", max: 10, visibilityTimeoutMs: 60_000)
        #expect(first.map(\.message.payload) == ["a1", "b1", "x"])
        #expect(try await s.receive(subscription: "g", consumer: "d", max: 10, visibilityTimeoutMs: 60_000).isEmpty)
        // A nack keeps the key's order: a1 comes again before a2.
        _ = try await s.nack(subscription: "g", receipt: first[0].receipt, delayMs: 0, error: nil)
        let again = try await s.receive(subscription: "g", consumer: "d", max: 10, visibilityTimeoutMs: 60_000)
        #expect(again.map(\.message.payload) == ["a1"])
        #expect(try await s.ack(subscription: "g", receipts: [again[0].receipt, first[1].receipt]) == [true, true])
        #expect(try await s.receive(subscription: "g", consumer: "d", max: 10, visibilityTimeoutMs: 60_000).map(\.message.payload) == ["a2", "b2"])
    }

    /// Consumers racing on one subscription (each its own store: its own connection) never
    /// get the same lease; every message is delivered once.
    static func concurrentConsumers(_ connect: Database) async throws {
        let s = try await connect()
        try await topic(s, "c")
        _ = try await s.createSubscription(Subscription(id: "group", topic: "c", createdBy: "a"), start: .now)
        _ = try await publish(s, "c", (0..<200).map { JSONValue.int($0) })
        let consumers = try await withThrowingTaskGroup(of: [Int].self) { group in
            for i in 0..<4 {
                let store = try await connect()
                group.addTask {
                    var got: [Int] = []
                    while true {
                        let batch = try await store.receive(subscription: "group", consumer: "c\(i)", max: 7, visibilityTimeoutMs: 60_000)
                        if batch.isEmpty { return got }
                        got += batch.compactMap(\.message.payload.intValue)
                        #expect(try await store.ack(subscription: "group", receipts: batch.map(\.receipt)).allSatisfy { $0 })
                    }
                }
            }
            var all: [[Int]] = []
            for try await got in group { all.append(got) }
            return all
        }
        let all = consumers.flatMap { $0 }
        #expect(all.count == 200 && Set(all).count == 200)
    }

    /// Under four racing consumers, a key's messages are still handled one at a time, in
    /// publish order.
    static func orderingUnderConcurrency(_ connect: Database) async throws {
        let s = try await connect()
        try await topic(s, "ok")
        _ = try await s.createSubscription(Subscription(id: "keyed", topic: "ok", createdBy: "a"), start: .now)
        _ = try await s.publish((0..<60).map { i in BusMessage(topic: "ok", sender: "a", payload: .int(i), orderingKey: "k\(i % 3)") })
        struct Log { var inFlight: Set<String> = []; var violations = 0; var order: [String: [Int]] = [:] }
        final class Shared: Sendable { let log = Mutex(Log()) }
        let shared = Shared()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<4 {
                let store = try await connect()
                group.addTask {
                    var idle = 0
                    while idle < 20 {
                        let batch = try await store.receive(subscription: "keyed", consumer: "c\(i)", max: 3, visibilityTimeoutMs: 60_000)
                        if batch.isEmpty { idle += 1; try await Task.sleep(for: .milliseconds(5)); continue }
                        idle = 0
                        for d in batch {
                            let key = d.message.orderingKey ?? ""
                            shared.log.withLock { l in
                                if !l.inFlight.insert(key).inserted { l.violations += 1 }
                                l.order[key, default: []].append(d.message.payload.intValue ?? -1)
                            }
                        }
                        try await Task.sleep(for: .milliseconds(1))
                        shared.log.withLock { l in for d in batch { l.inFlight.remove(d.message.orderingKey ?? "") } }
                        _ = try await store.ack(subscription: "keyed", receipts: batch.map(\.receipt))
                    }
                }
            }
            try await group.waitForAll()
        }
        let result = shared.log.withLock { $0 }
        #expect(result.violations == 0)
        for k in 0..<3 { #expect(result.order["k\(k)"] == Array(stride(from: k, to: 60, by: 3)), "k\(k): \(result.order["k\(k)"] ?? [])") }
    }

    /// Retention drops the oldest messages past the topic's count with their deliveries.
    static func retention(_ connect: Database) async throws {
        let s = try await connect()
        try await topic(s, "r", maxCount: 3)
        _ = try await s.createSubscription(Subscription(id: "r1", topic: "r", createdBy: "a"), start: .now)
        _ = try await publish(s, "r", [1, 2, 3, 4, 5])
        #expect(try await s.enforceRetention() == 2)
        #expect(try await s.subscriptionStats("r1").ready == 3)
        #expect(try await s.receive(subscription: "r1", consumer: "c", max: 10, visibilityTimeoutMs: nil).map(\.message.payload) == [3, 4, 5])
        #expect(try await s.enforceRetention() == 0)
    }

    /// A receiver waiting on one store instance is woken by a publish through another (another
    /// connection: another process or host in production).
    static func wakeUps(_ connect: Database) async throws {
        let waiter = try await connect()
        let publisher = try await connect()
        try await topic(publisher, "w")
        let ticket = await waiter.busTicket()
        async let woken = waiter.waitForMessages(since: ticket, timeoutMs: 60_000)
        try await Task.sleep(for: .milliseconds(50))
        _ = try await publish(publisher, "w", [1])
        #expect(await woken)
    }
}

@Suite struct SQLiteBusStoreTests {
    static func database() -> BusStoreConformance.Database {
        let path = EpisodeFixtures.tempDir("bus") + "/nova.sqlite"
        return { try SQLiteStore(path: path) }
    }

    @Test func topicsAndSubscriptions() async throws { try await BusStoreConformance.topicsAndSubscriptions(Self.database()) }
    @Test func leasesAckAndNack() async throws { try await BusStoreConformance.leasesAckAndNack(Self.database()) }
    @Test func deadLetters() async throws { try await BusStoreConformance.deadLetters(Self.database()) }
    @Test func orderingKeys() async throws { try await BusStoreConformance.orderingKeys(Self.database()) }
    @Test func concurrentConsumers() async throws { try await BusStoreConformance.concurrentConsumers(Self.database()) }
    @Test func retention() async throws { try await BusStoreConformance.retention(Self.database()) }
    @Test func orderingUnderConcurrency() async throws { try await BusStoreConformance.orderingUnderConcurrency(Self.database()) }
    @Test func wakeUps() async throws { try await BusStoreConformance.wakeUps(Self.database()) }

    /// Payloads are checked before anything is stored.
    @Test func badPayloadsAreRefused() async throws {
        let s = try await Self.database()()
        try await BusStoreConformance.topic(s, "p")
        await #expect(throws: BusError.self) { _ = try await s.publish([BusMessage(topic: "p", sender: "a", encoding: .text, payload: 5)]) }
        await #expect(throws: BusError.self) { _ = try await s.publish([BusMessage(topic: "p", sender: "a", encoding: .base64, payload: "%%%")]) }
        let big = String(repeating: "x", count: BusLimits.maxPayloadBytes + 1)
        await #expect(throws: BusError.tooLarge("the payload is \(big.utf8.count) bytes; a message holds at most \(BusLimits.maxPayloadBytes)")) {
            _ = try await s.publish([BusMessage(topic: "p", sender: "a", encoding: .text, payload: .string(big))])
        }
    }
}

@Suite struct PostgresBusStoreTests {
    static func database(_ stores: PostgresStoreTests.Stores) async throws -> BusStoreConformance.Database {
        let url = try await PostgresStoreTests.freshDatabase()
        return { try await stores.connect(url) }
    }

    @Test func topicsAndSubscriptions() async throws { try await BusStoreConformance.topicsAndSubscriptions(try await Self.database(.init())) }
    @Test func leasesAckAndNack() async throws { try await BusStoreConformance.leasesAckAndNack(try await Self.database(.init())) }
    @Test func deadLetters() async throws { try await BusStoreConformance.deadLetters(try await Self.database(.init())) }
    @Test func orderingKeys() async throws { try await BusStoreConformance.orderingKeys(try await Self.database(.init())) }
    @Test func concurrentConsumers() async throws { try await BusStoreConformance.concurrentConsumers(try await Self.database(.init())) }
    @Test func retention() async throws { try await BusStoreConformance.retention(try await Self.database(.init())) }
    @Test func orderingUnderConcurrency() async throws { try await BusStoreConformance.orderingUnderConcurrency(try await Self.database(.init())) }
    @Test func wakeUps() async throws { try await BusStoreConformance.wakeUps(try await Self.database(.init())) }
}
