import Foundation
import Host
import PostgresStore

/// The bus's store operations in process, without HTTP (issue 14): what one publish, one
/// receive of one message and one ack cost on SQLite and PostgreSQL, one at a time, median of
/// 500. The peer comparison (Redis Streams through redis-py, same client for both) is
/// Benchmarks/bus/bench_bus.py, which `make bench` runs next; these figures say how much of
/// nova's time there is the store and how much is HTTP. Needs NOVA_TEST_PG_DSN for PostgreSQL.
enum BusBench {
    static func run() async throws {
        let dir = FileManager.default.currentDirectoryPath + "/.nova-bench-bus"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var stores: [(String, any MessageBusStore)] = [("SQLite", try SQLiteStore(path: dir + "/bus.sqlite"))]
        if let dsn = ProcessInfo.processInfo.environment["NOVA_TEST_PG_DSN"], !dsn.isEmpty {
            stores.append(("PostgreSQL", try await PostgresStore.connect(url: try await QueueBench.freshDatabase(dsn))))
        } else {
            QueueBench.say("  (NOVA_TEST_PG_DSN not set: PostgreSQL left out)")
        }
        QueueBench.say("  one operation at a time in process, median of 500 (publish durable on commit; receive leases one message):")
        for (name, store) in stores {
            _ = try await store.createTopic(Topic(name: "bench", createdBy: "bench"))
            _ = try await store.createSubscription(Subscription(id: "g", topic: "bench", createdBy: "bench"), start: .now)
            var publish: [Double] = [], receive: [Double] = [], ack: [Double] = []
            for i in 0..<500 {
                var t = ContinuousClock.now
                _ = try await store.publish([BusMessage(topic: "bench", sender: "bench", payload: ["n": .int(i)])])
                publish.append(nanos(since: t))
                t = ContinuousClock.now
                let got = try await store.receive(subscription: "g", consumer: "bench", max: 1, visibilityTimeoutMs: nil)
                receive.append(nanos(since: t))
                t = ContinuousClock.now
                _ = try await store.ack(subscription: "g", receipts: got.map(\.receipt))
                ack.append(nanos(since: t))
            }
            QueueBench.say("    \(name.padding(toLength: 11, withPad: " ", startingAt: 0)) publish \(Measure.fmt(Measure.median(publish)))   receive \(Measure.fmt(Measure.median(receive)))   ack \(Measure.fmt(Measure.median(ack)))")
        }
    }

    static func nanos(since t: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - t
        return Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
    }
}
