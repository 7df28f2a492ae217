import HostSupport
import JSON
import Logging
import PostgresNIO
import Store

/// The message bus on PostgreSQL (schema version 6), shared by every host on the database:
/// the same contract as SQLite (`BusStoreTests` runs on both). `FOR UPDATE SKIP LOCKED` leases
/// each delivery to one consumer without consumers waiting on each other; a publish, nack or
/// replay sends `NOTIFY nova_jobs, 'b:<topic>'` on commit, which every listening host turns
/// into a wake-up of its waiting receivers.
extension PostgresStore: MessageBusStore {
    static let busMigration: [PostgresQuery] = [
        """
        CREATE TABLE nova_bus_topics (
            name          TEXT PRIMARY KEY,
            schema        TEXT,
            max_age_ms    BIGINT,
            max_count     BIGINT,
            created_by    TEXT NOT NULL,
            created_at_ms BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE nova_bus_messages (
            seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id            TEXT NOT NULL UNIQUE,
            topic         TEXT NOT NULL,
            sender        TEXT NOT NULL,
            encoding      TEXT NOT NULL,
            payload       TEXT NOT NULL,
            headers       TEXT NOT NULL,
            ordering_key  TEXT,
            created_at_ms BIGINT NOT NULL
        )
        """,
        "CREATE INDEX nova_bus_messages_by_topic ON nova_bus_messages(topic, seq)",
        "CREATE INDEX nova_bus_messages_by_age ON nova_bus_messages(created_at_ms)",
        """
        CREATE TABLE nova_bus_subscriptions (
            id             TEXT PRIMARY KEY,
            topic          TEXT NOT NULL,
            max_deliveries BIGINT NOT NULL,
            visibility_ms  BIGINT NOT NULL,
            trigger_spec   TEXT,
            created_by     TEXT NOT NULL,
            created_at_ms  BIGINT NOT NULL
        )
        """,
        "CREATE INDEX nova_bus_subscriptions_by_topic ON nova_bus_subscriptions(topic)",
        """
        CREATE TABLE nova_bus_deliveries (
            subscription  TEXT NOT NULL,
            seq           BIGINT NOT NULL,
            ordering_key  TEXT,
            state         TEXT NOT NULL,
            visible_at_ms BIGINT NOT NULL,
            deliveries    BIGINT NOT NULL,
            token         TEXT,
            consumer      TEXT,
            last_error    TEXT,
            dead_at_ms    BIGINT,
            PRIMARY KEY (subscription, seq)
        )
        """,
        "CREATE INDEX nova_bus_deliveries_due ON nova_bus_deliveries(subscription, visible_at_ms) WHERE state <> 'dead'",
        "CREATE INDEX nova_bus_deliveries_by_key ON nova_bus_deliveries(subscription, ordering_key, seq) WHERE ordering_key IS NOT NULL AND state <> 'dead'",
        "CREATE INDEX nova_bus_deliveries_dead ON nova_bus_deliveries(subscription, dead_at_ms) WHERE state = 'dead'",
    ]

    private typealias MessageRow = (String, Int64, String, String, String, String, String, String?, Int64)
    private static let messageColumns = "m.id, m.seq, m.topic, m.sender, m.encoding, m.payload, m.headers, m.ordering_key, m.created_at_ms"

    private static func message(_ r: MessageRow) -> BusMessage {
        BusMessage(id: r.0, seq: r.1, topic: r.2, sender: r.3, encoding: PayloadEncoding(rawValue: r.4) ?? .json,
                   payload: (try? JSONValue.parse(r.5)) ?? .null, headers: BusMessage.headers(fromText: r.6), orderingKey: r.7, createdAtMs: r.8)
    }

    private typealias TopicRow = (String, String?, Int64?, Int64?, String, Int64)
    private static let topicColumns = "name, schema, max_age_ms, max_count, created_by, created_at_ms"
    private static func topic(_ r: TopicRow) -> Topic {
        Topic(name: r.0, schema: r.1.flatMap { try? JSONValue.parse($0) }, maxAgeMs: r.2, maxCount: r.3.map { Int($0) }, createdBy: r.4, createdAtMs: r.5)
    }

