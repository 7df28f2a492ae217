import Foundation
import HostSupport
import JSON
import Schema
import Store
import Synchronization

/// Counters of the bus in this process, for `/metrics`.
public final class BusCounters: Sendable {
    public let published = Atomic<Int>(0)
    public let delivered = Atomic<Int>(0)
    public let acked = Atomic<Int>(0)
    /// Deliveries after the first (a nack or an expired lease brought the message back).
    public let redelivered = Atomic<Int>(0)
    public let deadLettered = Atomic<Int>(0)
    public init() {}
}

/// What a publish or send asks for, before checks.
public struct PublishRequest: Sendable {
    public var payload: JSONValue
    public var encoding: PayloadEncoding
    public var headers: [String: String]
    public var orderingKey: String?

    public init(payload: JSONValue, encoding: PayloadEncoding = .json, headers: [String: String] = [:], orderingKey: String? = nil) {
        (self.payload, self.encoding, self.headers, self.orderingKey) = (payload, encoding, headers, orderingKey)
    }

    /// Reads `{"payload": …, "encoding": …, "headers": {…}, "ordering_key": …}` (the REST body
    /// and the tools' input), naming the field that is wrong.
    public init(json body: JSONValue) throws(BusError) {
        guard let o = body.objectValue else { throw .invalid(field: "body", message: "must be a JSON object") }
        for key in o.keys.sorted() where !["payload", "encoding", "headers", "ordering_key", "topic", "agent"].contains(key) {
            throw .invalid(field: key, message: "unknown field (a message has payload, encoding, headers, ordering_key)")
        }
        guard let payload = o["payload"] else { throw .invalid(field: "payload", message: "is required") }
        var encoding = PayloadEncoding.json
        if let e = o["encoding"] {
            guard let s = e.stringValue, let parsed = PayloadEncoding(rawValue: s) else {
                throw .invalid(field: "encoding", message: "must be one of json, text, base64")
            }
            encoding = parsed
        }
        var headers: [String: String] = [:]
        if let h = o["headers"], h != .null {
            guard let obj = h.objectValue else { throw .invalid(field: "headers", message: "must be an object of strings") }
            for (k, v) in obj {
                guard let s = v.stringValue else { throw .invalid(field: "headers.\(k)", message: "must be a string") }
                headers[k] = s
            }
        }
        var key: String?
        if let k = o["ordering_key"], k != .null {
            guard let s = k.stringValue else { throw .invalid(field: "ordering_key", message: "must be a string") }
            key = s
        }
        self.init(payload: payload, encoding: encoding, headers: headers, orderingKey: key)
    }
}

/// The bus as every interface uses it (REST, CLI, the `bus` tools, triggers): names and
/// payloads checked, topic schemas enforced, long-poll receive, counters kept. The store does
/// the durable part (`MessageBusStore`).
public final class BusService: Sendable {
    public let bus: any MessageBusStore
    public let counters = BusCounters()
    /// Compiled topic schemas, keyed by topic and schema text (a recreated topic recompiles).
    private let schemas = Mutex<[String: CompiledSchema]>([:])
    /// Topics as last read (for their schema), each for `topicCacheMs`: a publish need not read
    /// its topic every time. The store still refuses a topic that is gone.
    private let topicCache = Mutex<[String: (topic: Topic, until: Int64)]>([:])
    static let topicCacheMs: Int64 = 1_000
    /// Inboxes known to exist (made or seen by this process).
    private let inboxes = Mutex<Set<String>>([])
    /// When retention last ran in this process (ms since the epoch).
    private let lastRetention = Atomic<Int64>(0)
    /// How often retention runs, at most, in one process.
    public static let retentionIntervalMs: Int64 = 60_000
    /// The longest long poll.
    public static let maxWaitMs = 60_000

    public init(bus: any MessageBusStore) {
        self.bus = bus
    }

    // MARK: Topics and subscriptions

