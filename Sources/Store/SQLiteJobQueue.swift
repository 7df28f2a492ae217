import CSQLite
import JSON
import HostSupport

/// The job queue in the embedded store: `BEGIN IMMEDIATE` serializes every change between the
/// processes sharing the data directory, so a job is leased to one worker only. Commits are
/// `synchronous=FULL`: an accepted job survives a power loss. Workers in this process are woken
/// at once (`jobWake`); workers in other processes find new jobs on their poll.
extension SQLiteStore: JobQueueStore {
    private static let columnList = JobRow.columns.joined(separator: ", ")
    private static let insertSQL =
        "INSERT INTO jobs (\(columnList)) VALUES (\(Array(repeating: "?", count: JobRow.columns.count).joined(separator: ", ")))"
    private static let updateSQL = "UPDATE jobs SET "
        + JobRow.mutableColumns.map { "\(JobRow.columns[$0]) = ?" }.joined(separator: ", ")
        + " WHERE id = ? AND state = ? AND attempt = ? AND coalesce(worker, '') = ?"

    private static func nowMs() -> Int64 { Timestamps.wallNanos() / 1_000_000 }

    private static func sql(_ v: JobRow.Value) -> SQLValue {
        switch v {
        case .null: return .null
        case .int(let i): return .int(i)
        case .text(let t): return .text(t)
        }
    }

    private static func row(_ r: [SQLValue]) throws -> Job {
        try JobRow.job(from: r.map { v -> JobRow.Value in
            switch v {
            case .null: return .null
            case .int(let i): return .int(i)
            case .double(let d): return .int(Int64(d))
            case .text(let t): return .text(t)
            }
        })
    }

    private func select(_ whereSQL: String, _ params: [SQLValue]) throws -> [Job] {
        try conn.query("SELECT \(Self.columnList) FROM jobs \(whereSQL)", params).map(Self.row)
    }

    /// Writes `next` over `current` if the row is still as `current` was read. Returns whether it did.
    private func replace(_ current: Job, with next: Job) throws -> Bool {
        let all = JobRow.values(of: next)
        let params = JobRow.mutableColumns.map { Self.sql(all[$0]) }
            + [.text(current.id), .text(current.state.rawValue), .int(Int64(current.attempt)), .text(current.worker ?? "")]
        try conn.query(Self.updateSQL, params)
        return sqlite3_changes(conn.db) == 1
    }

    public func enqueue(_ spec: JobSpec) async throws -> EnqueueResult {
        if let problem = JobQueueLimits.problem(spec) { throw JobQueueError(problem) }
        let result = try await write { [self] () throws -> EnqueueResult in
            if let key = spec.uniqueKey,
               let existing = try select("WHERE unique_key = ? AND state IN ('available', 'retryable', 'running')", [.text(key)]).first {
                return EnqueueResult(job: existing, duplicate: true)
            }
            if try !select("WHERE id = ?", [.text(spec.id)]).isEmpty { throw JobQueueError("a job with id \(spec.id) already exists") }
            let job = Job(spec: spec, nowMs: Self.nowMs())
            try conn.query(Self.insertSQL, JobRow.values(of: job).map(Self.sql))
            return EnqueueResult(job: job, duplicate: false)
        }
        if !result.duplicate { jobWake.signal() }
        return result
    }

    public func dequeue(queues: [String], worker: String, limit: Int, leaseMs: Int) async throws -> [Job] {
        if queues.isEmpty || limit < 1 { return [] }
        let marks = Array(repeating: "?", count: queues.count).joined(separator: ", ")
        return try await write { [self] in
            let now = Self.nowMs()
            let sql = """
                UPDATE jobs SET state = 'running', attempt = attempt + 1, worker = ?, lease_until_ms = ?, started_at_ms = ?,
                                updated_at_ms = ?, cancel_requested = 0
                WHERE seq IN (SELECT seq FROM jobs WHERE state IN ('available', 'retryable') AND queue IN (\(marks)) AND run_at_ms <= ?
                              ORDER BY priority DESC, run_at_ms, seq LIMIT ?)
                RETURNING \(Self.columnList)
                """
            let params: [SQLValue] = [.text(worker), .int(now + Int64(leaseMs)), .int(now), .int(now)]
                + queues.map { .text($0) } + [.int(now), .int(Int64(limit))]
            return try conn.query(sql, params).map(Self.row).sorted { a, b in
                (a.priority, b.runAtMs, b.createdAtMs) > (b.priority, a.runAtMs, a.createdAtMs)
            }
        }
    }

    public func heartbeat(jobIds: [String], worker: String, leaseMs: Int) async throws -> [String: Bool] {
        if jobIds.isEmpty { return [:] }
        let marks = Array(repeating: "?", count: jobIds.count).joined(separator: ", ")
        return try await write { [self] in
            let rows = try conn.query("UPDATE jobs SET lease_until_ms = ? WHERE state = 'running' AND worker = ? AND id IN (\(marks)) "
                                      + "RETURNING id, cancel_requested",
                                      [.int(Self.nowMs() + Int64(leaseMs)), .text(worker)] + jobIds.map { .text($0) })
            var out: [String: Bool] = [:]
            for row in rows { if let id = row[0].text { out[id] = (row[1].int ?? 0) != 0 } }
            return out
        }
    }

