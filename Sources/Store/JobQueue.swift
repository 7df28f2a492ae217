import JSON
import Synchronization
import HostSupport

/// Where a job is in its life. `available → running → succeeded`; a failed attempt makes it
/// `retryable` (it runs again after its backoff) until `max_attempts`, then `dead` (the
/// dead-letter queue). `cancelled` ends it on request.
public enum JobState: String, Sendable, CaseIterable, Codable {
    case available, running, succeeded, retryable, dead, cancelled

    /// Whether the job will not run again by itself.
    public var isFinal: Bool { self == .succeeded || self == .dead || self == .cancelled }
}

/// Exponential backoff with jitter: attempt `n` (1-based) that failed waits
/// `min(base · 2^(n-1), max)`, scaled by a random factor in [0.5, 1.5).
public struct JobBackoff: Sendable, Hashable {
    /// The first retry's nominal delay.
    public var baseMs: Int
    /// The largest nominal delay.
    public var maxMs: Int

    public init(baseMs: Int = 1_000, maxMs: Int = 3_600_000) {
        self.baseMs = max(0, baseMs)
        self.maxMs = max(self.baseMs, maxMs)
    }

    /// The delay after failed attempt `attempt`, jittered.
    public func delayMs(afterAttempt attempt: Int) -> Int {
        let exponent = min(max(attempt - 1, 0), 40)
        let nominal = min(Double(baseMs) * Double(1 << exponent), Double(maxMs))
        return Int(nominal * Double.random(in: 0.5..<1.5))
    }
}

/// A job to enqueue.
public struct JobSpec: Sendable {
    /// The job's id; a UUID when not given (a run's job uses the run id).
    public var id: String
    /// What the job does (`run`, …): the worker's handler for this kind executes it.
    public var kind: String
    /// Its argument, exactly as given.
    public var payload: JSONValue
    /// The queue it waits in; workers take jobs from the queues they serve.
    public var queue: String
    /// Higher runs first; equal priorities run in `run_at` then enqueue order.
    public var priority: Int
    /// Not before this time (milliseconds since the epoch); nil means now.
    public var runAtMs: Int64?
    /// While a job with this key is available, retryable or running, enqueueing another with
    /// the same key returns that job instead.
    public var uniqueKey: String?
    /// Attempts before the job is dead.
    public var maxAttempts: Int
    /// Delay between attempts.
    public var backoff: JobBackoff

    public init(id: String = RunId.make(), kind: String, payload: JSONValue, queue: String = JobQueueLimits.defaultQueue,
                priority: Int = 0, runAtMs: Int64? = nil, uniqueKey: String? = nil, maxAttempts: Int = 3, backoff: JobBackoff = JobBackoff()) {
        self.id = id
        self.kind = kind
        self.payload = payload
        self.queue = queue
        self.priority = priority
        self.runAtMs = runAtMs
        self.uniqueKey = uniqueKey
        self.maxAttempts = maxAttempts
        self.backoff = backoff
    }
}

/// How one attempt of a job ended, in the job's history.
public struct JobAttempt: Sendable, Hashable {
    /// 1-based attempt number.
    public var attempt: Int
    /// The worker that ran it.
    public var worker: String
    /// When it started and ended (milliseconds since the epoch).
    public var startedAtMs: Int64
    public var finishedAtMs: Int64
    /// `succeeded`, `failed`, `interrupted` (its worker stopped: crashed, lost its lease or
    /// shut down) or `cancelled`.
    public var outcome: String
    /// Why it did not succeed.
    public var error: String?

    public var json: JSONValue {
        var o: JSONObject = [
            "attempt": .int(attempt), "worker": .string(worker), "outcome": .string(outcome),
            "started_at": .string(Timestamps.format(nanosSinceEpoch: startedAtMs * 1_000_000)),
            "finished_at": .string(Timestamps.format(nanosSinceEpoch: finishedAtMs * 1_000_000)),
        ]
        if let error { o["error"] = .string(error) }
        return .object(o)
    }

