import JSON
import Synchronization
import CHostSupport
import Drivers
import Episodes
import HostSupport
import Plans
import Policy
import Store
import Templates

/// Options of one run.
public struct RunOptions: Sendable {
    /// How many independent steps may run at once.
    public var parallelism: Int = 4
    /// The tools the run may call at all (an agent's tools), checked before the policy; nil: any.
    /// A step calling another is denied (rule `agent-tools`) and recorded like a policy denial.
    public var allowedTools: Set<String>?
    /// Steps already run by an earlier attempt of this run (from an approval request's
    /// checkpoint): they are restored, not run again.
    public var resume: [StepRecord] = []
    /// How deep this run is nested in template sub-runs (0 for a top-level run).
    var depth = 0
    /// The run this one reruns (`episodes replay --rerun`), recorded as `replay_of`.
    public var replayOf: String?
    public init(parallelism: Int = 4, allowedTools: Set<String>? = nil, replayOf: String? = nil) {
        self.parallelism = max(1, parallelism)
        self.allowedTools = allowedTools
        self.replayOf = replayOf
    }
    /// The most template sub-runs nested in one another at run time (cycles are refused
    /// before; this bounds a template changed since).
    static let maxDepth = 8
}

/// The finished steps of a run as it goes (for an approval request's checkpoint). Records are
/// kept as they are and turned into JSON only when a checkpoint is taken (rarely).
final class RunProgress: Sendable {
    private let finished = Mutex<[StepRecord]>([])
    func add(_ record: StepRecord) { finished.withLock { $0.append(record) } }
    var snapshot: JSONValue { .array(finished.withLock { $0 }.map(\.json)) }
}

/// Values references resolve against: the run's inputs and finished steps.
struct RunScope: ReferenceScope {
    var inputs: [String: JSONValue]
    var steps: [String: (output: JSONValue, status: RunStatus, error: JSONValue)] = [:]
    /// Inside a `foreach` step: the element and its position.
    var element: (item: JSONValue, index: Int)?

    func input(_ name: String) -> JSONValue? { inputs[name] }
    func item() -> JSONValue? { element?.item }
    func index() -> Int? { element?.index }
    func step(_ id: String, field: String) -> JSONValue? {
        guard let s = steps[id] else { return nil }
        switch field {
        case "output": return s.output
        case "status": return .string(s.status.rawValue)
        default: return s.error
        }
    }
}

/// Runs plans: schedules steps as their dependencies finish (up to `parallelism` at once),
/// asks the `CallGate` before every call, validates inputs and outputs against the tools'
/// schemas, retries with backoff, and records everything in a `RunRecord`.
public struct PlanRunner: Sendable {
    public let registry: DriverRegistry
    public let gate: any CallGate
    public let schemas: ToolSchemaCache
    /// Where `template:` steps find their templates; nil: such steps are refused.
    public let templates: TemplateLibrary?
    /// Makes calls wait for a person's approval; nil: a call that needs one is denied.
    public let approvals: (any ApprovalWaiter)?

    public init(registry: DriverRegistry, gate: any CallGate, schemas: ToolSchemaCache = ToolSchemaCache(),
                templates: TemplateLibrary? = nil, approvals: (any ApprovalWaiter)? = nil) {
        self.registry = registry
        self.gate = gate
        self.schemas = schemas
        self.templates = templates
        self.approvals = approvals
    }

    /// Checks what needs drivers and templates: every step's `driver.tool` exists (loading its
    /// driver on first use), every `template:` step names a template whose own steps check out,
    /// and no template calls itself through others (`chain`: the templates above this plan).
    /// Errors name the step and the field.
    public func validate(_ plan: Plan, chain: [String] = []) async -> [PlanError] {
        var errors: [PlanError] = []
        for step in plan.steps {
            if let ref = step.template {
                errors += await validateTemplateStep(step, ref, chain: chain)
                continue
            }
            do { _ = try await registry.resolve(toolId: step.call) } catch let e as ToolCallError {
                errors.append(PlanError(step: step.id, field: "call", e.message))
            } catch {
                errors.append(PlanError(step: step.id, field: "call", "\(error)"))
            }
        }
        return errors
    }

