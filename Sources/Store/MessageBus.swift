import Foundation
import HostSupport
import JSON

/// A topic: a named stream of messages that subscriptions read.
public struct Topic: Sendable, Equatable {
    public var name: String
    /// A JSON Schema every published JSON payload must match (nil: any payload).
    public var schema: JSONValue?
    /// Messages older than this are dropped (nil: kept until `maxCount` drops them).
    public var maxAgeMs: Int64?
    /// At most this many messages are kept, the oldest dropped first (nil: no count limit).
    public var maxCount: Int?
    public var createdBy: String
    public var createdAtMs: Int64

    public init(name: String, schema: JSONValue? = nil, maxAgeMs: Int64? = BusLimits.defaultMaxAgeMs, maxCount: Int? = BusLimits.defaultMaxCount,
                createdBy: String, createdAtMs: Int64 = BusLimits.nowMs()) {
        (self.name, self.schema, self.maxAgeMs, self.maxCount, self.createdBy, self.createdAtMs) = (name, schema, maxAgeMs, maxCount, createdBy, createdAtMs)
    }

    /// The API form.
    public var json: JSONValue {
        ["name": .string(name), "schema": schema ?? .null,
         "retention": ["max_age_seconds": maxAgeMs.map { .int(Int($0 / 1000)) } ?? .null, "max_count": maxCount.map { .int($0) } ?? .null],
         "created_by": .string(createdBy), "created_at": .string(BusLimits.time(createdAtMs))]
    }
}

/// How a message's payload is carried.
public enum PayloadEncoding: String, Sendable, CaseIterable {
    /// Any JSON value.
    case json
    /// A string, taken as text.
    case text
    /// A string holding bytes as standard base64.
    case base64
}

/// One published message, as stored.
public struct BusMessage: Sendable, Equatable {
    public var id: String
    /// The store-wide sequence number (assigned on publish; 0 before).
    public var seq: Int64
    public var topic: String
    /// Who published it: the authenticated principal, or `agent:<id>` for an agent's goal.
    public var sender: String
    public var encoding: PayloadEncoding
    public var payload: JSONValue
    public var headers: [String: String]
    /// Messages with the same key reach a subscription in order, one at a time.
    public var orderingKey: String?
    public var createdAtMs: Int64

    public init(id: String = RunId.make(), seq: Int64 = 0, topic: String, sender: String, encoding: PayloadEncoding = .json,
                payload: JSONValue, headers: [String: String] = [:], orderingKey: String? = nil, createdAtMs: Int64 = BusLimits.nowMs()) {
        (self.id, self.seq, self.topic, self.sender, self.encoding, self.payload) = (id, seq, topic, sender, encoding, payload)
        (self.headers, self.orderingKey, self.createdAtMs) = (headers, orderingKey, createdAtMs)
    }

    /// The API form.
    public var json: JSONValue {
        ["id": .string(id), "seq": .int(Int(seq)), "topic": .string(topic), "sender": .string(sender), "encoding": .string(encoding.rawValue),
         "payload": payload, "headers": .object(headers.mapValues(JSONValue.string)),
         "ordering_key": orderingKey.map(JSONValue.string) ?? .null, "created_at": .string(BusLimits.time(createdAtMs))]
    }

    /// The headers as stored (a JSON object of strings).
    public var headersText: String {
        JSONValue.object(headers.mapValues(JSONValue.string)).serialized(sortedKeys: true)
    }

    public static func headers(fromText text: String) -> [String: String] {
        guard let o = (try? JSONValue.parse(text))?.objectValue else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in o { if let s = v.stringValue { out[k] = s } }
        return out
    }
}

/// Where a new subscription starts reading its topic.
public enum SubscriptionStart: String, Sendable {
    /// Only messages published after it was created.
    case now
    /// Every message the topic still retains, then new ones.
    case earliest
}

/// A subscription: a consumer group on a topic. Every message published to the topic after
/// it starts is delivered to one of its consumers; consumers receiving from the same
/// subscription share its messages.
public struct Subscription: Sendable, Equatable {
    public var id: String
    public var topic: String
    /// Deliveries before a message goes to the dead-letter queue.
    public var maxDeliveries: Int
    /// How long a received message stays invisible to other consumers unless acked or nacked.
    public var visibilityTimeoutMs: Int
    /// Start a goal per message (`{"agent": …, "goal": …}`), if set.
    public var trigger: JSONValue?
    public var createdBy: String
    public var createdAtMs: Int64

