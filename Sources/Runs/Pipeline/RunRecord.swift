import Drivers
import JSON
import Plans
import Policy

/// How a run, a step or an attempt ended.
public enum RunStatus: String, Sendable, Codable {
    case succeeded, failed, denied, cancelled, skipped, running, interrupted
}

/// One attempt of one step: what was called with what, what policy said, what came back.
public struct AttemptRecord: Sendable {
    public var attempt: Int
    public var startedAt: String
    public var durationMs: Double
    public var decision: GateDecision?
    /// The input as sent, with secrets redacted.
    public var input: JSONValue
    public var output: JSONValue?
    public var error: ToolCallError?
    public var usage: ToolUsage
    /// The approval request this call waited for, as decided (who, when, comment), if any.
    public var approval: JSONValue?
    /// CLOCK_MONOTONIC nanoseconds when the call started and ended (not in the episode: only
    /// meaningful inside this process; used to observe overlap).
    public var startNanos: Int64 = 0
    public var endNanos: Int64 = 0

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "attempt": .int(attempt), "started_at": .string(startedAt), "duration_ms": .double(durationMs),
            "input": input, "usage": ["tokens": .int(Int(usage.tokens)), "cost_micros": .int(Int(usage.costMicros))],
        ]
        if let decision { o["decision"] = decision.json }
        if let approval { o["approval"] = approval }
        if let output { o["output"] = output }
        if let error {
            o["error"] = ["kind": .string(error.kind.rawValue), "code": .string(error.code), "message": .string(error.message), "source": .string(error.source)]
        }
        return .object(o)
    }
}

/// One step's record.
public struct StepRecord: Sendable {
    public var id: String
    public var call: String
    public var status: RunStatus
    public var attempts: [AttemptRecord] = []
    public var output: JSONValue?
    /// Why the step failed or was skipped.
    public var reason: String?
    /// The tool's `x-secret` input fields (not recorded): the pipeline redacts them from the
    /// plan document too.
    public var secretInputFields: [String] = []
    /// A `foreach` step: one record per element, in order (ids `step[0]`, `step[1]`, …).
    public var items: [StepRecord]?
    /// A `template:` step: the sub-run's record, nested in this run's episode.
    public var subrun: SubRunRecord?
    /// A step restored from a checkpoint when the run resumed (its record as first written).
    public var restored: JSONValue?

    public var json: JSONValue {
        if case .object(var o)? = restored {
            o["resumed"] = true
            return .object(o)
        }
        var o: [String: JSONValue] = ["id": .string(id), "call": .string(call), "status": .string(status.rawValue),
                                      "attempts": .array(attempts.map(\.json))]
        if let output { o["output"] = output }
        if let reason { o["reason"] = .string(reason) }
        if let items { o["items"] = .array(items.map(\.json)) }
        if let subrun { o["subrun"] = subrun.record.json }
        return .object(o)
    }

    /// The records of `steps` that can be restored: succeeded steps of a checkpoint.
    static func restorable(_ checkpoint: JSONValue?) -> [StepRecord] {
        (checkpoint?.arrayValue ?? []).compactMap { j in
            guard let id = j["id"]?.stringValue, let call = j["call"]?.stringValue, j["status"]?.stringValue == RunStatus.succeeded.rawValue else { return nil }
            var r = StepRecord(id: id, call: call, status: .succeeded, output: j["output"] ?? .null)
            r.restored = j
            return r
        }
    }

    /// Every attempt of the step, of its `foreach` elements and of its sub-run, in order.
    public var allAttempts: [AttemptRecord] {
        attempts + (items ?? []).flatMap(\.allAttempts) + (subrun?.record.steps ?? []).flatMap(\.allAttempts)
    }
}

/// Everything about one run: the body of its episode.
public struct RunRecord: Sendable {
    public var runId: String
    public var planName: String
    public var plan: JSONValue
    public var principal: String
    public var inputs: JSONValue
    public var startedAt: String
    public var finishedAt: String = ""
    public var durationMs: Double = 0
    public var status: RunStatus = .running
    public var steps: [StepRecord] = []
    public var output: JSONValue?
    public var error: String?
    /// The queued job and attempt that produced this record (runs submitted through the queue).
    public var job: RunJobAttempt?
    /// The template the plan was rendered from (exact version, hash, params), if any.
    public var template: TemplateProvenance?
    /// The run this one reruns (`episodes replay --rerun`).
    public var replayOf: String?

    public var totals: (calls: Int, tokens: UInt64, costMicros: UInt64) {
        var calls = 0, tokens: UInt64 = 0, cost: UInt64 = 0
        for s in steps where s.restored == nil { for a in s.allAttempts where a.decision?.allowed ?? true {
            calls += 1; tokens += a.usage.tokens; cost += a.usage.costMicros
        } }
        return (calls, tokens, cost)
    }

    /// The record as JSON (the episode body, before hashing).
    public var json: JSONValue {
        let t = totals
        var o: [String: JSONValue] = [
            "run_id": .string(runId), "plan_name": .string(planName), "plan": plan, "principal": .string(principal),
            "inputs": inputs, "started_at": .string(startedAt), "finished_at": .string(finishedAt),
            "duration_ms": .double(durationMs), "status": .string(status.rawValue), "steps": .array(steps.map(\.json)),
            "totals": ["calls": .int(t.calls), "tokens": .int(Int(t.tokens)), "cost_micros": .int(Int(t.costMicros))],
        ]
        if let output { o["output"] = output }
        if let error { o["error"] = .string(error) }
        if let template { o["template"] = template.json }
        if let replayOf { o["replay_of"] = .string(replayOf) }
        if let job { o["job"] = ["id": .string(job.jobId), "attempt": .int(job.attempt), "worker": .string(job.worker)] }
        return .object(o)
    }
}

/// Which attempt of which queued job ran a run (an attempt cut short by a crash leaves no
/// record; the one that finishes says it was, say, attempt 2).
public struct RunJobAttempt: Sendable, Hashable {
    public var jobId: String
    public var attempt: Int
    public var worker: String

    public init(jobId: String, attempt: Int, worker: String) {
        self.jobId = jobId
        self.attempt = attempt
        self.worker = worker
    }
}

/// A sub-run's record inside its step (a class: a record nests records).
public final class SubRunRecord: Sendable {
    public let record: RunRecord
    public init(_ record: RunRecord) { self.record = record }
}