    func validateTemplateStep(_ step: PlanStep, _ ref: TemplateRef, chain: [String]) async -> [PlanError] {
        guard let templates else { return [PlanError(step: step.id, field: "call", "template steps need the host's template library")] }
        if chain.contains(ref.name) {
            return [PlanError(step: step.id, field: "call", "template cycle: \((chain + [ref.name]).joined(separator: " → "))")]
        }
        let template: PlanTemplate
        let sub: Plan
        do { template = try await templates.resolve(ref) } catch { return [PlanError(step: step.id, field: "call", error.description)] }
        do { sub = try template.placeholderPlan() } catch { return [PlanError(step: step.id, field: "call", "template \(template.id): \(error)")] }
        return await validate(sub, chain: chain + [ref.name]).map { PlanError(step: step.id, field: "call", "in template \(template.id): \($0)") }
    }

    /// Resolves `--input` values against the plan's declared inputs: defaults, required, types.
    public static func bindInputs(_ plan: Plan, given: [String: JSONValue]) throws(PlanErrors) -> [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        var errors: [PlanError] = []
        let declared = Dictionary(plan.inputs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for key in given.keys.sorted() where declared[key] == nil {
            errors.append(PlanError(field: "inputs.\(key)", "the plan declares no input '\(key)' (it has: \(plan.inputs.map(\.name).joined(separator: ", ")))"))
        }
        for input in plan.inputs {
            guard let v = given[input.name] ?? input.defaultValue else {
                errors.append(PlanError(field: "inputs.\(input.name)", "is required (pass --input \(input.name)=VALUE)"))
                continue
            }
            if let t = input.type, !Self.matches(v, type: t) {
                errors.append(PlanError(field: "inputs.\(input.name)", "must be \(t), got \(v.typeName)"))
            }
            out[input.name] = v
        }
        guard errors.isEmpty else { throw PlanErrors(errors: errors) }
        return out
    }

    static func matches(_ v: JSONValue, type: String) -> Bool {
        switch type {
        case "string": return v.stringValue != nil
        case "integer": return v.intValue != nil && v.isNumber
        case "number": return v.isNumber
        case "boolean": return v.boolValue != nil
        case "object": return v.objectValue != nil
        case "array": return v.arrayValue != nil
        default: return true
        }
    }

    private enum StepOutcome: Sendable {
        case finished(StepRecord)
    }

    /// Runs `plan` to the end (or until cancelled) and returns its record. Never throws: every
    /// failure is recorded.
    public func run(_ plan: Plan, inputs: [String: JSONValue], principal: String, runId: String, options: RunOptions = RunOptions()) async -> RunRecord {
        let started = nova_monotonic_ns()
        var record = RunRecord(runId: runId, planName: plan.name, plan: plan.source, principal: principal,
                               inputs: Redaction.redact(.object(inputs)), startedAt: Timestamps.now())
        record.replayOf = options.replayOf
        var scope = RunScope(inputs: inputs)
        var records: [String: StepRecord] = [:]
        var runningIds = Set<String>()
        var stop: (status: RunStatus, reason: String)?
        // Readiness by counting: `waiting[k]` is how many of step k's dependencies have no record
        // yet (a dependency on no step of the plan never gets one), `dependents[k]` the steps
        // that wait for step k. Checking a step is one array read, not a lookup per dependency:
        // a 200-step chain otherwise spent most of each step rescanning the steps left.
        var position: [String: Int] = [:]
        for (k, step) in plan.steps.enumerated() where position[step.id] == nil { position[step.id] = k }
        var waiting = [Int](repeating: 0, count: plan.steps.count)
        var dependents = [[Int]](repeating: [], count: plan.steps.count)
        for (k, step) in plan.steps.enumerated() {
            for d in plan.dependencies(of: step) {
                waiting[k] += 1
                if let j = position[d] { dependents[j].append(k) }
            }
        }
        /// Keeps `rec` as step `rec.id`'s record; the first for a step releases its dependents.
        func note(_ rec: StepRecord) {
            let first = records.updateValue(rec, forKey: rec.id) == nil
            if first, let j = position[rec.id] { for k in dependents[j] { waiting[k] -= 1 } }
        }
        var remaining = Array(plan.steps.indices)  // positions of the steps not started, in plan order
        let progress = RunProgress()
        for restored in options.resume where plan.step(restored.id)?.call == restored.call {
            note(restored)
            scope.steps[restored.id] = (restored.output ?? .null, restored.status, .null)
            remaining.removeAll { plan.steps[$0].id == restored.id }
            progress.add(restored)
        }

        // Takes in a finished step: its record, its outputs for later references, and whether
        // the run stops.
        func absorb(_ rec: StepRecord) {
            runningIds.remove(rec.id)
            note(rec)
            progress.add(rec)
            let errorValue: JSONValue = rec.attempts.last?.error.map { .object(["code": .string($0.code), "message": .string($0.message)]) } ?? .null
            scope.steps[rec.id] = (rec.output ?? .null, rec.status, errorValue)
            let onError = plan.step(rec.id)?.onError ?? .fail
            guard stop == nil else { return }
            switch rec.status {
            case .denied: stop = (.denied, "step '\(rec.id)' denied by policy: \(rec.reason ?? "")")
            case .cancelled: stop = (.cancelled, "cancelled")
            case .failed where onError == .fail: stop = (.failed, "step '\(rec.id)' failed: \(rec.reason ?? "")")
            default: break
            }
        }
        func isReady(_ k: Int) -> Bool { waiting[k] == 0 }

        await withTaskGroup(of: StepOutcome.self) { group in
            while true {
                // Start every ready step, up to the parallelism bound.
                var i = 0
                while stop == nil && !Task.isCancelled && i < remaining.count && runningIds.count < options.parallelism {
                    let step = plan.steps[remaining[i]]
                    guard isReady(remaining[i]) else { i += 1; continue }
                    remaining.remove(at: i)
                    // A reference that does not resolve is an error of this step, never a null.
                    var input = JSONValue.null
                    var early = self.prepare(step, scope: scope)
                    if early == nil && step.foreach == nil {
                        do { input = try Template.resolve(step.input, in: scope, strict: true) } catch {
                            early = StepRecord(id: step.id, call: step.call, status: .failed, reason: "field 'input': \(error)")
                        }
                    }
                    if let early {
                        note(early)
                        scope.steps[step.id] = (early.output ?? .null, early.status, early.reason.map { .string($0) } ?? .null)
                        if early.status == .failed && step.onError == .fail { stop = (.failed, "step '\(step.id)': \(early.reason ?? "failed")") }
                        i = 0
                        continue
                    }
                    runningIds.insert(step.id)
                    // In a plan of several steps, the only step that can run now (nothing running,
                    // nothing else ready) runs in this task: a child task would add a task, its
                    // start and its completion (thread wake-ups) to every step of a chain. A
                    // one-step plan (every REST/MCP tool call) keeps its child task: running it
                    // inline measured 10–18 % fewer tool calls/s at 32 connections (session 16,
                    // not yet explained).
                    if plan.steps.count > 1 && runningIds.count == 1 && !remaining.contains(where: isReady) {
                        absorb(await self.performInContext(step, input: input, scope: scope, runId: runId, principal: principal,
                                                           options: options, progress: progress))
                        i = 0
                        continue
                    }
                    let stepScope = scope
                    group.addTask {
                        .finished(await self.performInContext(step, input: input, scope: stepScope, runId: runId, principal: principal,
                                                              options: options, progress: progress))
                    }
                }
                if stop != nil && !runningIds.isEmpty { group.cancelAll() }
                guard let outcome = await group.next() else { break }
                guard case .finished(let rec) = outcome else { continue }
                absorb(rec)
                if stop != nil { group.cancelAll() }
            }
        }
        if stop == nil && Task.isCancelled { stop = (.cancelled, "cancelled") }
        for step in remaining.map({ plan.steps[$0] }) where records[step.id] == nil {
            records[step.id] = StepRecord(id: step.id, call: step.call, status: stop?.status == .cancelled ? .cancelled : .skipped,
                                          reason: stop.map { "not run: \($0.reason)" } ?? "not run")
        }
        record.steps = plan.steps.compactMap { records[$0.id] }
        if let stop {
            record.status = stop.status
            record.error = stop.reason
        } else {
            record.status = .succeeded
            if let out = plan.output {
                do { record.output = try Template.resolve(out, in: scope, strict: true) } catch {
                    record.status = .failed
                    record.error = "field 'output': \(error)"
                }
            } else {
                record.output = plan.steps.reversed().lazy.compactMap { records[$0.id]?.output }.first ?? .null
            }
        }
        record.finishedAt = Timestamps.now()
        record.durationMs = Double(nova_monotonic_ns() - started) / 1e6
        return record
    }

    /// Handles what needs no call: `when` false (skipped) or a `when` that does not evaluate.
    private func prepare(_ step: PlanStep, scope: RunScope) -> StepRecord? {
        guard let when = step.when else { return nil }
        do {
            if try when.evaluate(in: scope) { return nil }
            return StepRecord(id: step.id, call: step.call, status: .skipped, reason: "when is false")
        } catch {
            return StepRecord(id: step.id, call: step.call, status: .failed, reason: "field 'when': \(error.message)")
        }
    }

    /// `perform` with the driver log context set: records that drivers log during the call
    /// name the run, the step and the principal.
    private func performInContext(_ step: PlanStep, input: JSONValue, scope: RunScope, runId: String, principal: String,
                                  options: RunOptions, progress: RunProgress) async -> StepRecord {
        await DriverCallContext.$runId.withValue(runId) {
            await DriverCallContext.$stepId.withValue(step.id) {
                await DriverCallContext.$principal.withValue(principal) {
                    await self.perform(step, input: input, scope: scope, runId: runId, principal: principal, options: options, progress: progress)
                }
            }
        }
    }

    /// Runs one step: once, once per element (`foreach`), or as a template's sub-run.
    private func perform(_ step: PlanStep, input: JSONValue, scope: RunScope, runId: String, principal: String,
                         options: RunOptions, progress: RunProgress) async -> StepRecord {
        guard let foreach = step.foreach else {
            return await performOne(step, label: step.id, input: input, runId: runId, principal: principal, options: options, progress: progress)
        }
        return await performForeach(step, foreach, scope: scope, runId: runId, principal: principal, options: options, progress: progress)
    }

    private func performOne(_ step: PlanStep, label: String, input: JSONValue, runId: String, principal: String,
                            options: RunOptions, progress: RunProgress) async -> StepRecord {
        if let ref = step.template {
            return await runTemplate(step, ref, label: label, params: input, runId: runId, principal: principal, options: options)
        }
        return await execute(step, label: label, input: input, runId: runId, principal: principal, allowedTools: options.allowedTools, progress: progress)
    }

    /// A `foreach` step: the call once per element, at most `parallelism` at a time, outputs in
    /// the elements' order. A failed element stops the step (no new element starts) unless the
    /// step's `on_error` is `continue`, which records null for it and goes on.
    private func performForeach(_ step: PlanStep, _ foreach: ForEach, scope: RunScope, runId: String, principal: String,
                                options: RunOptions, progress: RunProgress) async -> StepRecord {
        var rec = StepRecord(id: step.id, call: step.call, status: .running)
        let elements: [JSONValue]
        do {
            let value = try Template.resolve(foreach.items, in: scope, strict: true)
            guard let array = value.arrayValue else {
                rec.status = .failed
                rec.reason = "field 'foreach.items': must resolve to an array, got \(value.typeName)"
                return rec
            }
            elements = array
        } catch {
            rec.status = .failed
            rec.reason = "field 'foreach.items': \(error)"
            return rec
        }
        guard elements.count <= ForEach.maxItems else {
            rec.status = .failed
            rec.reason = "field 'foreach.items': \(elements.count) elements, more than the \(ForEach.maxItems) a step may iterate"
            return rec
        }
        var results = [StepRecord?](repeating: nil, count: elements.count)
        var next = 0
        var stopped: RunStatus?
        await withTaskGroup(of: (Int, StepRecord).self) { group in
            func start(_ i: Int) {
                let label = "\(step.id)[\(i)]"
                var itemScope = scope
                itemScope.element = (elements[i], i)
                let input: JSONValue
                do { input = try Template.resolve(step.input, in: itemScope, strict: true) } catch {
                    group.addTask { (i, StepRecord(id: label, call: step.call, status: .failed, reason: "field 'input': \(error)")) }
                    return
                }
                group.addTask {
                    (i, await self.performOne(step, label: label, input: input, runId: runId, principal: principal, options: options, progress: progress))
                }
            }
            while next < elements.count && next < foreach.parallelism { start(next); next += 1 }
            while let (i, item) = await group.next() {
                var item = item
                item.id = "\(step.id)[\(i)]"
                results[i] = item
                if stopped == nil {
                    switch item.status {
                    case .denied, .cancelled: stopped = item.status
                    case .failed where step.onError == .fail: stopped = .failed
                    default: break
                    }
                }
                if stopped == nil && next < elements.count && !Task.isCancelled { start(next); next += 1 }
            }
        }
        rec.items = results.enumerated().map { i, r in
            r ?? StepRecord(id: "\(step.id)[\(i)]", call: step.call, status: .skipped, reason: "not run: an earlier element \(stopped?.rawValue ?? "stopped")")
        }
        let failed = rec.items!.filter { $0.status != .succeeded && $0.status != .skipped }
        if let stopped {
            rec.status = stopped
            let first = failed.first
            rec.reason = "element \(first?.id ?? "?") \(stopped.rawValue): \(first?.reason ?? "")"
        } else if Task.isCancelled && results.contains(where: { $0 == nil }) {
            rec.status = .cancelled
            rec.reason = "cancelled"
        } else {
            rec.status = .succeeded
            rec.output = .array(rec.items!.map { $0.status == .succeeded ? ($0.output ?? .null) : .null })
            if !failed.isEmpty { rec.reason = "\(failed.count) of \(elements.count) elements failed (on_error: continue)" }
        }
        return rec
    }

    /// A `template:` step: the template rendered with the step's input as params and run as a
    /// sub-run of this run (same run id: policy, limits and budgets are charged to this run).
    private func runTemplate(_ step: PlanStep, _ ref: TemplateRef, label: String, params: JSONValue, runId: String, principal: String,
                             options: RunOptions) async -> StepRecord {
        var rec = StepRecord(id: label, call: step.call, status: .running)
        guard let templates else {
            rec.status = .failed
            rec.reason = "template steps need the host's template library"
            return rec
        }
        guard options.depth < RunOptions.maxDepth else {
            rec.status = .failed
            rec.reason = "template sub-runs nested more than \(RunOptions.maxDepth) deep"
            return rec
        }
        let rendered: (plan: Plan, provenance: TemplateProvenance)
        do { rendered = try await templates.resolve(ref).render(params: params) } catch let e as TemplateLookupError {
            rec.status = .failed
            rec.reason = "field 'call': \(e)"
            return rec
        } catch {
            rec.status = .failed
            rec.reason = "field 'input': the params do not fit template \(ref): \(error)"
            return rec
        }
        let inputs: [String: JSONValue]
        do { inputs = try Self.bindInputs(rendered.plan, given: [:]) } catch {
            rec.status = .failed
            rec.reason = "template \(rendered.provenance.name)@\(rendered.provenance.version): \(error)"
            return rec
        }
        var subOptions = options
        subOptions.resume = []
        subOptions.depth += 1
        var sub = await run(rendered.plan, inputs: inputs, principal: principal, runId: runId, options: subOptions)
        sub.template = rendered.provenance
        rec.subrun = SubRunRecord(sub)
        rec.status = sub.status
        rec.output = sub.status == .succeeded ? sub.output : nil
        rec.reason = sub.error.map { "sub-run of template \(rendered.provenance.name)@\(rendered.provenance.version): \($0)" }
        return rec
    }

    /// One call: input validation, then attempts with policy (and approval), deadline and backoff.
    private func execute(_ step: PlanStep, label: String, input: JSONValue, runId: String, principal: String, allowedTools: Set<String>?,
                         progress: RunProgress) async -> StepRecord {
        var rec = StepRecord(id: label, call: step.call, status: .running)
        let resolved: (driver: any ToolDriver, tool: ToolDescriptor)
        do { resolved = try await registry.resolve(toolId: step.call) } catch {
            rec.status = .failed
            rec.reason = "\(error)"
            return rec
        }
        let secrets = resolved.tool.secretInputFields
        rec.secretInputFields = secrets
        if let problem = schemas.checkInput(step.call, tool: resolved.tool, input: input) {
            rec.status = .failed
            rec.reason = "field 'input': \(problem)"
            rec.attempts.append(AttemptRecord(attempt: 1, startedAt: Timestamps.now(), durationMs: 0, decision: nil,
                                              input: Redaction.redact(input, extraKeys: secrets), output: nil,
                                              error: ToolCallError(kind: .invalidArgument, message: problem), usage: ToolUsage()))
            return rec
        }
        let inputBytes = input.serializedBytes()
        var request = GateRequest(runId: runId, principal: principal, tool: step.call, input: input, annotations: resolved.tool.annotations,
                                  policyInputs: resolved.tool.policyInputs)
        var approvalRecord: JSONValue?
        let shortTool = ToolId.split(step.call)!.tool
        var backoff = Double(step.retry.backoffMs)
        for attempt in 1...step.retry.maxAttempts {
            if Task.isCancelled { rec.status = .cancelled; rec.reason = "cancelled"; return rec }
            let startedAt = Timestamps.now()
            if let allowedTools, !allowedTools.contains(step.call) {
                let decision = GateDecision(allowed: false, ruleId: "agent-tools",
                                            reason: "the agent may not use \(step.call) (its tools: \(allowedTools.sorted().joined(separator: ", ")))")
                rec.attempts.append(AttemptRecord(attempt: attempt, startedAt: startedAt, durationMs: 0, decision: decision,
                                                  input: Redaction.redact(input, extraKeys: secrets), output: nil, error: nil, usage: ToolUsage()))
                rec.status = .denied
                rec.reason = "\(decision.ruleId): \(decision.reason)"
                return rec
            }
            // A step marked `approval: true` waits before the policy is asked (and charged).
            if step.requiresApproval && !request.approved {
                let call = approvalCall(label, step.call, input, Redaction.redact(input, extraKeys: secrets), runId, principal,
                                        rule: "step:approval", reason: "step '\(step.id)' is marked approval: true", progress: progress)
                if let ended = await awaitApproval(call, &rec, &request, &approvalRecord, attempt: attempt, startedAt: startedAt) { return ended }
            }
            var decision = await gate.authorize(request)
            if decision.requiresApproval && !request.approved {
                let call = approvalCall(label, step.call, input, Redaction.redact(input, extraKeys: secrets), runId, principal,
                                        rule: decision.ruleId, reason: decision.reason, progress: progress)
                if let ended = await awaitApproval(call, &rec, &request, &approvalRecord, attempt: attempt, startedAt: startedAt) { return ended }
                decision = await gate.authorize(request)
            }
            guard decision.allowed else {
                rec.attempts.append(AttemptRecord(attempt: attempt, startedAt: startedAt, durationMs: 0, decision: decision,
                                                  input: Redaction.redact(input, extraKeys: secrets), output: nil, error: nil, usage: ToolUsage()))
                rec.status = .denied
                rec.reason = "\(decision.ruleId): \(decision.reason)"
                return rec
            }
            let t0 = nova_monotonic_ns()
            let deadline = step.timeoutMs.map { t0 + Int64($0) * 1_000_000 }
            var attemptRec = AttemptRecord(attempt: attempt, startedAt: startedAt, durationMs: 0, decision: decision,
                                           input: Redaction.redact(input, extraKeys: secrets), output: nil, error: nil, usage: ToolUsage())
            attemptRec.approval = approvalRecord
            do {
                let result = try await resolved.driver.call(ToolCallRequest(tool: shortTool, input: inputBytes, deadlineNanos: deadline))
                let elapsed = nova_monotonic_ns() - t0
                attemptRec.durationMs = Double(elapsed) / 1e6
                (attemptRec.startNanos, attemptRec.endNanos) = (t0, t0 + elapsed)
                attemptRec.usage = result.usage
                await gate.charge(request, usage: result.usage, durationNanos: elapsed)
                let output: JSONValue
                do { output = try result.outputJSON() } catch {
                    attemptRec.error = ToolCallError(kind: .internal, message: "the driver returned output that is not JSON: \(error)", source: "host")
                    rec.attempts.append(attemptRec)
                    rec.status = .failed
                    rec.reason = attemptRec.error!.message
                    return rec
                }
                if let problem = schemas.checkOutput(step.call, tool: resolved.tool, output: output) {
                    attemptRec.output = output
                    attemptRec.error = ToolCallError(kind: .internal, code: "output_schema", message: "output does not match the tool's outputSchema: \(problem)", source: "host")
                    rec.attempts.append(attemptRec)
                    rec.status = .failed
                    rec.reason = attemptRec.error!.message
                    return rec
                }
                attemptRec.output = output
                rec.attempts.append(attemptRec)
                rec.status = .succeeded
                rec.output = output
                return rec
            } catch {
                let elapsed = nova_monotonic_ns() - t0
                let e = (error as? ToolCallError) ?? ToolCallError(kind: .internal, message: "\(error)")
                attemptRec.durationMs = Double(elapsed) / 1e6
                (attemptRec.startNanos, attemptRec.endNanos) = (t0, t0 + elapsed)
                attemptRec.error = e
                attemptRec.usage = e.usage
                await gate.charge(request, usage: e.usage, durationNanos: elapsed)
                rec.attempts.append(attemptRec)
                rec.reason = e.message
                if e.kind == .cancelled && Task.isCancelled { rec.status = .cancelled; return rec }
                let retryable = e.kind != .invalidArgument && e.kind != .unknownTool && e.kind != .unsupported && e.kind != .unavailable
                if !retryable || attempt == step.retry.maxAttempts { break }
                // Full jitter: sleep a random time up to the current backoff, then double it.
                let sleepMs = Double.random(in: 0...max(backoff, 0))
                backoff = min(backoff * 2, Double(step.retry.maxBackoffMs))
                try? await Task.sleep(nanoseconds: UInt64(sleepMs * 1e6))
            }
        }
        rec.status = Task.isCancelled ? .cancelled : .failed
        return rec
    }
}

extension PlanRunner {
    func approvalCall(_ label: String, _ tool: String, _ input: JSONValue, _ redacted: JSONValue, _ runId: String, _ principal: String,
                      rule: String, reason: String, progress: RunProgress) -> ApprovalCall {
        ApprovalCall(runId: runId, stepId: label, tool: tool, input: input, redactedInput: redacted, principal: principal,
                     rule: rule, reason: reason, checkpoint: progress.snapshot)
    }

