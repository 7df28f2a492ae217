import CSQLite
import Dispatch
import Foundation
import JSON
import HostSupport
import Synchronization

/// The message bus in the embedded store (schema version 5). `BEGIN IMMEDIATE` serializes
/// every change between the processes sharing the data directory, so a delivery is leased to
/// one consumer only. Publishes commit with `synchronous=FULL` (a published message survives a
/// power loss); leases, acks and nacks with `synchronous=NORMAL` (atomic, and losing the last
/// ones to a power failure only means deliveries repeat, which at-least-once allows).
///
/// Wake-ups: a publish here wakes this process's waiting receivers at once; receivers waiting
/// in other processes notice the commit through `PRAGMA data_version` on a watcher connection
/// that looks every `BusWatcher.intervalMs` while anyone waits (a read of one page-cache
/// counter, not a query of the bus).
extension SQLiteStore: MessageBusStore {
    static let busMigration = """
        CREATE TABLE bus_topics (
            name          TEXT PRIMARY KEY,
            schema        TEXT,
            max_age_ms    INTEGER,
            max_count     INTEGER,
            created_by    TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL
        );
        CREATE TABLE bus_messages (
            seq           INTEGER PRIMARY KEY AUTOINCREMENT,
            id            TEXT NOT NULL UNIQUE,
            topic         TEXT NOT NULL,
            sender        TEXT NOT NULL,
            encoding      TEXT NOT NULL,
            payload       TEXT NOT NULL,
            headers       TEXT NOT NULL,
            ordering_key  TEXT,
            created_at_ms INTEGER NOT NULL
        );
        CREATE INDEX bus_messages_by_topic ON bus_messages(topic, seq);
        CREATE INDEX bus_messages_by_age ON bus_messages(created_at_ms);
        CREATE TABLE bus_subscriptions (
            id             TEXT PRIMARY KEY,
            topic          TEXT NOT NULL,
            max_deliveries INTEGER NOT NULL,
            visibility_ms  INTEGER NOT NULL,
            trigger_spec   TEXT,
            created_by     TEXT NOT NULL,
            created_at_ms  INTEGER NOT NULL
        );
        CREATE INDEX bus_subscriptions_by_topic ON bus_subscriptions(topic);
        CREATE TABLE bus_deliveries (
            subscription  TEXT NOT NULL,
            seq           INTEGER NOT NULL,
            ordering_key  TEXT,
            state         TEXT NOT NULL,
            visible_at_ms INTEGER NOT NULL,
            deliveries    INTEGER NOT NULL,
            token         TEXT,
            consumer      TEXT,
            last_error    TEXT,
            dead_at_ms    INTEGER,
            PRIMARY KEY (subscription, seq)
        ) WITHOUT ROWID;
        CREATE INDEX bus_deliveries_due ON bus_deliveries(subscription, visible_at_ms) WHERE state <> 'dead';
        CREATE INDEX bus_deliveries_by_key ON bus_deliveries(subscription, ordering_key, seq) WHERE ordering_key IS NOT NULL AND state <> 'dead';
        CREATE INDEX bus_deliveries_dead ON bus_deliveries(subscription, dead_at_ms) WHERE state = 'dead';
        """

    private static let messageColumns = "m.id, m.seq, m.topic, m.sender, m.encoding, m.payload, m.headers, m.ordering_key, m.created_at_ms"

    private static func message(_ r: ArraySlice<SQLValue>) -> BusMessage {
        let i = r.startIndex
        return BusMessage(id: r[i].text ?? "", seq: Int64(r[i + 1].int ?? 0), topic: r[i + 2].text ?? "", sender: r[i + 3].text ?? "",
                          encoding: PayloadEncoding(rawValue: r[i + 4].text ?? "") ?? .json,
                          payload: (try? JSONValue.parse(r[i + 5].text ?? "null")) ?? .null,
                          headers: BusMessage.headers(fromText: r[i + 6].text ?? "{}"), orderingKey: r[i + 7].text,
                          createdAtMs: Int64(r[i + 8].int ?? 0))
    }

    private static func topic(_ r: [SQLValue]) -> Topic {
        Topic(name: r[0].text ?? "", schema: r[1].text.flatMap { try? JSONValue.parse($0) }, maxAgeMs: r[2].int.map(Int64.init),
              maxCount: r[3].int, createdBy: r[4].text ?? "", createdAtMs: Int64(r[5].int ?? 0))
    }