    private typealias SubscriptionRow = (String, String, Int, Int, String?, String, Int64)
    private static let subscriptionColumns = "id, topic, max_deliveries, visibility_ms, trigger_spec, created_by, created_at_ms"
    private static func subscription(_ r: SubscriptionRow) -> Subscription {
        Subscription(id: r.0, topic: r.1, maxDeliveries: r.2, visibilityTimeoutMs: r.3, trigger: r.4.flatMap { try? JSONValue.parse($0) },
                     createdBy: r.5, createdAtMs: r.6)
    }

    private func topics(_ q: PostgresQuery, on conn: PostgresConnection? = nil) async throws -> [Topic] {
        let rows = if let conn { try await conn.query(q, logger: logger) } else { try await client.query(q, logger: logger) }
        var out: [Topic] = []
        for try await r in rows.decode(TopicRow.self) { out.append(Self.topic(r)) }
        return out
    }

    private func subscriptions(_ q: PostgresQuery, on conn: PostgresConnection? = nil) async throws -> [Subscription] {
        let rows = if let conn { try await conn.query(q, logger: logger) } else { try await client.query(q, logger: logger) }
        var out: [Subscription] = []
        for try await r in rows.decode(SubscriptionRow.self) { out.append(Self.subscription(r)) }
        return out
    }

    private func count(_ q: PostgresQuery, on conn: PostgresConnection) async throws -> Int {
        var n = 0
        for try await _ in try await conn.query(q, logger: logger) { n += 1 }
        return n
    }

    // MARK: Topics and subscriptions

    public func createTopic(_ topic: Topic) async throws -> (topic: Topic, created: Bool) {
        let schema = topic.schema?.serialized(sortedKeys: true)
        let maxCount = topic.maxCount.map { Int64($0) }
        return try await inTransaction { [self] conn in
            var inserted = false
            for try await _ in try await conn.query("""
                INSERT INTO nova_bus_topics (\(unescaped: Self.topicColumns))
                VALUES (\(topic.name), \(schema), \(topic.maxAgeMs), \(maxCount), \(topic.createdBy), \(topic.createdAtMs))
                ON CONFLICT (name) DO NOTHING RETURNING 1
                """, logger: logger) { inserted = true }
            if inserted { return (topic, true) }
            guard let existing = try await topics("SELECT \(unescaped: Self.topicColumns) FROM nova_bus_topics WHERE name = \(topic.name)", on: conn).first,
                  existing.schema == topic.schema, existing.maxAgeMs == topic.maxAgeMs, existing.maxCount == topic.maxCount else {
                throw BusError.exists("topic '\(topic.name)' exists with other settings")
            }
            return (existing, false)
        }
    }

    public func topic(_ name: String) async throws -> Topic? {
        try await topics("SELECT \(unescaped: Self.topicColumns) FROM nova_bus_topics WHERE name = \(name)").first
    }

    public func listTopics() async throws -> [Topic] {
        try await topics("SELECT \(unescaped: Self.topicColumns) FROM nova_bus_topics ORDER BY name COLLATE \"C\"")
    }

    public func deleteTopic(_ name: String) async throws -> Bool {
        try await inTransaction { [self] conn in
            try await conn.query("""
                DELETE FROM nova_bus_deliveries WHERE subscription IN (SELECT id FROM nova_bus_subscriptions WHERE topic = \(name))
                """, logger: logger)
            try await conn.query("DELETE FROM nova_bus_subscriptions WHERE topic = \(name)", logger: logger)
            try await conn.query("DELETE FROM nova_bus_messages WHERE topic = \(name)", logger: logger)
            return try await count("DELETE FROM nova_bus_topics WHERE name = \(name) RETURNING 1", on: conn) == 1
        }
    }