    /// Reads one entry of the stored history (the store writes it with `storedJSON`).
    init?(stored v: JSONValue) {
        guard let a = v["attempt"]?.intValue, let w = v["worker"]?.stringValue, let o = v["outcome"]?.stringValue else { return nil }
        self.init(attempt: a, worker: w, startedAtMs: Int64(v["started_ms"]?.intValue ?? 0), finishedAtMs: Int64(v["finished_ms"]?.intValue ?? 0),
                  outcome: o, error: v["error"]?.stringValue)
    }

    public init(attempt: Int, worker: String, startedAtMs: Int64, finishedAtMs: Int64, outcome: String, error: String?) {
        self.attempt = attempt
        self.worker = worker
        self.startedAtMs = startedAtMs
        self.finishedAtMs = finishedAtMs
        self.outcome = outcome
        self.error = error
    }
}

/// A job as stored.
public struct Job: Sendable {
    public var id: String
    public var kind: String
    public var queue: String
    public var payload: JSONValue
    public var priority: Int
    public var state: JobState
    /// Attempts started so far (the running one included).
    public var attempt: Int
    public var maxAttempts: Int
    public var backoff: JobBackoff
    public var runAtMs: Int64
    public var uniqueKey: String?
    /// The error of the last failed attempt.
    public var lastError: String?
    /// The worker holding the lease while running.
    public var worker: String?
    /// When the lease ends unless the worker heartbeats.
    public var leaseUntilMs: Int64?
    /// When the current (or last) attempt started.
    public var startedAtMs: Int64?
    /// Someone asked to cancel the running job; its worker stops it.
    public var cancelRequested: Bool
    public var createdAtMs: Int64
    public var updatedAtMs: Int64
    public var finishedAtMs: Int64?
    /// What the last successful attempt returned.
    public var result: JSONValue?
    /// Every ended attempt, oldest first.
    public var attempts: [JobAttempt]

    /// The API form (`GET /v1/jobs/{id}`, `nova-host jobs show --json`).
    public var json: JSONValue {
        func time(_ ms: Int64?) -> JSONValue { ms.map { .string(Timestamps.format(nanosSinceEpoch: $0 * 1_000_000)) } ?? .null }
        return [
            "id": .string(id), "kind": .string(kind), "queue": .string(queue), "payload": payload, "priority": .int(priority),
            "state": .string(state.rawValue), "attempt": .int(attempt), "max_attempts": .int(maxAttempts),
            "run_at": time(runAtMs), "unique_key": uniqueKey.map(JSONValue.string) ?? .null,
            "last_error": lastError.map(JSONValue.string) ?? .null, "worker": worker.map(JSONValue.string) ?? .null,
            "lease_until": time(leaseUntilMs), "started_at": time(startedAtMs), "cancel_requested": .bool(cancelRequested),
            "created_at": time(createdAtMs), "updated_at": time(updatedAtMs), "finished_at": time(finishedAtMs),
            "result": result ?? .null, "attempts": .array(attempts.map(\.json)),
        ]
    }
}

/// What `enqueue` did.
public struct EnqueueResult: Sendable {
    /// The job stored (the existing one when `duplicate`).
    public var job: Job
    /// A pending or running job had the same unique key; nothing was added.
    public var duplicate: Bool

    public init(job: Job, duplicate: Bool) {
        self.job = job
        self.duplicate = duplicate
    }
}

/// What `cancelJob` did.
public enum JobCancelOutcome: Sendable, Equatable {
    /// It had not started: it is cancelled and will not run.
    case cancelled
    /// It is running: its worker has been asked to stop it.
    case cancelling
    /// It had already ended in this state.
    case alreadyFinished(JobState)
    case notFound
}

/// How an attempt ended, as its worker reports it.
public enum JobCompletion: Sendable {
    /// Done; `result` is kept, and `payload` (when given) replaces the stored payload — a
    /// run's job keeps its redacted inputs once the run is recorded, not the secrets.
    case succeeded(result: JSONValue?, payload: JSONValue? = nil)
    /// Failed: retried after backoff while attempts remain (unless `retryable` is false), then dead.
    case failed(error: String, retryable: Bool)
    /// Stopped on a cancel request.
    case cancelled(reason: String)
    /// The worker is shutting down: the job goes back to the queue at once, this attempt
    /// recorded `interrupted`.
    case released(reason: String)
    /// Not started (its agent is paused or stopped): back to the queue to be tried again after
    /// `delayMs`, the attempt neither counted nor recorded.
    case deferred(reason: String, delayMs: Int)
}

