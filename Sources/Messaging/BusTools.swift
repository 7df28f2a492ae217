import Drivers
import HostSupport
import JSON
import Store

/// The built-in `bus` driver: `bus.publish`, `bus.send`, `bus.receive`, `bus.ack`, `bus.nack`,
/// served by the host through the same `ToolDriver` seam as any `.so`, so policy (conditions
/// `topics`, `agents`, `subscriptions` over the declared inputs), schemas and episodes apply
/// unchanged. The sender of what it publishes is the run's agent (`agent:<id>`) or principal,
/// never the input's say.
public struct BusToolDriver: ToolDriver {
    let service: BusService
    /// The agent whose goal a run is (nil: the run is not a goal).
    let agentOfRun: @Sendable (String) async -> String?
    /// An agent's id from its id or name (nil: no such agent).
    let resolveAgent: @Sendable (String) async -> String?
    public let manifest: DriverManifest

    static let messageProperties: [String: JSONValue] = [
        "payload": [:], "encoding": ["enum": ["json", "text", "base64"]],
        "headers": ["type": "object", "additionalProperties": ["type": "string"]], "ordering_key": ["type": "string", "minLength": 1],
    ]
    static let deliveryList: JSONValue = ["type": "object", "required": ["messages"], "properties": ["messages": ["type": "array"]]]

    public static let manifestJSON: JSONValue = [
        "name": "bus", "version": "1.0.0",
        "description": "The host's message bus: publish to topics, message agents, receive and settle with at-least-once delivery.",
        "concurrency": "thread_safe",
        "permissions": ["network": false, "filesystem": false, "process": false],
        "tools": [
            ["name": "publish", "description": "Publish a message to a topic (the topic's schema must accept a JSON payload).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["topic", "payload"],
                             "properties": .object(messageProperties.merging(["topic": ["type": "string", "minLength": 1]]) { a, _ in a })],
             "outputSchema": ["type": "object", "required": ["id", "seq"], "properties": ["id": ["type": "string"], "seq": ["type": "integer"]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false],
             "policyInputs": ["topic": "/topic"]],
            ["name": "send", "description": "Send a message to an agent's inbox (by id or name).",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["agent", "payload"],
                             "properties": .object(messageProperties.merging(["agent": ["type": "string", "minLength": 1]]) { a, _ in a })],
             "outputSchema": ["type": "object", "required": ["id", "seq"], "properties": ["id": ["type": "string"], "seq": ["type": "integer"]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false],
             "policyInputs": ["agent": "/agent"]],
            ["name": "subscribe", "description": "Create a subscription to a topic (idempotent for identical settings); start \"now\" or \"earliest\".",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["id", "topic"],
                             "properties": ["id": ["type": "string", "minLength": 1], "topic": ["type": "string", "minLength": 1],
                                            "start": ["enum": ["now", "earliest"]], "max_deliveries": ["type": "integer", "minimum": 1, "maximum": 1_000],
                                            "visibility_timeout_ms": ["type": "integer", "minimum": 100, "maximum": 43_200_000]]],
             "outputSchema": ["type": "object", "required": ["id", "created"], "properties": ["id": ["type": "string"], "created": ["type": "boolean"]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false],
             "policyInputs": ["topic": "/topic"]],
            ["name": "receive", "description": "Lease up to max messages of a subscription (\"inbox\": the running agent's own inbox), waiting up to wait_ms for one.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["subscription"],
                             "properties": ["subscription": ["type": "string", "minLength": 1], "max": ["type": "integer", "minimum": 1, "maximum": 100],
                                            "wait_ms": ["type": "integer", "minimum": 0, "maximum": 60_000],
                                            "visibility_timeout_ms": ["type": "integer", "minimum": 100, "maximum": 43_200_000]]],
             "outputSchema": deliveryList,
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false],
             "policyInputs": ["subscription": "/subscription"]],
            ["name": "ack", "description": "Ack received messages by their receipts: they are done for this subscription.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["subscription", "receipts"],
                             "properties": ["subscription": ["type": "string", "minLength": 1],
                                            "receipts": ["type": "array", "minItems": 1, "maxItems": 100, "items": ["type": "string"]]]],
             "outputSchema": ["type": "object", "required": ["acked"], "properties": ["acked": ["type": "array", "items": ["type": "boolean"]]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": false],
             "policyInputs": ["subscription": "/subscription"]],
            ["name": "nack", "description": "Give a received message back: delivered again after delay_ms, or dead-lettered after its last delivery.",
             "inputSchema": ["type": "object", "additionalProperties": false, "required": ["subscription", "receipt"],
                             "properties": ["subscription": ["type": "string", "minLength": 1], "receipt": ["type": "string"],
                                            "delay_ms": ["type": "integer", "minimum": 0, "maximum": 43_200_000], "error": ["type": "string"]]],
             "outputSchema": ["type": "object", "required": ["outcome"], "properties": ["outcome": ["enum": ["redelivered", "dead_lettered"]]]],
             "annotations": ["readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false],
             "policyInputs": ["subscription": "/subscription"]],
        ],
    ]