    public func createSubscription(_ s: Subscription, start: SubscriptionStart) async throws -> (subscription: Subscription, created: Bool) {
        if let problem = BusLimits.problem(s) { throw problem }
        let trigger = s.trigger?.serialized(sortedKeys: true)
        return try await inTransaction { [self] conn in
            // The topic row is locked so that a concurrent delete cannot orphan the subscription.
            guard try await count("SELECT 1 FROM nova_bus_topics WHERE name = \(s.topic) FOR SHARE", on: conn) == 1 else {
                throw BusError.unknownTopic(s.topic)
            }
            let inserted = try await count("""
                INSERT INTO nova_bus_subscriptions (\(unescaped: Self.subscriptionColumns))
                VALUES (\(s.id), \(s.topic), \(s.maxDeliveries), \(s.visibilityTimeoutMs), \(trigger), \(s.createdBy), \(s.createdAtMs))
                ON CONFLICT (id) DO NOTHING RETURNING 1
                """, on: conn) == 1
            if !inserted {
                guard let existing = try await subscriptions("SELECT \(unescaped: Self.subscriptionColumns) FROM nova_bus_subscriptions WHERE id = \(s.id)",
                                                             on: conn).first,
                      existing.topic == s.topic, existing.maxDeliveries == s.maxDeliveries, existing.visibilityTimeoutMs == s.visibilityTimeoutMs,
                      existing.trigger == s.trigger else { throw BusError.exists("subscription '\(s.id)' exists with other settings") }
                return (existing, false)
            }
            if start == .earliest {
                try await conn.query("""
                    INSERT INTO nova_bus_deliveries (subscription, seq, ordering_key, state, visible_at_ms, deliveries)
                    SELECT \(s.id), seq, ordering_key, 'ready', 0, 0 FROM nova_bus_messages WHERE topic = \(s.topic)
                    """, logger: logger)
                try await conn.query("SELECT pg_notify('nova_jobs', 'b:' || \(s.topic))", logger: logger)
            }
            return (s, true)
        }
    }

    public func subscription(_ id: String) async throws -> Subscription? {
        try await subscriptions("SELECT \(unescaped: Self.subscriptionColumns) FROM nova_bus_subscriptions WHERE id = \(id)").first
    }

    public func listSubscriptions(topic: String?) async throws -> [Subscription] {
        if let topic {
            return try await subscriptions("""
                SELECT \(unescaped: Self.subscriptionColumns) FROM nova_bus_subscriptions WHERE topic = \(topic) ORDER BY id COLLATE "C"
                """)
        }
        return try await subscriptions("SELECT \(unescaped: Self.subscriptionColumns) FROM nova_bus_subscriptions ORDER BY id COLLATE \"C\"")
    }

    public func deleteSubscription(_ id: String) async throws -> Bool {
        try await inTransaction { [self] conn in
            try await conn.query("DELETE FROM nova_bus_deliveries WHERE subscription = \(id)", logger: logger)
            return try await count("DELETE FROM nova_bus_subscriptions WHERE id = \(id) RETURNING 1", on: conn) == 1
        }
    }

    // MARK: Publish, receive, ack

    public func publish(_ messages: [BusMessage]) async throws -> [BusMessage] {
        if messages.isEmpty { return [] }
        for m in messages { if let problem = BusLimits.problem(m) { throw problem } }
        if messages.count == 1 { return [try await publishOne(messages[0])] }
        return try await inTransaction { [self] conn in
            var out: [BusMessage] = []
            var topics: Set<String> = []
            for var m in messages {
                if !topics.contains(m.topic) {
                    guard try await count("SELECT 1 FROM nova_bus_topics WHERE name = \(m.topic) FOR SHARE", on: conn) == 1 else {
                        throw BusError.unknownTopic(m.topic)
                    }
                    topics.insert(m.topic)
                }
                let payload = m.payload.serialized()
                for try await (seq) in try await conn.query("""
                    INSERT INTO nova_bus_messages (id, topic, sender, encoding, payload, headers, ordering_key, created_at_ms)
                    VALUES (\(m.id), \(m.topic), \(m.sender), \(m.encoding.rawValue), \(payload), \(m.headersText), \(m.orderingKey), \(m.createdAtMs))
                    RETURNING seq
                    """, logger: logger).decode(Int64.self) { m.seq = seq }
                try await conn.query("""
                    INSERT INTO nova_bus_deliveries (subscription, seq, ordering_key, state, visible_at_ms, deliveries)
                    SELECT id, \(m.seq), \(m.orderingKey), 'ready', 0, 0 FROM nova_bus_subscriptions WHERE topic = \(m.topic)
                    """, logger: logger)
                out.append(m)
            }
            for topic in topics { try await conn.query("SELECT pg_notify('nova_jobs', 'b:' || \(topic))", logger: logger) }
            return out
        }
    }