    public init(id: String, topic: String, maxDeliveries: Int = BusLimits.defaultMaxDeliveries, visibilityTimeoutMs: Int = BusLimits.defaultVisibilityMs,
                trigger: JSONValue? = nil, createdBy: String, createdAtMs: Int64 = BusLimits.nowMs()) {
        (self.id, self.topic, self.maxDeliveries, self.visibilityTimeoutMs) = (id, topic, maxDeliveries, visibilityTimeoutMs)
        (self.trigger, self.createdBy, self.createdAtMs) = (trigger, createdBy, createdAtMs)
    }

    public var json: JSONValue {
        ["id": .string(id), "topic": .string(topic), "max_deliveries": .int(maxDeliveries), "visibility_timeout_ms": .int(visibilityTimeoutMs),
         "trigger": trigger ?? .null, "created_by": .string(createdBy), "created_at": .string(BusLimits.time(createdAtMs))]
    }
}

/// A message leased to one consumer of a subscription until `leaseUntilMs`.
public struct Delivery: Sendable, Equatable {
    public var message: BusMessage
    public var subscription: String
    /// 1 on the first delivery; more after nacks and expired leases.
    public var deliveryCount: Int
    /// What `ack` and `nack` take: names this lease, and only this lease.
    public var receipt: String
    public var consumer: String
    public var leaseUntilMs: Int64

    public init(message: BusMessage, subscription: String, deliveryCount: Int, receipt: String, consumer: String, leaseUntilMs: Int64) {
        (self.message, self.subscription, self.deliveryCount, self.receipt, self.consumer, self.leaseUntilMs) =
            (message, subscription, deliveryCount, receipt, consumer, leaseUntilMs)
    }

    public var json: JSONValue {
        ["message": message.json, "subscription": .string(subscription), "delivery_count": .int(deliveryCount),
         "receipt": .string(receipt), "consumer": .string(consumer), "lease_until": .string(BusLimits.time(leaseUntilMs))]
    }
}

/// A message in a subscription's dead-letter queue.
public struct DeadLetter: Sendable, Equatable {
    public var message: BusMessage
    public var subscription: String
    public var deliveryCount: Int
    /// The last nack's error, or why it was dead-lettered.
    public var lastError: String?
    public var deadAtMs: Int64

    public init(message: BusMessage, subscription: String, deliveryCount: Int, lastError: String?, deadAtMs: Int64) {
        (self.message, self.subscription, self.deliveryCount, self.lastError, self.deadAtMs) = (message, subscription, deliveryCount, lastError, deadAtMs)
    }

    public var json: JSONValue {
        ["message": message.json, "subscription": .string(subscription), "delivery_count": .int(deliveryCount),
         "last_error": lastError.map(JSONValue.string) ?? .null, "dead_at": .string(BusLimits.time(deadAtMs))]
    }
}

/// What a nack did.
public enum NackOutcome: String, Sendable, Equatable {
    /// Visible again (after the delay asked for).
    case redelivered
    /// It had used its last delivery: moved to the dead-letter queue.
    case deadLettered = "dead_lettered"
}

/// What `settle` did.
public enum SettleOutcome: String, Sendable, Equatable {
    case acked
    case redelivered
    case deadLettered = "dead_lettered"
    /// The subscription holds no live delivery of that message (already settled or purged).
    case notFound = "not_found"
}

/// How far behind a subscription is.
public struct SubscriptionStats: Sendable, Equatable {
    /// Messages waiting to be received (visible now or after a nack's delay).
    public var ready: Int
    /// Messages leased to consumers, not yet acked.
    public var leased: Int
    /// Messages in the dead-letter queue.
    public var dead: Int
    /// When the oldest message not yet acked was published (nil: none).
    public var oldestPendingAtMs: Int64?

    public init(ready: Int, leased: Int, dead: Int, oldestPendingAtMs: Int64?) {
        (self.ready, self.leased, self.dead, self.oldestPendingAtMs) = (ready, leased, dead, oldestPendingAtMs)
    }

    public var json: JSONValue {
        ["ready": .int(ready), "leased": .int(leased), "dead": .int(dead), "lag": .int(ready + leased),
         "oldest_pending_at": oldestPendingAtMs.map { .string(BusLimits.time($0)) } ?? .null]
    }
}

