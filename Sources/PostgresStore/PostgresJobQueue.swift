import Episodes
import HostSupport
import Store
import JSON
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The job queue on PostgreSQL, shared by every host on the database: `FOR UPDATE SKIP LOCKED`
/// hands each job to one worker without workers waiting on each other's locks; a trigger sends
/// `NOTIFY nova_jobs` on commit, which every listening host turns into a wake-up of its idle
/// workers (the poll is only a backstop).
extension PostgresStore: JobQueueStore {
    private static let columnList = JobRow.columns.joined(separator: ", ")
    /// Column kinds, by `JobRow.columns` index: true for BIGINT columns.
    private static let integerColumns: Set<Int> = [4, 6, 7, 8, 9, 10, 14, 15, 16, 17, 18, 19]

    func measureClock() async throws {
        let before = Timestamps.wallNanos() / 1_000_000
        var dbNow: Int64 = before
        for try await (ms) in try await client.query("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT", logger: logger).decode(Int64.self) {
            dbNow = ms
        }
        let after = Timestamps.wallNanos() / 1_000_000
        clockOffsetMs.store(dbNow - (before + after) / 2, ordering: .relaxed)
    }

    /// Now on the database's clock, in milliseconds since the epoch.
    func nowMs() -> Int64 { Timestamps.wallNanos() / 1_000_000 + clockOffsetMs.load(ordering: .relaxed) }

    private static func bind(_ values: [JobRow.Value], into b: inout PostgresBindings) {
        for v in values {
            switch v {
            case .null: b.appendNull()
            case .int(let i): b.append(i)
            case .text(let t): b.append(t)
            }
        }
    }

    private static func query(_ sql: String, _ values: [JobRow.Value]) -> PostgresQuery {
        var b = PostgresBindings(capacity: values.count)
        bind(values, into: &b)
        return PostgresQuery(unsafeSQL: sql, binds: b)
    }

    private static func placeholders(_ range: ClosedRange<Int>) -> String { range.map { "$\($0)" }.joined(separator: ", ") }

    private static func decode(_ row: PostgresRow) throws -> Job {
        var values: [JobRow.Value] = []
        values.reserveCapacity(JobRow.columns.count)
        for (i, cell) in row.enumerated() {
            if cell.bytes == nil { values.append(.null); continue }
            values.append(integerColumns.contains(i) ? .int(try cell.decode(Int64.self)) : .text(try cell.decode(String.self)))
        }
        return try JobRow.job(from: values)
    }

    private func jobs(_ query: PostgresQuery, on conn: PostgresConnection? = nil) async throws -> [Job] {
        let rows = if let conn { try await conn.query(query, logger: logger) } else { try await client.query(query, logger: logger) }
        var out: [Job] = []
        for try await row in rows { out.append(try Self.decode(row)) }
        return out
    }

    private static let updateSQL = "UPDATE nova_jobs SET "
        + JobRow.mutableColumns.enumerated().map { "\(JobRow.columns[$0.element]) = $\($0.offset + 1)" }.joined(separator: ", ")
        + " WHERE id = $\(JobRow.mutableColumns.count + 1) AND state = $\(JobRow.mutableColumns.count + 2)"
        + " AND attempt = $\(JobRow.mutableColumns.count + 3) AND coalesce(worker, '') = $\(JobRow.mutableColumns.count + 4) RETURNING 1"

    /// Writes `next` over `current` if the row is still as `current` was read.
    private func replace(_ current: Job, with next: Job, on conn: PostgresConnection? = nil) async throws -> Bool {
        let all = JobRow.values(of: next)
        let q = Self.query(Self.updateSQL, JobRow.mutableColumns.map { all[$0] }
                           + [.text(current.id), .text(current.state.rawValue), .int(Int64(current.attempt)), .text(current.worker ?? "")])
        let rows = if let conn { try await conn.query(q, logger: logger) } else { try await client.query(q, logger: logger) }
        var changed = false
        for try await _ in rows { changed = true }
        return changed
    }

