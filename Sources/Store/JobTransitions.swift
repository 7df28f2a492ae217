import JSON

/// The state changes of a job, computed once here for every backend: a store reads the row,
/// applies one of these, and writes the row back only if nobody changed it meanwhile.
extension Job {
    /// The history entry for the attempt in progress, ended now with `outcome`.
    public func endedAttempt(_ outcome: String, error: String?, nowMs: Int64) -> JobAttempt {
        JobAttempt(attempt: attempt, worker: worker ?? "", startedAtMs: startedAtMs ?? nowMs, finishedAtMs: nowMs, outcome: outcome, error: error)
    }

    /// The job after its worker reported `completion` for the running attempt.
    public func finished(_ completion: JobCompletion, nowMs: Int64) -> Job {
        var j = self
        j.updatedAtMs = nowMs
        j.leaseUntilMs = nil
        switch completion {
        case .succeeded(let result, let payload):
            j.attempts.append(endedAttempt("succeeded", error: nil, nowMs: nowMs))
            j.state = .succeeded
            j.result = result
            if let payload { j.payload = payload }
            j.finishedAtMs = nowMs
        case .failed(let error, let retryable):
            j.attempts.append(endedAttempt("failed", error: error, nowMs: nowMs))
            j.lastError = error
            j.scheduleNextAttempt(retryable: retryable, nowMs: nowMs)
        case .cancelled(let reason):
            j.attempts.append(endedAttempt("cancelled", error: reason, nowMs: nowMs))
            j.lastError = reason
            j.state = .cancelled
            j.finishedAtMs = nowMs
        case .released(let reason):
            // Not the job's fault (its worker shut down): it runs again at once, and the
            // attempt does not use up the job's last one.
            j.attempts.append(endedAttempt("interrupted", error: reason, nowMs: nowMs))
            j.lastError = reason
            j.maxAttempts = max(j.maxAttempts, j.attempt + 1)
            j.scheduleNextAttempt(retryable: true, nowMs: nowMs, delayMs: 0)
        case .deferred(let reason, let delayMs):
            j.attempt -= 1
            j.lastError = reason
            j.worker = nil
            j.cancelRequested = false
            j.startedAtMs = nil
            j.state = .available
            j.runAtMs = nowMs + Int64(max(0, delayMs))
        }
        return j
    }

    /// The job after its lease expired with its worker gone: the attempt is `interrupted` and
    /// the job retried at once, or dead if that was its last attempt.
    public func rescued(nowMs: Int64) -> Job {
        var j = self
        let reason = "interrupted: worker \(worker ?? "?") stopped renewing its lease"
        j.attempts.append(endedAttempt("interrupted", error: reason, nowMs: nowMs))
        j.lastError = reason
        j.updatedAtMs = nowMs
        j.leaseUntilMs = nil
        j.scheduleNextAttempt(retryable: true, nowMs: nowMs, delayMs: 0)
        return j
    }

    private mutating func scheduleNextAttempt(retryable: Bool, nowMs: Int64, delayMs: Int? = nil) {
        worker = nil
        cancelRequested = false
        if retryable && attempt < maxAttempts {
            state = .retryable
            runAtMs = nowMs + Int64(delayMs ?? backoff.delayMs(afterAttempt: attempt))
        } else {
            state = .dead
            finishedAtMs = nowMs
        }
    }

    /// The job after a cancel request: cancelled if pending, flagged if running.
    public func cancelling(nowMs: Int64) -> (job: Job, outcome: JobCancelOutcome) {
        var j = self
        switch state {
        case .available, .retryable:
            j.state = .cancelled
            j.finishedAtMs = nowMs
            j.updatedAtMs = nowMs
            j.lastError = "cancelled before it ran"
            return (j, .cancelled)
        case .running:
            j.cancelRequested = true
            j.updatedAtMs = nowMs
            return (j, .cancelling)
        case .succeeded, .dead, .cancelled:
            return (j, .alreadyFinished(state))
        }
    }

    /// The job made available now by an operator, with at least one attempt left.
    public func retried(nowMs: Int64) throws(JobQueueError) -> Job {
        guard state == .dead || state == .cancelled || state == .retryable else {
            throw JobQueueError("job \(id) is \(state.rawValue); only dead, cancelled or retryable jobs can be retried")
        }
        var j = self
        j.state = .available
        j.runAtMs = nowMs
        j.maxAttempts = max(maxAttempts, attempt + 1)
        j.finishedAtMs = nil
        j.cancelRequested = false
        j.updatedAtMs = nowMs
        return j
    }

