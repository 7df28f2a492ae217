import Foundation
import HostSupport
import JSON
import Plans
import Schema
import Store
import Templates

/// Why an agent operation was refused; every interface maps it the same way (HTTP status in
/// `httpStatus`, the CLI's exit code 2 for the caller's mistakes).
public enum AgentError: Error, Sendable, CustomStringConvertible {
    /// No such agent (or goal, or memory item).
    case notFound(String)
    /// A field is missing or wrong; `field` names it.
    case invalid(field: String, message: String)
    /// The lifecycle action is not allowed from the current status.
    case illegalTransition(action: AgentAction, status: AgentStatus, allowed: [AgentAction])
    /// `ifVersion` is not the stored version.
    case staleVersion(current: Int)
    /// The name is taken in the namespace.
    case nameTaken(String)
    /// The memory text is longer than `MemoryItem.maxTextBytes`.
    case tooLarge(String)
    /// The agent takes no goals now (deleted).
    case notAccepting(String)
    /// A state change based on another version; `current` is the stored one (nil: absent).
    case stateConflict(String, current: Int?)

    public var description: String {
        switch self {
        case .notFound(let m), .nameTaken(let m), .tooLarge(let m), .notAccepting(let m), .stateConflict(let m, _): m
        case .invalid(let field, let message): "\(field): \(message)"
        case .illegalTransition(let action, let status, let allowed):
            "cannot \(action.rawValue) an agent that is \(status.rawValue) (allowed: \(allowed.isEmpty ? "none" : allowed.map(\.rawValue).joined(separator: ", ")))"
        case .staleVersion(let current): "the agent changed: its version is now \(current) (re-read it and retry)"
        }
    }

    /// The HTTP status this error is answered with.
    public var httpStatus: Int {
        switch self {
        case .notFound: 404
        case .invalid: 422
        case .illegalTransition, .nameTaken, .notAccepting, .stateConflict: 409
        case .staleVersion: 412
        case .tooLarge: 413
        }
    }

    /// The error code in the API's error shape.
    public var code: String {
        switch self {
        case .notFound: "not_found"
        case .invalid: "invalid_request"
        case .illegalTransition: "illegal_transition"
        case .staleVersion: "version_mismatch"
        case .nameTaken: "name_taken"
        case .tooLarge: "too_large"
        case .notAccepting: "not_accepting"
        case .stateConflict: "version_conflict"
        }
    }
}

/// A goal as a caller submits it.
public struct GoalRequest: Sendable {
    public var goal: String
    /// The plan to run (else the agent's default plan).
    public var plan: JSONValue?
    public var inputs: [String: JSONValue]
    public var priority: Int
    /// Absolute deadline, epoch ms: a goal that has not started by then is cancelled.
    public var deadlineMs: Int64?
    public var idempotencyKey: String?
    /// The bus message that started the goal (`{"subscription": …, "message_id": …}`), set by
    /// a subscription's trigger: the message is acked or nacked when the goal ends.
    public var trigger: JSONValue?
    /// A template to run instead of a plan (`restock@1`), with its params.
    public var template: String?
    public var params: JSONValue?

    public init(goal: String, plan: JSONValue? = nil, inputs: [String: JSONValue] = [:], priority: Int = 0,
                deadlineMs: Int64? = nil, idempotencyKey: String? = nil, trigger: JSONValue? = nil) {
        (self.goal, self.plan, self.inputs, self.priority, self.deadlineMs, self.idempotencyKey) = (goal, plan, inputs, priority, deadlineMs, idempotencyKey)
        self.trigger = trigger
    }
}

/// A goal with its status, derived from its job and run.
public struct GoalView: Sendable {
    public var goal: Goal
    /// `pending`, `running`, `completed`, `failed`, `partial` or `cancelled`.
    public var status: String
    public var job: Job?

    public var json: JSONValue {
        var o: [String: JSONValue] = ["id": .string(goal.id), "agent_id": .string(goal.agentId), "goal": .string(goal.text),
                                      "status": .string(status), "run_id": .string(goal.id), "created_at": .string(goal.createdAt)]
        o["deadline_ms"] = goal.deadlineMs.map { .int(Int($0)) } ?? .null
        if let job {
            o["attempts"] = .int(job.attempts.count)
            o["last_error"] = job.lastError.map(JSONValue.string) ?? .null
            o["episode_seq"] = job.result?["seq"] ?? .null
            if let by = job.payload["planned_by"] { o["planned_by"] = by }
            if let t = job.payload["trigger"] { o["trigger"] = t }
        }
        return .object(o)
    }