/// Filters for listing jobs.
public struct JobFilter: Sendable {
    public var states: [JobState]
    public var queue: String?
    public var kind: String?
    /// Jobs with this unique key, in any state.
    public var uniqueKey: String?

    public init(states: [JobState] = [], queue: String? = nil, kind: String? = nil, uniqueKey: String? = nil) {
        self.states = states
        self.queue = queue
        self.kind = kind
        self.uniqueKey = uniqueKey
    }
}

/// Names and limits of the queue, checked the same way on every backend.
public enum JobQueueLimits {
    /// The queue jobs go to when none is named.
    public static let defaultQueue = "default"
    /// The lease a worker takes on a job unless configured otherwise.
    public static let defaultLeaseMs = 30_000

    /// Whether `name` is a valid queue or kind name: 1–64 of `a-z 0-9 _ - .`, starting with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count), let first = bytes.first, isAlnum(first) else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
    }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
    }

    /// Why `spec` cannot be enqueued, if so.
    public static func problem(_ spec: JobSpec) -> String? {
        if !isValidName(spec.kind) { return "invalid job kind '\(spec.kind)': use 1–64 of a-z 0-9 _ - ." }
        if !isValidName(spec.queue) { return "invalid queue name '\(spec.queue)': use 1–64 of a-z 0-9 _ - ." }
        if !(1...1_000).contains(spec.maxAttempts) { return "max_attempts must be from 1 to 1000" }
        if !(-1_000_000...1_000_000).contains(spec.priority) { return "priority must be from -1000000 to 1000000" }
        if let key = spec.uniqueKey, key.isEmpty || key.utf8.count > 512 { return "unique_key must be 1–512 bytes" }
        if spec.id.isEmpty || spec.id.utf8.count > 128 { return "job id must be 1–128 bytes" }
        return nil
    }
}