/// A bus operation refused; every interface maps it the same way (`httpStatus`, `code`).
public enum BusError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownTopic(String)
    case unknownSubscription(String)
    case unknownMessage(String)
    /// A topic or subscription with that name exists (with other settings).
    case exists(String)
    case invalid(field: String, message: String)
    case tooLarge(String)
    /// The receipt names no lease this subscription holds now (acked, expired or redelivered).
    case notLeased(String)

    public var description: String {
        switch self {
        case .unknownTopic(let t): "no topic '\(t)'"
        case .unknownSubscription(let s): "no subscription '\(s)'"
        case .unknownMessage(let m), .exists(let m), .tooLarge(let m), .notLeased(let m): m
        case .invalid(let field, let message): "\(field): \(message)"
        }
    }

    public var httpStatus: Int {
        switch self {
        case .unknownTopic, .unknownSubscription, .unknownMessage: 404
        case .exists, .notLeased: 409
        case .invalid: 422
        case .tooLarge: 413
        }
    }

    public var code: String {
        switch self {
        case .unknownTopic: "unknown_topic"
        case .unknownSubscription: "unknown_subscription"
        case .unknownMessage: "not_found"
        case .exists: "exists"
        case .invalid: "invalid_request"
        case .tooLarge: "too_large"
        case .notLeased: "not_leased"
        }
    }
}

/// Names, limits and defaults of the bus, checked the same way on every backend.
public enum BusLimits {
    public static let defaultMaxAgeMs: Int64 = 7 * 86_400_000
    public static let defaultMaxCount = 1_000_000
    public static let defaultMaxDeliveries = 5
    public static let defaultVisibilityMs = 30_000
    /// The largest payload: its JSON text, or the decoded bytes of a base64 one.
    public static let maxPayloadBytes = 256 * 1024
    /// Topics whose name starts with `_` are the host's own (agents' inboxes).
    public static let inboxPrefix = "_inbox."

    public static func nowMs() -> Int64 { Timestamps.wallNanos() / 1_000_000 }
    static func time(_ ms: Int64) -> String { Timestamps.format(nanosSinceEpoch: ms * 1_000_000) }

    /// A topic or subscription name: 1–128 of `A-Z a-z 0-9 _ - .`, starting with a letter or
    /// digit (or `_` for the host's own, when `reserved`).
    public static func isValidName(_ name: String, reserved: Bool = false) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...128).contains(bytes.count), let first = bytes.first else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) }
        guard alnum(first) || (reserved && first == UInt8(ascii: "_")) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    /// The inbox topic (and its one subscription) of an agent.
    public static func inbox(agentId: String) -> String { inboxPrefix + agentId }

    /// Splits a receipt into the message's seq and the lease token.
    public static func parseReceipt(_ receipt: String) -> (seq: Int64, token: String)? {
        guard let dot = receipt.firstIndex(of: "."), let seq = Int64(receipt[..<dot]), seq > 0 else { return nil }
        let token = String(receipt[receipt.index(after: dot)...])
        return token.isEmpty ? nil : (seq, token)
    }

    public static func receipt(seq: Int64, token: String) -> String { "\(seq).\(token)" }

    /// The payload's size as counted against `maxPayloadBytes`.
    public static func payloadBytes(_ encoding: PayloadEncoding, _ payload: JSONValue) -> Int {
        switch encoding {
        case .json: return payload.serialized().utf8.count
        case .text: return payload.stringValue?.utf8.count ?? 0
        case .base64: return ((payload.stringValue?.utf8.count ?? 0) / 4) * 3
        }
    }

    /// Why `message` cannot be published as it is, if so (schemas are checked by the service).
    public static func problem(_ message: BusMessage) -> BusError? {
        switch message.encoding {
        case .json: break
        case .text:
            if message.payload.stringValue == nil { return .invalid(field: "payload", message: "must be a string when encoding is text") }
        case .base64:
            guard let s = message.payload.stringValue, Data(base64Encoded: s) != nil else {
                return .invalid(field: "payload", message: "must be standard base64 when encoding is base64")
            }
        }
        let size = payloadBytes(message.encoding, message.payload)
        if size > maxPayloadBytes { return .tooLarge("the payload is \(size) bytes; a message holds at most \(maxPayloadBytes)") }
        if message.headers.count > 64 { return .invalid(field: "headers", message: "at most 64 headers") }
        for (k, v) in message.headers where k.isEmpty || k.utf8.count > 128 || v.utf8.count > 4096 {
            return .invalid(field: "headers", message: "header names must be 1–128 bytes and values at most 4096 bytes")
        }
        if let key = message.orderingKey, key.isEmpty || key.utf8.count > 256 {
            return .invalid(field: "ordering_key", message: "must be 1–256 bytes")
        }
        return nil
    }

    /// Why `subscription` cannot be created as it is, if so.
    public static func problem(_ s: Subscription) -> BusError? {
        if !isValidName(s.id, reserved: s.id.hasPrefix(inboxPrefix)) { return .invalid(field: "id", message: "use 1–128 of A-Z a-z 0-9 _ - . starting with a letter or digit") }
        if !(1...1_000).contains(s.maxDeliveries) { return .invalid(field: "max_deliveries", message: "must be from 1 to 1000") }
        if !(100...43_200_000).contains(s.visibilityTimeoutMs) { return .invalid(field: "visibility_timeout_ms", message: "must be from 100 to 43200000 (12 hours)") }
        return nil
    }
}

