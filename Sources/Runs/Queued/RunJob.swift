import Messaging
import JSON
import Episodes
import HostSupport
import Plans
import Store

/// A run waiting in the job queue (job kind `run`): the payload carries everything a worker
/// on any host needs to run it, and the job id is the run id its episode will carry.
public enum RunJob {
    /// The job kind of queued runs.
    public static let kind = "run"

    /// The payload of `submission`. `fingerprint` identifies the request for idempotent
    /// replays.
    public static func payload(_ s: RunSubmission, fingerprint: String?, submittedAt: String) -> JSONValue {
        var o: JSONObject = ["plan": s.plan.source, "inputs": .object(s.inputs.reduce(into: [:]) { $0[JSONKey($1.key)] = $1.value }),
                                       "principal": .string(s.principal), "origin": .string(s.origin), "submitted_at": .string(submittedAt)]
        if let role = s.role { o["role"] = .string(role) }
        if let p = s.parallelism { o["parallelism"] = .int(p) }
        if let fingerprint { o["fingerprint"] = .string(fingerprint) }
        if let tools = s.allowedTools { o["allowed_tools"] = .array(tools.map(JSONValue.string)) }
        if let template = s.template { o["template"] = template.json }
        return .object(o)
    }

    /// The submission a payload carries; throws a message naming the bad field.
    public static func submission(_ payload: JSONValue) throws(JobQueueError) -> RunSubmission {
        guard case .object = payload else { throw JobQueueError("the payload is not an object") }
        guard let planJSON = payload["plan"] else { throw JobQueueError("the payload has no plan") }
        let plan: Plan
        do { plan = try Plan.parse(planJSON) } catch { throw JobQueueError("the payload's plan is invalid: \(error)") }
        guard let principal = payload["principal"]?.stringValue, !principal.isEmpty else {
            throw JobQueueError("the payload has no principal")
        }
        var inputs: [String: JSONValue] = [:]
        if let i = payload["inputs"] {
            guard let o = i.objectValue else { throw JobQueueError("the payload's inputs are not an object") }
            inputs = o
        }
        var parallelism: Int?
        if let p = payload["parallelism"] {
            guard let n = p.intValue else { throw JobQueueError("the payload's parallelism is not an integer") }
            parallelism = n
        }
        var s = RunSubmission(plan: plan, inputs: inputs, principal: principal, role: payload["role"]?.stringValue,
                              parallelism: parallelism, origin: payload["origin"]?.stringValue ?? "queue",
                              allowedTools: payload["allowed_tools"]?.arrayValue?.compactMap(\.stringValue))
        s.template = payload["template"].flatMap(TemplateProvenance.init(json:))
        return s
    }

    /// The unique key that makes an `Idempotency-Key` of `principal` name one run.
    public static func uniqueKey(principal: String, idempotencyKey: String) -> String {
        "run:" + SHA256.hex(Array((principal + "\u{0}" + idempotencyKey).utf8))
    }
}

/// Executes queued runs (job kind `run`) through the one run pipeline, as the principal and
/// role that submitted them. A run is recorded exactly once: an attempt that finds the run's
/// episode already written (its predecessor crashed after writing it) completes the job
/// without running the plan again. A run whose plan can no longer run (a driver was removed)
/// is recorded `failed`.
public struct RunJobHandler: JobHandler {
    public let runs: RunManager
    /// Where goals' agents are looked up (a run job with an `agent_id` is a goal).
    public let agents: (any AgentStore)?
    /// Where a triggered goal's message is settled when the goal ends.
    public let bus: BusService?
    /// How long a goal of a paused or stopped agent waits before it is looked at again.
    public static let heldGoalDelayMs = 2_000

    public init(runs: RunManager, agents: (any AgentStore)? = nil, bus: BusService? = nil) {
        self.runs = runs
        self.agents = agents
        self.bus = bus
    }

    /// For a goal: whether its agent lets it start now (nil) or how the job ends instead.
    func agentGate(_ job: Job) async -> JobCompletion? {
        guard let agentId = job.payload["agent_id"]?.stringValue, let agents else { return nil }
        let agent: Agent?
        do { agent = try await agents.agent(id: agentId) } catch {
            return .deferred(reason: "the agent store cannot be read: \(error)", delayMs: Self.heldGoalDelayMs)
        }
        guard let agent else { return .failed(error: "agent \(agentId) does not exist", retryable: false) }
        if let deadline = job.payload["deadline_ms"]?.intValue, Timestamps.wallNanos() / 1_000_000 > Int64(deadline) {
            return .cancelled(reason: "the goal's deadline passed before it started")
        }
        switch agent.status {
        case .active: return nil
        case .paused, .stopped:
            return .deferred(reason: "agent \(agent.name) is \(agent.status.rawValue): the goal waits until it is resumed", delayMs: Self.heldGoalDelayMs)
        case .deleted: return .cancelled(reason: "agent \(agent.name) was deleted")
        }
    }

    public func perform(_ job: Job, worker: String) async -> JobCompletion {
        let completion = await attempt(job, worker: worker)
        if let trigger = job.payload["trigger"] { await settle(trigger, of: job, completion) }
        return completion
    }