    private static func subscription(_ r: [SQLValue]) -> Subscription {
        Subscription(id: r[0].text ?? "", topic: r[1].text ?? "", maxDeliveries: r[2].int ?? 1, visibilityTimeoutMs: r[3].int ?? 30_000,
                     trigger: r[4].text.flatMap { try? JSONValue.parse($0) }, createdBy: r[5].text ?? "", createdAtMs: Int64(r[6].int ?? 0))
    }

    private static let topicColumns = "name, schema, max_age_ms, max_count, created_by, created_at_ms"
    private static let subscriptionColumns = "id, topic, max_deliveries, visibility_ms, trigger_spec, created_by, created_at_ms"

    private static func optInt<T: BinaryInteger>(_ v: T?) -> SQLValue { v.map { .int(Int64($0)) } ?? .null }

    // MARK: Topics and subscriptions

    public func createTopic(_ topic: Topic) async throws -> (topic: Topic, created: Bool) {
        try await write { [self] in
            if let existing = try conn.query("SELECT \(Self.topicColumns) FROM bus_topics WHERE name = ?", [.text(topic.name)]).first.map(Self.topic) {
                guard existing.schema == topic.schema, existing.maxAgeMs == topic.maxAgeMs, existing.maxCount == topic.maxCount else {
                    throw BusError.exists("topic '\(topic.name)' exists with other settings")
                }
                return (existing, false)
            }
            try conn.query("INSERT INTO bus_topics (\(Self.topicColumns)) VALUES (?, ?, ?, ?, ?, ?)", [
                .text(topic.name), topic.schema.map { .text($0.serialized(sortedKeys: true)) } ?? .null, Self.optInt(topic.maxAgeMs),
                Self.optInt(topic.maxCount), .text(topic.createdBy), .int(topic.createdAtMs),
            ])
            return (topic, true)
        }
    }

    public func topic(_ name: String) async throws -> Topic? {
        try await onConnection { [self] in
            try conn.query("SELECT \(Self.topicColumns) FROM bus_topics WHERE name = ?", [.text(name)]).first.map(Self.topic)
        }
    }

    public func listTopics() async throws -> [Topic] {
        try await onConnection { [self] in try conn.query("SELECT \(Self.topicColumns) FROM bus_topics ORDER BY name").map(Self.topic) }
    }

    public func deleteTopic(_ name: String) async throws -> Bool {
        try await write { [self] in
            try conn.query("DELETE FROM bus_deliveries WHERE subscription IN (SELECT id FROM bus_subscriptions WHERE topic = ?)", [.text(name)])
            try conn.query("DELETE FROM bus_subscriptions WHERE topic = ?", [.text(name)])
            try conn.query("DELETE FROM bus_messages WHERE topic = ?", [.text(name)])
            try conn.query("DELETE FROM bus_topics WHERE name = ?", [.text(name)])
            return sqlite3_changes(conn.db) == 1
        }
    }

    public func createSubscription(_ s: Subscription, start: SubscriptionStart) async throws -> (subscription: Subscription, created: Bool) {
        if let problem = BusLimits.problem(s) { throw problem }
        let created = try await write { [self] () throws -> (Subscription, Bool) in
            if let existing = try conn.query("SELECT \(Self.subscriptionColumns) FROM bus_subscriptions WHERE id = ?", [.text(s.id)]).first.map(Self.subscription) {
                guard existing.topic == s.topic, existing.maxDeliveries == s.maxDeliveries, existing.visibilityTimeoutMs == s.visibilityTimeoutMs,
                      existing.trigger == s.trigger else { throw BusError.exists("subscription '\(s.id)' exists with other settings") }
                return (existing, false)
            }
            guard try !conn.query("SELECT 1 FROM bus_topics WHERE name = ?", [.text(s.topic)]).isEmpty else { throw BusError.unknownTopic(s.topic) }
            try conn.query("INSERT INTO bus_subscriptions (\(Self.subscriptionColumns)) VALUES (?, ?, ?, ?, ?, ?, ?)", [
                .text(s.id), .text(s.topic), .int(Int64(s.maxDeliveries)), .int(Int64(s.visibilityTimeoutMs)),
                s.trigger.map { .text($0.serialized(sortedKeys: true)) } ?? .null, .text(s.createdBy), .int(s.createdAtMs),
            ])
            if start == .earliest {
                try conn.query("""
                    INSERT INTO bus_deliveries (subscription, seq, ordering_key, state, visible_at_ms, deliveries)
                    SELECT ?, seq, ordering_key, 'ready', 0, 0 FROM bus_messages WHERE topic = ?
                    """, [.text(s.id), .text(s.topic)])
            }
            return (s, true)
        }
        if created.1 && start == .earliest { busWake.signal() }
        return created
    }