    /// Creates a topic (idempotent for identical settings).
    public func createTopic(name: String, schema: JSONValue?, maxAgeSeconds: Int?, maxCount: Int?, by principal: String) async throws -> (topic: Topic, created: Bool) {
        guard BusLimits.isValidName(name) else {
            throw BusError.invalid(field: "name", message: "use 1–128 of A-Z a-z 0-9 _ - . starting with a letter or digit")
        }
        if let schema {
            do { _ = try Schema.compile(schema) } catch { throw BusError.invalid(field: "schema", message: "is not a valid JSON Schema: \(error)") }
        }
        if let s = maxAgeSeconds, s < 1 { throw BusError.invalid(field: "retention.max_age_seconds", message: "must be at least 1") }
        if let c = maxCount, c < 1 { throw BusError.invalid(field: "retention.max_count", message: "must be at least 1") }
        let topic = Topic(name: name, schema: schema, maxAgeMs: maxAgeSeconds.map { Int64($0) * 1000 } ?? BusLimits.defaultMaxAgeMs,
                          maxCount: maxCount ?? BusLimits.defaultMaxCount, createdBy: principal)
        return try await bus.createTopic(topic)
    }

    public func topic(_ name: String) async throws -> Topic {
        guard let t = try await bus.topic(name) else { throw BusError.unknownTopic(name) }
        return t
    }

    /// Creates a subscription (idempotent for identical settings).
    public func subscribe(_ s: Subscription, start: SubscriptionStart) async throws -> (subscription: Subscription, created: Bool) {
        if s.topic.hasPrefix("_") { throw BusError.invalid(field: "topic", message: "topics starting with _ are the host's own (agents' inboxes)") }
        return try await bus.createSubscription(s, start: start)
    }

    public func subscription(_ id: String) async throws -> Subscription {
        guard let s = try await bus.subscription(id) else { throw BusError.unknownSubscription(id) }
        return s
    }

    // MARK: Publish

    /// Publishes to `topic` as `sender` after the topic's schema accepts the payload.
    public func publish(topic name: String, _ request: PublishRequest, sender: String) async throws -> BusMessage {
        let now = BusLimits.nowMs()
        let topic: Topic
        if let cached = topicCache.withLock({ $0[name] }), cached.until > now { topic = cached.topic } else {
            topic = try await self.topic(name)
            topicCache.withLock { $0[name] = (topic, now + Self.topicCacheMs) }
        }
        try check(request, against: topic)
        let stored: BusMessage
        do { stored = try await store(request, topic: name, sender: sender) } catch let e as BusError {
            if case .unknownTopic = e { topicCache.withLock { _ = $0.removeValue(forKey: name) } }
            throw e
        }
        await retainIfDue()
        return stored
    }

    /// Stores one message and counts it. The store checks its size and fields
    /// (`BusLimits.problem`) before anything is written.
    private func store(_ request: PublishRequest, topic: String, sender: String) async throws -> BusMessage {
        let message = BusMessage(topic: topic, sender: sender, encoding: request.encoding, payload: request.payload,
                                 headers: request.headers, orderingKey: request.orderingKey)
        let stored = try await bus.publish([message])
        counters.published.add(stored.count, ordering: .relaxed)
        return stored[0]
    }

    /// Sends to an agent's inbox (topic and subscription `_inbox.<agent id>`, made on first use).
    public func send(toAgent agentId: String, _ request: PublishRequest, sender: String) async throws -> BusMessage {
        try await store(request, topic: try await ensureInbox(agentId: agentId), sender: sender)
    }

    /// The agent's inbox subscription id (created with its topic when missing).
    @discardableResult
    public func ensureInbox(agentId: String) async throws -> String {
        let name = BusLimits.inbox(agentId: agentId)
        guard BusLimits.isValidName(name, reserved: true) else { throw BusError.invalid(field: "agent", message: "not an agent id") }
        if inboxes.withLock({ $0.contains(name) }) { return name }
        _ = try await bus.createTopic(Topic(name: name, createdBy: "nova-host"))
        _ = try await bus.createSubscription(Subscription(id: name, topic: name, createdBy: "nova-host"), start: .earliest)
        inboxes.withLock { _ = $0.insert(name) }
        return name
    }

