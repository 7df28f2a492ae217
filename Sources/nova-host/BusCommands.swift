import ArgumentParser
import Foundation
import Host
import JSON

/// Opens the message bus over the host's store (the data directory or `--store` that `serve`
/// and `worker` use), acting as `--principal`: every operation is decided by the policy as
/// the `bus` tool that does the same, like REST calls are.
struct BusOptions: ParsableArguments {
    @OptionGroup var host: HostOptions
    @Option(help: "Who acts (default: $NOVA_PRINCIPAL or local): the sender of what is published, decided by the policy by its role.")
    var principal: String?
    @Flag(help: "Print JSON.") var json = false

    var who: String { principal ?? ProcessInfo.processInfo.environment["NOVA_PRINCIPAL"] ?? "local" }

    struct Opened {
        let nova: NovaHost
        let bus: BusService
        let who: String

        /// Exits 3 with the rule and reason when the policy denies the call.
        func authorize(_ tool: String, _ input: JSONValue) async throws {
            let d = await nova.decideOutsideRun(principal: who, role: nil, tool: tool, input: input)
            guard d.allowed else {
                Output.error("denied by rule \(d.ruleId): \(d.reason)")
                throw ExitCode(ExitStatus.denied)
            }
        }
    }

    func open() async throws -> Opened {
        let nova = try await host.makeHost(withData: true)
        guard let store = nova.episodes?.store, let bus = store.messageBus else {
            Output.error("the store has no message bus")
            throw ExitCode(ExitStatus.runFailed)
        }
        // The bus tools' manifests, so that policy conditions can read their inputs.
        if let agents = store.agentStore, let queue = store.jobQueue {
            AgentService(store: agents, queue: queue, host: nova).registerBusTools(BusService(bus: bus))
        }
        return Opened(nova: nova, bus: BusService(bus: bus), who: who)
    }

    func print(_ value: JSONValue, _ text: @autoclosure () -> String) {
        if json { Output.json(value) } else { Swift.print(text()) }
    }
}

/// Runs a bus operation: the caller's mistakes exit 2, what is not there or a lost lease 1,
/// store failures 1.
func busCall<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let e as BusError {
        Output.error(e.description)
        switch e {
        case .unknownTopic, .unknownSubscription, .unknownMessage, .notLeased: throw ExitCode(ExitStatus.runFailed)
        case .invalid, .tooLarge, .exists: throw ExitCode(ExitStatus.invalid)
        }
    } catch let e as ExitCode { throw e } catch {
        Output.error("the store failed: \(error)")
        throw ExitCode(ExitStatus.runFailed)
    }
}