    /// One message in one statement (one round trip, its own transaction): the topic row is
    /// share-locked, the message and its deliveries inserted and the wake-up sent on commit.
    private func publishOne(_ message: BusMessage) async throws -> BusMessage {
        var m = message
        let payload = m.payload.serialized()
        var stored = false
        for try await (seq) in try await client.query("""
            WITH t AS (SELECT name FROM nova_bus_topics WHERE name = \(m.topic) FOR SHARE),
            ins AS (INSERT INTO nova_bus_messages (id, topic, sender, encoding, payload, headers, ordering_key, created_at_ms)
                    SELECT \(m.id), t.name, \(m.sender), \(m.encoding.rawValue), \(payload), \(m.headersText), \(m.orderingKey), \(m.createdAtMs) FROM t
                    RETURNING seq, topic, ordering_key),
            fan AS (INSERT INTO nova_bus_deliveries (subscription, seq, ordering_key, state, visible_at_ms, deliveries)
                    SELECT s.id, ins.seq, ins.ordering_key, 'ready', 0, 0 FROM ins JOIN nova_bus_subscriptions s ON s.topic = ins.topic
                    RETURNING 1)
            SELECT ins.seq FROM ins, LATERAL (SELECT pg_notify('nova_jobs', 'b:' || ins.topic)) AS wake
            """, logger: logger).decode(Int64.self) {
            m.seq = seq
            stored = true
        }
        guard stored else { throw BusError.unknownTopic(m.topic) }
        return m
    }

    /// One statement: expired last deliveries to the dead-letter queue, and the lease of the
    /// next deliverable messages (rows the first part moves are not candidates of the second).
    public func receive(subscription: String, consumer: String, max: Int, visibilityTimeoutMs: Int?) async throws -> [Delivery] {
        let now = nowMs()
        let vis = visibilityTimeoutMs.map { Int64($0) }
        let rows = try await client.query("""
            WITH s AS (SELECT max_deliveries, visibility_ms FROM nova_bus_subscriptions WHERE id = \(subscription)),
            dead AS (
                UPDATE nova_bus_deliveries SET state = 'dead', dead_at_ms = \(now), token = NULL,
                       last_error = coalesce(last_error, 'the visibility timeout expired on the last delivery')
                WHERE subscription = \(subscription) AND state = 'leased' AND visible_at_ms <= \(now)
                  AND deliveries >= (SELECT max_deliveries FROM s)
                RETURNING 1),
            picked AS (
                SELECT c.seq FROM nova_bus_deliveries c
                WHERE c.subscription = \(subscription) AND c.state <> 'dead' AND c.visible_at_ms <= \(now)
                  AND NOT (c.state = 'leased' AND c.deliveries >= (SELECT max_deliveries FROM s))
                  AND (c.ordering_key IS NULL OR NOT EXISTS (
                      SELECT 1 FROM nova_bus_deliveries e WHERE e.subscription = c.subscription AND e.ordering_key = c.ordering_key
                                                           AND e.seq < c.seq AND e.state <> 'dead'))
                ORDER BY c.seq LIMIT \(Swift.max(1, max)) FOR UPDATE SKIP LOCKED)
            UPDATE nova_bus_deliveries AS d
               SET state = 'leased', visible_at_ms = \(now) + coalesce(\(vis)::BIGINT, (SELECT visibility_ms FROM s)), deliveries = d.deliveries + 1,
                   token = substr(md5(random()::text || clock_timestamp()::text), 1, 16), consumer = \(consumer)
            FROM nova_bus_messages m
            WHERE m.seq = d.seq AND d.subscription = \(subscription) AND d.seq IN (SELECT seq FROM picked)
            RETURNING d.deliveries, d.token, d.visible_at_ms, \(unescaped: Self.messageColumns)
            """, logger: logger)
        var out: [Delivery] = []
        for try await r in rows.decode((Int, String, Int64, String, Int64, String, String, String, String, String, String?, Int64).self) {
            let m = Self.message((r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11))
            out.append(Delivery(message: m, subscription: subscription, deliveryCount: r.0, receipt: BusLimits.receipt(seq: m.seq, token: r.1),
                                consumer: consumer, leaseUntilMs: r.2))
        }
        if out.isEmpty, try await self.subscription(subscription) == nil { throw BusError.unknownSubscription(subscription) }
        return out.sorted { $0.message.seq < $1.message.seq }
    }