    /// A new job from `spec`, enqueued now.
    public init(spec: JobSpec, nowMs: Int64) {
        self.init(id: spec.id, kind: spec.kind, queue: spec.queue, payload: spec.payload, priority: spec.priority, state: .available,
                  attempt: 0, maxAttempts: spec.maxAttempts, backoff: spec.backoff, runAtMs: spec.runAtMs ?? nowMs,
                  uniqueKey: spec.uniqueKey, lastError: nil, worker: nil, leaseUntilMs: nil, startedAtMs: nil, cancelRequested: false,
                  createdAtMs: nowMs, updatedAtMs: nowMs, finishedAtMs: nil, result: nil, attempts: [])
    }
}

/// The row form shared by the SQL stores: every column in `JobRow.columns` order, as text,
/// integers or null, so both backends read and write one layout.
public enum JobRow {
    /// The columns, in the order `values(of:)` gives them and `job(from:)` reads them.
    public static let columns = [
        "id", "kind", "queue", "payload", "priority", "state", "attempt", "max_attempts", "backoff_base_ms", "backoff_max_ms",
        "run_at_ms", "unique_key", "last_error", "worker", "lease_until_ms", "started_at_ms", "cancel_requested",
        "created_at_ms", "updated_at_ms", "finished_at_ms", "result", "attempts",
    ]

    /// One column value.
    public enum Value: Sendable, Equatable {
        case null, int(Int64), text(String)
        var int: Int64? { if case .int(let v) = self { return v } else { return nil } }
        var text: String? { if case .text(let v) = self { return v } else { return nil } }
    }

    /// The row of `job`.
    public static func values(of job: Job) -> [Value] {
        func opt(_ v: Int64?) -> Value { v.map(Value.int) ?? .null }
        func opt(_ v: String?) -> Value { v.map(Value.text) ?? .null }
        let history = JSONValue.array(job.attempts.map { a in
            var o: JSONObject = ["attempt": .int(a.attempt), "worker": .string(a.worker), "outcome": .string(a.outcome),
                                           "started_ms": .int(Int(a.startedAtMs)), "finished_ms": .int(Int(a.finishedAtMs))]
            if let e = a.error { o["error"] = .string(e) }
            return .object(o)
        })
        return [
            .text(job.id), .text(job.kind), .text(job.queue), .text(job.payload.serialized()), .int(Int64(job.priority)),
            .text(job.state.rawValue), .int(Int64(job.attempt)), .int(Int64(job.maxAttempts)), .int(Int64(job.backoff.baseMs)),
            .int(Int64(job.backoff.maxMs)), .int(job.runAtMs), opt(job.uniqueKey), opt(job.lastError), opt(job.worker),
            opt(job.leaseUntilMs), opt(job.startedAtMs), .int(job.cancelRequested ? 1 : 0), .int(job.createdAtMs),
            .int(job.updatedAtMs), opt(job.finishedAtMs), opt(job.result?.serialized()), .text(history.serialized()),
        ]
    }

    /// The job of a row read in `columns` order; throws on a row this host did not write.
    public static func job(from v: [Value]) throws(JobQueueError) -> Job {
        guard v.count == columns.count, let id = v[0].text, let kind = v[1].text, let queue = v[2].text,
              let payloadText = v[3].text, let stateText = v[5].text, let state = JobState(rawValue: stateText)
        else { throw JobQueueError("a job row is malformed: \(v.first?.text ?? "?")") }
        func json(_ text: String, _ column: String) throws(JobQueueError) -> JSONValue {
            do { return try JSONValue.parse(text) } catch { throw JobQueueError("job \(id): \(column) is not JSON: \(error)") }
        }
        let history = try v[21].text.map { t throws(JobQueueError) in try json(t, "attempts") }
        return Job(id: id, kind: kind, queue: queue, payload: try json(payloadText, "payload"), priority: Int(v[4].int ?? 0), state: state,
                   attempt: Int(v[6].int ?? 0), maxAttempts: Int(v[7].int ?? 1),
                   backoff: JobBackoff(baseMs: Int(v[8].int ?? 0), maxMs: Int(v[9].int ?? 0)), runAtMs: v[10].int ?? 0,
                   uniqueKey: v[11].text, lastError: v[12].text, worker: v[13].text, leaseUntilMs: v[14].int, startedAtMs: v[15].int,
                   cancelRequested: (v[16].int ?? 0) != 0, createdAtMs: v[17].int ?? 0, updatedAtMs: v[18].int ?? 0,
                   finishedAtMs: v[19].int, result: try v[20].text.map { t throws(JobQueueError) in try json(t, "result") },
                   attempts: (history?.arrayValue ?? []).compactMap(JobAttempt.init(stored:)))
    }

    /// The columns a state change writes (everything but id, kind, queue, priority, unique
    /// key, backoff and created_at), as indexes into `columns`.
    public static let mutableColumns = [3, 5, 6, 7, 10, 12, 13, 14, 15, 16, 18, 19, 20, 21]
}
