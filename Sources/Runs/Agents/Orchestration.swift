import Foundation
import HostSupport
import JSON
import Plans
import Store

/// A plan of agents (`nova-host orchestrate FILE`): named phases run in order, each a list of
/// goals for agents. A phase starts when every goal of the one before has completed.
///
/// ```yaml
/// name: release-1-4
/// phases:
///   - name: prepare
///     goals:
///       - {agent: planner, goal: "Plan release 1.4", template: planner@1, params: {topic: "1.4"}}
///       - {agent: researcher, goal: "Collect open issues", plan: {...}}
///   - name: verify
///     goals: [{agent: tester, goal: "Smoke test", inputs: {url: "http://127.0.0.1:8080"}}]
/// ```
public struct Orchestration: Sendable {
    public struct GoalSpec: Sendable {
        public var agent: String
        public var goal: String
        public var request: GoalRequest
    }
    public struct Phase: Sendable {
        public var name: String
        public var goals: [GoalSpec]
    }
    public var name: String
    public var description: String?
    public var phases: [Phase]

    /// Parses the document; errors name the field (`phases[1].goals[0].agent`).
    public init(json: JSONValue) throws(PlanErrors) {
        var errors: [PlanError] = []
        func err(_ field: String, _ message: String) { errors.append(PlanError(field: field, message)) }
        guard let root = json.objectValue else { throw PlanErrors(errors: [PlanError("an orchestration is an object with name and phases")]) }
        for k in root.keys.sorted() where !["name", "description", "phases", "$schema"].contains(k) { err(k, "unknown field (an orchestration has name, description, phases)") }
        let name = root["name"]?.stringValue ?? ""
        if !TemplateRef.isValidName(name) { err("name", "must be lowercase letters, digits, '-' and '_' (it names the report and keys the goals)") }
        var phases: [Phase] = []
        if let list = root["phases"]?.arrayValue, !list.isEmpty {
            var names = Set<String>()
            for (i, p) in list.enumerated() {
                let at = "phases[\(i)]"
                guard let pname = p["name"]?.stringValue, !pname.isEmpty else { err("\(at).name", "is required"); continue }
                if !names.insert(pname).inserted { err("\(at).name", "'\(pname)' names two phases") }
                guard let goals = p["goals"]?.arrayValue, !goals.isEmpty else { err("\(at).goals", "must be a non-empty array of goals"); continue }
                var specs: [GoalSpec] = []
                for (j, g) in goals.enumerated() {
                    let gat = "\(at).goals[\(j)]"
                    guard let o = g.objectValue else { err(gat, "must be an object {agent, goal, …}"); continue }
                    for k in o.keys.sorted() where !["agent", "goal", "plan", "template", "params", "inputs", "priority"].contains(k) {
                        err("\(gat).\(k)", "unknown field (a goal has agent, goal, plan or template and params, inputs, priority)")
                    }
                    guard let agent = o["agent"]?.stringValue, !agent.isEmpty else { err("\(gat).agent", "is required (an agent's name or id)"); continue }
                    guard let text = o["goal"]?.stringValue, !text.isEmpty else { err("\(gat).goal", "is required (the goal as text)"); continue }
                    if o["plan"] != nil && o["template"] != nil { err(gat, "give plan or template, not both") }
                    if let t = o["template"], t.stringValue == nil { err("\(gat).template", "must be a string like \"restock@1\"") }
                    if let ps = o["params"], ps.objectValue == nil { err("\(gat).params", "must be an object") }
                    if let inp = o["inputs"], inp.objectValue == nil { err("\(gat).inputs", "must be an object") }
                    var request = GoalRequest(goal: text, plan: o["plan"], inputs: o["inputs"]?.objectValue ?? [:], priority: o["priority"]?.intValue ?? 0)
                    request.template = o["template"]?.stringValue
                    request.params = o["params"]
                    specs.append(GoalSpec(agent: agent, goal: text, request: request))
                }
                phases.append(Phase(name: pname, goals: specs))
            }
        } else { err("phases", "must be a non-empty array of {name, goals}") }
        guard errors.isEmpty else { throw PlanErrors(errors: errors) }
        self.name = name
        self.description = root["description"]?.stringValue
        self.phases = phases
    }

    /// The idempotency key of a goal: running the same orchestration again finds the goals it
    /// already submitted instead of submitting them twice (it resumes).
    public func key(phase: Int, goal: Int) -> String { "orchestrate:\(name):\(phases[phase].name):\(goal)" }
}

/// Where one goal of an orchestration stands.
public struct OrchestratedGoal: Sendable {
    public var phase: String
    public var agent: String
    public var goal: String
    /// `not started`, `pending`, `running`, `completed`, `partial`, `failed`, `cancelled`, or `refused` (the goal was not accepted).
    public var status: String
    public var goalId: String?
    public var error: String?

    public var done: Bool { status == "completed" }
    public var ended: Bool { ["completed", "partial", "failed", "cancelled", "refused"].contains(status) }
}

/// Runs an orchestration through the agents' goals (the queue runs them; the caller provides
/// a worker) and renders its report and checklist.
public struct Orchestrator: Sendable {
    public let service: AgentService
    /// How often goal states are read while waiting.
    public var pollMs = 200

    public init(service: AgentService) { self.service = service }