    /// The goal status for a job state and, once done, the run's recorded status.
    public static func status(of job: Job?) -> String {
        guard let job else { return "pending" }
        switch job.state {
        case .available, .retryable: return "pending"
        case .running: return "running"
        case .cancelled: return "cancelled"
        case .dead: return "failed"
        case .succeeded:
            if job.result?["partial"]?.boolValue == true { return "partial" }
            switch job.result?["status"]?.stringValue {
            case "succeeded": return "completed"
            case "cancelled": return "cancelled"
            default: return "failed"
            }
        }
    }
}

/// Agents, their goals and their memory: the operations every interface (CLI, REST, MCP)
/// calls. Goals become run jobs on the queue, run through the one pipeline as the agent's
/// principal and role, restricted to the agent's tools.
public struct AgentService: Sendable {
    public let store: any AgentStore & MemoryStore
    public let queue: any JobQueueStore
    public let host: NovaHost
    /// Attempts a goal's run gets (its job's `maxAttempts`).
    public var goalMaxAttempts: Int = 3

    public init(store: any AgentStore & MemoryStore, queue: any JobQueueStore, host: NovaHost) {
        (self.store, self.queue, self.host) = (store, queue, host)
    }

    static let namePattern = try! NSRegularExpression(pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    static func validName(_ s: String) -> Bool {
        namePattern.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// The fields a definition may set, with their checks.
    static let fields: Set<String> = ["name", "namespace", "description", "principal", "role", "tools", "plan", "config", "config_schema", "labels"]

    /// Applies `body`'s fields to `agent` (creation starts from a blank one), checking each.
    static func apply(_ body: JSONValue, to agent: inout Agent, creating: Bool) throws(AgentError) {
        guard let o = body.objectValue else { throw .invalid(field: "body", message: "must be a JSON object") }
        for key in o.keys.sorted() where !fields.contains(key) {
            throw .invalid(field: key, message: "unknown field (an agent has \(fields.sorted().joined(separator: ", ")))")
        }
        func string(_ k: String) throws(AgentError) -> String? {
            guard let v = o[k] else { return nil }
            guard let s = v.stringValue else { throw .invalid(field: k, message: "must be a string") }
            return s
        }
        if let name = try string("name") {
            guard validName(name) else { throw .invalid(field: "name", message: "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit") }
            agent.name = name
        } else if creating { throw .invalid(field: "name", message: "is required") }
        if let ns = try string("namespace") {
            guard creating else { throw .invalid(field: "namespace", message: "cannot change (create a new agent instead)") }
            guard validName(ns) else { throw .invalid(field: "namespace", message: "must be 1-64 letters, digits, '_', '.' or '-'") }
            agent.namespace = ns
        }
        if let d = try string("description") { agent.description = d }
        if let p = try string("principal") {
            guard !p.isEmpty, p.utf8.count <= 256 else { throw .invalid(field: "principal", message: "must be 1-256 characters") }
            agent.principal = p
        } else if creating { throw .invalid(field: "principal", message: "is required (the identity the policy decides for)") }
        if let r = o["role"] { agent.role = r == .null ? nil : try string("role") }
        if let t = o["tools"] {
            if t == .null { agent.tools = nil } else {
                guard let list = t.arrayValue, list.allSatisfy({ $0.stringValue.flatMap(ToolId.split) != nil }) else {
                    throw .invalid(field: "tools", message: "must be an array of tool ids (driver.tool), or null for any")
                }
                agent.tools = list.compactMap(\.stringValue)
            }
        }
        if let p = o["plan"] {
            if p == .null { agent.plan = nil } else {
                do { _ = try Plan.parse(p) } catch { throw .invalid(field: "plan", message: error.description) }
                agent.plan = p
            }
        }
        if let c = o["config"] {
            guard c.objectValue != nil else { throw .invalid(field: "config", message: "must be a JSON object") }
            agent.config = c
        }
        if let cs = o["config_schema"] {
            if cs == .null { agent.configSchema = nil } else {
                do { _ = try Schema.compile(cs) } catch { throw .invalid(field: "config_schema", message: "is not a valid JSON Schema: \(error)") }
                agent.configSchema = cs
            }
        }
        if let schema = agent.configSchema, let compiled = try? Schema.compile(schema),
           let problem = compiled.validate(agent.config).errors.first {
            let at = problem.instanceLocation.isEmpty ? "" : problem.instanceLocation
            throw .invalid(field: "config" + at.replacingOccurrences(of: "/", with: "."), message: problem.message)
        }
        if let l = o["labels"] {
            guard let obj = l.objectValue, obj.values.allSatisfy({ $0.stringValue != nil }), obj.keys.allSatisfy(validName) else {
                throw .invalid(field: "labels", message: "must be an object of string values with keys like names")
            }
            agent.labels = obj.compactMapValues(\.stringValue)
        }
    }

    // MARK: Agents

    public func create(_ body: JSONValue) async throws -> Agent {
        var a = Agent(name: "", principal: "")
        try Self.apply(body, to: &a, creating: true)
        do { try await store.insertAgent(a) } catch let e as AgentStoreError {
            if case .nameTaken = e { throw AgentError.nameTaken(e.description) }
            throw e
        }
        await host.audit("agent.create", target: a.id, detail: ["name": .string(a.name), "namespace": .string(a.namespace), "principal": .string(a.principal)])
        return a
    }

    /// The agent named by `ref`: its id, or `name` / `namespace/name` for a live one.
    public func agent(_ ref: String) async throws -> Agent {
        if let a = try await store.agent(id: ref) { return a }
        let parts = ref.split(separator: "/", maxSplits: 1).map(String.init)
        let (ns, name) = parts.count == 2 ? (parts[0], parts[1]) : ("default", ref)
        if let a = try await store.agent(namespace: ns, name: name) { return a }
        throw AgentError.notFound("no agent \(ref)")
    }

    public func list(_ filter: AgentFilter) async throws -> (agents: [Agent], total: Int) {
        (try await store.listAgents(filter), try await store.countAgents(filter))
    }

    /// Applies `patch` as one new version. With `ifVersion` the stored version must match
    /// (else `staleVersion`); without it a concurrent change is retried on the new version.
    public func update(_ ref: String, patch: JSONValue, ifVersion: Int?) async throws -> Agent {
        let updated = try await change(ref, ifVersion: ifVersion) { current throws(AgentError) in
            guard current.status != .deleted else { throw .notAccepting("agent \(current.name) is deleted") }
            var next = current
            try Self.apply(patch, to: &next, creating: false)
            next.version += 1
            next.updatedAt = Timestamps.now()
            return next
        }
        await host.audit("agent.update", target: updated.id, detail: ["name": .string(updated.name), "version": .int(updated.version),
                                                                      "fields": .array((patch.objectValue?.keys.sorted() ?? []).map(JSONValue.string))])
        return updated
    }

    /// A lifecycle action. `stop` and `delete` cancel the agent's running goals (recorded
    /// `cancelled`); `delete` also its pending ones. Its episodes, goals and memory stay.
    public func act(_ ref: String, _ action: AgentAction, ifVersion: Int?) async throws -> Agent {
        let next = try await change(ref, ifVersion: ifVersion) { current throws(AgentError) in
            guard let next = current.applying(action) else {
                throw .illegalTransition(action: action, status: current.status, allowed: AgentAction.allowed(from: current.status))
            }
            return next
        }
        if action == .stop || action == .delete {
            for view in try await goals(next.id, limit: 10_000, offset: 0) where view.status == "running" || (action == .delete && view.status == "pending") {
                _ = try? await queue.cancelJob(id: view.goal.id)
            }
        }
        await host.audit("agent.\(action.rawValue)", target: next.id, detail: ["name": .string(next.name), "status": .string(next.status.rawValue),
                                                                              "version": .int(next.version)])
        return next
    }

    private func change(_ ref: String, ifVersion: Int?, _ make: (Agent) throws(AgentError) -> Agent) async throws -> Agent {
        for _ in 0..<20 {
            let current = try await agent(ref)
            if let ifVersion, ifVersion != current.version { throw AgentError.staleVersion(current: current.version) }
            let next = try make(current)
            do {
                if try await store.replaceAgent(next, ifVersion: current.version) { return next }
            } catch let e as AgentStoreError {
                if case .nameTaken = e { throw AgentError.nameTaken(e.description) }
                throw e
            }
            if ifVersion != nil { throw AgentError.staleVersion(current: try await agent(current.id).version) }
        }
        throw AgentError.staleVersion(current: try await agent(ref).version)
    }

    public func versions(_ ref: String) async throws -> [Agent] {
        try await store.agentVersions(id: try await agent(ref).id)
    }

    // MARK: Goals

    /// Queues `request` as a run of the agent (202 semantics: returns at once). A repeated
    /// idempotency key returns the goal it first created (`duplicate`).
    public func submit(_ ref: String, _ request: GoalRequest) async throws -> (goal: GoalView, duplicate: Bool) {
        let agent = try await agent(ref)
        guard agent.status != .deleted else { throw AgentError.notAccepting("agent \(agent.name) is deleted and takes no goals") }
        guard !request.goal.isEmpty, request.goal.utf8.count <= 16_384 else {
            throw AgentError.invalid(field: "goal", message: "must be 1 to 16384 bytes of text")
        }
        let plan: Plan
        var template: TemplateProvenance?
        if let ref = request.template {
            guard request.plan == nil else { throw AgentError.invalid(field: "template", message: "give plan or template, not both") }
            (plan, template) = try await render(ref, params: request.params ?? .object([:]))
        } else {
            guard let planJSON = request.plan ?? agent.plan else { return try await submitForPlanning(agent, request) }
            do { plan = try Plan.parse(planJSON) } catch { throw AgentError.invalid(field: "plan", message: error.description) }
        }
        var submission = RunSubmission(plan: plan, inputs: request.inputs, principal: agent.principal, role: agent.role,
                                       origin: "agent", allowedTools: agent.tools)
        submission.template = template
        let prepared: RunRequest
        do { prepared = try await host.pipeline.prepare(submission) } catch {
            throw AgentError.invalid(field: error.errors.first?.field.map { "plan.\($0)" } ?? "plan", message: error.description)
        }
        submission.inputs = prepared.inputs
        let payload = RunJob.payload(submission, fingerprint: nil, submittedAt: Timestamps.now())
        var o = payload.objectValue ?? [:]
        o["agent_id"] = .string(agent.id)
        o["goal"] = .string(request.goal)
        if let d = request.deadlineMs { o["deadline_ms"] = .int(Int(d)) }
        return try await enqueueGoal(agent, request, payload: .object(o))
    }

    /// The plan of template `ref` (`restock@1`) with `params`, or why not (field `template` or `params`).
    func render(_ ref: String, params: JSONValue) async throws -> (Plan, TemplateProvenance) {
        guard let library = host.templates else { throw AgentError.invalid(field: "template", message: "this host has no template store") }
        let parsed: TemplateRef
        do { parsed = try TemplateRef.parse(ref) } catch { throw AgentError.invalid(field: "template", message: error.message) }
        let template: PlanTemplate
        do { template = try await library.resolve(parsed) } catch { throw AgentError.invalid(field: "template", message: error.description) }
        do {
            let r = try template.render(params: params)
            return (r.plan, r.provenance)
        } catch { throw AgentError.invalid(field: "params", message: "template \(template.id): \(error.description)") }
    }

    /// Records the goal and queues its job (once per idempotency key).
    private func enqueueGoal(_ agent: Agent, _ request: GoalRequest, payload: JSONValue) async throws -> (goal: GoalView, duplicate: Bool) {
        let goalId = RunId.make()
        var payload = payload
        if let trigger = request.trigger, case .object(var o) = payload {
            o["trigger"] = trigger
            payload = .object(o)
        }
        let uniqueKey = request.idempotencyKey.map { RunJob.uniqueKey(principal: "agent:" + agent.id, idempotencyKey: $0) }
        let spec = JobSpec(id: goalId, kind: RunJob.kind, payload: payload, priority: request.priority, uniqueKey: uniqueKey,
                           maxAttempts: goalMaxAttempts)
        if let uniqueKey, let earlier = try await queue.listJobs(JobFilter(uniqueKey: uniqueKey), limit: 1, offset: 0).first,
           let goal = try await store.goal(id: earlier.id) {
            return (GoalView(goal: goal, status: GoalView.status(of: earlier), job: earlier), true)
        }
        // The goal row first: a worker that takes the job at once finds its goal.
        let goal = Goal(id: goalId, agentId: agent.id, text: request.goal, deadlineMs: request.deadlineMs)
        try await store.insertGoal(goal)
        let result = try await queue.enqueue(spec)
        if result.duplicate, let earlier = try await store.goal(id: result.job.id) {
            return (GoalView(goal: earlier, status: GoalView.status(of: result.job), job: result.job), true)
        }
        return (GoalView(goal: goal, status: GoalView.status(of: result.job), job: result.job), false)
    }

    /// A goal with no plan: queued as text, planned by the agent's planner when a worker takes
    /// it (a planner that is down leaves it pending, retried with backoff).
    private func submitForPlanning(_ agent: Agent, _ request: GoalRequest) async throws -> (goal: GoalView, duplicate: Bool) {
        do {
            guard try GoalPlanners.planner(for: agent) != nil else {
                throw AgentError.invalid(field: "plan", message: "is required: the agent has no default plan and no planner (config.planner)")
            }
        } catch let e as PlannerError { throw AgentError.invalid(field: "config.planner", message: e.description) }
        var o: [String: JSONValue] = ["inputs": .object(request.inputs), "principal": .string(agent.principal), "origin": "agent",
                                      "submitted_at": .string(Timestamps.now()), "agent_id": .string(agent.id), "goal": .string(request.goal)]
        if let role = agent.role { o["role"] = .string(role) }
        if let tools = agent.tools { o["allowed_tools"] = .array(tools.map(JSONValue.string)) }
        if let d = request.deadlineMs { o["deadline_ms"] = .int(Int(d)) }
        return try await enqueueGoal(agent, request, payload: .object(o))
    }

    public func goals(_ ref: String, limit: Int, offset: Int) async throws -> [GoalView] {
        let agent = try await agent(ref)
        var out: [GoalView] = []
        for goal in try await store.goals(agentId: agent.id, limit: limit, offset: offset) {
            let job = try await queue.job(id: goal.id)
            out.append(GoalView(goal: goal, status: GoalView.status(of: job), job: job))
        }
        return out
    }

    public func goal(_ id: String) async throws -> GoalView {
        guard let goal = try await store.goal(id: id) else { throw AgentError.notFound("no goal \(id)") }
        let job = try await queue.job(id: id)
        return GoalView(goal: goal, status: GoalView.status(of: job), job: job)
    }

    /// Cancels a pending goal at once, or asks a running one to stop.
    public func cancelGoal(_ id: String) async throws -> (GoalView, JobCancelOutcome) {
        _ = try await goal(id)
        let outcome = try await queue.cancelJob(id: id)
        return (try await goal(id), outcome)
    }

    // MARK: Memory

    /// Stores an item for the agent. `type` must be a built-in type or one listed in the
    /// agent's `config.memory_types`; the source is the caller's run, never the body's.
    public func remember(_ ref: String, type: String, text: String, meta: JSONValue = .object([:]), tags: [String] = [],
                         ttlSeconds: Int? = nil, sourceRunId: String? = nil, sourceStepId: String? = nil) async throws -> MemoryItem {
        let agent = try await agent(ref)
        let types = MemoryItem.builtInTypes + (agent.config["memory_types"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        guard types.contains(type) else { throw AgentError.invalid(field: "memory_type", message: "must be one of \(types.joined(separator: ", "))") }
        guard !text.isEmpty else { throw AgentError.invalid(field: "text", message: "must not be empty") }
        guard text.utf8.count <= MemoryItem.maxTextBytes else {
            throw AgentError.tooLarge("text is \(text.utf8.count) bytes; a memory item holds at most \(MemoryItem.maxTextBytes)")
        }
        guard meta.objectValue != nil else { throw AgentError.invalid(field: "meta", message: "must be a JSON object") }
        if let ttlSeconds, ttlSeconds < 1 { throw AgentError.invalid(field: "ttl_seconds", message: "must be a positive integer") }
        let now = Timestamps.wallNanos() / 1_000_000
        let item = MemoryItem(owner: agent.id, type: type, text: text, meta: meta, tags: tags, sourceRunId: sourceRunId, sourceStepId: sourceStepId,
                              createdAtMs: now, expiresAtMs: ttlSeconds.map { now + Int64($0) * 1000 })
        try await store.putMemory(item)
        return item
    }

    public func recall(_ ref: String, query: RecallQuery) async throws -> [RecallHit] {
        let agent = try await agent(ref)
        var q = query
        q.owner = agent.id
        do { return try await store.recall(q) } catch let e as RecallQueryError {
            throw AgentError.invalid(field: "q", message: e.message)
        }
    }

    public func forget(_ ref: String, memoryId: String) async throws {
        let agent = try await agent(ref)
        guard try await store.forgetMemory(id: memoryId, owner: agent.id) else { throw AgentError.notFound("no memory item \(memoryId) of agent \(agent.name)") }
    }
}