    public func ack(subscription: String, receipts: [String]) async throws -> [Bool] {
        let parsed = receipts.map(BusLimits.parseReceipt)
        let valid = parsed.compactMap { $0 }
        if valid.isEmpty { return parsed.map { _ in false } }
        let seqs = valid.map { $0.seq }, tokens = valid.map { $0.token }
        var acked = Set<String>()
        for try await (seq) in try await client.query("""
            DELETE FROM nova_bus_deliveries AS d USING unnest(\(seqs)::BIGINT[], \(tokens)::TEXT[]) AS r(seq, token)
            WHERE d.subscription = \(subscription) AND d.seq = r.seq AND d.token = r.token AND d.state = 'leased' AND d.visible_at_ms > \(nowMs())
            RETURNING d.seq, r.token
            """, logger: logger).decode((Int64, String).self) { acked.insert(BusLimits.receipt(seq: seq.0, token: seq.1)) }
        return parsed.map { $0.map { acked.contains(BusLimits.receipt(seq: $0.seq, token: $0.token)) } ?? false }
    }

    /// Ends a lease without success (inside the caller's transaction).
    private func settleRow(subscription: String, seq: Int64, deliveries: Int, maxDeliveries: Int, delayMs: Int, error: String?,
                           on conn: PostgresConnection) async throws -> NackOutcome {
        let now = nowMs()
        if deliveries >= maxDeliveries {
            let reason = error ?? "nacked on the last delivery"
            try await conn.query("""
                UPDATE nova_bus_deliveries SET state = 'dead', dead_at_ms = \(now), token = NULL, last_error = \(reason)
                WHERE subscription = \(subscription) AND seq = \(seq)
                """, logger: logger)
            return .deadLettered
        }
        let visibleAt = now + Int64(Swift.max(0, delayMs))
        try await conn.query("""
            UPDATE nova_bus_deliveries SET state = 'ready', visible_at_ms = \(visibleAt), token = NULL, last_error = coalesce(\(error), last_error)
            WHERE subscription = \(subscription) AND seq = \(seq)
            """, logger: logger)
        if delayMs <= 0 { try await conn.query("SELECT pg_notify('nova_jobs', 'b:' || \(subscription))", logger: logger) }
        return .redelivered
    }