    /// Runs every phase in order; goals of a phase one after another, or all at once with
    /// `parallel`. A phase with a goal that did not complete stops the orchestration (the
    /// phases after it are `not started`). `progress` sees every change.
    public func run(_ o: Orchestration, parallel: Bool, progress: @Sendable ([OrchestratedGoal]) -> Void = { _ in }) async -> [OrchestratedGoal] {
        var state = o.phases.flatMap { p in p.goals.map { OrchestratedGoal(phase: p.name, agent: $0.agent, goal: $0.goal, status: "not started") } }
        var offset = 0
        for (pi, phase) in o.phases.enumerated() {
            let range = offset..<(offset + phase.goals.count)
            offset += phase.goals.count
            if parallel {
                for (gi, spec) in phase.goals.enumerated() { state[range.lowerBound + gi] = await submit(o, pi, gi, spec, state[range.lowerBound + gi]) }
                progress(state)
                await wait(&state, range, progress)
            } else {
                for (gi, spec) in phase.goals.enumerated() {
                    state[range.lowerBound + gi] = await submit(o, pi, gi, spec, state[range.lowerBound + gi])
                    progress(state)
                    await wait(&state, (range.lowerBound + gi)..<(range.lowerBound + gi + 1), progress)
                    if !state[range.lowerBound + gi].done { break }
                }
            }
            if !state[range].allSatisfy(\.done) { break }
        }
        return state
    }

    /// Where each goal stands, without submitting anything (the `--checklist` view).
    public func status(_ o: Orchestration) async -> [OrchestratedGoal] {
        var out: [OrchestratedGoal] = []
        for (pi, phase) in o.phases.enumerated() {
            for (gi, spec) in phase.goals.enumerated() {
                var g = OrchestratedGoal(phase: phase.name, agent: spec.agent, goal: spec.goal, status: "not started")
                if let agent = try? await service.agent(spec.agent),
                   let job = try? await service.queue.listJobs(JobFilter(uniqueKey: RunJob.uniqueKey(principal: "agent:" + agent.id, idempotencyKey: o.key(phase: pi, goal: gi))),
                                                              limit: 1, offset: 0).first {
                    g.goalId = job.id
                    g.status = GoalView.status(of: job)
                    g.error = job.lastError
                }
                out.append(g)
            }
        }
        return out
    }

    func submit(_ o: Orchestration, _ pi: Int, _ gi: Int, _ spec: Orchestration.GoalSpec, _ current: OrchestratedGoal) async -> OrchestratedGoal {
        var g = current
        var request = spec.request
        request.idempotencyKey = o.key(phase: pi, goal: gi)
        do {
            let (view, _) = try await service.submit(spec.agent, request)
            g.goalId = view.goal.id
            g.status = view.status
        } catch {
            g.status = "refused"
            g.error = "\(error)"
        }
        return g
    }

    func wait(_ state: inout [OrchestratedGoal], _ range: Range<Int>, _ progress: @Sendable ([OrchestratedGoal]) -> Void) async {
        while !state[range].allSatisfy(\.ended) {
            try? await Task.sleep(nanoseconds: UInt64(pollMs) * 1_000_000)
            if Task.isCancelled { return }
            var changed = false
            for i in range where !state[i].ended {
                guard let id = state[i].goalId, let view = try? await service.goal(id) else { continue }
                if view.status != state[i].status {
                    state[i].status = view.status
                    state[i].error = view.job?.lastError
                    changed = true
                }
            }
            if changed { progress(state) }
        }
    }

    /// `- [x] phase · agent: goal (status, goal id)` per goal.
    public static func checklist(_ goals: [OrchestratedGoal]) -> String {
        goals.map { g in
            let box = g.done ? "[x]" : (g.ended ? "[!]" : "[ ]")
            let id = g.goalId.map { ", goal \($0)" } ?? ""
            return "- \(box) \(g.phase) · \(g.agent): \(g.goal) (\(g.status)\(id))" + (g.error.map { " — \($0)" } ?? "")
        }.joined(separator: "\n")
    }

    /// The Markdown status report written at the end.
    public static func report(_ o: Orchestration, _ goals: [OrchestratedGoal], startedAt: String, finishedAt: String) -> String {
        let done = goals.filter(\.done).count
        var md = "# Orchestration `\(o.name)`\n\n"
        if let d = o.description { md += d + "\n\n" }
        md += "- started: \(startedAt)\n- finished: \(finishedAt)\n- goals completed: \(done) of \(goals.count)\n"
        let outcome = done == goals.count ? "completed" : (goals.contains { $0.ended && !$0.done } ? "stopped: a goal did not complete" : "incomplete")
        md += "- outcome: **\(outcome)**\n\n"
        for phase in o.phases {
            let inPhase = goals.filter { $0.phase == phase.name }
            md += "## Phase \(phase.name) (\(inPhase.filter(\.done).count)/\(inPhase.count))\n\n| agent | goal | status | goal id | error |\n|---|---|---|---|---|\n"
            for g in inPhase {
                md += "| \(cell(g.agent)) | \(cell(g.goal)) | \(g.status) | \(g.goalId ?? "") | \(cell(g.error ?? "")) |\n"
            }
            md += "\n"
        }
        md += "## Checklist\n\n" + checklist(goals) + "\n"
        return md
    }

    static func cell(_ s: String) -> String {
        s.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }
}