/// An error of the queue itself (bad input, not a database failure).
public struct JobQueueError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A durable job queue shared by every process using the store (SQLite: the processes on one
/// data directory; PostgreSQL: every host on the database).
///
/// Leases: `dequeue` marks jobs `running` for one worker until `leaseUntil`; the worker extends
/// the lease with `heartbeat` and ends the attempt with `finish`. A job whose lease expired (its
/// worker died) is put back by `rescueExpired` as its next attempt (or dead after its last).
/// Every method that takes a worker acts only while that worker still holds the job's lease, so
/// a worker that lost its job cannot overwrite the next attempt.
public protocol JobQueueStore: Sendable {
    /// Stores a job (committed on return), unless a pending or running job has the same unique key.
    func enqueue(_ spec: JobSpec) async throws -> EnqueueResult
    /// Leases up to `limit` runnable jobs of `queues` (highest priority, then earliest `run_at`,
    /// then enqueue order) to `worker` for `leaseMs`, each as its next attempt.
    func dequeue(queues: [String], worker: String, limit: Int, leaseMs: Int) async throws -> [Job]
    /// Extends the leases `worker` holds on `jobIds`, in one statement. Returns the jobs it
    /// still holds, each with whether a cancel was requested (a job missing from the answer
    /// was rescued, cancelled before it started, or is gone).
    func heartbeat(jobIds: [String], worker: String, leaseMs: Int) async throws -> [String: Bool]
    /// Ends the running attempts of several jobs (each as `dequeue` returned it to its worker)
    /// in one transaction. Returns, in order, whether each worker still held its lease (where
    /// it did not, nothing changed).
    func finish(_ batch: [(job: Job, completion: JobCompletion)]) async throws -> [Bool]
    /// Puts back every running job whose lease has expired, each recorded as an `interrupted`
    /// attempt: retryable at once, or dead when it was the last attempt. Returns their ids.
    func rescueExpired() async throws -> [String]
    /// Cancels a pending job, or asks the worker of a running one to stop it.
    func cancelJob(id: String) async throws -> JobCancelOutcome
    /// Makes a dead, cancelled or retryable job available now, with at least one attempt left.
    /// Returns the job, or nil if there is none with that id; throws if it is running or succeeded.
    func retryJob(id: String) async throws -> Job?
    /// Deletes a finished (dead, cancelled or succeeded) job. Returns false if there is none;
    /// throws if it is pending or running.
    func discardJob(id: String) async throws -> Bool
    /// The job, if any.
    func job(id: String) async throws -> Job?
    /// Jobs matching `filter`, newest first.
    func listJobs(_ filter: JobFilter, limit: Int, offset: Int) async throws -> [Job]
    /// How many jobs match `filter`.
    func countJobs(_ filter: JobFilter) async throws -> Int
    /// How many jobs matching `filter` each queue holds in each state (one `GROUP BY`: what a
    /// dashboard shows without reading the jobs).
    func countJobsByQueue(_ filter: JobFilter) async throws -> [String: [JobState: Int]]
    /// Deletes succeeded and cancelled jobs that finished before `olderThanMs` (dead jobs stay
    /// in the dead-letter queue until retried or discarded). Returns how many.
    func pruneJobs(finishedBeforeMs: Int64) async throws -> Int
    /// Returns true when a job may have become runnable (an enqueue or retry here, or on
    /// another host when the backend can tell), false after `timeoutMs` without one. `ticket`
    /// is a `wakeTicket()` taken before the caller last found the queue empty, so a wake-up
    /// between that check and this wait is not lost.
    @discardableResult
    func waitForJobs(since ticket: UInt64, timeoutMs: Int) async -> Bool
    /// The current wake-up count (see `waitForJobs`); also makes sure this store is listening
    /// for wake-ups from other hosts, where it can.
    func wakeTicket() async -> UInt64
    /// Signalled when a cancel of a running job was requested (here, or on another host when
    /// the backend can tell): workers heartbeat at once to learn which.
    var cancelRequests: WakeSignal { get }
}

extension JobQueueStore {
    /// `heartbeat` for one job: nil when the worker no longer holds it, else whether a cancel
    /// was requested.
    public func heartbeat(jobId: String, worker: String, leaseMs: Int) async throws -> Bool? {
        try await heartbeat(jobIds: [jobId], worker: worker, leaseMs: leaseMs)[jobId]
    }

    /// Ends the running attempt of `job`; false when its worker no longer holds the lease.
    @discardableResult
    public func finish(_ job: Job, _ completion: JobCompletion) async throws -> Bool {
        try await finish([(job, completion)]).first ?? false
    }
}

extension HostStore {
    /// The store's job queue (both shipped stores have one).
    public var jobQueue: (any JobQueueStore)? { self as? any JobQueueStore }
}

/// Wake-ups for waiting workers: a counter bumped by every signal, and the tasks waiting for it
/// to move past the value they saw. No wake-up between a `ticket()` and a `wait` is lost.
public final class WakeSignal: Sendable {
    private struct Waiter {
        var ticket: UInt64
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var count: UInt64 = 0
        var nextId = 0
        var waiters: [Int: Waiter] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// The current count.
    public func ticket() -> UInt64 { state.withLock { $0.count } }

    /// Wakes every waiter.
    public func signal() {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.count &+= 1
            let all = s.waiters.values.map(\.continuation)
            s.waiters.removeAll()
            return all
        }
        for c in woken { c.resume() }
    }

    /// Returns true once the count has moved past `ticket`; false after `timeoutMs` or on
    /// cancellation.
    @discardableResult
    public func wait(since ticket: UInt64, timeoutMs: Int) async -> Bool {
        let id = state.withLock { s -> Int in
            s.nextId += 1
            return s.nextId
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow = self.state.withLock { s -> Bool in
                            if s.count != ticket || Task.isCancelled { return true }
                            s.waiters[id] = Waiter(ticket: ticket, continuation: c)
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: {
                    self.state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume()
                }
                return self.state.withLock { $0.count != ticket }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(max(0, timeoutMs)))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || self.state.withLock { $0.count != ticket }
        }
    }
}

extension JobQueueStore {
    /// Every job state's count (state raw value → jobs), every queue: the reports' queue depth
    /// and dead-letter figures.
    public func countsByState() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for state in JobState.allCases { counts[state.rawValue] = try await countJobs(JobFilter(states: [state])) }
        return counts
    }
}