    public func nack(subscription: String, receipt: String, delayMs: Int, error: String?) async throws -> NackOutcome {
        guard let p = BusLimits.parseReceipt(receipt) else { throw BusError.notLeased("'\(receipt)' is not a receipt") }
        let now = nowMs()
        return try await inTransaction { [self] conn in
            var found: (Int, Int)?
            for try await r in try await conn.query("""
                SELECT d.deliveries, s.max_deliveries FROM nova_bus_deliveries d JOIN nova_bus_subscriptions s ON s.id = d.subscription
                WHERE d.subscription = \(subscription) AND d.seq = \(p.seq) AND d.state = 'leased' AND d.token = \(p.token) AND d.visible_at_ms > \(now)
                FOR UPDATE OF d
                """, logger: logger).decode((Int, Int).self) { found = r }
            guard let found else {
                throw BusError.notLeased("receipt \(receipt) holds no lease on subscription '\(subscription)' (acked, expired or redelivered)")
            }
            return try await settleRow(subscription: subscription, seq: p.seq, deliveries: found.0, maxDeliveries: found.1, delayMs: delayMs,
                                       error: error, on: conn)
        }
    }

    public func settle(subscription: String, messageId: String, succeeded: Bool, error: String?) async throws -> SettleOutcome {
        try await inTransaction { [self] conn in
            var found: (Int64, Int, Int)?
            for try await r in try await conn.query("""
                SELECT d.seq, d.deliveries, s.max_deliveries FROM nova_bus_deliveries d JOIN nova_bus_subscriptions s ON s.id = d.subscription
                JOIN nova_bus_messages m ON m.seq = d.seq WHERE d.subscription = \(subscription) AND m.id = \(messageId) AND d.state <> 'dead'
                FOR UPDATE OF d
                """, logger: logger).decode((Int64, Int, Int).self) { found = r }
            guard let found else { return .notFound }
            if succeeded {
                try await conn.query("DELETE FROM nova_bus_deliveries WHERE subscription = \(subscription) AND seq = \(found.0)", logger: logger)
                return .acked
            }
            let nacked = try await settleRow(subscription: subscription, seq: found.0, deliveries: Swift.max(1, found.1), maxDeliveries: found.2,
                                             delayMs: 0, error: error, on: conn)
            return nacked == .deadLettered ? .deadLettered : .redelivered
        }
    }

    public func extendLease(subscription: String, receipt: String, visibilityTimeoutMs: Int) async throws -> Bool {
        guard let p = BusLimits.parseReceipt(receipt) else { return false }
        let now = nowMs()
        let until = now + Int64(visibilityTimeoutMs)
        var extended = false
        for try await _ in try await client.query("""
            UPDATE nova_bus_deliveries SET visible_at_ms = \(until)
            WHERE subscription = \(subscription) AND seq = \(p.seq) AND state = 'leased' AND token = \(p.token) AND visible_at_ms > \(now) RETURNING 1
            """, logger: logger) { extended = true }
        return extended
    }

    // MARK: Dead letters

    private func deadLetters(_ q: PostgresQuery, subscription: String) async throws -> [DeadLetter] {
        var out: [DeadLetter] = []
        for try await r in try await client.query(q, logger: logger)
            .decode((Int, String?, Int64, String, Int64, String, String, String, String, String, String?, Int64).self) {
            out.append(DeadLetter(message: Self.message((r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10, r.11)), subscription: subscription,
                                  deliveryCount: r.0, lastError: r.1, deadAtMs: r.2))
        }
        return out
    }

    public func deadLetters(subscription: String, limit: Int, offset: Int) async throws -> [DeadLetter] {
        try await deadLetters("""
            SELECT d.deliveries, d.last_error, d.dead_at_ms, \(unescaped: Self.messageColumns)
            FROM nova_bus_deliveries d JOIN nova_bus_messages m ON m.seq = d.seq
            WHERE d.subscription = \(subscription) AND d.state = 'dead' ORDER BY d.seq LIMIT \(Swift.max(0, limit)) OFFSET \(Swift.max(0, offset))
            """, subscription: subscription)
    }

    public func deadLetter(subscription: String, messageId: String) async throws -> DeadLetter? {
        try await deadLetters("""
            SELECT d.deliveries, d.last_error, d.dead_at_ms, \(unescaped: Self.messageColumns)
            FROM nova_bus_deliveries d JOIN nova_bus_messages m ON m.seq = d.seq
            WHERE d.subscription = \(subscription) AND d.state = 'dead' AND m.id = \(messageId)
            """, subscription: subscription).first
    }