/// `nova-host bus …`: the durable message bus.
struct BusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bus",
        abstract: "Publish, send, subscribe, receive and ack messages on the host's durable message bus.",
        discussion: """
            Topics hold messages; a subscription is a consumer group on a topic: each message reaches one of its \
            consumers, at least once. A received message is leased for the visibility timeout; ack it when done, \
            nack it to have it delivered again; after max_deliveries it goes to the subscription's dead-letter \
            queue (bus dlq). Messages with one ordering key reach a subscription in order, one at a time. \
            Every agent has an inbox (subscription _inbox.<agent id>) that bus send writes to.

            The store is the data directory's SQLite or --store (PostgreSQL), shared with serve and worker. \
            The policy decides every operation as the bus tool that does the same (bus.publish, bus.send, \
            bus.subscribe, bus.receive, bus.ack, bus.nack; conditions topics, agents, subscriptions).

            Exit codes: 0 done · 1 not there, lease lost or store failed · 2 invalid usage · 3 denied by policy.
            """,
        subcommands: [Topics.self, Publish.self, Send.self, Subscribe.self, Subscriptions.self, Receive.self, Ack.self, Nack.self, DLQ.self])

    struct MessageOptions: ParsableArguments {
        @Option(help: "How the payload argument is read: json (default), text, or base64.") var encoding: String = "json"
        @Option(name: .customLong("header"), help: ArgumentHelp("A header name=value (repeatable).", valueName: "name=value")) var headers: [String] = []
        @Option(help: "Messages with the same ordering key reach a subscription in order, one at a time.") var orderingKey: String?

        func request(_ payload: String) throws -> PublishRequest {
            guard let enc = PayloadEncoding(rawValue: encoding) else {
                Output.error("--encoding must be json, text or base64")
                throw ExitCode(ExitStatus.invalid)
            }
            let value = enc == .json ? try jsonArgument(payload, "the payload") : JSONValue.string(payload)
            var h: [String: String] = [:]
            for pair in headers {
                guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
                    Output.error("--header must be name=value")
                    throw ExitCode(ExitStatus.invalid)
                }
                h[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
            }
            return PublishRequest(payload: value, encoding: enc, headers: h, orderingKey: orderingKey)
        }
    }

    struct Topics: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create, list and delete topics.", subcommands: [Create.self, List.self, Delete.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Create a topic (again with the same settings: no change).")
            @Argument(help: "The topic's name: 1–128 of A-Z a-z 0-9 _ - . starting with a letter or digit.") var name: String
            @Option(help: "A JSON Schema (or @file) every JSON payload must match.") var schema: String?
            @Option(help: "Drop messages older than this (default 7 days).") var maxAgeSeconds: Int?
            @Option(help: "Keep at most this many messages (default 1000000).") var maxCount: Int?
            @OptionGroup var bus: BusOptions

            func run() async throws {
                let o = try await bus.open()
                let schemaValue = try schema.map { try jsonArgument($0, "--schema") }
                let (topic, created) = try await busCall {
                    try await o.bus.createTopic(name: name, schema: schemaValue, maxAgeSeconds: maxAgeSeconds, maxCount: maxCount, by: o.who)
                }
                bus.print(topic.json, "\(created ? "created" : "exists:") topic \(topic.name)")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List topics.")
            @OptionGroup var bus: BusOptions

            func run() async throws {
                let o = try await bus.open()
                let topics = try await busCall { try await o.bus.bus.listTopics() }.filter { !$0.name.hasPrefix("_") }
                bus.print(.array(topics.map(\.json)), topics.map { "\($0.name)\($0.schema == nil ? "" : "  (schema)")" }.joined(separator: "\n"))
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a topic with its messages and subscriptions.")
            @Argument var name: String
            @OptionGroup var bus: BusOptions

            func run() async throws {
                let o = try await bus.open()
                guard !name.hasPrefix("_") else {
                    Output.error("topics starting with _ are the host's own")
                    throw ExitCode(ExitStatus.invalid)
                }
                guard try await busCall({ try await o.bus.bus.deleteTopic(name) }) else {
                    Output.error("no topic '\(name)'")
                    throw ExitCode(ExitStatus.runFailed)
                }
                bus.print(["deleted": .string(name)], "deleted topic \(name)")
            }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a message to a topic.")
        @Argument(help: "The topic.") var topic: String
        @Argument(help: "The payload: JSON (or @file), or text/base64 with --encoding.") var payload: String
        @OptionGroup var message: MessageOptions
        @OptionGroup var bus: BusOptions

        func run() async throws {
            let o = try await bus.open()
            let request = try message.request(payload)
            try await o.authorize("bus.publish", ["topic": .string(topic), "payload": request.payload])
            let m = try await busCall { try await o.bus.publish(topic: topic, request, sender: o.who) }
            bus.print(m.json, m.id)
        }
    }

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a message to an agent's inbox.")
        @Argument(help: "The agent: id, name or namespace/name.") var agent: String
        @Argument(help: "The payload: JSON (or @file), or text/base64 with --encoding.") var payload: String
        @OptionGroup var message: MessageOptions
        @OptionGroup var bus: BusOptions

        func run() async throws {
            let o = try await bus.open()
            let request = try message.request(payload)
            guard let store = o.nova.episodes?.store, let agents = store.agentStore, let queue = store.jobQueue else {
                Output.error("the store has no agents")
                throw ExitCode(ExitStatus.runFailed)
            }
            let target = try await agentCall { try await AgentService(store: agents, queue: queue, host: o.nova).agent(agent) }
            try await o.authorize("bus.send", ["agent": .string(agent), "payload": request.payload])
            let m = try await busCall { try await o.bus.send(toAgent: target.id, request, sender: o.who) }
            bus.print(m.json, m.id)
        }
    }

    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a subscription (a consumer group) on a topic.")
        @Argument(help: "The subscription's id.") var id: String
        @Option(help: "The topic.") var topic: String
        @Option(help: "now: only messages published from now on (default); earliest: every message the topic retains.") var start: String = "now"
        @Option(help: "Deliveries before a message goes to the dead-letter queue (default 5).") var maxDeliveries: Int = BusLimits.defaultMaxDeliveries
        @Option(help: "How long a received message stays leased (ms; default 30000, 3600000 with a trigger).") var visibilityTimeoutMs: Int?
        @Option(help: "Start a goal of this agent per message (the message is its input `message`).") var triggerAgent: String?
        @Option(help: "The triggered goal's text.") var triggerGoal: String?
        @OptionGroup var bus: BusOptions

        func run() async throws {
            let o = try await bus.open()
            guard let s = SubscriptionStart(rawValue: start) else {
                Output.error("--start must be now or earliest")
                throw ExitCode(ExitStatus.invalid)
            }
            var trigger: JSONValue?
            if let a = triggerAgent {
                trigger = ["agent": .string(a), "goal": triggerGoal.map(JSONValue.string) ?? .null]
                _ = try await busCall { try TriggerSpec(json: trigger!) }
            } else if triggerGoal != nil {
                Output.error("--trigger-goal needs --trigger-agent")
                throw ExitCode(ExitStatus.invalid)
            }
            let sub = Subscription(id: id, topic: topic, maxDeliveries: maxDeliveries,
                                   visibilityTimeoutMs: visibilityTimeoutMs ?? (trigger == nil ? BusLimits.defaultVisibilityMs : 3_600_000),
                                   trigger: trigger, createdBy: o.who)
            try await o.authorize("bus.subscribe", ["id": .string(id), "topic": .string(topic)])
            let (stored, created) = try await busCall { try await o.bus.subscribe(sub, start: s) }
            bus.print(stored.json, "\(created ? "created" : "exists:") subscription \(stored.id) on \(stored.topic)")
        }
    }

    struct Subscriptions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List subscriptions with their lag (or show one).")
        @Argument(help: "One subscription to show.") var id: String?
        @Option(help: "Only those of this topic.") var topic: String?
        @OptionGroup var bus: BusOptions

        func run() async throws {
            let o = try await bus.open()
            let subs = try await busCall { () async throws -> [Subscription] in
                if let id { return [try await o.bus.subscription(id)] }
                return try await o.bus.bus.listSubscriptions(topic: topic)
            }
            var rows: [JSONValue] = []
            var lines: [String] = []
            for s in subs {
                let stats = try await busCall { try await o.bus.bus.subscriptionStats(s.id) }
                var j = s.json.objectValue ?? [:]
                j["stats"] = stats.json
                rows.append(.object(j))
                lines.append("\(s.id)  topic \(s.topic)  ready \(stats.ready)  leased \(stats.leased)  dead \(stats.dead)\(s.trigger == nil ? "" : "  (trigger)")")
            }
            bus.print(id == nil ? .array(rows) : rows[0], lines.joined(separator: "\n"))
        }
    }

    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Receive (lease) messages of a subscription; one JSON line per message.",
            discussion: "Each line holds the message and the receipt that ack and nack take. With --follow it keeps receiving until interrupted (or --count messages).")
        @Argument(help: "The subscription.") var subscription: String
        @Option(help: "At most this many per receive (1–100).") var max: Int = 10
        @Option(help: "Wait up to this long for a message (ms, up to 60000).") var waitMs: Int = 0
        @Option(help: "Lease for this long instead of the subscription's visibility timeout (ms).") var visibilityTimeoutMs: Int?
        @Option(help: "The consumer name the leases carry (default: the principal).") var consumer: String?
        @Flag(help: "Ack each message once printed.") var ack = false
        @Flag(help: "Keep receiving until interrupted.") var follow = false
        @Option(help: "With --follow: stop after this many messages.") var count: Int?
        @OptionGroup var bus: BusOptions

        func run() async throws {
            let o = try await bus.open()
            try await o.authorize("bus.receive", ["subscription": .string(subscription)])
            if ack { try await o.authorize("bus.ack", ["subscription": .string(subscription), "receipts": ["-"]]) }
            _ = try await busCall { try await o.bus.subscription(subscription) }
            if follow { Output.note("receiving from \(subscription) as \(consumer ?? o.who)\(ack ? ", acking" : "") (interrupt to stop)") }
            var seen = 0
            repeat {
                let want = Swift.min(max, count.map { $0 - seen } ?? max)
                let got = try await busCall {
                    try await o.bus.receive(subscription: subscription, consumer: consumer ?? o.who, max: want,
                                            waitMs: follow ? Swift.max(waitMs, 1_000) : waitMs, visibilityTimeoutMs: visibilityTimeoutMs)
                }
                // One write per batch, unbuffered: a reader sees each line as soon as it is leased.
                if !got.isEmpty { FileHandle.standardOutput.write(Data(got.map { d in d.json.serialized() + "\n" }.joined().utf8)) }
                if ack, !got.isEmpty { _ = try await busCall { try await o.bus.ack(subscription: subscription, receipts: got.map(\.receipt)) } }
                seen += got.count
            } while follow && (count.map { seen < $0 } ?? true)
        }
    }

    struct Ack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ack received messages by their receipts (exit 1 if one holds no lease).")
        @Argument(help: "The subscription.") var subscription: String
        @Argument(help: "Receipts from receive.") var receipts: [String]
        @OptionGroup var bus: BusOptions

        func run() async throws {
            let o = try await bus.open()
            try await o.authorize("bus.ack", ["subscription": .string(subscription), "receipts": .array(receipts.map(JSONValue.string))])
            let acked = try await busCall { try await o.bus.ack(subscription: subscription, receipts: receipts) }
            bus.print(["acked": .array(acked.map(JSONValue.bool))], zip(receipts, acked).map { "\($0) \($1 ? "acked" : "not leased")" }.joined(separator: "\n"))
            if acked.contains(false) { throw ExitCode(ExitStatus.runFailed) }
        }
    }

    struct Nack: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give a received message back (redelivered, or dead-lettered after its last delivery).")
        @Argument(help: "The subscription.") var subscription: String
        @Argument(help: "The receipt from receive.") var receipt: String
        @Option(help: "Deliver it again after this long (ms).") var delayMs: Int = 0
        @Option(help: "Why (kept with a dead letter).") var error: String?
        @OptionGroup var bus: BusOptions

        func run() async throws {
            let o = try await bus.open()
            try await o.authorize("bus.nack", ["subscription": .string(subscription), "receipt": .string(receipt)])
            let outcome = try await busCall { try await o.bus.nack(subscription: subscription, receipt: receipt, delayMs: delayMs, error: error) }
            bus.print(["outcome": .string(outcome.rawValue)], outcome.rawValue)
        }
    }

    struct DLQ: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dlq", abstract: "A subscription's dead-letter queue: list, show, replay, purge.",
            subcommands: [List.self, Show.self, Replay.self, Purge.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List dead letters, oldest first.")
            @Argument var subscription: String
            @Option var limit: Int = 50
            @Option var offset: Int = 0
            @OptionGroup var bus: BusOptions

            func run() async throws {
                let o = try await bus.open()
                _ = try await busCall { try await o.bus.subscription(subscription) }
                try await o.authorize("bus.receive", ["subscription": .string(subscription)])
                let dead = try await busCall { try await o.bus.bus.deadLetters(subscription: subscription, limit: limit, offset: offset) }
                bus.print(.array(dead.map(\.json)), dead.map { "\($0.message.id)  deliveries \($0.deliveryCount)  \($0.lastError ?? "")" }.joined(separator: "\n"))
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Show one dead letter with its message.")
            @Argument var subscription: String
            @Argument var messageId: String
            @OptionGroup var bus: BusOptions

            func run() async throws {
                let o = try await bus.open()
                try await o.authorize("bus.receive", ["subscription": .string(subscription)])
                guard let dead = try await busCall({ try await o.bus.bus.deadLetter(subscription: subscription, messageId: messageId) }) else {
                    Output.error("subscription '\(subscription)' has no dead letter \(messageId)")
                    throw ExitCode(ExitStatus.runFailed)
                }
                Output.json(dead.json)
            }
        }

        struct Replay: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Deliver dead letters again with a fresh delivery count (all, or those named).")
            @Argument var subscription: String
            @Argument var messageIds: [String] = []
            @OptionGroup var bus: BusOptions

            func run() async throws { try await DLQ.act(.replay, subscription, messageIds, bus) }
        }

        struct Purge: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete dead letters (all, or those named).")
            @Argument var subscription: String
            @Argument var messageIds: [String] = []
            @OptionGroup var bus: BusOptions

            func run() async throws { try await DLQ.act(.purge, subscription, messageIds, bus) }
        }

        /// Replays or purges, decided by the policy as `bus.ack` on the subscription.
        static func act(_ action: BusService.DeadLetterAction, _ subscription: String, _ ids: [String], _ bus: BusOptions) async throws {
            let o = try await bus.open()
            _ = try await busCall { try await o.bus.subscription(subscription) }
            try await o.authorize("bus.ack", ["subscription": .string(subscription), "receipts": ["dlq"]])
            let n = try await busCall { try await o.bus.deadLetters(action, subscription: subscription, messageIds: ids.isEmpty ? nil : ids) }
            bus.print(.object([action.done: .int(n)]), "\(action.done) \(n)")
        }
    }
}