    private func check(_ request: PublishRequest, against topic: Topic) throws {
        guard let schemaJSON = topic.schema else { return }
        guard request.encoding == .json else {
            throw BusError.invalid(field: "encoding", message: "topic '\(topic.name)' declares a schema: its messages are JSON")
        }
        let key = topic.name + "\u{0}" + schemaJSON.serialized(sortedKeys: true)
        let compiled: CompiledSchema
        if let c = schemas.withLock({ $0[key] }) { compiled = c } else {
            do { compiled = try Schema.compile(schemaJSON) } catch {
                throw BusError.invalid(field: "schema", message: "the topic's schema does not compile: \(error)")
            }
            schemas.withLock { $0[key] = compiled }
        }
        let result = compiled.validate(request.payload)
        if let e = result.errors.first {
            let field = "payload" + e.instanceLocation.replacingOccurrences(of: "/", with: ".")
            throw BusError.invalid(field: field, message: "\(e.message) (topic '\(topic.name)' schema)")
        }
    }

    // MARK: Receive, ack, nack

    /// Leases up to `max` messages to `consumer`; waits up to `waitMs` for one when none is
    /// deliverable (woken by a publish here or elsewhere, not by a poll tick).
    public func receive(subscription: String, consumer: String, max: Int, waitMs: Int, visibilityTimeoutMs: Int?) async throws -> [Delivery] {
        if !(1...100).contains(max) { throw BusError.invalid(field: "max", message: "must be from 1 to 100") }
        if !(0...Self.maxWaitMs).contains(waitMs) { throw BusError.invalid(field: "wait", message: "must be from 0 to \(Self.maxWaitMs) ms") }
        if let v = visibilityTimeoutMs, !(100...43_200_000).contains(v) {
            throw BusError.invalid(field: "visibility_timeout_ms", message: "must be from 100 to 43200000")
        }
        if consumer.isEmpty || consumer.utf8.count > 256 { throw BusError.invalid(field: "consumer", message: "must be 1–256 bytes") }
        let deadline = ContinuousClock.now + .milliseconds(waitMs)
        while true {
            let ticket = await bus.busTicket()
            let got = try await bus.receive(subscription: subscription, consumer: consumer, max: max, visibilityTimeoutMs: visibilityTimeoutMs)
            if !got.isEmpty || Task.isCancelled {
                counters.delivered.add(got.count, ordering: .relaxed)
                counters.redelivered.add(got.filter { $0.deliveryCount > 1 }.count, ordering: .relaxed)
                // A full batch: there may be more, so let another waiting receiver look.
                if got.count == max { turns.pass(subscription) }
                return got
            }
            let left = (deadline - ContinuousClock.now).milliseconds
            if left <= 0 { return [] }
            // Leases that expire, and nacks with a delay, wake no one: look again at least every second.
            let waitMs = Int(Swift.min(left, 1_000))
            if turns.lead(subscription) {
                await bus.waitForMessages(since: ticket, timeoutMs: waitMs)
                turns.resign(subscription)
            } else {
                await turns.follow(subscription, timeoutMs: waitMs)
            }
        }
    }

    /// Who of this process's waiting receivers watches the store for each subscription.
    private let turns = ReceiverTurns()

    /// Acks receipts; throws `notLeased` naming the first that held no lease (the others are acked).
    public func ack(subscription: String, receipts: [String]) async throws -> [Bool] {
        if receipts.isEmpty || receipts.count > 100 { throw BusError.invalid(field: "receipts", message: "give 1 to 100 receipts") }
        _ = try await self.subscription(subscription)
        let done = try await bus.ack(subscription: subscription, receipts: receipts)
        counters.acked.add(done.filter { $0 }.count, ordering: .relaxed)
        return done
    }

    public func nack(subscription: String, receipt: String, delayMs: Int, error: String?) async throws -> NackOutcome {
        if !(0...43_200_000).contains(delayMs) { throw BusError.invalid(field: "delay_ms", message: "must be from 0 to 43200000") }
        _ = try await self.subscription(subscription)
        let outcome = try await bus.nack(subscription: subscription, receipt: receipt, delayMs: delayMs, error: error.map { String($0.prefix(4096)) })
        if outcome == .deadLettered { counters.deadLettered.add(1, ordering: .relaxed) }
        return outcome
    }

