import JSON
import Synchronization
import CHostSupport
import Drivers
import Episodes
import HostSupport
import Plans
import Policy

/// Options of one run.
public struct RunOptions: Sendable {
    /// How many independent steps may run at once.
    public var parallelism: Int = 4
    /// The tools the run may call at all (an agent's tools), checked before the policy; nil: any.
    /// A step calling another is denied (rule `agent-tools`) and recorded like a policy denial.
    public var allowedTools: Set<String>?
    /// The run this one reruns (`episodes replay --rerun`), recorded as `replay_of`.
    public var replayOf: String?
    public init(parallelism: Int = 4, allowedTools: Set<String>? = nil, replayOf: String? = nil) {
        self.parallelism = max(1, parallelism)
        self.allowedTools = allowedTools
        self.replayOf = replayOf
    }
}

/// Values references resolve against: the run's inputs and finished steps.
struct RunScope: ReferenceScope {
    var inputs: [String: JSONValue]
    var steps: [String: (output: JSONValue, status: RunStatus, error: JSONValue)] = [:]

    func input(_ name: String) -> JSONValue? { inputs[name] }
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

    public init(registry: DriverRegistry, gate: any CallGate, schemas: ToolSchemaCache = ToolSchemaCache()) {
        self.registry = registry
        self.gate = gate
        self.schemas = schemas
    }

    /// Checks what needs drivers: every step's `driver.tool` exists (loading its driver on first
    /// use). Errors name the step and the field.
    public func validate(_ plan: Plan) async -> [PlanError] {
        var errors: [PlanError] = []
        for step in plan.steps {
            do { _ = try await registry.resolve(toolId: step.call) } catch let e as ToolCallError {
                errors.append(PlanError(step: step.id, field: "call", e.message))
            } catch {
                errors.append(PlanError(step: step.id, field: "call", "\(error)"))
            }
        }
        return errors
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
        var remaining = plan.steps
        var runningIds = Set<String>()
        var stop: (status: RunStatus, reason: String)?
        let deps = Dictionary(plan.steps.map { ($0.id, plan.dependencies(of: $0)) }, uniquingKeysWith: { a, _ in a })

        await withTaskGroup(of: StepOutcome.self) { group in
            while true {
                // Start every ready step, up to the parallelism bound.
                if stop == nil && !Task.isCancelled {
                    var i = 0
                    while i < remaining.count && runningIds.count < options.parallelism {
                        let step = remaining[i]
                        guard deps[step.id, default: []].allSatisfy({ records[$0] != nil }) else { i += 1; continue }
                        remaining.remove(at: i)
                        // A reference that does not resolve is an error of this step, never a null.
                        var input = JSONValue.null
                        var early = self.prepare(step, scope: scope)
                        if early == nil {
                            do { input = try Template.resolve(step.input, in: scope, strict: true) } catch {
                                early = StepRecord(id: step.id, call: step.call, status: .failed, reason: "field 'input': \(error)")
                            }
                        }
                        if let early {
                            records[step.id] = early
                            scope.steps[step.id] = (early.output ?? .null, early.status, early.reason.map { .string($0) } ?? .null)
                            if early.status == .failed && step.onError == .fail { stop = (.failed, "step '\(step.id)': \(early.reason ?? "failed")") }
                            i = 0
                            continue
                        }
                        runningIds.insert(step.id)
                        group.addTask {
                            // Driver log records made during the call name the run.
                            await DriverCallContext.$runId.withValue(runId) {
                                await DriverCallContext.$stepId.withValue(step.id) {
                                    await DriverCallContext.$principal.withValue(principal) {
                                        .finished(await self.execute(step, input: input, runId: runId, principal: principal, allowedTools: options.allowedTools))
                                    }
                                }
                            }
                        }
                    }
                }
                guard let outcome = await group.next() else { break }
                guard case .finished(let rec) = outcome else { continue }
                runningIds.remove(rec.id)
                records[rec.id] = rec
                let errorValue: JSONValue = rec.attempts.last?.error.map { .object(["code": .string($0.code), "message": .string($0.message)]) } ?? .null
                scope.steps[rec.id] = (rec.output ?? .null, rec.status, errorValue)
                let onError = plan.step(rec.id)?.onError ?? .fail
                if stop == nil {
                    switch rec.status {
                    case .denied: stop = (.denied, "step '\(rec.id)' denied by policy: \(rec.reason ?? "")")
                    case .cancelled: stop = (.cancelled, "cancelled")
                    case .failed where onError == .fail: stop = (.failed, "step '\(rec.id)' failed: \(rec.reason ?? "")")
                    default: break
                    }
                    if stop != nil { group.cancelAll() }
                }
            }
        }
        if stop == nil && Task.isCancelled { stop = (.cancelled, "cancelled") }
        for step in remaining where records[step.id] == nil {
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

    /// Runs one step: input validation, then attempts with policy, deadline and backoff.
    private func execute(_ step: PlanStep, input: JSONValue, runId: String, principal: String, allowedTools: Set<String>?) async -> StepRecord {
        var rec = StepRecord(id: step.id, call: step.call, status: .running)
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
        let request = GateRequest(runId: runId, principal: principal, tool: step.call, input: input, annotations: resolved.tool.annotations,
                                  policyInputs: resolved.tool.policyInputs)
        let shortTool = ToolId.split(step.call)!.tool
        var backoff = Double(step.retry.backoffMs)
        for attempt in 1...step.retry.maxAttempts {
            if Task.isCancelled { rec.status = .cancelled; rec.reason = "cancelled"; return rec }
            let startedAt = Timestamps.now()
            let decision = if let allowedTools, !allowedTools.contains(step.call) {
                GateDecision(allowed: false, ruleId: "agent-tools",
                             reason: "the agent may not use \(step.call) (its tools: \(allowedTools.sorted().joined(separator: ", ")))")
            } else {
                await gate.authorize(request)
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
