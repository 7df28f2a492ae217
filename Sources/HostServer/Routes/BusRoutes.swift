import Foundation
import Host
import HTTPTypes
import Hummingbird
import JSON

extension NovaServer {
    /// The message bus: topics (created and deleted by admin roles), publishing, agents'
    /// inboxes, subscriptions with long-poll and server-sent-event receive, ack and nack, and
    /// each subscription's dead-letter queue. Every operation on a topic, agent or
    /// subscription is decided by the policy profile as the `bus` tool that does the same
    /// (`bus.publish`, `bus.send`, `bus.subscribe`, `bus.receive`, `bus.ack`, `bus.nack`), with
    /// the conditions `topics`, `agents` and `subscriptions`; a denial is recorded as a run of
    /// that tool, like any denied call.
    func addBusRoutes(_ router: Router<ServerContext>) {
        on(router, .post, "/v1/topics") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            guard caller.isAdmin else { throw APIError(.forbidden, "forbidden", "creating topics needs an admin role") }
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            guard let o = body.objectValue else { throw APIError(.unprocessableContent, "invalid_request", "the body must be a JSON object") }
            for k in o.keys.sorted() where !["name", "schema", "retention"].contains(k) {
                throw APIError(.unprocessableContent, "invalid_request", "unknown field '\(k)' (a topic has name, schema, retention)", extra: ["field": .string(k)])
            }
            let retention = o["retention"]?.objectValue ?? [:]
            for k in retention.keys.sorted() where !["max_age_seconds", "max_count"].contains(k) {
                throw APIError(.unprocessableContent, "invalid_request", "unknown field 'retention.\(k)' (max_age_seconds, max_count)")
            }
            func int(_ v: JSONValue?, _ field: String) throws -> Int? {
                guard let v, v != .null else { return nil }
                guard let i = v.intValue else { throw APIError(.unprocessableContent, "invalid_request", "\(field) must be an integer", extra: ["field": .string(field)]) }
                return i
            }
            let schema = o["schema"].flatMap { $0 == .null ? nil : $0 }
            let (topic, created) = try await busCall {
                try await bus.createTopic(name: o["name"]?.stringValue ?? "", schema: schema, maxAgeSeconds: try int(retention["max_age_seconds"], "retention.max_age_seconds"),
                                          maxCount: try int(retention["max_count"], "retention.max_count"), by: caller.principal)
            }
            var headers = HTTPFields()
            headers[.location] = "/v1/topics/\(topic.name)"
            return JSONIO.response(topic.json, status: created ? .created : .ok, headers: headers)
        }

        on(router, .get, "/v1/topics") { [self] _, context in
            _ = try context.requireCaller()
            let bus = try requireBus()
            let topics = try await busCall { try await bus.bus.listTopics() }.filter { !$0.name.hasPrefix("_") }
            return JSONIO.response(["items": .array(topics.map(\.json))])
        }

        on(router, .get, "/v1/topics/{topic}") { [self] _, context in
            _ = try context.requireCaller()
            let bus = try requireBus()
            let name = context.parameters.get("topic") ?? ""
            let topic = try await busCall { try await bus.topic(name) }
            var o = topic.json.objectValue ?? [:]
            o["subscriptions"] = .array(try await busCall { try await bus.bus.listSubscriptions(topic: name) }.map { .string($0.id) })
            return JSONIO.response(.object(o))
        }

        on(router, .delete, "/v1/topics/{topic}") { [self] _, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            guard caller.isAdmin else { throw APIError(.forbidden, "forbidden", "deleting topics needs an admin role") }
            let name = context.parameters.get("topic") ?? ""
            guard !name.hasPrefix("_") else { throw APIError(.forbidden, "forbidden", "topics starting with _ are the host's own") }
            guard try await busCall({ try await bus.bus.deleteTopic(name) }) else { throw APIError(.notFound, "unknown_topic", "no topic '\(name)'") }
            return Response(status: .noContent)
        }