    public func subscription(_ id: String) async throws -> Subscription? {
        try await onConnection { [self] in
            try conn.query("SELECT \(Self.subscriptionColumns) FROM bus_subscriptions WHERE id = ?", [.text(id)]).first.map(Self.subscription)
        }
    }

    public func listSubscriptions(topic: String?) async throws -> [Subscription] {
        try await onConnection { [self] in
            if let topic {
                return try conn.query("SELECT \(Self.subscriptionColumns) FROM bus_subscriptions WHERE topic = ? ORDER BY id", [.text(topic)]).map(Self.subscription)
            }
            return try conn.query("SELECT \(Self.subscriptionColumns) FROM bus_subscriptions ORDER BY id").map(Self.subscription)
        }
    }

    public func deleteSubscription(_ id: String) async throws -> Bool {
        try await write { [self] in
            try conn.query("DELETE FROM bus_deliveries WHERE subscription = ?", [.text(id)])
            try conn.query("DELETE FROM bus_subscriptions WHERE id = ?", [.text(id)])
            return sqlite3_changes(conn.db) == 1
        }
    }

    // MARK: Publish, receive, ack

    public func publish(_ messages: [BusMessage]) async throws -> [BusMessage] {
        if messages.isEmpty { return [] }
        for m in messages { if let problem = BusLimits.problem(m) { throw problem } }
        let stored = try await write { [self] () throws -> [BusMessage] in
            var out: [BusMessage] = []
            var topics: Set<String> = []
            for var m in messages {
                if !topics.contains(m.topic) {
                    guard try !conn.query("SELECT 1 FROM bus_topics WHERE name = ?", [.text(m.topic)]).isEmpty else { throw BusError.unknownTopic(m.topic) }
                    topics.insert(m.topic)
                }
                let rows = try conn.query("""
                    INSERT INTO bus_messages (id, topic, sender, encoding, payload, headers, ordering_key, created_at_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq
                    """, [.text(m.id), .text(m.topic), .text(m.sender), .text(m.encoding.rawValue), .text(m.payload.serialized()),
                          .text(m.headersText), m.orderingKey.map(SQLValue.text) ?? .null, .int(m.createdAtMs)])
                m.seq = Int64(rows.first?.first?.int ?? 0)
                try conn.query("""
                    INSERT INTO bus_deliveries (subscription, seq, ordering_key, state, visible_at_ms, deliveries)
                    SELECT id, ?, ?, 'ready', 0, 0 FROM bus_subscriptions WHERE topic = ?
                    """, [.int(m.seq), m.orderingKey.map(SQLValue.text) ?? .null, .text(m.topic)])
                out.append(m)
            }
            return out
        }
        busWake.signal()
        return stored
    }

