import Drivers
import HostSupport
import JSON
import Messaging
import Store

/// What a subscription's `trigger` asks for: a goal of `agent` per message, the message as
/// the goal's input `message`.
public struct TriggerSpec: Sendable, Equatable {
    /// The agent (id, name or `namespace/name`).
    public var agent: String
    /// The goal's text (default: "handle the message on <topic>").
    public var goal: String?
    public var priority: Int

    /// Reads `{"agent": …, "goal": …, "priority": …}`, naming the field that is wrong.
    public init(json: JSONValue) throws(BusError) {
        guard let o = json.objectValue else { throw .invalid(field: "trigger", message: "must be an object like {\"agent\": \"restocker\"}") }
        for k in o.keys.sorted() where !["agent", "goal", "priority"].contains(k) {
            throw .invalid(field: "trigger.\(k)", message: "unknown field (a trigger has agent, goal, priority)")
        }
        guard let agent = o["agent"]?.stringValue, !agent.isEmpty else { throw .invalid(field: "trigger.agent", message: "is required") }
        self.agent = agent
        if let g = o["goal"], g != .null {
            guard let s = g.stringValue, !s.isEmpty, s.utf8.count <= 16_384 else { throw .invalid(field: "trigger.goal", message: "must be 1 to 16384 bytes of text") }
            goal = s
        }
        priority = 0
        if let p = o["priority"], p != .null {
            guard let i = p.intValue else { throw .invalid(field: "trigger.priority", message: "must be an integer") }
            priority = i
        }
    }
}

/// Starts a goal per message of every subscription that has a trigger. The message stays
/// leased while its goal runs (the subscription's visibility timeout); the worker that runs
/// the goal acks it when the goal completes and nacks it otherwise (`RunJobHandler.settle`),
/// so the subscription's redelivery and dead-letter rules apply. A message whose goal could
/// not be submitted (the agent is gone, the plan is invalid) is nacked with the reason.
///
/// Each `serve` and `worker` process runs one; they share the work through the leases. It also
/// runs the topics' retention (at most once a minute per process).
public struct TriggerDispatcher: Sendable {
    public let bus: BusService
    public let agents: AgentService
    /// The consumer name its leases carry.
    public let consumer: String
    /// How often the list of triggered subscriptions is read again.
    public var refreshMs = 2_000

    public init(bus: BusService, agents: AgentService, consumer: String) {
        (self.bus, self.agents, self.consumer) = (bus, agents, consumer)
    }

    /// Dispatches until the task is cancelled.
    public func run(log: @escaping @Sendable (String) -> Void = { _ in }) async {
        var subs: [Subscription] = []
        var refreshedAt = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
            if ContinuousClock.now - refreshedAt > .milliseconds(refreshMs) {
                subs = ((try? await bus.bus.listSubscriptions(topic: nil)) ?? []).filter { $0.trigger != nil }
                refreshedAt = ContinuousClock.now
            }
            // Retention by age must run without publishes too: this loop runs in every serve and worker.
            await bus.retainIfDue()
            let ticket = await bus.bus.busTicket()
            var any = false
            for sub in subs {
                do {
                    let got = try await bus.receive(subscription: sub.id, consumer: consumer, max: 10, waitMs: 0, visibilityTimeoutMs: nil)
                    any = any || !got.isEmpty
                    for d in got { await dispatch(d, sub) }
                } catch {
                    log("trigger of subscription \(sub.id): \(error)")
                }
            }
            if subs.isEmpty {
                // Nothing to dispatch: no need to watch the store for messages.
                try? await Task.sleep(for: .milliseconds(refreshMs))
            } else if !any {
                await bus.bus.waitForMessages(since: ticket, timeoutMs: refreshMs)
            }
        }
    }

    /// Submits the goal of one delivery (once per delivery: a redelivery is a new attempt).
    func dispatch(_ d: Delivery, _ sub: Subscription) async {
        do {
            let spec = try TriggerSpec(json: sub.trigger ?? .null)
            let request = GoalRequest(goal: spec.goal ?? "handle the message on \(sub.topic)", inputs: ["message": d.message.json],
                                      priority: spec.priority, idempotencyKey: "trigger:\(sub.id):\(d.message.id):\(d.deliveryCount)",
                                      trigger: ["subscription": .string(sub.id), "message_id": .string(d.message.id),
                                                "topic": .string(sub.topic), "delivery": .int(d.deliveryCount)])
            _ = try await agents.submit(spec.agent, request)
        } catch {
            _ = try? await bus.nack(subscription: sub.id, receipt: d.receipt, delayMs: 0, error: "the trigger could not start a goal: \(error)")
        }
    }
}

extension AgentService {
    /// Makes the built-in `bus` driver (`bus.publish|send|subscribe|receive|ack|nack`)
    /// available to the host's runs: senders are the goal's agent, `send` finds agents by id
    /// or name.
    public func registerBusTools(_ bus: BusService) {
        let store = self.store
        let service = self
        host.registry.registerDriver("bus") {
            try BusToolDriver(service: bus,
                              agentOfRun: { runId in try? await store.goal(id: runId)?.agentId },
                              resolveAgent: { ref in try? await service.agent(ref).id })
        }
    }
}

/// The manifests of the drivers the host serves itself (`memory`, `agents`, `state`, `bus`),
/// for what needs a tool's descriptor without a store behind it (`nova-host policy check`).
public enum BuiltInTools {
    public static let manifests: [String: JSONValue] = [
        "memory": MemoryToolDriver.manifestJSON, "agents": AgentToolDriver.manifestJSON,
        "state": StateToolDriver.manifestJSON, "bus": BusToolDriver.manifestJSON,
    ]

    /// The descriptor of a built-in tool (`bus.publish`), if `toolId` names one.
    public static func descriptor(toolId: String) -> ToolDescriptor? {
        guard let (driver, tool) = ToolId.split(toolId), let json = manifests[driver],
              let manifest = try? DriverManifest(json: json) else { return nil }
        return manifest.tool(named: tool)
    }
}
