import Drivers
import Episodes
import HostSupport
import JSON
import Plans
import Policy

/// How a replayed decision compares with the recorded one.
public enum ReplayChange: String, Sendable {
    /// Same outcome, same rule.
    case same
    /// Was allowed, would now be denied.
    case nowDenied = "now_denied"
    /// Was denied, would now be allowed.
    case nowAllowed = "now_allowed"
    /// Same outcome, decided by another rule.
    case ruleChanged = "rule_changed"
    /// Not re-derived: the recorded decision depended on state the replay does not have (a
    /// shared rate limit, a principal budget, wall time) or on something outside the policy (an
    /// agent's tool list).
    case notRederived = "not_rederived"
    /// Would now wait for a person's approval (a `require_approval` rule) where it did not.
    case nowRequiresApproval = "now_requires_approval"

    /// Whether this counts as a difference (exit 1 of `episodes replay`).
    public var isDifference: Bool { self == .nowDenied || self == .nowAllowed || self == .ruleChanged || self == .nowRequiresApproval }
}

/// One recorded policy decision and the decision the replayed profile makes for the same call.
public struct ReplayedCall: Sendable {
    /// 1-based position among the run's decided calls, in the order they started.
    public var number: Int
    public var stepId: String
    public var tool: String
    public var attempt: Int
    public var recordedAllowed: Bool
    /// `allow`, `deny` or `require_approval`, as recorded.
    public var recordedDecision: String
    public var recordedRule: String
    public var recordedReason: String
    /// The profile hash recorded with the decision (nil for old episodes).
    public var recordedPolicy: String?
    /// The replayed decision (nil when not re-derived).
    public var replayed: GateDecision?
    public var change: ReplayChange
    /// The difference (or why nothing was re-derived) in words; nil when unchanged.
    public var message: String?

    public var json: JSONValue {
        var recorded: [String: JSONValue] = ["decision": .string(recordedDecision), "rule": .string(recordedRule),
                                             "reason": .string(recordedReason)]
        if let recordedPolicy { recorded["policy"] = .string(recordedPolicy) }
        var o: [String: JSONValue] = ["call": .int(number), "step": .string(stepId), "tool": .string(tool), "attempt": .int(attempt),
                                      "recorded": .object(recorded), "change": .string(change.rawValue)]
        if let replayed {
            o["replayed"] = ["decision": .string(replayed.allowed ? "allow" : replayed.requiresApproval ? "require_approval" : "deny"),
                             "rule": .string(replayed.ruleId), "reason": .string(replayed.reason)]
        }
        if let message { o["message"] = .string(message) }
        return .object(o)
    }
}

/// What would happen to one step under the replayed profile.
public struct ReplayedStep: Sendable {
    public var id: String
    public var tool: String
    /// The recorded status (`succeeded`, `denied`, `skipped`, …).
    public var recorded: String
    /// `unchanged`, `would run`, `would be denied`, `would be skipped`.
    public var replayed: String
    /// Why, in words.
    public var note: String?

    public var json: JSONValue {
        var o: [String: JSONValue] = ["id": .string(id), "call": .string(tool), "recorded": .string(recorded), "replayed": .string(replayed)]
        if let note { o["note"] = .string(note) }
        return .object(o)
    }
}

/// The replay of one episode: every recorded decision re-derived, the differences in words.
public struct EpisodeReplayReport: Sendable {
    public var runId: String
    public var planName: String
    public var principal: String
    /// The recorded run status.
    public var recordedStatus: String
    /// What the run's status would be where that is determinable (`denied` when a call would now
    /// be denied; `unknown` when a denied call would now run; else the recorded status).
    public var replayedStatus: String
    /// The hash of the profile replayed against.
    public var policy: String
    public var calls: [ReplayedCall]
    public var steps: [ReplayedStep]
    /// What the replay could not decide, or decided with less than the recorded call had.
    public var notes: [String]

    /// The differences, one sentence each.
    public var differences: [String] {
        calls.filter(\.change.isDifference).compactMap(\.message)
            + steps.filter { $0.replayed != "unchanged" }.map { "step \($0.id) (\($0.tool)): \($0.recorded) → \($0.replayed)\($0.note.map { ": " + $0 } ?? "")" }
    }