    public func receive(subscription: String, consumer: String, max: Int, visibilityTimeoutMs: Int?) async throws -> [Delivery] {
        // A read first: most receives of a long poll find nothing, and need no write lock.
        let due = try await onConnection { [self] () throws -> Bool in
            let r = try conn.query("""
                SELECT (SELECT 1 FROM bus_subscriptions WHERE id = ?1),
                       EXISTS (SELECT 1 FROM bus_deliveries WHERE subscription = ?1 AND state <> 'dead' AND visible_at_ms <= ?2)
                """, [.text(subscription), .int(BusLimits.nowMs())]).first ?? []
            guard r.first?.int != nil else { throw BusError.unknownSubscription(subscription) }
            return (r.count > 1 ? r[1].int : 0) == 1
        }
        if !due { return [] }
        // Leases commit with synchronous=NORMAL: a lease lost to a power failure only means the
        // message is delivered again.
        return try await writeRelaxed { [self] () throws -> [Delivery] in
            guard let sub = try conn.query("SELECT \(Self.subscriptionColumns) FROM bus_subscriptions WHERE id = ?",
                                           [.text(subscription)]).first.map(Self.subscription) else { throw BusError.unknownSubscription(subscription) }
            let now = BusLimits.nowMs()
            let lease = Int64(visibilityTimeoutMs ?? sub.visibilityTimeoutMs)
            // Leases that ran out on their last delivery: to the dead-letter queue.
            try conn.query("""
                UPDATE bus_deliveries SET state = 'dead', dead_at_ms = ?, token = NULL,
                       last_error = coalesce(last_error, 'the visibility timeout expired on the last delivery')
                WHERE subscription = ? AND state = 'leased' AND visible_at_ms <= ? AND deliveries >= ?
                """, [.int(now), .text(subscription), .int(now), .int(Int64(sub.maxDeliveries))])
            let rows = try conn.query("""
                UPDATE bus_deliveries SET state = 'leased', visible_at_ms = ?, deliveries = deliveries + 1,
                       token = lower(hex(randomblob(8))), consumer = ?
                WHERE subscription = ? AND seq IN (
                    SELECT d.seq FROM bus_deliveries d
                    WHERE d.subscription = ? AND d.state <> 'dead' AND d.visible_at_ms <= ?
                      AND (d.ordering_key IS NULL OR NOT EXISTS (
                          SELECT 1 FROM bus_deliveries e WHERE e.subscription = d.subscription AND e.ordering_key = d.ordering_key
                                                           AND e.seq < d.seq AND e.state <> 'dead'))
                    ORDER BY d.seq LIMIT ?)
                RETURNING seq, deliveries, token
                """, [.int(now + lease), .text(consumer), .text(subscription), .text(subscription), .int(now), .int(Int64(Swift.max(1, max)))])
            var out: [Delivery] = []
            for r in rows.sorted(by: { ($0[0].int ?? 0) < ($1[0].int ?? 0) }) {
                let seq = Int64(r[0].int ?? 0)
                guard let m = try conn.query("SELECT \(Self.messageColumns) FROM bus_messages m WHERE m.seq = ?", [.int(seq)]).first else { continue }
                out.append(Delivery(message: Self.message(m[...]), subscription: subscription, deliveryCount: r[1].int ?? 1,
                                    receipt: BusLimits.receipt(seq: seq, token: r[2].text ?? ""), consumer: consumer, leaseUntilMs: now + lease))
            }
            return out
        }
    }

    public func ack(subscription: String, receipts: [String]) async throws -> [Bool] {
        let parsed = receipts.map(BusLimits.parseReceipt)
        // An ack lost to a power failure means one more delivery: synchronous=NORMAL.
        return try await writeRelaxed { [self] in
            try parsed.map { p -> Bool in
                guard let p else { return false }
                try conn.query("DELETE FROM bus_deliveries WHERE subscription = ? AND seq = ? AND state = 'leased' AND token = ? AND visible_at_ms > ?",
                               [.text(subscription), .int(p.seq), .text(p.token), .int(BusLimits.nowMs())])
                return sqlite3_changes(conn.db) == 1
            }
        }
    }

    public func nack(subscription: String, receipt: String, delayMs: Int, error: String?) async throws -> NackOutcome {
        guard let p = BusLimits.parseReceipt(receipt) else { throw BusError.notLeased("'\(receipt)' is not a receipt") }
        let outcome = try await writeRelaxed { [self] () throws -> NackOutcome in
            let now = BusLimits.nowMs()
            guard let row = try conn.query("""
                SELECT d.deliveries, s.max_deliveries FROM bus_deliveries d JOIN bus_subscriptions s ON s.id = d.subscription
                WHERE d.subscription = ? AND d.seq = ? AND d.state = 'leased' AND d.token = ? AND d.visible_at_ms > ?
                """, [.text(subscription), .int(p.seq), .text(p.token), .int(now)]).first else {
                throw BusError.notLeased("receipt \(receipt) holds no lease on subscription '\(subscription)' (acked, expired or redelivered)")
            }
            return try settleRow(subscription: subscription, seq: p.seq, deliveries: row[0].int ?? 0, maxDeliveries: row[1].int ?? 1,
                                 delayMs: delayMs, error: error, now: now)
        }
        if outcome == .redelivered && delayMs == 0 { busWake.signal() }
        return outcome
    }

    /// Ends a lease without success (caller holds the write transaction).
    private func settleRow(subscription: String, seq: Int64, deliveries: Int, maxDeliveries: Int, delayMs: Int, error: String?, now: Int64) throws -> NackOutcome {
        if deliveries >= maxDeliveries {
            try conn.query("UPDATE bus_deliveries SET state = 'dead', dead_at_ms = ?, token = NULL, last_error = ? WHERE subscription = ? AND seq = ?",
                           [.int(now), .text(error ?? "nacked on the last delivery"), .text(subscription), .int(seq)])
            return .deadLettered
        }
        try conn.query("UPDATE bus_deliveries SET state = 'ready', visible_at_ms = ?, token = NULL, last_error = coalesce(?, last_error) WHERE subscription = ? AND seq = ?",
                       [.int(now + Int64(Swift.max(0, delayMs))), error.map(SQLValue.text) ?? .null, .text(subscription), .int(seq)])
        return .redelivered
    }