        on(router, .post, "/v1/topics/{topic}/messages") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let topic = context.parameters.get("topic") ?? ""
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            let message = try await busCall { () async throws -> BusMessage in
                let publish = try PublishRequest(json: body)
                try await authorizeBus(caller, "bus.publish", Self.toolInput(["topic": .string(topic)], publish))
                return try await bus.publish(topic: topic, publish, sender: caller.principal)
            }
            return JSONIO.response(message.json, status: .created)
        }

        on(router, .post, "/v1/agents/{id}/messages") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let agents = try requireAgents()
            let ref = context.parameters.get("id") ?? ""
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            let agent = try await agentCall { try await agents.agent(ref) }
            let message = try await busCall { () async throws -> BusMessage in
                let publish = try PublishRequest(json: body)
                try await authorizeBus(caller, "bus.send", Self.toolInput(["agent": .string(ref)], publish))
                return try await bus.send(toAgent: agent.id, publish, sender: caller.principal)
            }
            var o = message.json.objectValue ?? [:]
            o["agent_id"] = .string(agent.id)
            o["inbox"] = .string(BusLimits.inbox(agentId: agent.id))
            return JSONIO.response(.object(o), status: .created)
        }

        on(router, .post, "/v1/subscriptions") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            let (sub, start) = try Self.subscription(body, by: caller.principal)
            if let trigger = sub.trigger {
                let spec = try await busCall { try TriggerSpec(json: trigger) }
                let agents = try requireAgents()
                let agent = try await agentCall { try await agents.agent(spec.agent) }
                guard caller.isAdmin || agent.principal == caller.principal else { throw APIError.notFound("no agent \(spec.agent)") }
            }
            let (stored, created) = try await busCall { () async throws -> (Subscription, Bool) in
                try await authorizeBus(caller, "bus.subscribe", ["id": .string(sub.id), "topic": .string(sub.topic)])
                return try await bus.subscribe(sub, start: start)
            }
            var headers = HTTPFields()
            headers[.location] = "/v1/subscriptions/\(stored.id)"
            return JSONIO.response(stored.json, status: created ? .created : .ok, headers: headers)
        }

        on(router, .get, "/v1/subscriptions") { [self] request, context in
            _ = try context.requireCaller()
            let bus = try requireBus()
            let topic = request.uri.queryParameters.get("topic")
            let subs = try await busCall { try await bus.bus.listSubscriptions(topic: topic) }
            return JSONIO.response(["items": .array(subs.map(\.json))])
        }

        on(router, .get, "/v1/subscriptions/{id}") { [self] _, context in
            _ = try context.requireCaller()
            let bus = try requireBus()
            let id = context.parameters.get("id") ?? ""
            let sub = try await busCall { try await bus.subscription(id) }
            var o = sub.json.objectValue ?? [:]
            o["stats"] = try await busCall { try await bus.bus.subscriptionStats(id) }.json
            return JSONIO.response(.object(o))
        }

        on(router, .delete, "/v1/subscriptions/{id}") { [self] _, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let id = context.parameters.get("id") ?? ""
            let sub = try await busCall { try await bus.subscription(id) }
            try await busCall { try await authorizeBus(caller, "bus.subscribe", ["id": .string(sub.id), "topic": .string(sub.topic)]) }
            _ = try await busCall { try await bus.bus.deleteSubscription(id) }
            return Response(status: .noContent)
        }

        // Long poll: leases up to `max` messages, waiting up to `wait` (ms, or "5s") for one.
        on(router, .get, "/v1/subscriptions/{id}/messages") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let id = context.parameters.get("id") ?? ""
            let q = request.uri.queryParameters
            let max = try RouteHelpers.intParameter(q.get("max"), name: "max", default: 10, range: 1...100)
            let wait = try Self.waitMs(q.get("wait"))
            let visibility = try q.get("visibility_timeout_ms").map { try RouteHelpers.intParameter($0, name: "visibility_timeout_ms", default: 0, range: 100...43_200_000) }
            let consumer = q.get("consumer") ?? caller.principal
            try await permitSubscription(caller, "bus.receive", id)
            let result = await context.cancellingOnDisconnect {
                do { return Result<[Delivery], any Error>.success(try await bus.receive(subscription: id, consumer: consumer, max: max, waitMs: wait,
                                                                                         visibilityTimeoutMs: visibility)) } catch { return .failure(error) }
            }
            let got = try await busCall { try result.get() }
            return JSONIO.response(["messages": .array(got.map(\.json))])
        }

        // Server-sent events: each leased message as an event `message` (its receipt inside);
        // at most `max_in_flight` leased to this stream and not yet acked at a time.
        on(router, .get, "/v1/subscriptions/{id}/stream") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let id = context.parameters.get("id") ?? ""
            let q = request.uri.queryParameters
            let inFlight = try RouteHelpers.intParameter(q.get("max_in_flight"), name: "max_in_flight", default: 10, range: 1...100)
            let visibility = try q.get("visibility_timeout_ms").map { try RouteHelpers.intParameter($0, name: "visibility_timeout_ms", default: 0, range: 100...43_200_000) }
            let consumer = q.get("consumer") ?? caller.principal
            try await permitSubscription(caller, "bus.receive", id)
            var headers = HTTPFields()
            headers[.contentType] = "text/event-stream"
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": subscribed to \(id)\n\n"))
                var leased: [(receipt: String, until: Int64)] = []
                var lastWrite = ContinuousClock.now
                while !Task.isCancelled {
                    // Leases this stream still holds (not acked, not expired) limit what it takes.
                    let now = BusLimits.nowMs()
                    leased.removeAll { $0.until <= now }
                    if leased.count >= inFlight {
                        let stats = try await bus.bus.subscriptionStats(id)
                        if stats.leased < leased.count { leased.removeFirst(leased.count - stats.leased) }
                    }
                    var text = ""
                    if leased.count < inFlight {
                        let got = try await bus.receive(subscription: id, consumer: consumer, max: inFlight - leased.count, waitMs: 15_000,
                                                        visibilityTimeoutMs: visibility)
                        for d in got {
                            leased.append((d.receipt, d.leaseUntilMs))
                            text += "id: \(d.message.seq)\nevent: message\ndata: \(d.json.serialized())\n\n"
                        }
                    } else {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    if text.isEmpty && ContinuousClock.now - lastWrite > .seconds(15) { text = ": keep-alive\n\n" }
                    if !text.isEmpty {
                        try await writer.write(ByteBuffer(string: text))
                        lastWrite = ContinuousClock.now
                    }
                }
                try await writer.finish(nil)
            })
        }

        on(router, .post, "/v1/subscriptions/{id}/ack") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let id = context.parameters.get("id") ?? ""
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            let receipts = try Self.receipts(body)
            try await permitSubscription(caller, "bus.ack", id, ["receipts": .array(receipts.map(JSONValue.string))])
            let acked = try await busCall { try await bus.ack(subscription: id, receipts: receipts) }
            if let i = acked.firstIndex(of: false) {
                throw APIError(.conflict, "not_leased", "receipt \(receipts[i]) holds no lease on subscription '\(id)' (acked, expired or redelivered)",
                               extra: ["acked": .array(acked.map(JSONValue.bool))])
            }
            return JSONIO.response(["acked": .array(acked.map(JSONValue.bool))])
        }

        on(router, .post, "/v1/subscriptions/{id}/nack") { [self] request, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let id = context.parameters.get("id") ?? ""
            let body = try await JSONIO.body(request, limit: config.bodyLimitBytes)
            guard let o = body.objectValue else { throw APIError(.unprocessableContent, "invalid_request", "the body must be a JSON object") }
            for k in o.keys.sorted() where !["receipt", "delay_ms", "error"].contains(k) {
                throw APIError(.unprocessableContent, "invalid_request", "unknown field '\(k)' (a nack has receipt, delay_ms, error)", extra: ["field": .string(k)])
            }
            guard let receipt = o["receipt"]?.stringValue else { throw APIError(.unprocessableContent, "invalid_request", "receipt must be a string", extra: ["field": "receipt"]) }
            let delay = o["delay_ms"]?.intValue ?? 0
            if let d = o["delay_ms"], d != .null, d.intValue == nil { throw APIError(.unprocessableContent, "invalid_request", "delay_ms must be an integer", extra: ["field": "delay_ms"]) }
            if let e = o["error"], e != .null, e.stringValue == nil { throw APIError(.unprocessableContent, "invalid_request", "error must be a string", extra: ["field": "error"]) }
            try await permitSubscription(caller, "bus.nack", id, ["receipt": .string(receipt)])
            let outcome = try await busCall { try await bus.nack(subscription: id, receipt: receipt, delayMs: delay, error: o["error"]?.stringValue) }
            return JSONIO.response(["outcome": .string(outcome.rawValue)])
        }

        on(router, .get, "/v1/subscriptions/{id}/dlq") { [self] request, context in
            let caller = try context.requireCaller()
            let id = context.parameters.get("id") ?? ""
            let q = request.uri.queryParameters
            let limit = try RouteHelpers.intParameter(q.get("limit"), name: "limit", default: 50, range: 1...500)
            let offset = try RouteHelpers.intParameter(q.get("offset"), name: "offset", default: 0, range: 0...10_000_000)
            let (dead, total) = try await deadLetterPage(caller, id, limit: limit, offset: offset)
            return JSONIO.response(Self.page(dead.map(\.json), limit, offset, total, key: "items"))
        }

        on(router, .get, "/v1/subscriptions/{id}/dlq/{message_id}") { [self] _, context in
            let caller = try context.requireCaller()
            let bus = try requireBus()
            let id = context.parameters.get("id") ?? ""
            let messageId = context.parameters.get("message_id") ?? ""
            try await permitSubscription(caller, "bus.receive", id)
            guard let dead = try await busCall({ try await bus.bus.deadLetter(subscription: id, messageId: messageId) }) else {
                throw APIError.notFound("subscription '\(id)' has no dead letter \(messageId)")
            }
            return JSONIO.response(dead.json)
        }

        for action in BusService.DeadLetterAction.allCases {
            on(router, .post, "/v1/subscriptions/{id}/dlq/\(action.rawValue)") { [self] request, context in
                let caller = try context.requireCaller()
                let id = context.parameters.get("id") ?? ""
                let body = try await JSONIO.body(request, limit: config.bodyLimitBytes, empty: .object([:]))
                guard let o = body.objectValue else { throw APIError(.unprocessableContent, "invalid_request", "the body must be a JSON object") }
                for k in o.keys.sorted() where k != "message_ids" {
                    throw APIError(.unprocessableContent, "invalid_request", "unknown field '\(k)' (give message_ids, or nothing for all)", extra: ["field": .string(k)])
                }
                var ids: [String]?
                if let v = o["message_ids"], v != .null {
                    guard let a = v.arrayValue, a.allSatisfy({ $0.stringValue != nil }), a.count <= 1_000 else {
                        throw APIError(.unprocessableContent, "invalid_request", "message_ids must be an array of at most 1000 strings", extra: ["field": "message_ids"])
                    }
                    ids = a.compactMap(\.stringValue)
                }
                let n = try await deadLetterAction(caller, action, id, messageIds: ids)
                context.logger.info("dead letters \(action.done)", metadata: ["subscription": .string(id), "count": .stringConvertible(n)])
                return JSONIO.response(.object([action.done: .int(n)]))
            }
        }
    }

    /// One page of subscription `id`'s dead letters and how many it has, for `caller` (every
    /// client: REST, the dashboard): the policy must allow `bus.receive` on it (403, recorded).
    func deadLetterPage(_ caller: Caller, _ id: String, limit: Int, offset: Int) async throws -> (items: [DeadLetter], total: Int) {
        let bus = try requireBus()
        try await permitSubscription(caller, "bus.receive", id)
        let dead = try await busCall { try await bus.bus.deadLetters(subscription: id, limit: limit, offset: offset) }
        let total = try await busCall { try await bus.bus.subscriptionStats(id) }.dead
        return (dead, total)
    }

    /// Replays or purges dead letters of subscription `id` (`messageIds`, or all when nil) for
    /// `caller` (every client: REST, the dashboard): the policy must allow `bus.ack` on it with
    /// the `dlq` receipt (403, recorded). Returns how many were replayed or purged.
    func deadLetterAction(_ caller: Caller, _ action: BusService.DeadLetterAction, _ id: String, messageIds: [String]?) async throws -> Int {
        let bus = try requireBus()
        try await permitSubscription(caller, "bus.ack", id, ["receipts": ["dlq"]])
        return try await busCall { try await bus.deadLetters(action, subscription: id, messageIds: messageIds) }
    }

    /// Whether the policy would let `caller` replay or purge subscription `id`'s dead letters
    /// (a decision that consumes and records nothing: for showing the buttons).
    func mayActOnDeadLetters(_ caller: Caller, _ id: String) async -> Bool {
        await host.decideOutsideRun(principal: caller.principal, role: caller.role, tool: "bus.ack",
                                    input: ["subscription": .string(id), "receipts": ["dlq"]]).allowed
    }

    /// The path's subscription must exist (404) and the policy must allow `tool` on it, with
    /// `more` of the tool's input (403, recorded).
    func permitSubscription(_ caller: Caller, _ tool: String, _ id: String, _ more: [String: JSONValue] = [:]) async throws {
        let bus = try requireBus()
        _ = try await busCall { try await bus.subscription(id) }
        var input = more
        input["subscription"] = .string(id)
        try await busCall { try await authorizeBus(caller, tool, .object(input)) }
    }

    func requireBus() throws -> BusService {
        guard let bus else {
            throw APIError(.serviceUnavailable, "store_unavailable", "this server has no store for the message bus (it was started without a data directory)")
        }
        return bus
    }

    /// The tool input a REST call stands for (what policy conditions and a denial's run see).
    static func toolInput(_ base: [String: JSONValue], _ p: PublishRequest) -> JSONValue {
        var o = base
        o["payload"] = p.payload
        o["encoding"] = .string(p.encoding.rawValue)
        if !p.headers.isEmpty { o["headers"] = .object(p.headers.mapValues(JSONValue.string)) }
        if let k = p.orderingKey { o["ordering_key"] = .string(k) }
        return .object(o)
    }

    /// Asks the policy whether `caller` may make the bus call `tool` with `input` (as the
    /// caller's role, consuming nothing). A denial is recorded as a run of that tool (the
    /// episode holds the decision) and answered 403.
    func authorizeBus(_ caller: Caller, _ tool: String, _ input: JSONValue) async throws {
        let decision = await host.decideOutsideRun(principal: caller.principal, role: caller.role, tool: tool, input: input)
        if decision.allowed { return }
        metrics.busDenied.add(1, ordering: .relaxed)
        let outcome = await gateway.call(toolId: tool, input: input, caller: caller, origin: "bus")
        var extra: [String: JSONValue] = ["rule": .string(decision.ruleId), "tool": .string(tool)]
        if let run = outcome.runId { extra["run_id"] = .string(run) }
        throw APIError(.forbidden, "denied", decision.reason, extra: extra)
    }

    static func subscription(_ body: JSONValue, by principal: String) throws -> (Subscription, SubscriptionStart) {
        guard let o = body.objectValue else { throw APIError(.unprocessableContent, "invalid_request", "the body must be a JSON object") }
        let fields = ["id", "topic", "start", "max_deliveries", "visibility_timeout_ms", "trigger"]
        for k in o.keys.sorted() where !fields.contains(k) {
            throw APIError(.unprocessableContent, "invalid_request", "unknown field '\(k)' (a subscription has \(fields.joined(separator: ", ")))", extra: ["field": .string(k)])
        }
        func fail(_ field: String, _ message: String) -> APIError {
            APIError(.unprocessableContent, "invalid_request", "\(field) \(message)", extra: ["field": .string(field)])
        }
        guard let id = o["id"]?.stringValue else { throw fail("id", "must be a string") }
        guard let topic = o["topic"]?.stringValue else { throw fail("topic", "must be a string") }
        var start = SubscriptionStart.now
        if let s = o["start"], s != .null {
            guard let v = s.stringValue, let parsed = SubscriptionStart(rawValue: v) else { throw fail("start", "must be now or earliest") }
            start = parsed
        }
        let trigger = o["trigger"].flatMap { $0 == .null ? nil : $0 }
        func int(_ k: String, _ def: Int) throws -> Int {
            guard let v = o[k], v != .null else { return def }
            guard let i = v.intValue else { throw fail(k, "must be an integer") }
            return i
        }
        // A trigger's goal may run long: its message stays leased for an hour unless asked otherwise.
        let visibility = try int("visibility_timeout_ms", trigger == nil ? BusLimits.defaultVisibilityMs : 3_600_000)
        let sub = Subscription(id: id, topic: topic, maxDeliveries: try int("max_deliveries", BusLimits.defaultMaxDeliveries),
                               visibilityTimeoutMs: visibility, trigger: trigger, createdBy: principal)
        if let problem = BusLimits.problem(sub) {
            if case .invalid(let field, let message) = problem { throw fail(field, message) }
            throw APIError(.unprocessableContent, "invalid_request", problem.description)
        }
        return (sub, start)
    }

    static func receipts(_ body: JSONValue) throws -> [String] {
        guard let o = body.objectValue else { throw APIError(.unprocessableContent, "invalid_request", "the body must be a JSON object") }
        for k in o.keys.sorted() where !["receipt", "receipts"].contains(k) {
            throw APIError(.unprocessableContent, "invalid_request", "unknown field '\(k)' (give receipt or receipts)", extra: ["field": .string(k)])
        }
        if let r = o["receipt"]?.stringValue, o["receipts"] == nil { return [r] }
        guard o["receipt"] == nil, let a = o["receipts"]?.arrayValue, (1...100).contains(a.count), a.allSatisfy({ $0.stringValue != nil }) else {
            throw APIError(.unprocessableContent, "invalid_request", "give receipt (a string) or receipts (1 to 100 strings)", extra: ["field": "receipts"])
        }
        return a.compactMap(\.stringValue)
    }

    /// `wait`: milliseconds, or with a unit (`500ms`, `5s`); at most `BusService.maxWaitMs`.
    static func waitMs(_ raw: String?) throws -> Int {
        guard let raw, !raw.isEmpty else { return 0 }
        var digits = raw
        var scale = 1
        if raw.hasSuffix("ms") { digits = String(raw.dropLast(2)) } else if raw.hasSuffix("s") { digits = String(raw.dropLast()); scale = 1000 }
        guard let n = Int(digits), n >= 0, n * scale <= BusService.maxWaitMs else {
            throw APIError.badRequest("invalid_parameter", "wait must be 0 to \(BusService.maxWaitMs / 1000)s (e.g. 500ms, 5s, or milliseconds)")
        }
        return n * scale
    }

    /// Maps the bus's errors to the API's error shape.
    func busCall<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let e as BusError {
            var extra: [String: JSONValue] = [:]
            if case .invalid(let field, _) = e { extra["field"] = .string(field) }
            throw APIError(HTTPResponse.Status(code: e.httpStatus), e.code, e.description, extra: extra)
        }
    }
}