    /// Whether every decision came out as recorded.
    public var isIdentical: Bool { !calls.contains { $0.change.isDifference } }

    public var json: JSONValue {
        [
            "run_id": .string(runId), "plan_name": .string(planName), "principal": .string(principal),
            "recorded_status": .string(recordedStatus), "replayed_status": .string(replayedStatus), "policy": .string(policy),
            "identical": .bool(isIdentical), "differences": .array(differences.map { .string($0) }),
            "calls": .array(calls.map(\.json)), "steps": .array(steps.map(\.json)), "notes": .array(notes.map { .string($0) }),
        ]
    }

    /// The report in words (what `episodes replay` prints).
    public var text: String {
        var lines = ["run \(runId) (\(planName.isEmpty ? "unnamed plan" : planName), principal \(principal)) against policy \(policy.hasPrefix("sha256:") ? String(policy.dropFirst(7).prefix(12)) : String(policy.prefix(12))):"
                        + (isIdentical ? " no difference in \(calls.count) decision\(calls.count == 1 ? "" : "s")" : "")]
        for d in differences { lines.append("  - " + d) }
        if !isIdentical { lines.append("  run: \(recordedStatus) → \(replayedStatus)") }
        for n in notes { lines.append("  note: " + n) }
        return lines.joined(separator: "\n")
    }
}

/// Why an episode cannot be replayed or rerun.
public struct ReplayError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Re-derives a recorded episode's policy decisions against a policy profile, without calling a
/// driver and without touching the host's rate limits or budgets: the decisions are made by a
/// private, in-memory `PolicyEngine` (run budgets are simulated from the recorded calls and
/// their usage; shared rate limits and principal budgets start full).
///
/// The role is the profile's mapping of the principal; when the profile does not map the
/// principal, the role the decision recorded (a role an API key or JWT bound) if the profile has it.
public struct EpisodeReplayer: Sendable {
    /// The profile decisions are replayed against.
    public let profile: PolicyProfile
    /// The tool's annotations and policy inputs (conditions read them); nil when unknown.
    let describe: @Sendable (String) async -> ToolDescriptor?

    public init(profile: PolicyProfile, describe: @escaping @Sendable (String) async -> ToolDescriptor?) {
        self.profile = profile
        self.describe = describe
    }

    private struct RecordedCall {
        var stepIndex: Int
        var stepId: String
        var tool: String
        var attempt: Int
        var startedAt: String
        var input: JSONValue
        var decision: JSONValue
        var tokens: UInt64
        /// The status of the approval request the call waited for (`approved`, `denied`, `expired`), if any.
        var approval: String?
    }

