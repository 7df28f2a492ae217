import JSON
import Episodes
import HostSupport
import Plans
import Policy
import Synchronization

/// A run as an entry point asks for it, before anything is checked: the CLI, REST
/// (`POST /v1/runs`), the tool route and MCP (one-step plans), and next the job queue and agents.
public struct RunSubmission: Sendable {
    /// The parsed plan (shape checked; drivers and tools not yet).
    public var plan: Plan
    /// The inputs as given (not yet bound to the plan's declarations).
    public var inputs: [String: JSONValue]
    /// Who runs it: the policy decides for this name.
    public var principal: String
    /// The role the caller authenticated with; nil means the profile's mapping of the principal.
    public var role: String?
    /// How many independent steps may run at once; nil means `RunPipeline.defaultParallelism`.
    public var parallelism: Int?
    /// Where the run came from (`cli`, `rest`, `tool`, `mcp`, …).
    public var origin: String
    /// The only tools the run may call (an agent's tools); nil: whatever the policy allows.
    public var allowedTools: [String]?
    /// The template the plan was rendered from, recorded with the run.
    public var template: TemplateProvenance?

    public init(plan: Plan, inputs: [String: JSONValue] = [:], principal: String, role: String? = nil,
                parallelism: Int? = nil, origin: String, allowedTools: [String]? = nil) {
        self.allowedTools = allowedTools
        self.plan = plan
        self.inputs = inputs
        self.principal = principal
        self.role = role
        self.parallelism = parallelism
        self.origin = origin
    }
}

/// Why a submission cannot run. Entry points map it to their own form (exit code 2, HTTP 422…).
public enum RunRejection: Error, Sendable, CustomStringConvertible {
    /// An input is missing, undeclared or of the wrong type.
    case invalidInputs([PlanError])
    /// An option is out of range (the message names it and the range).
    case invalidOptions(String)
    /// A step names a driver or tool that does not exist, or the plan is otherwise unrunnable.
    case invalidPlan([PlanError])
    /// The caller's role is not a role of the policy profile.
    case unknownRole(String)

    public var description: String {
        switch self {
        case .invalidInputs(let e), .invalidPlan(let e): return e.map(\.description).joined(separator: "\n")
        case .invalidOptions(let m), .unknownRole(let m): return m
        }
    }

    /// The individual problems (one for options and roles).
    public var errors: [PlanError] {
        switch self {
        case .invalidInputs(let e), .invalidPlan(let e): return e
        case .invalidOptions(let m), .unknownRole(let m): return [PlanError(m)]
        }
    }
}

/// How many runs of one host are running (`RunPipeline.run`) and being recorded
/// (`RunPipeline.record`). A run whose episode is written while it is the only one of either is
/// `isAlone`: its episode may be committed on its own thread (`EpisodeSegmentLog`), which only
/// pays when no other run needs the cooperative pool meanwhile. A hint, not a lock: a run that
/// starts a moment later only waits for that one `fdatasync`.
final class RunActivity: Sendable {
    let running = Atomic<Int>(0)
    let recording = Atomic<Int>(0)
    var isAlone: Bool { running.load(ordering: .relaxed) == 0 && recording.load(ordering: .relaxed) == 1 }
}

/// What a finished run produced: its record (redacted, as recorded) and its episode.
public struct RunResult: Sendable {
    public var record: RunRecord
    /// The durable episode; nil when it could not be written (`episodeError` says why).
    public var episode: EpisodeRef?
    /// Why the episode could not be written or indexed, or policy state saved.
    public var episodeError: String?
}

/// The one run pipeline: **prepare → bind inputs → validate → run → redact → record**.
///
/// Every entry point builds a `RunSubmission`, calls `prepare` (which checks options once,
/// here, with one set of limits), and then either `execute` or — when it tracks runs itself,
/// as `RunManager` does — `run` and `record`.
public struct RunPipeline: Sendable {
    /// The parallelism a run gets when the submission names none.
    public static let defaultParallelism = 4
    /// The parallelism a submission may ask for.
    public static let parallelismRange = 1...64

    let runner: PlanRunner
    let policy: PolicyEngine
    let activity: RunActivity
    let finish: @Sendable (RunRecord) async -> (episode: EpisodeRef?, episodeError: String?)