/// A durable message bus in the host store (SQLite on one machine, PostgreSQL across hosts):
/// topics, subscriptions as consumer groups, at-least-once delivery with leases, and a
/// dead-letter queue per subscription.
///
/// Delivery: `publish` fans a message out to one delivery row per subscription of its topic,
/// in the publishing transaction. `receive` leases deliveries to a consumer for the
/// subscription's visibility timeout (or the one asked for); `ack` deletes one, `nack` makes
/// it visible again (or dead after `maxDeliveries`); a lease that expires makes it visible
/// again, counted as a delivery. Deliveries with the same ordering key are leased one at a
/// time, in publish order.
public protocol MessageBusStore: Sendable {
    /// Creates the topic; an identical existing one is returned with `created` false, a
    /// different one throws `BusError.exists`.
    func createTopic(_ topic: Topic) async throws -> (topic: Topic, created: Bool)
    func topic(_ name: String) async throws -> Topic?
    func listTopics() async throws -> [Topic]
    /// Deletes the topic with its messages and subscriptions; false when there was none.
    func deleteTopic(_ name: String) async throws -> Bool

    /// Creates the subscription (`start` decides whether retained messages are delivered); an
    /// identical existing one is returned with `created` false, a different one throws.
    func createSubscription(_ subscription: Subscription, start: SubscriptionStart) async throws -> (subscription: Subscription, created: Bool)
    func subscription(_ id: String) async throws -> Subscription?
    /// Subscriptions, of one topic when given, by id.
    func listSubscriptions(topic: String?) async throws -> [Subscription]
    /// Deletes the subscription with its deliveries and dead letters; false when there was none.
    func deleteSubscription(_ id: String) async throws -> Bool

    /// Stores the messages (each to an existing topic) and their deliveries in one
    /// transaction, durable on return. Returns them with their seq.
    func publish(_ messages: [BusMessage]) async throws -> [BusMessage]
    /// Leases up to `max` deliverable messages of the subscription to `consumer` for
    /// `visibilityTimeoutMs` (nil: the subscription's). Messages out of deliveries go to the
    /// dead-letter queue on the way.
    func receive(subscription: String, consumer: String, max: Int, visibilityTimeoutMs: Int?) async throws -> [Delivery]
    /// Acks leased deliveries, in one transaction; for each receipt, whether it was still leased.
    func ack(subscription: String, receipts: [String]) async throws -> [Bool]
    /// Ends a lease without success: visible again after `delayMs`, or dead after its last
    /// delivery. Throws `BusError.notLeased` when the receipt holds no lease.
    func nack(subscription: String, receipt: String, delayMs: Int, error: String?) async throws -> NackOutcome
    /// Settles a message's delivery on behalf of the host (a trigger's goal ended), whoever
    /// holds its lease: `succeeded` acks it, else it is nacked with `error`.
    func settle(subscription: String, messageId: String, succeeded: Bool, error: String?) async throws -> SettleOutcome
    /// Extends a lease (a trigger's goal is still running); false when it is not held.
    func extendLease(subscription: String, receipt: String, visibilityTimeoutMs: Int) async throws -> Bool

    /// The dead-letter queue, oldest first.
    func deadLetters(subscription: String, limit: Int, offset: Int) async throws -> [DeadLetter]
    func deadLetter(subscription: String, messageId: String) async throws -> DeadLetter?
    /// Makes dead letters deliverable again with a fresh delivery count (all when `messageIds`
    /// is nil). Returns how many.
    func replayDeadLetters(subscription: String, messageIds: [String]?) async throws -> Int
    /// Deletes dead letters (all when `messageIds` is nil). Returns how many.
    func purgeDeadLetters(subscription: String, messageIds: [String]?) async throws -> Int

    func subscriptionStats(_ id: String) async throws -> SubscriptionStats
    /// Drops messages past their topic's retention (with their deliveries). Returns how many.
    func enforceRetention() async throws -> Int

    /// The current wake-up count: take it before looking, then `waitForMessages` with it.
    func busTicket() async -> UInt64
    /// Returns true when a message may have become deliverable since `ticket` (a publish,
    /// nack or replay here, or on another process or host), false after `timeoutMs`.
    @discardableResult
    func waitForMessages(since ticket: UInt64, timeoutMs: Int) async -> Bool
}

extension HostStore {
    /// The store's message bus (both shipped stores have one).
    public var messageBus: (any MessageBusStore)? { self as? any MessageBusStore }
}