    /// Acks or nacks a trigger's message when its goal ends.
    public func settle(subscription: String, messageId: String, succeeded: Bool, error: String?) async throws -> SettleOutcome {
        let outcome = try await bus.settle(subscription: subscription, messageId: messageId, succeeded: succeeded, error: error.map { String($0.prefix(4096)) })
        switch outcome {
        case .acked: counters.acked.add(1, ordering: .relaxed)
        case .deadLettered: counters.deadLettered.add(1, ordering: .relaxed)
        case .redelivered, .notFound: break
        }
        return outcome
    }

    /// What can be done to dead letters in bulk.
    public enum DeadLetterAction: String, Sendable, CaseIterable {
        case replay, purge
        /// The answer's key: how many were replayed or purged.
        public var done: String { self == .replay ? "replayed" : "purged" }
    }

    /// Replays or purges dead letters of an existing subscription (all when `messageIds` is nil).
    public func deadLetters(_ action: DeadLetterAction, subscription: String, messageIds: [String]?) async throws -> Int {
        _ = try await self.subscription(subscription)
        switch action {
        case .replay: return try await bus.replayDeadLetters(subscription: subscription, messageIds: messageIds)
        case .purge: return try await bus.purgeDeadLetters(subscription: subscription, messageIds: messageIds)
        }
    }

    // MARK: Retention

    /// Runs retention when it has not run in this process for `retentionIntervalMs`.
    public func retainIfDue() async {
        let now = BusLimits.nowMs()
        let last = lastRetention.load(ordering: .relaxed)
        guard now - last >= Self.retentionIntervalMs,
              lastRetention.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { return }
        _ = try? await bus.enforceRetention()
    }
}

extension Duration {
    /// Whole milliseconds (rounded down).
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

/// Receivers of one subscription waiting in this process take turns watching the store: one
/// leads (waits for the store's wake-up), the others follow (wait to be handed the turn). A
/// publish then costs one or two lease attempts in the process instead of one per waiting
/// receiver (a thundering herd). The leader hands the turn on when it wakes; a receiver that
/// took a full batch hands it on too, since more may be waiting.
final class ReceiverTurns: Sendable {
    private struct Follower {
        var id: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var leaders: Set<String> = []
        var followers: [String: [Follower]] = [:]
        var nextId = 0
    }

    private let state = Mutex(State())

    /// Takes the lead for `subscription` if no one holds it.
    func lead(_ subscription: String) -> Bool {
        state.withLock { $0.leaders.insert(subscription).inserted }
    }

    /// Gives up the lead and wakes one follower (it looks, then leads).
    func resign(_ subscription: String) {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.leaders.remove(subscription)
            return Self.takeFirst(&s, subscription)
        }
        next?.resume()
    }

    /// Wakes one follower: there may be more messages.
    func pass(_ subscription: String) {
        state.withLock { Self.takeFirst(&$0, subscription) }?.resume()
    }

    private static func takeFirst(_ s: inout State, _ subscription: String) -> CheckedContinuation<Void, Never>? {
        guard var queue = s.followers[subscription], !queue.isEmpty else { return nil }
        let first = queue.removeFirst()
        s.followers[subscription] = queue.isEmpty ? nil : queue
        return first.continuation
    }

    private func remove(_ subscription: String, _ id: Int) -> CheckedContinuation<Void, Never>? {
        state.withLock { s in
            guard var queue = s.followers[subscription], let i = queue.firstIndex(where: { $0.id == id }) else { return nil }
            let f = queue.remove(at: i)
            s.followers[subscription] = queue.isEmpty ? nil : queue
            return f.continuation
        }
    }

    /// Waits until handed the turn, `timeoutMs` passes, or the task is cancelled.
    func follow(_ subscription: String, timeoutMs: Int) async {
        let id = state.withLock { s -> Int in
            s.nextId += 1
            return s.nextId
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { s -> Bool in
                            if Task.isCancelled { return true }
                            s.followers[subscription, default: []].append(Follower(id: id, continuation: c))
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    self.remove(subscription, id)?.resume()
                }
            }
            group.addTask { try? await Task.sleep(for: .milliseconds(Swift.max(0, timeoutMs))) }
            await group.next()
            group.cancelAll()
        }
    }
}