    public func replayDeadLetters(subscription: String, messageIds: [String]?) async throws -> Int {
        try await inTransaction { [self] conn in
            let n = try await count("""
                UPDATE nova_bus_deliveries SET state = 'ready', visible_at_ms = 0, deliveries = 0, dead_at_ms = NULL
                WHERE subscription = \(subscription) AND state = 'dead'
                  AND (\(messageIds == nil) OR seq IN (SELECT seq FROM nova_bus_messages WHERE id = ANY(\(messageIds ?? []))))
                RETURNING 1
                """, on: conn)
            if n > 0 { try await conn.query("SELECT pg_notify('nova_jobs', 'b:' || \(subscription))", logger: logger) }
            return n
        }
    }

    public func purgeDeadLetters(subscription: String, messageIds: [String]?) async throws -> Int {
        try await inTransaction { [self] conn in
            try await count("""
                DELETE FROM nova_bus_deliveries WHERE subscription = \(subscription) AND state = 'dead'
                  AND (\(messageIds == nil) OR seq IN (SELECT seq FROM nova_bus_messages WHERE id = ANY(\(messageIds ?? []))))
                RETURNING 1
                """, on: conn)
        }
    }

    // MARK: Stats, retention, wake-ups

    public func subscriptionStats(_ id: String) async throws -> SubscriptionStats {
        for try await r in try await client.query("""
            SELECT count(*) FILTER (WHERE state = 'ready'), count(*) FILTER (WHERE state = 'leased'), count(*) FILTER (WHERE state = 'dead'),
                   (SELECT min(m.created_at_ms) FROM nova_bus_deliveries x JOIN nova_bus_messages m ON m.seq = x.seq
                    WHERE x.subscription = \(id) AND x.state <> 'dead')
            FROM nova_bus_deliveries WHERE subscription = \(id)
            """, logger: logger).decode((Int, Int, Int, Int64?).self) {
            return SubscriptionStats(ready: r.0, leased: r.1, dead: r.2, oldestPendingAtMs: r.3)
        }
        return SubscriptionStats(ready: 0, leased: 0, dead: 0, oldestPendingAtMs: nil)
    }

    public func enforceRetention() async throws -> Int {
        let now = nowMs()
        return try await inTransaction { [self] conn in
            var dropped = 0
            for t in try await topics("SELECT \(unescaped: Self.topicColumns) FROM nova_bus_topics", on: conn) {
                var cutoff: Int64 = 0
                if let age = t.maxAgeMs {
                    for try await (seq) in try await conn.query("""
                        SELECT max(seq) FROM nova_bus_messages WHERE topic = \(t.name) AND created_at_ms < \(now - age)
                        """, logger: logger).decode(Int64?.self) { cutoff = Swift.max(cutoff, seq ?? 0) }
                }
                if let n = t.maxCount {
                    for try await (seq) in try await conn.query("""
                        SELECT seq FROM nova_bus_messages WHERE topic = \(t.name) ORDER BY seq DESC LIMIT 1 OFFSET \(n)
                        """, logger: logger).decode(Int64.self) { cutoff = Swift.max(cutoff, seq) }
                }
                guard cutoff > 0 else { continue }
                try await conn.query("""
                    DELETE FROM nova_bus_deliveries WHERE seq <= \(cutoff) AND subscription IN (SELECT id FROM nova_bus_subscriptions WHERE topic = \(t.name))
                    """, logger: logger)
                dropped += try await count("DELETE FROM nova_bus_messages WHERE topic = \(t.name) AND seq <= \(cutoff) RETURNING 1", on: conn)
            }
            return dropped
        }
    }

    public func busTicket() async -> UInt64 {
        _ = await wakeTicket()  // starts LISTEN (bus wake-ups come on the same channel)
        return busWake.ticket()
    }

    public func waitForMessages(since ticket: UInt64, timeoutMs: Int) async -> Bool {
        await busWake.wait(since: ticket, timeoutMs: timeoutMs)
    }
}