    /// A triggered goal that ended acks its message (completed) or nacks it (anything else),
    /// so the subscription's redelivery and dead-letter rules apply; one that will be tried
    /// again (released, deferred, a retryable failure with attempts left) leaves it leased.
    func settle(_ trigger: JSONValue, of job: Job, _ completion: JobCompletion) async {
        guard let bus, let sub = trigger["subscription"]?.stringValue, let message = trigger["message_id"]?.stringValue else { return }
        let error: String?
        switch completion {
        case .succeeded(let result, _):
            let status = result?["status"]?.stringValue ?? "unknown"
            error = status == "succeeded" && result?["partial"] != true ? nil : "goal \(job.id) ended \(result?["partial"] == true ? "partial" : status)"
        case .failed(let e, let retryable):
            if retryable && job.attempt < job.maxAttempts { return }
            error = "goal \(job.id) failed: \(e)"
        case .cancelled(let reason): error = "goal \(job.id) was cancelled: \(reason)"
        case .released, .deferred: return
        }
        _ = try? await bus.settle(subscription: sub, messageId: message, succeeded: error == nil, error: error)
    }

    func attempt(_ job: Job, worker: String) async -> JobCompletion {
        defer { runs.forgetCancel(runId: job.id) }  // a cancel for a run that never started here
        if let held = await agentGate(job) { return held }
        var job = job
        if job.payload["plan"] == nil, let agentId = job.payload["agent_id"]?.stringValue, let agent = try? await agents?.agent(id: agentId) {
            // A goal given as text: its agent's planner makes the plan (checked before anything runs).
            do { job.payload = try await GoalPlanners.planned(job.payload, agent: agent, host: runs.host).payload } catch {
                if case .unavailable = error { return .failed(error: error.description, retryable: true) }
                return .failed(error: error.description, retryable: false)
            }
        }
        let submission: RunSubmission
        do { submission = try RunJob.submission(job.payload) } catch {
            return .failed(error: "malformed run job: \(error.message)", retryable: false)
        }
        let host = runs.host
        // Only a later attempt can find its run recorded (its predecessor died after writing
        // the episode): the first attempt skips the read.
        if job.attempt > 1, let log = host.episodes, let existing = try? await log.show(runId: job.id) {
            return .succeeded(result: ["status": existing.document["status"] ?? .null, "seq": .int(existing.ref.seq),
                                       "note": "recorded by an earlier attempt"])
        }
        let attempt = RunJobAttempt(jobId: job.id, attempt: job.attempt, worker: worker)
        let submittedAt = job.payload["submitted_at"]?.stringValue
        var request: RunRequest
        do { request = try await host.pipeline.prepare(submission) } catch {
            // Validated when it was accepted; something changed since (drivers, policy roles).
            var record = RunRecord(runId: job.id, planName: submission.plan.name, plan: submission.plan.source,
                                   principal: submission.principal, inputs: .object(submission.inputs), startedAt: Timestamps.now())
            record.finishedAt = record.startedAt
            record.status = .failed
            record.error = "the plan can no longer run: \(error.description)"
            record.job = attempt
            let result = await host.pipeline.record(record)
            if let e = result.episodeError { return .failed(error: "the run's episode was not written: \(e)", retryable: true) }
            return .succeeded(result: ["status": "failed", "seq": .int(result.episode?.seq ?? 0)])
        }
        // A run that waited for an approval and was interrupted resumes after the steps it had finished.
        if job.attempt > 1, let approvals = host.approvalStore,
           let waited = try? await approvals.listApprovals(status: nil, runId: job.id, limit: 100).first(where: { $0.checkpoint != nil }) {
            request.options.resume = StepRecord.restorable(waited.checkpoint)
        }
        // A goal with a deadline is cancelled when it passes, also while it runs.
        let deadlineWatch = job.payload["deadline_ms"]?.intValue.map { deadline in
            Task { [runs, id = job.id] in
                let waitMs = Int64(deadline) - Timestamps.wallNanos() / 1_000_000
                if waitMs > 0 { try? await Task.sleep(nanoseconds: UInt64(waitMs) * 1_000_000) }
                if !Task.isCancelled { _ = runs.cancel(runId: id, beforeStart: true) }
            }
        }
        defer { deadlineWatch?.cancel() }
        let snap: RunSnapshot
        do { snap = try await runs.execute(request, runId: job.id, job: attempt, submittedAt: submittedAt) } catch {
            switch error {
            case .notAccepting: return .released(reason: "interrupted: the worker is shutting down")
            case .unknownRole(let m): return .failed(error: m, retryable: false)
            }
        }
        if snap.released { return .released(reason: "interrupted: the worker shut down before the run finished") }
        if let e = snap.episodeError, snap.episode == nil {
            return .failed(error: "the run's episode was not written: \(e)", retryable: true)
        }
        var fields: [String: JSONValue] = ["status": .string(snap.status.rawValue), "seq": .int(snap.episode?.seq ?? 0)]
        // A run that succeeded although steps failed (on_error: continue) is a partial goal.
        if snap.status == .succeeded, snap.record?.steps.contains(where: { $0.status == .failed || $0.status == .denied }) == true {
            fields["partial"] = true
        }
        let result = JSONValue.object(fields)
        if snap.status == .cancelled && snap.cancelRequested { return .cancelled(reason: "cancelled on request (the run is recorded cancelled)") }
        return .succeeded(result: result, payload: snap.record.map { Self.redacted(job.payload, as: $0) })
    }

    /// The payload with the plan and inputs as the episode has them (secrets redacted), once
    /// the run is recorded and the job will not run again.
    static func redacted(_ payload: JSONValue, as record: RunRecord) -> JSONValue {
        guard case .object(var o) = payload else { return payload }
        o["plan"] = record.plan
        o["inputs"] = record.inputs
        return .object(o)
    }

    public func requestCancel(_ job: Job) {
        // The request may arrive between the dequeue and the run's start: then the run is
        // cancelled as it starts.
        _ = runs.cancel(runId: job.id, beforeStart: true)
    }
}