    /// Binds the inputs, checks the options and the role, and validates every step against
    /// the drivers. Nothing runs.
    public func prepare(_ s: RunSubmission) async throws(RunRejection) -> RunRequest {
        let inputs: [String: JSONValue]
        do { inputs = try PlanRunner.bindInputs(s.plan, given: s.inputs) } catch { throw .invalidInputs(error.errors) }
        let parallelism = s.parallelism ?? Self.defaultParallelism
        guard Self.parallelismRange.contains(parallelism) else {
            throw .invalidOptions("parallelism must be an integer from \(Self.parallelismRange.lowerBound) to \(Self.parallelismRange.upperBound)")
        }
        if let role = s.role, !policy.profile.roles.contains(role) {
            throw .unknownRole("unknown role '\(role)' (the policy has: \(policy.profile.roles.joined(separator: ", ")))")
        }
        let problems = await runner.validate(s.plan, chain: s.template.map { [$0.name] } ?? [])
        if !problems.isEmpty { throw .invalidPlan(problems) }
        var request = RunRequest(plan: s.plan, inputs: inputs, principal: s.principal, role: s.role,
                                 options: RunOptions(parallelism: parallelism, allowedTools: s.allowedTools.map(Set.init)), origin: s.origin)
        request.template = s.template
        return request
    }

    /// Runs a prepared request in the caller's task (cancelling the task cancels the run) and
    /// returns its record, not yet redacted nor recorded.
    public func run(_ request: RunRequest, runId: String) async -> RunRecord {
        activity.running.add(1, ordering: .relaxed)
        defer { activity.running.subtract(1, ordering: .relaxed) }
        if let role = request.role { try? policy.bindRole(role, toRun: runId) }
        var record = await runner.run(request.plan, inputs: request.inputs, principal: request.principal, runId: runId, options: request.options)
        record.template = request.template
        return record
    }

    /// Redacts the record (inputs, and the plan document's step inputs, with the tools'
    /// `x-secret` fields) and records it: policy state and the episode, off the cooperative pool.
    public func record(_ record: RunRecord) async -> RunResult {
        let redacted = Self.redact(record)
        activity.recording.add(1, ordering: .relaxed)
        defer { activity.recording.subtract(1, ordering: .relaxed) }
        let (episode, episodeError) = await finish(redacted)
        return RunResult(record: redacted, episode: episode, episodeError: episodeError)
    }

    /// `run` then `record`.
    public func execute(_ request: RunRequest, runId: String = RunId.make()) async -> RunResult {
        await record(await run(request, runId: runId))
    }

    /// Sub-runs nested in a step (a template step, or the elements of a `foreach` over one).
    static func redactSubruns(_ step: StepRecord) -> StepRecord {
        var s = step
        if let sub = s.subrun { s.subrun = SubRunRecord(redact(sub.record)) }
        s.items = s.items?.map(redactSubruns)
        return s
    }

    /// What is written is what may be read: inputs and the plan document lose their secrets.
    /// What holds none is not copied.
    static func redact(_ record: RunRecord) -> RunRecord {
        var r = record
        if let inputs = Redaction.redacted(r.inputs) { r.inputs = inputs }
        if var t = r.template, let params = Redaction.redacted(t.params) {
            t.params = params
            r.template = t
        }
        if r.steps.contains(where: { $0.subrun != nil || $0.items != nil }) { r.steps = r.steps.map(redactSubruns) }
        if case .object(var plan) = r.plan, case .array(var steps)? = plan["steps"] {
            // A step's own x-secret fields by its id (the first step of an id wins), looked up
            // only when some step has any.
            let secrets = r.steps.contains(where: { !$0.secretInputFields.isEmpty })
                ? Dictionary(r.steps.map { ($0.id, $0.secretInputFields) }, uniquingKeysWith: { a, _ in a }) : [:]
            var changed = false
            for i in steps.indices {
                guard case .object(var o) = steps[i], let input = o["input"] else { continue }
                let extra = secrets.isEmpty ? [] : o["id"]?.stringValue.flatMap { secrets[$0] } ?? []
                guard let redacted = Redaction.redacted(input, extraKeys: extra) else { continue }
                o["input"] = redacted
                steps[i] = .object(o)
                changed = true
            }
            if changed {
                plan["steps"] = .array(steps)
                r.plan = .object(plan)
            }
        } else if let plan = Redaction.redacted(r.plan) {
            r.plan = plan
        }
        return r
    }
}