    /// A transaction that returns a value (see `transaction`).
    func inTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let box = Mutex<T?>(nil)
        try await transaction { conn in
            let value = try await body(conn)
            box.withLock { $0 = value }
        }
        return box.withLock { $0! }
    }

    private func lockedJob(_ id: String, on conn: PostgresConnection) async throws -> Job? {
        try await jobs("SELECT \(unescaped: Self.columnList) FROM nova_jobs WHERE id = \(id) FOR UPDATE", on: conn).first
    }

    public func enqueue(_ spec: JobSpec) async throws -> EnqueueResult {
        if let problem = JobQueueLimits.problem(spec) { throw JobQueueError(problem) }
        let job = Job(spec: spec, nowMs: nowMs())
        let insert = Self.query("INSERT INTO nova_jobs (\(Self.columnList)) VALUES (\(Self.placeholders(1...JobRow.columns.count))) "
                                + "ON CONFLICT DO NOTHING RETURNING 1", JobRow.values(of: job))
        // A conflicting pending job may end between the insert and the lookup: try again then.
        for _ in 0..<5 {
            var inserted = false
            for try await _ in try await client.query(insert, logger: logger) { inserted = true }
            if inserted { return EnqueueResult(job: job, duplicate: false) }
            if let key = spec.uniqueKey, let existing = try await jobs("""
                SELECT \(unescaped: Self.columnList) FROM nova_jobs WHERE unique_key = \(key) AND state IN ('available', 'retryable', 'running')
                """).first {
                return EnqueueResult(job: existing, duplicate: true)
            }
            if try await self.job(id: spec.id) != nil { throw JobQueueError("a job with id \(spec.id) already exists") }
        }
        throw JobQueueError("job \(spec.id) could not be enqueued: its unique key kept conflicting")
    }

    public func dequeue(queues: [String], worker: String, limit: Int, leaseMs: Int) async throws -> [Job] {
        if queues.isEmpty || limit < 1 { return [] }
        let now = nowMs()
        let leaseUntil = now + Int64(leaseMs)
        let found = try await jobs("""
            UPDATE nova_jobs SET state = 'running', attempt = attempt + 1, worker = \(worker), lease_until_ms = \(leaseUntil),
                                 started_at_ms = \(now), updated_at_ms = \(now), cancel_requested = 0
            WHERE seq IN (SELECT seq FROM nova_jobs
                          WHERE state IN ('available', 'retryable') AND queue = ANY(\(queues)) AND run_at_ms <= \(now)
                          ORDER BY priority DESC, run_at_ms, seq LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING \(unescaped: Self.columnList)
            """)
        return found.sorted { a, b in (a.priority, b.runAtMs, b.createdAtMs) > (b.priority, a.runAtMs, a.createdAtMs) }
    }

    public func heartbeat(jobIds: [String], worker: String, leaseMs: Int) async throws -> [String: Bool] {
        if jobIds.isEmpty { return [:] }
        let until = nowMs() + Int64(leaseMs)
        let rows = try await client.query("""
            UPDATE nova_jobs SET lease_until_ms = \(until) WHERE id = ANY(\(jobIds)) AND state = 'running' AND worker = \(worker)
            RETURNING id, cancel_requested
            """, logger: logger)
        var out: [String: Bool] = [:]
        for try await (id, flag) in rows.decode((String, Int64).self) { out[id] = flag != 0 }
        return out
    }

    /// One statement for the whole batch: `UPDATE … FROM (VALUES …)`, each row conditional on
    /// the worker, state and attempt it was given. Only a lease holder writes a running job's
    /// history, so each job as given is current.
    public func finish(_ batch: [(job: Job, completion: JobCompletion)]) async throws -> [Bool] {
        if batch.isEmpty { return [] }
        let now = nowMs()
        let mutable = JobRow.mutableColumns
        let perRow = mutable.count + 4
        var rows: [String] = []
        var values: [JobRow.Value] = []
        for (i, item) in batch.enumerated() {
            let all = JobRow.values(of: item.job.finished(item.completion, nowMs: now))
            values += mutable.map { all[$0] }
                + [.text(item.job.id), .text(item.job.state.rawValue), .int(Int64(item.job.attempt)), .text(item.job.worker ?? "")]
            let casts = mutable.map { Self.integerColumns.contains($0) ? "BIGINT" : "TEXT" } + ["TEXT", "TEXT", "BIGINT", "TEXT"]
            rows.append("(" + casts.enumerated().map { "$\(i * perRow + $0.offset + 1)::\($0.element)" }.joined(separator: ", ") + ")")
        }
        let names = mutable.map { JobRow.columns[$0] } + ["old_id", "old_state", "old_attempt", "old_worker"]
        let sql = "UPDATE nova_jobs AS j SET " + mutable.map { "\(JobRow.columns[$0]) = v.\(JobRow.columns[$0])" }.joined(separator: ", ")
            + " FROM (VALUES " + rows.joined(separator: ", ") + ") AS v(" + names.joined(separator: ", ") + ")"
            + " WHERE j.id = v.old_id AND j.state = v.old_state AND j.attempt = v.old_attempt AND coalesce(j.worker, '') = v.old_worker"
            + " RETURNING j.id"
        var changed = Set<String>()
        for try await (id) in try await client.query(Self.query(sql, values), logger: logger).decode(String.self) { changed.insert(id) }
        return batch.map { changed.contains($0.job.id) }
    }

    public func rescueExpired() async throws -> [String] {
        let now = nowMs()
        return try await inTransaction { [self] conn in
            var ids: [String] = []
            let expired = try await jobs("""
                SELECT \(unescaped: Self.columnList) FROM nova_jobs WHERE state = 'running' AND lease_until_ms < \(now)
                FOR UPDATE SKIP LOCKED
                """, on: conn)
            for job in expired where try await replace(job, with: job.rescued(nowMs: now), on: conn) { ids.append(job.id) }
            return ids
        }
    }

    public func cancelJob(id: String) async throws -> JobCancelOutcome {
        let now = nowMs()
        return try await inTransaction { [self] conn in
            guard let job = try await lockedJob(id, on: conn) else { return .notFound }
            let (next, outcome) = job.cancelling(nowMs: now)
            if case .alreadyFinished = outcome { return outcome }
            _ = try await replace(job, with: next, on: conn)
            return outcome
        }
    }

    public func retryJob(id: String) async throws -> Job? {
        let now = nowMs()
        return try await inTransaction { [self] conn in
            guard let job = try await lockedJob(id, on: conn) else { return nil }
            let next = try job.retried(nowMs: now)
            if let key = next.uniqueKey, let other = try await jobs("""
                SELECT \(unescaped: Self.columnList) FROM nova_jobs
                WHERE unique_key = \(key) AND state IN ('available', 'retryable', 'running') AND id <> \(id)
                """, on: conn).first {
                throw JobQueueError("job \(other.id) with the same unique key is \(other.state.rawValue); retry it after that one ends")
            }
            _ = try await replace(job, with: next, on: conn)
            return next
        }
    }

    public func discardJob(id: String) async throws -> Bool {
        try await inTransaction { [self] conn in
            guard let job = try await lockedJob(id, on: conn) else { return false }
            guard job.state.isFinal else {
                throw JobQueueError("job \(id) is \(job.state.rawValue); cancel it first (only finished jobs can be discarded)")
            }
            try await conn.query("DELETE FROM nova_jobs WHERE id = \(id)", logger: logger)
            return true
        }
    }

    public func job(id: String) async throws -> Job? {
        try await jobs("SELECT \(unescaped: Self.columnList) FROM nova_jobs WHERE id = \(id)").first
    }

    /// Empty filters match everything (`cardinality($1) = 0`, `$2::TEXT IS NULL`).
    private static func filterSQL(_ f: JobFilter) -> PostgresQuery {
        let states = f.states.map(\.rawValue)
        return """
            WHERE (cardinality(\(states)::TEXT[]) = 0 OR state = ANY(\(states))) AND (\(f.queue)::TEXT IS NULL OR queue = \(f.queue))
              AND (\(f.kind)::TEXT IS NULL OR kind = \(f.kind)) AND (\(f.uniqueKey)::TEXT IS NULL OR unique_key = \(f.uniqueKey))
            """
    }

    public func listJobs(_ filter: JobFilter, limit: Int, offset: Int) async throws -> [Job] {
        var q = Self.filterSQL(filter)
        q.sql = "SELECT \(Self.columnList) FROM nova_jobs " + q.sql + " ORDER BY seq DESC LIMIT \(max(0, limit)) OFFSET \(max(0, offset))"
        return try await jobs(q)
    }

    public func countJobs(_ filter: JobFilter) async throws -> Int {
        var q = Self.filterSQL(filter)
        q.sql = "SELECT count(*)::BIGINT FROM nova_jobs " + q.sql
        for try await (n) in try await client.query(q, logger: logger).decode(Int.self) { return n }
        return 0
    }

    public func countJobsByQueue(_ filter: JobFilter) async throws -> [String: [JobState: Int]] {
        var q = Self.filterSQL(filter)
        q.sql = "SELECT queue, state, count(*)::BIGINT FROM nova_jobs " + q.sql + " GROUP BY queue, state"
        var out: [String: [JobState: Int]] = [:]
        for try await (queue, state, n) in try await client.query(q, logger: logger).decode((String, String, Int).self) {
            if let s = JobState(rawValue: state) { out[queue, default: [:]][s] = n }
        }
        return out
    }

    public func pruneJobs(finishedBeforeMs: Int64) async throws -> Int {
        var n = 0
        for try await _ in try await client.query("""
            DELETE FROM nova_jobs WHERE state IN ('succeeded', 'cancelled') AND finished_at_ms < \(finishedBeforeMs) RETURNING 1
            """, logger: logger) { n += 1 }
        return n
    }

    public func waitForJobs(since ticket: UInt64, timeoutMs: Int) async -> Bool {
        await jobWake.wait(since: ticket, timeoutMs: timeoutMs)
    }

    public func wakeTicket() async -> UInt64 {
        let ticket = listening.ticket()
        let started = listener.withLock { task -> Bool in
            if task != nil { return false }
            task = Task { [weak self] in await self?.listen() }
            return true
        }
        // Wait (a little) for the first LISTEN, so a job enqueued right after is not missed.
        if started || ticket == 0 { await listening.wait(since: 0, timeoutMs: 5_000) }
        return jobWake.ticket()
    }

    /// Holds one connection listening on `nova_jobs` (job, cancel and bus wake-ups: `q:`, `c:`, `b:`) until the store closes, reconnecting
    /// after failures. After each (re)start it wakes everyone: what was sent while no one
    /// listened is found by looking.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { conn in
                    try await conn.listen(on: "nova_jobs") { notifications in
                        // Wake everyone first, then say we listen: a ticket taken once
                        // `wakeTicket` sees us listening is past this wake-up, so a waiter is
                        // not woken by the listener's start instead of by a job.
                        jobWake.signal()
                        busWake.signal()
                        listening.signal()
                        for try await n in notifications {
                            if n.payload.hasPrefix("c:") {
                                cancelRequests.signal()
                            } else if n.payload.hasPrefix("b:") {
                                busWake.signal()
                            } else {
                                jobWake.signal()
                            }
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