    public func finish(_ batch: [(job: Job, completion: JobCompletion)]) async throws -> [Bool] {
        if batch.isEmpty { return [] }
        let now = Self.nowMs()
        let next = batch.map { $0.job.finished($0.completion, nowMs: now) }
        // Only the holder of a lease writes the running row's history, so the job it was
        // given is current (a cancel request may have set cancel_requested, which ends here).
        // One transaction, one fsync, for the whole batch.
        let done = try await write { [self] in
            try zip(batch, next).map { try replace($0.job, with: $1) }
        }
        if zip(done, next).contains(where: { $0 && $1.state == .retryable && $1.runAtMs <= now }) { jobWake.signal() }
        return done
    }

    public func rescueExpired() async throws -> [String] {
        let ids = try await write { [self] in
            let now = Self.nowMs()
            var ids: [String] = []
            for job in try select("WHERE state = 'running' AND lease_until_ms < ?", [.int(now)]) where try replace(job, with: job.rescued(nowMs: now)) {
                ids.append(job.id)
            }
            return ids
        }
        if !ids.isEmpty { jobWake.signal() }
        return ids
    }

    public func cancelJob(id: String) async throws -> JobCancelOutcome {
        let outcome = try await write { [self] () throws -> JobCancelOutcome in
            guard let job = try select("WHERE id = ?", [.text(id)]).first else { return .notFound }
            let (next, outcome) = job.cancelling(nowMs: Self.nowMs())
            if case .alreadyFinished = outcome { return outcome }
            _ = try replace(job, with: next)
            return outcome
        }
        if outcome == .cancelling { cancelRequests.signal() }
        return outcome
    }

    public func retryJob(id: String) async throws -> Job? {
        let job = try await write { [self] () throws -> Job? in
            guard let job = try select("WHERE id = ?", [.text(id)]).first else { return nil }
            let next = try job.retried(nowMs: Self.nowMs())
            if let key = next.uniqueKey,
               let other = try select("WHERE unique_key = ? AND state IN ('available', 'retryable', 'running') AND id <> ?", [.text(key), .text(id)]).first {
                throw JobQueueError("job \(other.id) with the same unique key is \(other.state.rawValue); retry it after that one ends")
            }
            _ = try replace(job, with: next)
            return next
        }
        if job != nil { jobWake.signal() }
        return job
    }

    public func discardJob(id: String) async throws -> Bool {
        try await write { [self] in
            guard let job = try select("WHERE id = ?", [.text(id)]).first else { return false }
            guard job.state.isFinal else {
                throw JobQueueError("job \(id) is \(job.state.rawValue); cancel it first (only finished jobs can be discarded)")
            }
            try conn.query("DELETE FROM jobs WHERE id = ?", [.text(id)])
            return true
        }
    }

    public func job(id: String) async throws -> Job? {
        try await onConnection { [self] in try select("WHERE id = ?", [.text(id)]).first }
    }

    private static func filterSQL(_ f: JobFilter) -> (String, [SQLValue]) {
        var clauses: [String] = []
        var params: [SQLValue] = []
        if !f.states.isEmpty {
            clauses.append("state IN (\(Array(repeating: "?", count: f.states.count).joined(separator: ", ")))")
            params += f.states.map { .text($0.rawValue) }
        }
        if let q = f.queue { clauses.append("queue = ?"); params.append(.text(q)) }
        if let k = f.kind { clauses.append("kind = ?"); params.append(.text(k)) }
        if let u = f.uniqueKey { clauses.append("unique_key = ?"); params.append(.text(u)) }
        return (clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND "), params)
    }

    public func listJobs(_ filter: JobFilter, limit: Int, offset: Int) async throws -> [Job] {
        let (w, p) = Self.filterSQL(filter)
        return try await onConnection { [self] in
            try select("\(w) ORDER BY seq DESC LIMIT ? OFFSET ?", p + [.int(Int64(max(0, limit))), .int(Int64(max(0, offset)))])
        }
    }

    public func countJobs(_ filter: JobFilter) async throws -> Int {
        let (w, p) = Self.filterSQL(filter)
        return try await onConnection { [self] in try conn.query("SELECT count(*) FROM jobs \(w)", p).first?.first?.int ?? 0 }
    }

    public func countJobsByQueue(_ filter: JobFilter) async throws -> [String: [JobState: Int]] {
        let (w, p) = Self.filterSQL(filter)
        return try await onConnection { [self] in
            var out: [String: [JobState: Int]] = [:]
            for row in try conn.query("SELECT queue, state, count(*) FROM jobs \(w) GROUP BY queue, state", p) {
                guard let queue = row[0].text, let state = row[1].text.flatMap(JobState.init(rawValue:)) else { continue }
                out[queue, default: [:]][state] = row[2].int ?? 0
            }
            return out
        }
    }

    public func pruneJobs(finishedBeforeMs: Int64) async throws -> Int {
        try await write { [self] in
            try conn.query("DELETE FROM jobs WHERE state IN ('succeeded', 'cancelled') AND finished_at_ms < ?", [.int(finishedBeforeMs)])
            return Int(sqlite3_changes(conn.db))
        }
    }

    public func waitForJobs(since ticket: UInt64, timeoutMs: Int) async -> Bool {
        await jobWake.wait(since: ticket, timeoutMs: timeoutMs)
    }

    public func wakeTicket() async -> UInt64 { jobWake.ticket() }
}