    public func settle(subscription: String, messageId: String, succeeded: Bool, error: String?) async throws -> SettleOutcome {
        let outcome = try await write { [self] () throws -> SettleOutcome in
            guard let row = try conn.query("""
                SELECT d.seq, d.deliveries, s.max_deliveries FROM bus_deliveries d JOIN bus_subscriptions s ON s.id = d.subscription
                JOIN bus_messages m ON m.seq = d.seq WHERE d.subscription = ? AND m.id = ? AND d.state <> 'dead'
                """, [.text(subscription), .text(messageId)]).first, let seq = row[0].int else { return .notFound }
            if succeeded {
                try conn.query("DELETE FROM bus_deliveries WHERE subscription = ? AND seq = ?", [.text(subscription), .int(Int64(seq))])
                return .acked
            }
            let nacked = try settleRow(subscription: subscription, seq: Int64(seq), deliveries: Swift.max(1, row[1].int ?? 1),
                                       maxDeliveries: row[2].int ?? 1, delayMs: 0, error: error, now: BusLimits.nowMs())
            return nacked == .deadLettered ? .deadLettered : .redelivered
        }
        if outcome == .redelivered { busWake.signal() }
        return outcome
    }

    public func extendLease(subscription: String, receipt: String, visibilityTimeoutMs: Int) async throws -> Bool {
        guard let p = BusLimits.parseReceipt(receipt) else { return false }
        return try await write { [self] in
            let now = BusLimits.nowMs()
            try conn.query("UPDATE bus_deliveries SET visible_at_ms = ? WHERE subscription = ? AND seq = ? AND state = 'leased' AND token = ? AND visible_at_ms > ?",
                           [.int(now + Int64(visibilityTimeoutMs)), .text(subscription), .int(p.seq), .text(p.token), .int(now)])
            return sqlite3_changes(conn.db) == 1
        }
    }

    // MARK: Dead letters

    private static let deadColumns = "d.deliveries, d.last_error, d.dead_at_ms, " + messageColumns

    private static func deadLetter(_ subscription: String, _ r: [SQLValue]) -> DeadLetter {
        DeadLetter(message: message(r[3...]), subscription: subscription, deliveryCount: r[0].int ?? 0, lastError: r[1].text,
                   deadAtMs: Int64(r[2].int ?? 0))
    }

    public func deadLetters(subscription: String, limit: Int, offset: Int) async throws -> [DeadLetter] {
        try await onConnection { [self] in
            try conn.query("""
                SELECT \(Self.deadColumns) FROM bus_deliveries d JOIN bus_messages m ON m.seq = d.seq
                WHERE d.subscription = ? AND d.state = 'dead' ORDER BY d.seq LIMIT ? OFFSET ?
                """, [.text(subscription), .int(Int64(Swift.max(0, limit))), .int(Int64(Swift.max(0, offset)))]).map { Self.deadLetter(subscription, $0) }
        }
    }

    public func deadLetter(subscription: String, messageId: String) async throws -> DeadLetter? {
        try await onConnection { [self] in
            try conn.query("""
                SELECT \(Self.deadColumns) FROM bus_deliveries d JOIN bus_messages m ON m.seq = d.seq
                WHERE d.subscription = ? AND d.state = 'dead' AND m.id = ?
                """, [.text(subscription), .text(messageId)]).first.map { Self.deadLetter(subscription, $0) }
        }
    }

    private static func idFilter(_ ids: [String]?) -> (String, [SQLValue]) {
        guard let ids else { return ("", []) }
        if ids.isEmpty { return (" AND 0", []) }
        return (" AND seq IN (SELECT seq FROM bus_messages WHERE id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", "))))",
                ids.map { .text($0) })
    }

    public func replayDeadLetters(subscription: String, messageIds: [String]?) async throws -> Int {
        let (filter, params) = Self.idFilter(messageIds)
        let n = try await write { [self] in
            try conn.query("UPDATE bus_deliveries SET state = 'ready', visible_at_ms = 0, deliveries = 0, dead_at_ms = NULL WHERE subscription = ? AND state = 'dead'"
                           + filter, [.text(subscription)] + params)
            return Int(sqlite3_changes(conn.db))
        }
        if n > 0 { busWake.signal() }
        return n
    }