    /// Waits for the approval of `call`. Approved: marks `request` approved, keeps the decision
    /// for the attempt's record, and returns nil (the call goes on). Otherwise returns the
    /// step's record as it ends: denied, failed (expired, or no approval store), cancelled.
    func awaitApproval(_ call: ApprovalCall, _ rec: inout StepRecord, _ request: inout GateRequest, _ approvalRecord: inout JSONValue?,
                       attempt: Int, startedAt: String) async -> StepRecord? {
        func end(_ status: RunStatus, _ reason: String, _ approval: ApprovalRequest?, rule: String) -> StepRecord {
            var a = AttemptRecord(attempt: attempt, startedAt: startedAt, durationMs: 0,
                                  decision: GateDecision(allowed: false, ruleId: rule, reason: reason),
                                  input: call.redactedInput, output: nil, error: nil, usage: ToolUsage())
            a.approval = approval?.json
            rec.attempts.append(a)
            rec.status = status
            rec.reason = reason
            return rec
        }
        guard let approvals else {
            return end(.denied, "\(call.rule): the call needs a person's approval and this host keeps no approval requests", nil, rule: call.rule)
        }
        switch await approvals.wait(for: call) {
        case .approved(let a):
            request.approved = true
            approvalRecord = a.json
            return nil
        case .denied(let a):
            return end(.denied, "approval \(a.id) denied by \(a.decidedBy ?? "?")" + (a.comment.map { ": \($0)" } ?? ""), a, rule: call.rule)
        case .expired(let a):
            return end(.failed, "approval \(a.id) expired at \(a.json["expires_at"]?.stringValue ?? "?") without a decision", a, rule: call.rule)
        case .cancelled(let a):
            return end(.cancelled, "cancelled while waiting for approval \(a.id)", a, rule: call.rule)
        case .unavailable(let m):
            return end(.failed, m, nil, rule: call.rule)
        }
    }
}

/// Compiled input and output schemas per tool, compiled on first use and shared.
public final class ToolSchemaCache: Sendable {
    /// Keyed by `ToolDescriptor.identity` (one per loaded generation), not by tool id: a
    /// reload that changes a tool's schemas must not be validated against the old ones.
    private let cache = Mutex<[UInt64: CompiledToolSchemas]>([:])
    /// Entries kept at most; past it the cache starts over (old generations' entries go too).
    static let capacity = 4096
    public init() {}

    func schemas(_ id: String, tool: ToolDescriptor) -> CompiledToolSchemas {
        if let c = cache.withLock({ $0[tool.identity] }) { return c }
        let compiled = CompiledToolSchemas(tool: tool)
        cache.withLock { c in
            if c.count >= Self.capacity { c.removeAll(keepingCapacity: true) }
            c[tool.identity] = compiled
        }
        return compiled
    }

    /// A message if `input` does not match the tool's inputSchema.
    public func checkInput(_ id: String, tool: ToolDescriptor, input: JSONValue) -> String? {
        schemas(id, tool: tool).checkInput(input)
    }

    /// A message if `output` does not match the tool's outputSchema.
    public func checkOutput(_ id: String, tool: ToolDescriptor, output: JSONValue) -> String? {
        schemas(id, tool: tool).checkOutput(output)
    }
}
