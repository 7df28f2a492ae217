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
        var o = JSONObjectBuilder(capacity: 9)
        write(to: &o)
        return o.value
    }

    /// Writes the attempt's members (`json`) into `o`.
    public func write<Sink: JSONObjectSink & ~Copyable>(to o: inout Sink) {
        o.member("attempt", .int(attempt))
        o.member("started_at", .string(startedAt))
        o.member("duration_ms", .double(durationMs))
        o.member("input", input)
        o.member("usage") { u in
            u.member("tokens", .int(Int(usage.tokens)))
            u.member("cost_micros", .int(Int(usage.costMicros)))
        }
        if let decision { o.member("decision") { decision.write(to: &$0) } }
        if let approval { o.member("approval", approval) }
        if let output { o.member("output", output) }
        if let error {
            o.member("error") { e in
                e.member("kind", .string(error.kind.rawValue))
                e.member("code", .string(error.code))
                e.member("message", .string(error.message))
                e.member("source", .string(error.source))
            }
        }
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
        var o = JSONObjectBuilder(capacity: 8)
        write(to: &o)
        return o.value
    }

    /// Writes the step's members (`json`) into `o`: a restored step as first recorded, marked
    /// `resumed`.
    public func write<Sink: JSONObjectSink & ~Copyable>(to o: inout Sink) {
        if case .object(let first)? = restored {
            for (k, v) in first where k.string != "resumed" { o.member(k.string, v) }
            o.member("resumed", true)
            return
        }
        o.member("id", .string(id))
        o.member("call", .string(call))
        o.member("status", .string(status.rawValue))
        o.member("attempts", objects: attempts.count) { a, i in attempts[i].write(to: &a) }
        if let output { o.member("output", output) }
        if let reason { o.member("reason", .string(reason)) }
        if let items { o.member("items", objects: items.count) { a, i in items[i].write(to: &a) } }
        if let subrun { o.member("subrun") { subrun.record.write(to: &$0) } }
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
        var o = JSONObjectBuilder(capacity: 16)
        write(to: &o)
        return o.value
    }

    /// Writes the record's members (`json`) into `o`: with `CanonicalObjectWriter`, the episode
    /// body's canonical encoding without a `JSONValue` in between.
    public func write<Sink: JSONObjectSink & ~Copyable>(to o: inout Sink) {
        let t = totals
        o.member("run_id", .string(runId))
        o.member("plan_name", .string(planName))
        o.member("plan", plan)
        o.member("principal", .string(principal))
        o.member("inputs", inputs)
        o.member("started_at", .string(startedAt))
        o.member("finished_at", .string(finishedAt))
        o.member("duration_ms", .double(durationMs))
        o.member("status", .string(status.rawValue))
        o.member("steps", objects: steps.count) { s, i in steps[i].write(to: &s) }
        o.member("totals") { x in
            x.member("calls", .int(t.calls))
            x.member("tokens", .int(Int(t.tokens)))
            x.member("cost_micros", .int(Int(t.costMicros)))
        }
        if let output { o.member("output", output) }
        if let error { o.member("error", .string(error)) }
        if let template { o.member("template", template.json) }
        if let replayOf { o.member("replay_of", .string(replayOf)) }
        if let job {
            o.member("job") { j in
                j.member("id", .string(job.jobId))
                j.member("attempt", .int(job.attempt))
                j.member("worker", .string(job.worker))
            }
        }
    }

    /// The episode body's members in canonical encoding (what `json` holds, without building it).
    public var episodeMembers: CanonicalMembers {
        var w = CanonicalObjectWriter()
        write(to: &w)
        return w.finishMembers()
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