    public func purgeDeadLetters(subscription: String, messageIds: [String]?) async throws -> Int {
        let (filter, params) = Self.idFilter(messageIds)
        return try await write { [self] in
            try conn.query("DELETE FROM bus_deliveries WHERE subscription = ? AND state = 'dead'" + filter, [.text(subscription)] + params)
            return Int(sqlite3_changes(conn.db))
        }
    }

    // MARK: Stats, retention, wake-ups

    public func subscriptionStats(_ id: String) async throws -> SubscriptionStats {
        try await onConnection { [self] in
            let r = try conn.query("""
                SELECT coalesce(sum(state = 'ready'), 0), coalesce(sum(state = 'leased'), 0), coalesce(sum(state = 'dead'), 0),
                       (SELECT min(m.created_at_ms) FROM bus_deliveries d JOIN bus_messages m ON m.seq = d.seq
                        WHERE d.subscription = ?1 AND d.state <> 'dead')
                FROM bus_deliveries WHERE subscription = ?1
                """, [.text(id)]).first ?? []
            return SubscriptionStats(ready: r.first?.int ?? 0, leased: r.count > 1 ? r[1].int ?? 0 : 0, dead: r.count > 2 ? r[2].int ?? 0 : 0,
                                     oldestPendingAtMs: r.count > 3 ? r[3].int.map(Int64.init) : nil)
        }
    }

    public func enforceRetention() async throws -> Int {
        try await write { [self] in
            let now = BusLimits.nowMs()
            var dropped = 0
            for t in try conn.query("SELECT \(Self.topicColumns) FROM bus_topics").map(Self.topic) {
                var cutoff: Int64 = 0
                if let age = t.maxAgeMs, let seq = try conn.query("SELECT max(seq) FROM bus_messages WHERE topic = ? AND created_at_ms < ?",
                                                                  [.text(t.name), .int(now - age)]).first?.first?.int {
                    cutoff = Swift.max(cutoff, Int64(seq))
                }
                if let count = t.maxCount, let seq = try conn.query("SELECT seq FROM bus_messages WHERE topic = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                                                                    [.text(t.name), .int(Int64(count))]).first?.first?.int {
                    cutoff = Swift.max(cutoff, Int64(seq))
                }
                guard cutoff > 0 else { continue }
                try conn.query("DELETE FROM bus_deliveries WHERE seq <= ? AND subscription IN (SELECT id FROM bus_subscriptions WHERE topic = ?)",
                               [.int(cutoff), .text(t.name)])
                try conn.query("DELETE FROM bus_messages WHERE topic = ? AND seq <= ?", [.text(t.name), .int(cutoff)])
                dropped += Int(sqlite3_changes(conn.db))
            }
            return dropped
        }
    }

    public func busTicket() async -> UInt64 { busWake.ticket() }

    public func waitForMessages(since ticket: UInt64, timeoutMs: Int) async -> Bool {
        busWatcher.startWatching()
        defer { busWatcher.stopWatching() }
        return await busWake.wait(since: ticket, timeoutMs: timeoutMs)
    }
}

/// Notices commits by other processes on the database while anyone waits for messages: reads
/// `PRAGMA data_version` on its own connection every `intervalMs` (it changes when another
/// connection commits) and signals `wake` when it moved.
final class BusWatcher: @unchecked Sendable {
    static let intervalMs = 5
    private let path: String
    private let wake: WakeSignal
    private let waiting = Mutex<(count: Int, running: Bool)>((0, false))
    private let queue = DispatchQueue(label: "nova.sqlite-bus-watcher")

    init(path: String, wake: WakeSignal) {
        self.path = path
        self.wake = wake
    }

    func startWatching() {
        let start = waiting.withLock { w -> Bool in
            w.count += 1
            if w.running { return false }
            w.running = true
            return true
        }
        if start { queue.async { [self] in watch() } }
    }

    func stopWatching() { waiting.withLock { $0.count -= 1 } }

    private func watch() {
        guard let conn = try? SQLiteConnection(path: path) else {
            waiting.withLock { $0.running = false }
            return
        }
        var last = (try? conn.query("PRAGMA data_version").first?.first?.int) ?? 0
        while true {
            usleep(useconds_t(Self.intervalMs * 1000))
            let stop = waiting.withLock { w -> Bool in
                if w.count <= 0 { w.running = false; return true }
                return false
            }
            if stop { return }
            let now = (try? conn.query("PRAGMA data_version").first?.first?.int) ?? last
            if now != last {
                last = now
                wake.signal()
            }
        }
    }
}