    /// Replays the episode `document` (as `episodes show --json` prints it).
    public func replay(_ document: JSONValue) async throws(ReplayError) -> EpisodeReplayReport {
        guard let runId = document["run_id"]?.stringValue, let stepsJSON = document["steps"]?.arrayValue else {
            throw ReplayError("not an episode of a run (no run_id or steps)")
        }
        let principal = document["principal"]?.stringValue ?? ""
        var notes: [String] = []
        // Every decided attempt (foreach elements and template sub-runs included), in the order
        // it started (document order breaks ties).
        var recorded: [RecordedCall] = []
        for r in EpisodeAttempts.all(in: document) {
            let a = r.attempt
            guard let d = a["decision"], d.objectValue != nil else { continue }
            recorded.append(RecordedCall(stepIndex: r.order, stepId: r.stepId, tool: r.tool, attempt: a["attempt"]?.intValue ?? 1,
                                         startedAt: a["started_at"]?.stringValue ?? "", input: a["input"] ?? .object([:]), decision: d,
                                         tokens: UInt64(max(0, a["usage"]?["tokens"]?.intValue ?? 0)),
                                         approval: a["approval"]?["status"]?.stringValue))
        }
        recorded.sort { l, r in l.startedAt != r.startedAt ? l.startedAt < r.startedAt : l.stepIndex < r.stepIndex }

        let engine = PolicyEngine(profile: profile)
        let replayRun = "replay-" + RunId.make()
        defer { engine.endRun(replayRun) }
        if profile.role(of: principal) == nil, let role = recorded.lazy.compactMap({ $0.decision["role"]?.stringValue }).first,
           profile.roles.contains(role) {
            try? engine.bindRole(role, toRun: replayRun)
            notes.append("the profile does not map principal '\(principal)'; replayed as the recorded role '\(role)'")
        }
        var descriptors: [String: ToolDescriptor?] = [:]
        var unknownTools = Set<String>()
        var redactedTools = Set<String>()
        var calls: [ReplayedCall] = []
        for (n, r) in recorded.enumerated() {
            let recAllowed = r.decision["decision"]?.stringValue == "allow"
            let recApproval = r.decision["decision"]?.stringValue == "require_approval"
            let recRule = r.decision["rule"]?.stringValue ?? ""
            let recReason = r.decision["reason"]?.stringValue ?? ""
            var call = ReplayedCall(number: n + 1, stepId: r.stepId, tool: r.tool, attempt: r.attempt, recordedAllowed: recAllowed,
                                    recordedDecision: r.decision["decision"]?.stringValue ?? "deny", recordedRule: recRule, recordedReason: recReason, recordedPolicy: r.decision["policy"]?.stringValue,
                                    replayed: nil, change: .same)
            let label = "call \(n + 1) `\(r.tool)` (step \(r.stepId)\(r.attempt > 1 ? ", attempt \(r.attempt)" : ""))"
            if recRule == "agent-tools" || recRule == "step:approval" {
                call.change = .notRederived
                call.message = recRule == "agent-tools" ? "\(label) was decided by the agent's tool list, not the policy: not replayed"
                    : "\(label) waited for an approval its step asks for (approval: true), not the policy: not replayed"
                notes.append(call.message!)
                calls.append(call)
                continue
            }
            if descriptors[r.tool] == nil { descriptors[r.tool] = .some(await describe(r.tool)) }
            let descriptor = descriptors[r.tool] ?? nil
            if descriptor == nil, unknownTools.insert(r.tool).inserted {
                notes.append("tool \(r.tool) is not available here: its annotations and policy inputs are unknown, so rules with conditions on it cannot match")
            }
            if Self.containsRedacted(r.input) { redactedTools.insert(r.tool) }
            var request = GateRequest(runId: replayRun, principal: principal, tool: r.tool, input: r.input, annotations: descriptor?.annotations,
                                      policyInputs: descriptor?.policyInputs ?? PolicyInputs())
            // A call a person approved is replayed as approved: a `require_approval` rule lets it through.
            request.approved = r.approval == "approved"
            let now = engine.decide(request, consume: true)
            if now.allowed, r.tokens > 0 { await engine.charge(request, usage: ToolUsage(tokens: r.tokens), durationNanos: 0) }
            call.replayed = now
            let stateDependent = !recAllowed && (recReason.hasPrefix("rate limit '") || recReason.hasPrefix("budget '") || recReason.contains("wall time over"))
            let personDecided = r.approval != nil && r.approval != "approved"
            if now.requiresApproval && !recApproval && !personDecided {
                call.change = .nowRequiresApproval
                call.message = "\(label) was \(recAllowed ? "allowed" : "denied") by rule \(recRule), would now wait for a person's approval (rule \(now.ruleId))"
            } else if personDecided && now.requiresApproval && now.ruleId == recRule {
                call.change = .notRederived
                call.message = "\(label) waited for approval by rule \(recRule) and was \(r.approval!) by a person; it would still need approval: not compared"
                notes.append(call.message!)
            } else if stateDependent && now.allowed {
                call.change = .notRederived
                call.message = "\(label) was denied by \(recRule) (\(recReason)), which depends on state a replay does not have: not compared"
                notes.append(call.message!)
            } else if recAllowed && !now.allowed {
                call.change = .nowDenied
                call.message = "\(label) was allowed by rule \(recRule), would now be denied by rule \(now.ruleId): \(now.reason)"
            } else if !recAllowed && now.allowed {
                call.change = .nowAllowed
                call.message = "\(label) was denied by rule \(recRule), would now be allowed by rule \(now.ruleId)"
            } else if recRule != now.ruleId {
                call.change = .ruleChanged
                call.message = "\(label) was \(recAllowed ? "allowed" : "denied") by rule \(recRule), would now be \(now.allowed ? "allowed" : "denied") by rule \(now.ruleId)"
                    + (now.allowed ? "" : ": \(now.reason)")
            }
            calls.append(call)
        }
        for tool in redactedTools.sorted() {
            notes.append("the recorded input of \(tool) has redacted values: conditions read \(Redaction.marker.stringValue ?? "[REDACTED]") where the call had a secret")
        }
        let (steps, status) = await transitions(document: document, stepsJSON: stepsJSON, calls: calls, engine: engine, runId: replayRun,
                                                principal: principal, descriptors: descriptors)
        return EpisodeReplayReport(runId: runId, planName: document["plan_name"]?.stringValue ?? "", principal: principal,
                                   recordedStatus: document["status"]?.stringValue ?? "", replayedStatus: status, policy: profile.hash,
                                   calls: calls, steps: steps, notes: notes)
    }