    public init(service: BusService, agentOfRun: @escaping @Sendable (String) async -> String?,
                resolveAgent: @escaping @Sendable (String) async -> String?) throws {
        self.service = service
        self.agentOfRun = agentOfRun
        self.resolveAgent = resolveAgent
        manifest = try DriverManifest(json: Self.manifestJSON)
    }

    /// Who the call acts as: `agent:<id>` in an agent's goal, else the run's principal.
    private func caller() async -> (sender: String, agentId: String?) {
        if let run = DriverCallContext.runId, let agent = await agentOfRun(run) { return ("agent:" + agent, agent) }
        return (DriverCallContext.principal ?? "unknown", nil)
    }

    /// `inbox` means the running agent's own inbox.
    private func subscriptionId(_ input: JSONValue, agentId: String?) async throws -> String {
        let name = input["subscription"]?.stringValue ?? ""
        guard name == "inbox" else { return name }
        guard let agentId else {
            throw ToolCallError(kind: .invalidArgument, code: "not_an_agent", message: "subscription \"inbox\" is for the plans of agents' goals (this run is not a goal)")
        }
        return try await service.ensureInbox(agentId: agentId)
    }

    public func call(_ request: ToolCallRequest) async throws -> ToolCallResult {
        let input = (try? JSONValue.parse(request.input)) ?? .object([:])
        let (sender, agentId) = await caller()
        let output: JSONValue
        do {
            switch request.tool {
            case "publish":
                let m = try await service.publish(topic: input["topic"]?.stringValue ?? "", try PublishRequest(json: input), sender: sender)
                output = ["id": .string(m.id), "seq": .int(Int(m.seq))]
            case "send":
                let ref = input["agent"]?.stringValue ?? ""
                guard let target = await resolveAgent(ref) else { throw BusError.invalid(field: "agent", message: "no agent '\(ref)'") }
                let m = try await service.send(toAgent: target, try PublishRequest(json: input), sender: sender)
                output = ["id": .string(m.id), "seq": .int(Int(m.seq))]
            case "subscribe":
                let sub = Subscription(id: input["id"]?.stringValue ?? "", topic: input["topic"]?.stringValue ?? "",
                                       maxDeliveries: input["max_deliveries"]?.intValue ?? BusLimits.defaultMaxDeliveries,
                                       visibilityTimeoutMs: input["visibility_timeout_ms"]?.intValue ?? BusLimits.defaultVisibilityMs, createdBy: sender)
                let made = try await service.subscribe(sub, start: SubscriptionStart(rawValue: input["start"]?.stringValue ?? "now") ?? .now)
                output = ["id": .string(made.subscription.id), "created": .bool(made.created)]
            case "receive":
                let sub = try await subscriptionId(input, agentId: agentId)
                let got = try await service.receive(subscription: sub, consumer: sender, max: input["max"]?.intValue ?? 10,
                                                    waitMs: input["wait_ms"]?.intValue ?? 0, visibilityTimeoutMs: input["visibility_timeout_ms"]?.intValue)
                output = ["messages": .array(got.map(\.json))]
            case "ack":
                let sub = try await subscriptionId(input, agentId: agentId)
                let acked = try await service.ack(subscription: sub, receipts: input["receipts"]?.arrayValue?.compactMap(\.stringValue) ?? [])
                output = ["acked": .array(acked.map(JSONValue.bool))]
            case "nack":
                let sub = try await subscriptionId(input, agentId: agentId)
                let outcome = try await service.nack(subscription: sub, receipt: input["receipt"]?.stringValue ?? "", delayMs: input["delay_ms"]?.intValue ?? 0,
                                                     error: input["error"]?.stringValue)
                output = ["outcome": .string(outcome.rawValue)]
            default:
                throw ToolCallError(kind: .unknownTool, message: "bus has no tool \(request.tool)")
            }
        } catch let e as BusError {
            throw ToolCallError(kind: .invalidArgument, code: e.code, message: e.description)
        }
        return ToolCallResult(output: output.serializedBytes())
    }
}