    /// The steps whose fate changes: a step whose call would now be denied stops the run (steps
    /// depending on it would be skipped); a step that was denied and would now be allowed runs,
    /// and so do the steps the denial skipped (their own decision is derived when their input
    /// refers to nothing the run produced).
    private func transitions(document: JSONValue, stepsJSON: [JSONValue], calls: [ReplayedCall], engine: PolicyEngine, runId: String,
                             principal: String, descriptors: [String: ToolDescriptor?]) async -> ([ReplayedStep], String) {
        let recordedStatus = document["status"]?.stringValue ?? ""
        let plan = document["plan"].flatMap { try? Plan.parse($0) }
        var dependents: [String: Set<String>] = [:]
        if let plan {
            for step in plan.steps { for d in plan.dependencies(of: step) { dependents[d, default: []].insert(step.id) } }
        }
        func transitive(_ id: String) -> [String] {
            var seen = Set<String>(), stack = [id]
            while let s = stack.popLast() { for d in dependents[s] ?? [] where seen.insert(d).inserted { stack.append(d) } }
            return stepsJSON.compactMap { $0["id"]?.stringValue }.filter { seen.contains($0) }
        }
        var out: [ReplayedStep] = []
        var changed = Set<String>()
        var status = recordedStatus
        // The first call (in start order) that would now be denied.
        if let denied = calls.first(where: { $0.change == .nowDenied }) {
            let after = transitive(denied.stepId)
            out.append(ReplayedStep(id: denied.stepId, tool: denied.tool, recorded: statusOf(denied.stepId, stepsJSON), replayed: "would be denied",
                                    note: "by rule \(denied.replayed?.ruleId ?? "?"); the run would stop as denied"
                                        + (after.isEmpty ? "" : " and \(after.joined(separator: ", ")) would be skipped")))
            changed.insert(denied.stepId)
            for id in after where !changed.contains(id) {
                let rec = statusOf(id, stepsJSON)
                if rec != "skipped" {
                    out.append(ReplayedStep(id: id, tool: tool(of: id, stepsJSON), recorded: rec, replayed: "would be skipped",
                                            note: "it depends on \(denied.stepId)"))
                }
                changed.insert(id)
            }
            status = "denied"
        }
        // A call that would now wait for a person.
        if let waiting = calls.first(where: { $0.change == .nowRequiresApproval }), !changed.contains(waiting.stepId) {
            out.append(ReplayedStep(id: waiting.stepId, tool: waiting.tool, recorded: statusOf(waiting.stepId, stepsJSON), replayed: "would wait for approval",
                                    note: "rule \(waiting.replayed?.ruleId ?? "?") asks a person to approve the call; the run would pause until then"))
            changed.insert(waiting.stepId)
        }
        // A denial that would now pass: the step runs, and so do the steps the denial skipped.
        if let allowed = calls.first(where: { $0.change == .nowAllowed }), !changed.contains(allowed.stepId) {
            out.append(ReplayedStep(id: allowed.stepId, tool: allowed.tool, recorded: statusOf(allowed.stepId, stepsJSON), replayed: "would run",
                                    note: "its call would be allowed by rule \(allowed.replayed?.ruleId ?? "?"); its outcome cannot be known without calling the driver"))
            changed.insert(allowed.stepId)
            if status == "denied" && !calls.contains(where: { $0.change == .nowDenied }) { status = "unknown" }
            for step in stepsJSON {
                guard let id = step["id"]?.stringValue, !changed.contains(id), step["status"]?.stringValue == "skipped",
                      step["reason"]?.stringValue?.hasPrefix("not run: step '\(allowed.stepId)' denied") == true else { continue }
                let call = step["call"]?.stringValue ?? ""
                var note = "it was skipped because \(allowed.stepId) was denied"
                if let input = plan?.step(id)?.input, !input.serialized().contains("${") {
                    let d = engine.decide(GateRequest(runId: runId, principal: principal, tool: call, input: input,
                                                      annotations: (descriptors[call] ?? nil)?.annotations,
                                                      policyInputs: (descriptors[call] ?? nil)?.policyInputs ?? PolicyInputs()), consume: false)
                    note += "; its call would be \(d.allowed ? "allowed" : "denied") by rule \(d.ruleId)"
                } else {
                    note += "; its decision depends on what earlier steps return"
                }
                out.append(ReplayedStep(id: id, tool: call, recorded: "skipped", replayed: "would run", note: note))
                changed.insert(id)
            }
        }
        return (out, status)
    }

    private func statusOf(_ id: String, _ steps: [JSONValue]) -> String {
        steps.first { $0["id"]?.stringValue == id }?["status"]?.stringValue ?? ""
    }

    private func tool(of id: String, _ steps: [JSONValue]) -> String {
        steps.first { $0["id"]?.stringValue == id }?["call"]?.stringValue ?? ""
    }

    /// Whether `value` holds the redaction marker anywhere.
    public static func containsRedacted(_ value: JSONValue) -> Bool {
        if value == Redaction.marker { return true }
        if let o = value.objectValue { return o.values.contains { containsRedacted($0) } }
        if let a = value.arrayValue { return a.contains { containsRedacted($0) } }
        return false
    }

    /// The episode as `episodes show --json` prints it, or the `document` of `GET /v1/episodes/{id}`.
    public static func document(from json: JSONValue) -> JSONValue {
        if json["run_id"] == nil, let d = json["document"], d["run_id"] != nil { return d }
        return json
    }

    /// A new run of the recorded episode: its plan, inputs and principal, linked with
    /// `replay_of`. Refused when the recorded inputs or plan hold redacted secrets (they cannot
    /// be rerun: the values were never recorded).
    public static func rerunSubmission(_ document: JSONValue) throws(ReplayError) -> (submission: RunSubmission, replayOf: String) {
        guard let runId = document["run_id"]?.stringValue, let planJSON = document["plan"] else {
            throw ReplayError("the episode holds no plan: it cannot be rerun")
        }
        let inputs = document["inputs"]?.objectValue ?? [:]
        let redacted = inputs.keys.sorted().filter { containsRedacted(inputs[$0]!) }
        if !redacted.isEmpty {
            throw ReplayError("run \(runId) cannot be rerun: its recorded inputs have redacted secrets (\(redacted.joined(separator: ", "))); the values were never recorded — run the plan again with them")
        }
        if containsRedacted(planJSON) {
            throw ReplayError("run \(runId) cannot be rerun: its recorded plan has redacted secret inputs; the values were never recorded — run the plan again with them")
        }
        let plan: Plan
        do { plan = try Plan.parse(planJSON) } catch { throw ReplayError("the recorded plan of run \(runId) does not parse: \(error.description)") }
        return (RunSubmission(plan: plan, inputs: inputs, principal: document["principal"]?.stringValue ?? "local", origin: "replay"), runId)
    }
}

extension NovaHost {
    /// A replayer against `profile` (default: the host's current one) that knows the tools'
    /// annotations and policy inputs from the built-in tools and the drivers' manifests (a driver
    /// may be loaded to read them; no tool is called).
    public func replayer(profile: PolicyProfile? = nil) -> EpisodeReplayer {
        let registry = self.registry
        return EpisodeReplayer(profile: profile ?? policy.profile) { tool in
            if let d = BuiltInTools.descriptor(toolId: tool) { return d }
            return try? await registry.resolve(toolId: tool).tool
        }
    }
}
